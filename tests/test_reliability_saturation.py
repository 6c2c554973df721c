"""A CPU-bound load process (every request costs 60 ms of busy CPU at 25 requests a second) falls
behind its schedule: the run says so while it runs (console and web UI), in summary.json, and fails
its trust check (exit code 4)."""

from __future__ import annotations

import json
from pathlib import Path

from locust_burstgpt.generator_health import ScheduleHealth
from tests.support import result_of, write_trace
from tests.web_runs import WebRun

CPU_BOUND = Path(__file__).parent / "locustfiles" / "cpu_bound.py"


def test_cpu_bound_generator_is_reported_and_fails_the_trust_check(sim_fast, tmp_path):
    rows = [
        f"{100 + i * 0.04:.2f},,1,ChatGPT,30,8,38,API log\n" for i in range(200)
    ]  # 25/s for 8 s
    write_trace(tmp_path / "trace.csv", rows)
    report = tmp_path / "report"
    run = WebRun(
        tmp_path,
        sim_fast.base_url,
        "--burstgpt-trace",
        str(tmp_path / "trace.csv"),
        "--burstgpt-window",
        "100+8s",
        "--burstgpt-drain-timeout",
        "2",
        "--burstgpt-report",
        str(report),
        locustfile=CPU_BOUND,
        autoquit_s=3,
    )
    try:
        # the web UI says so while the run is still going
        status: dict = {}

        def ui_says_untrustworthy() -> bool:
            code, text = run.get("/burstgpt/timeline.json")
            status["timeline"] = json.loads(text)["status"]
            code, text = run.get("/burstgpt/summary.json")
            status["summary"] = json.loads(text)
            return "UNTRUSTWORTHY" in status["timeline"] and not status["summary"].get("finished")

        run.wait_until(ui_says_untrustworthy, 60, "the web UI to report the saturated generator")
        assert "saturated" in status["timeline"]
        assert any("saturated" in p for p in status["summary"]["verdict"]["trust_problems"])
        rc = run.wait()
    finally:
        run.stop()
    output = run.output()
    assert rc == 4, output[-3000:]
    assert (
        "UNTRUSTWORTHY RUN so far: the load generator was saturated" in output
    )  # live, in the console
    assert (
        "UNTRUSTWORTHY RUN: the load generator was saturated" in output
    )  # and in the final verdict
    summary = json.loads((report / "summary.json").read_text())
    verdict = summary["verdict"]
    assert not verdict["trusted"] and verdict["exit_code"] == 4
    assert any("saturated" in p for p in verdict["trust_problems"])
    assert any("schedule was not kept" in p for p in verdict["trust_problems"])
    assert summary["generator"]["blocked_seconds"] and summary["generator"]["late_seconds"]
    assert summary["reconciliation"]["balances"]


def _late(s: float, lateness: float, **parts: float):
    return result_of({"sent_at": 0.0, "scheduled_offset_s": s, "lateness": lateness, **parts})


def test_health_needs_sustained_trouble():
    """One slow second (a GC pause, a 10 MB event) is not saturation; three in a row are."""
    h = ScheduleHealth("trace")
    for s in range(10):
        h.add(_late(s + 0.5, 0.5 if s in (2, 5, 6) else 0.001))
    h.note_lags([[2, 0.9], [5, 0.8], [6, 0.7]])
    assert h.problems() == []
    h.add(_late(7.2, 0.4))
    h.note_lags([[7, 0.5]])
    problems = h.problems()
    assert len(problems) == 2 and "seconds 5-7 (3 s)" in problems[0] and "saturated" in problems[0]
    assert "schedule was not kept" in problems[1] and "worst 0.50 s" in problems[1]
    assert "event loop was late" in problems[1]  # the same cause as the blocked seconds
    # saturate mode has no schedule: no lateness, whatever the numbers
    h3 = ScheduleHealth("saturate")
    for s in range(4):
        h3.add(_late(s, 3.0))
    assert h3.problems() == []


def test_a_late_second_is_one_whose_p99_is_late_whatever_the_share():
    """Two late requests in a thousand due in a second make its p99 late (more than 1 %)... not
    quite: 2 of 1000 is 0.2 %. 11 of 1000 is over 1 %: three such seconds fail the run."""
    h = ScheduleHealth("trace")
    for s in range(3):
        for k in range(1000):
            h.add(_late(s + k / 1000, 0.06 if k < 2 else 0.001))
    assert h.problems() == []
    h2 = ScheduleHealth("trace")
    for s in range(3):
        for k in range(1000):
            h2.add(_late(s + k / 1000, 0.06 if k < 11 else 0.001))
    problems = h2.problems()
    assert len(problems) == 1 and "more than 1 % of the requests due" in problems[0], problems


def test_the_cause_is_the_largest_part_of_the_lateness_live_and_at_the_end():
    """Waiting for a user, waiting for a connection, or the loop: the evidence decides, and a
    diagnosis given early changes when later evidence arrives (the live warning is given again)."""
    h = ScheduleHealth("trace")
    for s in range(3):
        h.add(_late(s, 0.4, user_wait_s=0.35))
    assert [k for k, _ in h.diagnosis()] == ["late:users"]
    assert "waited for a free Locust user (88% of the lateness)" in h.problems()[0]
    c = ScheduleHealth("trace")
    for s in range(3):
        c.add(_late(s, 0.4, connection_wait_s=0.3))
    assert [k for k, _ in c.diagnosis()] == ["late:connections"]
    # lateness from the loop with no lost time seen yet; then the probe's evidence arrives
    loop = ScheduleHealth("trace")
    for s in range(3):
        loop.add(_late(s, 0.4))
    assert [k for k, _ in loop.diagnosis()] == ["late:loop"]
    loop.note_lags([[s, 0.2, 0.95, 0.0, 1.0, 0.0] for s in range(3)])  # 95 % of a CPU of its own
    assert [k for k, _ in loop.diagnosis()] == ["late:cpu"]
    assert "it was CPU-bound" in loop.problems()[0]
    assert loop.summary()["late_causes"][0]["cause"] == "cpu"


def test_the_live_warning_is_given_again_when_the_cause_changes():
    from locust_burstgpt.generator_health import LiveWarnings

    health, live = ScheduleHealth("trace"), LiveWarnings()
    for s in range(3):
        health.add(_late(s, 0.4))
    said = live.news(health.diagnosis()) + live.news(health.diagnosis())  # nothing new: once
    health.note_lags([[s, 0.2, 0.95, 0.0, 1.0, 0.0] for s in range(3)])
    said += live.news(health.diagnosis())
    assert len(said) == 2 and "probe saw no blocked second" in said[0]
    assert "cause changed with later evidence" in said[1] and "CPU-bound" in said[1]
    assert said[1].endswith(health.problems()[0])  # the final verdict says the same


def test_loop_lag_of_a_second_shipped_in_two_parts_adds_up():
    """Workers ship every second at their own phase: one second's loss may come in two messages."""
    h = ScheduleHealth("trace")
    h.note_lags([[3, 0.2]], "worker-a")
    h.note_lags([[3, 0.2], [4, 0.5], [5, 0.2]], "worker-a")
    h.note_lags([[5, 0.2]], "worker-a")
    assert h.blocked_streaks() == [(3, 5)]
    # two processes each losing 20 % of a second is not one process losing 40 %
    h2 = ScheduleHealth("trace")
    for worker in ("worker-a", "worker-b"):
        h2.note_lags([[s, 0.2] for s in range(3, 8)], worker)
    assert h2.blocked_streaks() == [] and h2.problems() == []
