"""A synthesized trace goes through the whole product: fit the bundled BurstGPT_3 slice, synthesize,
and replay the result headless through Locust against the simulator."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import BURSTGPT_3_400
from tests.plugin_runs import run_locust
from tests.support import HEADER_3


def _burstgpt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "locust_burstgpt.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_fit_synth_then_replay_through_locust(sim_fast, tmp_path):
    params = tmp_path / "params.json"
    trace = tmp_path / "synth.csv"
    assert _burstgpt("fit", str(BURSTGPT_3_400), "-o", str(params)).returncode == 0
    out = _burstgpt(
        "synth",
        "--params",
        str(params),
        "--rate",
        "0.05",
        "--duration",
        "2h",
        "--seed",
        "7",
        "--tail",
        "cut",
        "-o",
        str(trace),
    )
    assert out.returncode == 0, out.stderr
    rows = trace.read_text().splitlines()
    assert rows[0] == HEADER_3
    assert len(rows) > 100
    run = run_locust(
        tmp_path,
        sim_fast.base_url,
        "--burstgpt-trace",
        str(trace),
        "--burstgpt-speedup",
        "1000",
        "--burstgpt-report",
        str(tmp_path / "report"),
    )
    assert run.returncode == 0, run.output[-3000:]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    books = summary["reconciliation"]
    assert books["balances"] is True and books["sent"] > 100
    assert books["outcomes"] == {"ok": books["sent"]}
    assert summary["trace"]["file"].endswith("synth.csv")
    lines = (tmp_path / "report" / "requests.jsonl").read_text().splitlines()
    assert len(lines) == books["scheduled"]
    assert any(
        json.loads(x)["turn"] > 0 for x in lines
    )  # multi-turn conversations were synthesized and replayed
