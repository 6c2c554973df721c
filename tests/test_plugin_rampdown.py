"""Ramp-downs and the end of the window never lose a request: it completes or is recorded as cancelled."""

from __future__ import annotations

import json

import pytest

from locust_burstgpt.sim import SimulatorProcess
from tests.plugin_runs import run_locust
from tests.support import trace_text, write_trace

# Six API requests at t=100 that the trace says took 1 s, and one more at t=110. The concurrency
# curve is 6 in second 0 and 0 from second 1, but the simulator below takes ~2 s per request, so
# Locust removes the users while their requests are still streaming.
ROWS = ["100,,1,ChatGPT,50,40,90,API log\n"] * 6 + ["110,,1,GPT-4,50,40,90,API log\n"]


@pytest.fixture(scope="module")
def slow_sim():
    # 40 output tokens x 50 ms per engine step: every request streams for about 2 s
    with SimulatorProcess(
        profile="fast", config={"profile_overrides": {"step_base_s": 0.05}}
    ) as sim:
        yield sim


@pytest.fixture()
def trace(tmp_path):
    path = tmp_path / "rampdown.csv"
    write_trace(path, ROWS)
    return path


def test_users_removed_while_requests_stream(slow_sim, trace, tmp_path):
    # users capped at the curve (by default they would grow with the conversations in progress)
    run = run_locust(
        tmp_path,
        slow_sim.base_url,
        "--burstgpt-trace",
        str(trace),
        "--burstgpt-strict-curve",
        "--burstgpt-window",
        "100+13s",
        "--burstgpt-report",
        str(tmp_path / "report"),
    )
    assert run.returncode == 0, run.output[-3000:]
    local = run.by_role("local")[0]
    records = run.records
    assert len(records) == 7 and all(r["outcome"] == "ok" for r in records)
    assert all(r["completion_tokens"] == 40 for r in records)
    # the shape removed every user (target 0) while the first six requests were still streaming
    first = [r for r in records if r["scheduled"] < 1]
    assert len(first) == 6
    streaming_until = min(r["sent"] + r["e2e"] for r in first)
    zero_ticks = [t for t, target in local["ticks"] if target == 0 and 1 <= t < streaming_until]
    assert zero_ticks, (local["ticks"], streaming_until)
    ledger = local["ledger"]
    assert ledger["scheduled"] == ledger["sent"] == 7 and ledger["outcomes"] == {"ok": 7}
    lines = [
        json.loads(x) for x in (tmp_path / "report" / "requests.jsonl").read_text().splitlines()
    ]
    assert sorted(x["outcome"] for x in lines) == ["ok"] * 7


def test_window_end_without_drain_records_cancelled(slow_sim, trace, tmp_path):
    run = run_locust(
        tmp_path,
        slow_sim.base_url,
        "--burstgpt-trace",
        str(trace),
        "--burstgpt-window",
        "100+11s",
        "--burstgpt-overrun",
        "0",
        "--burstgpt-drain-timeout",
        "0",
        "--burstgpt-report",
        str(tmp_path / "report"),
    )
    assert run.returncode == 1, run.output[-3000:]  # a cancelled request is a failure
    ledger = run.by_role("local")[0]["ledger"]
    # the request sent at 10 s streams for ~2 s; the window ends at 11 s with no drain time
    assert ledger["scheduled"] == ledger["sent"] == 7
    assert ledger["outcomes"] == {"ok": 6, "cancelled": 1}
    assert "balances" in run.output
    lines = [
        json.loads(x) for x in (tmp_path / "report" / "requests.jsonl").read_text().splitlines()
    ]
    assert sorted(x["outcome"] for x in lines) == ["cancelled"] + ["ok"] * 6
    cancelled = next(x for x in lines if x["outcome"] == "cancelled")
    assert (
        cancelled["sent_at"] is not None
        and cancelled["completion_tokens"] in (None, 0)
        or cancelled["completion_tokens"] < 40
    )


def test_idle_users_stop_at_once_with_a_stop_timeout(sim_fast, tmp_path):
    # Ten requests at t=100 that the trace says took 1 s, then one at t=108: the pool is sized for
    # second 0 and the shape asks for no users in seconds 1-7. The fast simulator answers in
    # milliseconds, so every user is idle (waiting for a conversation) when the ramp-down comes.
    # With --stop-timeout Locust lets a user finish its task before it stops; a user with no
    # conversation has nothing to finish and must go at once, not linger for 30 s.
    trace = tmp_path / "idle.csv"
    trace.write_text(
        trace_text(["100,,1,ChatGPT,50,5,55,API log\n"] * 10 + ["108,,1,ChatGPT,50,5,55,API log\n"])
    )
    report = tmp_path / "report"
    run = run_locust(
        tmp_path,
        sim_fast.base_url,
        "--burstgpt-trace",
        str(trace),
        "--stop-timeout",
        "30",
        "--burstgpt-window",
        "100+10s",
        "--burstgpt-report",
        str(report),
    )
    assert run.returncode == 0, run.output[-3000:]
    assert run.ledger()["outcomes"] == {"ok": 11}
    rows = [line.split(",") for line in (report / "timeline.csv").read_text().splitlines()]
    col = {name: i for i, name in enumerate(rows[0])}
    seconds = {
        int(r[col["second"]]): (int(r[col["target_users"]] or 0), int(r[col["actual_users"]] or 0))
        for r in rows[1:]
    }
    assert max(actual for _, actual in seconds.values()) >= 10, seconds  # the pool was there
    # a second whose target was 0 since the one before has no user left
    idle = [
        s for s in seconds if s - 1 in seconds and seconds[s - 1][0] == 0 and seconds[s][0] == 0
    ]
    assert len(idle) >= 4, seconds
    assert all(seconds[s][1] == 0 for s in idle), seconds
