"""A worker killed with SIGKILL mid-run: the master notices within 5 s, counts what the worker had in
flight and had not sent, and fails the run's trust check, or, with --burstgpt-reassign-lost, hands the
conversations that had not started to the survivors without sending any conversation twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

from tests.plugin_runs import INSTRUMENTED, ROOT
from tests.servers.managed import free_port
from tests.servers.recording_proxy import RecordingProxy
from tests.support import wait_until, write_trace

WINDOW_S = 14
KILL_AFTER_S = 4.0  # of replay time: well after every worker has sent, well before the end


def _trace(path: Path) -> Path:
    """8 single-turn conversations a second for 12 s, and a few 3-turn ones spread over the run."""
    rows = [f"{1000 + i * 0.125:.3f},,1,ChatGPT,40,16,56,API log\n" for i in range(96)]
    for s in range(6):
        rows += [
            f"{1000 + 2 * s + 0.06 + 1.2 * k:.3f},conv{s},1,GPT-4,{60 + 40 * k},12,{72 + 40 * k},"
            "Conversation log\n"
            for k in range(3)
        ]
    rows.sort(key=lambda r: float(r.split(",", 1)[0]))
    write_trace(path, rows)
    return path


def _run_with_a_kill(tmp: Path, proxy: RecordingProxy, *extra: str) -> dict:
    trace = _trace(tmp / "trace.csv")
    report = tmp / "report"
    port = free_port()
    common = [
        "-f",
        str(INSTRUMENTED),
        "--burstgpt-trace",
        str(trace),
        "--burstgpt-window",
        f"1000+{WINDOW_S}s",
        "--burstgpt-headroom",
        "3",
        "--loglevel",
        "INFO",
        *extra,
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "BURSTGPT_TEST_DUMP": str(tmp / "dump")}
    master_log = open(tmp / "master.log", "w")  # noqa: SIM115 - closed below
    master = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "locust",
            *common,
            "--headless",
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            "3",
            "--host",
            proxy.base_url,
            "--burstgpt-report",
            str(report),
        ],
        cwd=ROOT,
        stdout=master_log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "locust",
                *common,
                "--worker",
                "--master-host",
                "127.0.0.1",
                "--master-port",
                str(port),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        for _ in range(3)
    ]
    start = len(proxy.requests)

    def replayed() -> list:
        """Chat requests of this run's replayed turns (``<run>-<conversation>-<turn>``, not probes)."""
        return [
            r
            for r in proxy.requests[start:]
            if r.path.startswith("/v1/chat")
            and r.headers.get("x-request-id", "").count("-") >= 2
            and not r.headers["x-request-id"].startswith("prompt")
        ]

    def run_ids() -> set[str]:
        return {r.headers["x-request-id"].split("-", 1)[0] for r in replayed()}

    try:
        wait_until(lambda: len(run_ids()) == 3, 90, "all three workers to send")
        first = min(r.received_at for r in replayed())
        wait_until(lambda: time.time() - first >= KILL_AFTER_S, 30, "the kill time")
        victim = workers[0]
        victim.send_signal(signal.SIGKILL)
        killed_at = time.time()
        rc = master.wait(timeout=120)
    finally:
        for p in [master, *workers]:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
        master_log.close()
    seen = replayed()
    summary = json.loads((report / "summary.json").read_text())
    lines = [json.loads(x) for x in (report / "requests.jsonl").read_text().splitlines()]
    return {
        "rc": rc,
        "killed_at": killed_at,
        "summary": summary,
        "lines": lines,
        "seen": seen,
        "log": (tmp / "master.log").read_text(),
    }


def _check_books(out: dict) -> dict:
    rec = out["summary"]["reconciliation"]
    assert rec["balances"], rec
    assert rec["scheduled"] == rec["sent"] + sum(rec["not_sent"].values())
    assert rec["sent"] == sum(rec["outcomes"].values())
    assert rec["entries"]["entries"] == rec["scheduled"] == len(out["lines"])
    assert rec["scheduled"] == 96 + 18
    lost = out["summary"]["lost_workers"]
    assert len(lost) == 1, lost
    info = next(iter(lost.values()))
    assert info["detected_at"] - out["killed_at"] < 5.0, info
    assert "lost" in out["log"] and "Worker" in out["log"]
    return info


def test_killed_worker_is_counted_and_fails_the_trust_check(sim_proxy, tmp_path):
    out = _run_with_a_kill(tmp_path, sim_proxy)
    assert out["rc"] == 4, out["log"][-3000:]
    info = _check_books(out)
    rec = out["summary"]["reconciliation"]
    # a third of the conversations were the victim's; those not finished by the kill are lost
    assert info["lost_requests"] == rec["not_sent"].get("lost_worker") > 10
    assert info["reassigned_conversations"] == 0
    lost_lines = [x for x in out["lines"] if x.get("not_sent_reason") == "lost_worker"]
    assert len(lost_lines) == info["lost_requests"]
    verdict = out["summary"]["verdict"]
    assert not verdict["trusted"] and any("lost" in p for p in verdict["trust_problems"])
    assert "UNTRUSTWORTHY RUN" in out["log"] and "lost_worker" in out["log"]


def test_reassigned_conversations_are_sent_once_by_survivors(sim_proxy, tmp_path):
    out = _run_with_a_kill(tmp_path, sim_proxy, "--burstgpt-reassign-lost")
    info = _check_books(out)
    assert out["rc"] == 0, out["log"][-3000:]
    assert out["summary"]["verdict"]["trusted"], out["summary"]["verdict"]
    assert out["summary"]["warnings"] and "lost" in out["summary"]["warnings"][0]
    assert info["reassigned_conversations"] > 10
    rec = out["summary"]["reconciliation"]
    assert rec["not_sent"].get("lost_worker", 0) == info["lost_requests"]
    # every request the server saw was sent by exactly one worker, and no conversation spans two workers
    by_conv: dict[str, set[str]] = defaultdict(set)
    ids = [r.headers["x-request-id"] for r in out["seen"]]
    assert len(ids) == len(set(ids)), "a request was sent twice"
    for rid in ids:
        run, rest = rid.split("-", 1)
        by_conv[rest.rsplit("-", 1)[0]].add(run)
    assert all(len(runs) == 1 for runs in by_conv.values()), {
        c: r for c, r in by_conv.items() if len(r) > 1
    }
    # the survivors replayed the reassigned conversations: everything not lost was sent and answered
    assert rec["sent"] == rec["scheduled"] - info["lost_requests"]
    assert rec["outcomes"] == {"ok": rec["sent"]}
