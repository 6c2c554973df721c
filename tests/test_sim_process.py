"""SimulatorProcess and `burstgpt sim`: start, health, clean stop, no orphans, gevent-safe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from locust_burstgpt.sim import SimulatorProcess
from tests.sim_client import RawClient, chat
from tests.support import wait_until

ROOT = Path(__file__).resolve().parent.parent


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its (dead) parent to be reaped counts as gone
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_simulator_process_is_healthy_on_enter_and_gone_on_exit():
    with SimulatorProcess(profile="fast", config={"model": "my-model"}) as sim:
        assert sim.base_url.startswith("http://127.0.0.1:") and sim.pid
        with urllib.request.urlopen(sim.base_url + "/health", timeout=5) as r:
            assert r.status == 200
        with RawClient(sim.base_url) as c:
            assert c.request("GET", "/v1/models").json()["data"][0]["id"] == "my-model"
        pid = sim.pid
    assert sim.proc is not None and sim.proc.returncode == 0  # exited by itself on stdin EOF
    assert not _alive(pid)


def test_config_errors_surface_in_the_parent_naming_the_file(tmp_path):
    bad = tmp_path / "sim.json"
    bad.write_text('{"profile_overrides": {"max_num_seqz": 3}}')
    with pytest.raises(ValueError, match=r"sim.json.*max_num_seqz"):
        SimulatorProcess(config=str(bad))
    with pytest.raises(ValueError, match="unknown simulator profile 'h100'"):
        SimulatorProcess(profile="h100")


def test_works_from_a_gevent_monkey_patched_process():
    code = textwrap.dedent("""
        from gevent import monkey; monkey.patch_all()
        import gevent, json, urllib.request
        from locust_burstgpt.sim import SimulatorProcess
        ticks = []
        ticker = gevent.spawn(lambda: [ticks.append(1) or gevent.sleep(0.01) for _ in range(10**6)])
        with SimulatorProcess(profile="fast") as sim:
            body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}).encode()
            r = json.loads(urllib.request.urlopen(sim.base_url + "/v1/chat/completions", body).read())
            print(json.dumps({"tokens": r["usage"]["completion_tokens"], "pid": sim.pid, "ticks": len(ticks)}))
        ticker.kill()
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["tokens"] == 3
    assert res["ticks"] >= 1  # the hub kept running while the child started
    assert not _alive(res["pid"])


def test_child_exits_when_its_parent_is_killed():
    code = textwrap.dedent("""
        import sys, time
        from locust_burstgpt.sim import SimulatorProcess
        sim = SimulatorProcess(profile="fast").start()
        print(sim.pid, flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.kill()
        parent.wait(10)
        wait_until(lambda: not _alive(child), timeout=10, what="the orphaned simulator to exit")
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(10)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_prints_one_line_and_exits_cleanly_on_signal(sig, tmp_path):
    cfg = tmp_path / "sim.json"
    cfg.write_text(json.dumps({"model": "cli-model", "profile": "a100-7b"}))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust_burstgpt.cli.main",
            "sim",
            "--port",
            "0",
            "--config",
            str(cfg),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        line = proc.stdout.readline()
        assert "profile=a100-7b" in line and "model=cli-model" in line
        url = line.split("listening on ", 1)[1].split()[0]
        assert url.startswith("http://127.0.0.1:")
        with RawClient(url) as c:
            assert c.request(
                "POST", "/v1/chat/completions", chat(max_tokens=2) | {"model": "cli-model"}
            ).complete
        proc.send_signal(sig)
        assert proc.wait(10) == 0
        assert proc.stdout.read() == ""  # exactly one line
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_cli_rejects_a_bad_config_naming_file_and_line(tmp_path):
    cfg = tmp_path / "broken.json"
    cfg.write_text('{"model": "x",\n "seed": }')
    t = time.monotonic()
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "locust_burstgpt.cli.main",
            "sim",
            "--port",
            "0",
            "--config",
            str(cfg),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert out.returncode == 2
    assert "broken.json: invalid JSON at line 2" in out.stderr
    assert time.monotonic() - t < 30
