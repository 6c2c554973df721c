"""Open loop at the edges, end to end through Locust: a server slower than the trace shows as more
users and longer latencies, never as requests that wait; strict-curve mode makes them wait and says
so; turns pushed past the window's end are still sent; a run with cancelled requests fails the way
Locust's runs fail; saturate mode reports no schedule lateness."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tests.plugin_runs import percentile, run_locust
from tests.support import write_trace

# 80 one-turn requests, 20 a second for 4 s, that the trace says took 0.2 s each: the curve asks for
# ~5 users. The simulator below takes ~0.8 s per request (40 tokens, 20 ms steps), so about four
# times as many are in progress as the curve says.
BURST = [f"{100 + i * 0.05:.2f},,0.2,ChatGPT,30,40,70,API log\n" for i in range(80)]


@pytest.fixture(scope="module")
def slow_server(request):
    from locust_burstgpt.sim import SimulatorProcess

    with SimulatorProcess(profile="fast", config={"profile_overrides": {"step_base_s": 0.02}}) as s:
        yield s


def _report(tmp_path):
    d = tmp_path / "report"
    summary = json.loads((d / "summary.json").read_text())
    with open(d / "timeline.csv") as f:
        rows = list(csv.DictReader(f))
    lines = [json.loads(x) for x in (d / "requests.jsonl").read_text().splitlines()]
    return summary, rows, lines


def _int(v: str) -> int:
    return int(v) if v not in ("", None) else 0


def test_a_slow_server_shows_as_more_users_not_as_lateness(slow_server, tmp_path):
    write_trace(tmp_path / "trace.csv", BURST)
    run = run_locust(
        tmp_path,
        slow_server.base_url,
        "--burstgpt-trace",
        str(tmp_path / "trace.csv"),
        "--burstgpt-window",
        "100+6s",
        "--burstgpt-report",
        str(tmp_path / "report"),
    )
    assert run.returncode == 0, run.output[-3000:]
    summary, rows, lines = _report(tmp_path)
    rec = summary["reconciliation"]
    assert rec["scheduled"] == rec["sent"] == 80 and rec["outcomes"] == {"ok": 80}
    late = [x["lateness"] for x in lines]
    assert percentile(late, 99) < 0.02, f"lateness p99 {percentile(late, 99) * 1000:.1f} ms"
    assert all((x["user_wait_s"] or 0) == 0 for x in lines)  # nothing waited for a user
    # the server was slower than the trace: more conversations in progress than the curve had,
    # and the user count followed them
    assert max(_int(r["conversations_in_progress"]) for r in rows) > max(
        _int(r["curve_users"]) for r in rows
    )
    assert max(_int(r["actual_users"]) for r in rows) > max(_int(r["curve_users"]) for r in rows)
    assert summary["verdict"]["trusted"], summary["verdict"]
    assert summary["end_reason"] == "completed"
    # output tokens per second as the server generated them (its own counter, scraped each second)
    ours = [_int(r["output_tokens"]) for r in rows]
    server = [float(r["server_generation_tokens"] or 0) for r in rows]
    assert sum(ours) == pytest.approx(sum(server), rel=0.02)
    assert np.corrcoef(ours, server)[0, 1] >= 0.95


def test_strict_curve_makes_conversations_wait_and_names_it(slow_server, tmp_path):
    write_trace(tmp_path / "trace.csv", BURST)
    run = run_locust(
        tmp_path,
        slow_server.base_url,
        "--burstgpt-trace",
        str(tmp_path / "trace.csv"),
        "--burstgpt-window",
        "100+6s",
        "--burstgpt-strict-curve",
        "--burstgpt-report",
        str(tmp_path / "report"),
    )
    assert run.returncode == 4, run.output[-3000:]
    summary, rows, lines = _report(tmp_path)
    in_window = [r for r in rows if 0 <= int(r["second"]) < 6]  # after it, in-progress ones finish
    assert max(_int(r["actual_users"]) for r in in_window) <= max(
        _int(r["curve_users"]) for r in in_window
    )
    waited = [x for x in lines if (x["user_wait_s"] or 0) > 0.05]
    assert waited, "with users capped at the curve, some requests must have waited for one"
    problems = summary["verdict"]["trust_problems"]
    assert any("waited for a free Locust user" in p for p in problems), problems
    causes = summary["generator"]["late_causes"]
    assert causes and all(c["cause"] == "users" for c in causes), causes
    assert "UNTRUSTWORTHY RUN so far: the schedule was not kept" in run.output


# 160 one-turn requests, 80 a second for 2 s, recorded as taking 0.1 s: the trace has ~8 in flight.
# The simulator below takes ~2 s per request (20 tokens, 0.1 s steps), so ~160 are in flight at
# once, far more than a connection pool sized from the trace's curve would hold.
MANY_IN_FLIGHT = [f"{100 + i / 80:.4f},,0.1,ChatGPT,30,20,50,API log\n" for i in range(160)]


def test_requests_in_flight_beyond_the_curve_never_wait_for_a_connection(tmp_path):
    from locust_burstgpt.sim import SimulatorProcess

    write_trace(tmp_path / "trace.csv", MANY_IN_FLIGHT)
    with SimulatorProcess(profile="fast", config={"profile_overrides": {"step_base_s": 0.1}}) as s:
        run = run_locust(
            tmp_path,
            s.base_url,
            "--burstgpt-trace",
            str(tmp_path / "trace.csv"),
            "--burstgpt-window",
            "100+2s",
            "--burstgpt-report",
            str(tmp_path / "report"),
        )
    assert run.returncode == 0, run.output[-3000:]
    summary, rows, lines = _report(tmp_path)
    assert summary["reconciliation"]["outcomes"] == {"ok": 160}
    assert max(_int(r["in_flight"]) for r in rows) > 100  # the server held them, not the pool
    waits = sorted(x["connection_wait_s"] for x in lines)
    assert waits[-1] < 0.01, f"waited for a connection up to {waits[-1] * 1000:.0f} ms"
    late = [x["lateness"] for x in lines]
    assert percentile(late, 99) < 0.02, f"lateness p99 {percentile(late, 99) * 1000:.1f} ms"


# One conversation of two turns: the second is due 1 s after the first reply ends. The first
# reply takes ~2 s on this server though the trace recorded 1 s, so the second turn is due after
# the window's end.
PUSHED = [
    "100,s1,1,ChatGPT,40,40,80,Conversation log\n",
    "102,s1,1,ChatGPT,120,10,130,Conversation log\n",
]


@pytest.fixture(scope="module")
def slower_server():
    from locust_burstgpt.sim import SimulatorProcess

    with SimulatorProcess(profile="fast", config={"profile_overrides": {"step_base_s": 0.05}}) as s:
        yield s


def test_a_turn_pushed_past_the_window_end_is_still_sent(slower_server, tmp_path):
    write_trace(tmp_path / "trace.csv", PUSHED)
    run = run_locust(
        tmp_path,
        slower_server.base_url,
        "--burstgpt-trace",
        str(tmp_path / "trace.csv"),
        "--burstgpt-window",
        "100+3s",
        "--burstgpt-report",
        str(tmp_path / "report"),
    )
    assert run.returncode == 0, run.output[-3000:]
    summary, rows, lines = _report(tmp_path)
    rec = summary["reconciliation"]
    assert rec["scheduled"] == rec["sent"] == 2 and rec["not_sent"] == {}, rec
    second = next(x for x in lines if x["turn"] == 1)
    assert second["scheduled_offset_s"] > 3.0  # due after the window's end, and sent
    assert summary["end_reason"] == "completed"
    assert sum(_int(r["scheduled"]) for r in rows) == rec["scheduled"]


def test_the_overrun_bound_ends_the_run_and_every_turn_is_in_the_timeline(slower_server, tmp_path):
    # the first reply (80 tokens) takes ~4 s: still streaming when the 3 s window ends
    write_trace(tmp_path / "trace.csv", [PUSHED[0].replace(",40,40,80,", ",40,80,120,"), PUSHED[1]])
    run = run_locust(
        tmp_path,
        slower_server.base_url,
        "--burstgpt-trace",
        str(tmp_path / "trace.csv"),
        "--burstgpt-window",
        "100+3s",
        "--burstgpt-overrun",
        "0",
        "--burstgpt-drain-timeout",
        "0",
        "--burstgpt-report",
        str(tmp_path / "report"),
        "--csv",
        str(tmp_path / "locust"),
    )
    summary, rows, lines = _report(tmp_path)
    rec = summary["reconciliation"]
    assert summary["end_reason"] == "window_ended"
    assert rec["scheduled"] == 2 and rec["balances"]
    # the first turn was cut at the window's end: cancelled, a failure in Locust's own statistics,
    # so the run exits 1 (no SLO gate decides); the second was never due in time: not sent
    assert rec["outcomes"] == {"cancelled": 1} and rec["not_sent"] == {"window_ended": 1}
    assert run.returncode == 1, run.output[-3000:]
    with open(tmp_path / "locust_stats.csv") as f:
        stats = {r["Name"]: r for r in csv.DictReader(f)}
    assert int(stats["ChatGPT conversation"]["Failure Count"]) == 1
    # every scheduled request is in the timeline at its due second, the unsent turn at its trace time
    assert sum(_int(r["scheduled"]) for r in rows) == rec["scheduled"]
    unsent = next(x for x in lines if x["outcome"] == "not_sent")
    assert unsent["scheduled_offset_s"] == pytest.approx(2.0)


def test_saturate_mode_reports_no_schedule_lateness(sim_fast, tmp_path):
    write_trace(tmp_path / "trace.csv", BURST[:20])
    run = run_locust(
        tmp_path,
        sim_fast.base_url,
        "--burstgpt-trace",
        str(tmp_path / "trace.csv"),
        "--burstgpt-window",
        "100+2s",
        "--burstgpt-arrival",
        "saturate",
        "--burstgpt-report",
        str(tmp_path / "report"),
    )
    assert run.returncode == 0, run.output[-3000:]
    summary, rows, lines = _report(tmp_path)
    assert summary["reconciliation"]["sent"] == 20
    assert summary["metrics"]["All"]["lateness"]["count"] == 0
    assert all(x["lateness"] is None for x in lines)
    table = run.output[run.output.index("LLM metrics") :].splitlines()
    all_row = next(line for line in table if line.startswith("All "))
    assert all_row.split()[-3] == "-"  # late p99: no schedule, no lateness
