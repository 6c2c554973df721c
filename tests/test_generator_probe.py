"""The loop-lag probe names why a load process fell behind: its own CPU work, other processes
holding the CPU, or a call that blocked the loop. Each case is made real in a subprocess pinned to
one core, and the verdict is read back from ``ScheduleHealth``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Stall the gevent loop for 3.2 s in one of three ways, with the probe running.
_STALL = """
import json, os, subprocess, sys, time
import gevent
from locust_burstgpt.generator_health import LoopLagProbe, ScheduleHealth
mode = sys.argv[1]
os.sched_setaffinity(0, {0})
hog = None
if mode == "starved":  # a busier process on the same core, at a higher priority
    hog = subprocess.Popen([sys.executable, "-c",
                            "import os\\nos.sched_setaffinity(0, {0})\\nwhile True: pass"])
    os.nice(15)
probe = LoopLagProbe(time.time())
gevent.sleep(0.2)
t = time.monotonic()
if mode == "blocked":
    time.sleep(3.2)  # the stall under test: a call that does not yield to gevent
else:
    while time.monotonic() - t < 3.2:
        pass
gevent.sleep(0.2)
lags = probe.take()
probe.stop()
if hog is not None:
    hog.kill()
health = ScheduleHealth("trace")
health.note_lags(lags)
print(json.dumps({"lags": lags, "problems": health.problems(), "summary": health.summary()}))
"""


def _stall(mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _STALL, mode],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return json.loads(out)


@pytest.mark.parametrize(
    "mode, cause, words",
    [
        ("cpu", "cpu", "saturated (CPU-bound)"),
        ("blocked", "blocked", "event loop was blocked"),
        ("starved", "starved", "starved of CPU"),
    ],
)
def test_probe_names_why_the_loop_lagged(mode: str, cause: str, words: str) -> None:
    result = _stall(mode)
    lost = {int(s): lost for s, lost, *_ in result["lags"]}
    assert sum(lost.values()) == pytest.approx(
        3.2, abs=0.3
    )  # the stall, booked on the seconds it covered
    (detail,) = result["summary"]["blocked_causes"]
    assert detail["cause"] == cause, detail
    if cause == "cpu":
        assert detail["cpu_share"] > 0.8
    if cause == "blocked":
        assert detail["cpu_share"] < 0.1 and detail["wait_share"] < 0.1
    if cause == "starved":
        assert detail["wait_share"] > 0.5
    (problem,) = result["problems"]
    assert words in problem and "of a CPU" in problem


def _health(items: list[list]) -> dict:
    from locust_burstgpt.generator_health import ScheduleHealth

    health = ScheduleHealth("trace")
    health.note_lags(items)
    (detail,) = health.summary()["blocked_causes"]
    return {"detail": detail, "problems": health.problems()}


def test_cause_from_the_evidence_and_host_steal() -> None:
    """The same lost seconds read differently with what the process and the machine did meanwhile."""
    # [second, lost, cpu used, cpu waited, observed, machine steal]
    stolen = _health([[s, 0.8, 0.1, 0.0, 1.0, 0.6] for s in range(3)])
    assert stolen["detail"]["cause"] == "stolen" and stolen["detail"]["steal_share"] == 0.6
    assert (
        "host of this virtual machine" in stolen["problems"][0] and "60%" in stolen["problems"][0]
    )
    # a second observed in part counts in part: 0.45 s of CPU in 0.5 s observed is 90 % of a CPU
    partial = _health(
        [[0, 0.4, 0.45, 0.0, 0.5, 0.0], [1, 0.9, 0.9, 0.0, 1.0, 0.0], [2, 0.9, 0.9, 0.0, 1.0, 0.0]]
    )
    assert partial["detail"]["cpu_share"] == 0.9 and partial["detail"]["cause"] == "cpu"
    # no CPU evidence (a probe that only reports loss): the classic reading, CPU-bound
    legacy = _health([[s, 0.8] for s in range(3)])
    assert legacy["detail"]["cause"] == "cpu" and "saturated (CPU-bound)" in legacy["problems"][0]
    # no wait evidence (not Linux) and little CPU: either cause is named
    unknown = _health([[s, 0.8, 0.1, None, 1.0, None] for s in range(3)])
    assert unknown["detail"]["cause"] == "starved_or_blocked"
    assert "starved of CPU or blocked" in unknown["problems"][0]
