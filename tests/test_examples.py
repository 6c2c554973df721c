"""The examples run as documented."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys

from tests.plugin_runs import ROOT, run_locust
from tests.servers.recording_proxy import RecordingProxy

EXAMPLES = ROOT / "examples"


def test_custom_user_example_adds_header_and_fields(sim_fast, tmp_path):
    host, port = sim_fast.base_url.rsplit("//", 1)[1].split(":")
    proxy = RecordingProxy(host, int(port)).start()
    try:
        run = run_locust(
            tmp_path,
            proxy.base_url,
            "--burstgpt-window",
            "19440110+70000s",
            "--burstgpt-speedup",
            "5000",
            locustfile=EXAMPLES / "custom_user.py",
        )
        chat = [r for r in proxy.snapshot() if r.path == "/v1/chat/completions"]
        # the prompt builder's one-off setup probes are not replayed turns
        seen = [
            r for r in chat if not r.headers.get("x-request-id", "").startswith("prompt-probe-")
        ]
    finally:
        proxy.stop()
    assert run.returncode == 0, run.output[-3000:]
    assert len(seen) > 300
    assert all(r.headers.get("x-tenant") == "load-test" for r in seen)
    assert all(r.body["temperature"] == 0.7 and r.body["top_p"] == 0.95 for r in seen)
    assert all(r.body["max_tokens"] >= 1 and r.body["ignore_eos"] is True for r in seen)


def test_github_actions_workflow_command_passes_its_gates(tmp_path):
    text = (EXAMPLES / "github-actions" / "burstgpt-slo.yml").read_text()
    block = re.search(r"run: >-\n((?:\s{10}.+\n)+)", text)
    assert block, "the workflow's locust step was not found"
    command = " ".join(line.strip() for line in block.group(1).splitlines())
    args = shlex.split(command)
    assert args[:3] == ["locust", "-f", "locustfiles/burstgpt.py"] and "--host" not in args
    report = tmp_path / "burstgpt-report"
    args = [
        str(report) + a[len("burstgpt-report") :] if a.startswith("burstgpt-report") else a
        for a in args
    ]
    proc = subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=240
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert out.count("SLO PASS") == 4 and "embedded LLM server simulator" in out
    summary = json.loads((report / "summary.json").read_text())
    assert (
        summary["verdict"]["slo_passed"] is True and summary["reconciliation"]["balances"] is True
    )
    assert (report / "locust.html").exists()


def test_distributed_example_processes_part(tmp_path):
    script = (EXAMPLES / "distributed.sh").read_text()
    part_a = script[: script.index("# B.")]
    env = {
        **os.environ,
        "SPEEDUP": "600",
        "REPORT": str(tmp_path / "report"),
        "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}",
    }
    proc = subprocess.run(
        ["bash", "-c", part_a], cwd=ROOT, capture_output=True, text=True, timeout=240, env=env
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    books = summary["reconciliation"]
    assert books["balances"] is True and books["sent"] > 50
    assert "Assigned 58 conversations to 4 workers" in out
