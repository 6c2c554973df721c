"""``burstgpt compare``: same-configuration runs show no detectable change, a slower server is named
as a regression with a non-zero exit, and bad report directories get a clear message.

The end-to-end cases replay one small trace twice against one simulator configuration and once
against a simulator that generates at half the speed; the statistics themselves are checked on
request files written here, whose distributions are known.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from locust_burstgpt.report.compare import (
    CompareError,
    CompareOptions,
    Sample,
    compare_runs,
    load_run,
)
from tests.plugin_runs import run_locust
from tests.support import write_trace

ROOT = Path(__file__).resolve().parent.parent


def write_report(d: Path, ttft_scale: float, seed: int, n: int = 80, errors: int = 0) -> Path:
    """A report directory with ``n`` two-turn conversations; TTFT lognormal around 0.2 s."""
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True)
    lines = []
    for c in range(n):
        for turn in range(2):
            ttft = float(rng.lognormal(math.log(0.2 * ttft_scale), 0.3))
            chunks = list(np.cumsum(rng.normal(0.02, 0.002, 20)) * 1000 + ttft * 1000)
            failed = c < errors
            lines.append(
                {
                    "request_id": f"r{seed}-{c}-{turn}",
                    "outcome": "http_error" if failed else "ok",
                    "conversation": f"conv-{seed}-{c}",  # ids differ between runs ...
                    "trace_row": 2 * c + turn,  # ... the trace rows do not
                    "class": "ChatGPT conversation",
                    "ttft": None if failed else ttft,
                    "tpot": None if failed else (chunks[-1] - chunks[0]) / 19 / 1000,
                    "e2e": None if failed else chunks[-1] / 1000,
                    "chunk_ms": [] if failed else chunks,
                    "completion_tokens": 0 if failed else 20,
                }
            )
    lines.append({"request_id": "late", "outcome": "not_sent", "trace_row": 999})
    (d / "requests.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines))
    (d / "summary.json").write_text(json.dumps({"run_duration_s": 60.0, "metrics": {}}))
    return d


def verdicts(deltas, cls="All") -> dict[str, str]:
    return {d.metric: d.verdict for d in deltas if d.cls == cls}


def test_a_weighted_resample_has_numpys_percentiles_of_the_resample_written_out():
    rng = np.random.default_rng(5)
    units = [rng.exponential(1.0, rng.integers(0, 30)) for _ in range(40)]  # some are empty
    sample = Sample(units)
    for _ in range(20):
        draws = np.bincount(rng.integers(0, 40, 40), minlength=40)
        full = np.concatenate([u for u, k in zip(units, draws, strict=True) for _ in range(k)])
        view = sample.view(draws)
        for p in (0, 50, 90, 95, 99, 100):
            assert view.percentile(p) == pytest.approx(float(np.percentile(full, p)), rel=1e-12)
        assert view.sum() == pytest.approx(full.sum()) and view.mean() == pytest.approx(full.mean())
    whole = np.concatenate(units)
    assert sample.view().percentile(99) == pytest.approx(float(np.percentile(whole, 99)))


def test_same_distribution_is_no_detectable_change(tmp_path):
    a = load_run(write_report(tmp_path / "a", 1.0, seed=1))
    b = load_run(write_report(tmp_path / "b", 1.0, seed=2))
    v = verdicts(compare_runs(a, b, CompareOptions(resamples=300)))
    assert set(v.values()) == {"no detectable change"}, v


def test_a_slower_first_token_is_worse_and_only_where_it_is(tmp_path):
    a = load_run(write_report(tmp_path / "a", 1.0, seed=1))
    b = load_run(write_report(tmp_path / "b", 1.5, seed=2))
    deltas = compare_runs(a, b, CompareOptions(resamples=300))
    v = verdicts(deltas)
    assert all(v[f"ttft_p{p}"] == "worse" for p in (50, 90, 95, 99)), v
    assert v["tpot_p50"] == v["itl_p50"] == "no detectable change", v
    ttft50 = next(d for d in deltas if d.cls == "All" and d.metric == "ttft_p50")
    assert 0.3 < ttft50.change < 0.7 and ttft50.low > 0  # 1.5x, seen as +50 % with its interval
    # the class's own rows say the same
    assert verdicts(deltas, "ChatGPT conversation")["ttft_p50"] == "worse"


def test_copies_of_a_conversation_are_resampled_apart(tmp_path):
    d = write_report(tmp_path / "a", 1.0, seed=1, n=10)
    lines = [json.loads(x) for x in (d / "requests.jsonl").read_text().splitlines()]
    copies = [
        {**e, "conversation": f"{e['conversation']}#copy1", "request_id": f"{e['request_id']}c"}
        for e in lines
        if e["outcome"] != "not_sent"
    ]
    (d / "requests.jsonl").write_text("".join(json.dumps(e) + "\n" for e in lines + copies))
    assert len(load_run(d).conversations("All")) == 20  # 10 conversations, each replayed twice


def test_errors_are_compared_in_points(tmp_path):
    a = load_run(write_report(tmp_path / "a", 1.0, seed=1))
    b = load_run(write_report(tmp_path / "b", 1.0, seed=1, errors=12))  # 24 of 160 requests
    err = next(
        d
        for d in compare_runs(a, b, CompareOptions(resamples=300))
        if d.cls == "All" and d.metric == "error_ratio"
    )
    assert err.verdict == "worse" and err.change == pytest.approx(24 / 160)
    assert err.low > 0.05  # points, not a relative change from zero


def test_bad_report_directories_are_named(tmp_path):
    with pytest.raises(CompareError, match="summary.json: not found"):
        load_run(tmp_path)
    d = write_report(tmp_path / "a", 1.0, seed=1)
    with open(d / "requests.jsonl", "a") as f:
        f.write("{not json\n")
    with pytest.raises(CompareError, match=r"requests.jsonl, line 162: not JSON"):
        load_run(d)


def burstgpt(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "locust_burstgpt.cli.main", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_exit_codes_on_written_reports(tmp_path):
    a = write_report(tmp_path / "a", 1.0, seed=1)
    b = write_report(tmp_path / "b", 1.5, seed=2)
    proc = burstgpt("compare", str(a), str(b), "--resamples", "200", "-o", str(tmp_path / "cmp"))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "REGRESSION" in proc.stdout and "ttft_p99" in proc.stdout
    saved = json.loads((tmp_path / "cmp" / "compare.json").read_text())
    assert saved["runs"][0]["run"] == str(b) and (tmp_path / "cmp" / "compare.png").stat().st_size
    # the gate can be pointed elsewhere: TPOT did not change
    ok = burstgpt("compare", str(a), str(b), "--resamples", "200", "--fail-on", "tpot_p99")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = burstgpt("compare", str(a), str(b), "--fail-on", "ttft_p98")
    assert bad.returncode == 2 and "ttft_p98: unknown" in bad.stderr
    missing = burstgpt("compare", str(a), str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "nowhere/summary.json: not found" in missing.stderr


# -- end to end: runs of the plugin against the simulator -----------------------------------------
# 90 one-turn requests over 6 s at random (seeded) times, 60 output tokens each: evenly spaced
# ones would meet the simulator's batch steps at the same phase all run long, and that phase,
# which differs from run to run, would shift every TTFT of a run by up to a step
_GAPS = np.random.default_rng(7).exponential(1 / 15, 90)
TRACE = [f"{100 + t:.3f},,1.0,ChatGPT,30,60,90,Conversation log\n" for t in np.cumsum(_GAPS) % 6]
TRACE.sort()


def simulator(step_s: float):
    from locust_burstgpt.sim import SimulatorProcess

    return SimulatorProcess(profile="fast", config={"profile_overrides": {"step_base_s": step_s}})


def replay(tmp_path: Path, base_url: str, name: str) -> Path:
    trace = write_trace(tmp_path / "trace.csv", TRACE)
    report = tmp_path / name
    run = run_locust(
        tmp_path,
        base_url,
        "--burstgpt-trace",
        str(trace),
        "--burstgpt-window",
        "100+6s",
        "--burstgpt-report",
        str(report),
    )
    assert run.returncode == 0, run.output[-3000:]
    return report


@pytest.mark.timeout(600)
def test_same_configuration_no_change_and_a_slower_server_regresses(tmp_path):
    with simulator(0.02) as sim:
        first = replay(tmp_path, sim.base_url, "first")
        second = replay(tmp_path, sim.base_url, "second")
    with simulator(0.04) as slow:
        slower = replay(tmp_path, slow.base_url, "slower")

    same = burstgpt("compare", str(first), str(second), "--all")
    print("\n" + same.stdout)
    assert same.returncode == 0, same.stdout + same.stderr
    rows = [line for line in same.stdout.splitlines() if line.startswith("All ")]
    assert rows and all(line.endswith("no detectable change") for line in rows), same.stdout

    worse = burstgpt("compare", str(first), str(slower))
    print(worse.stdout)
    assert worse.returncode == 3, worse.stdout + worse.stderr
    regression = next(line for line in worse.stdout.splitlines() if line.startswith("REGRESSION"))
    for metric in ("tpot_p99", "itl_p99", "e2e_p99"):
        assert metric in regression, worse.stdout
