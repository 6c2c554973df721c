"""The side-by-side benchmark's own machinery: schedule, converters, fidelity, process-tree meter,
output parsers and the README block. (The benchmark's figures are not tested: speed is measured
by ``benchmarks/peers.py``, not asserted here.)"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.peers import compare, fidelity, formats, report, schedule, summary, tools
from benchmarks.peers.procmon import TreeUsage, run_measured
from locust_burstgpt.trace import load_trace, prepare

ROOT = Path(__file__).resolve().parent.parent
WEEK = ROOT / "locust_burstgpt" / "data" / "BurstGPT_1_first7days_rows0000001-0019431.csv"


def small() -> schedule.Schedule:
    return schedule.from_arrays(
        np.array([10.5, 10.0, 12.25, 11.0]), np.array([5, 0, 300, 40]), np.array([7, 3, 900, 2])
    )


def test_from_arrays_sorts_shifts_and_caps() -> None:
    s = schedule.from_arrays(
        np.array([10.5, 10.0, 12.25]),
        np.array([5, 0, 300]),
        np.array([7, 3, 900]),
        schedule.Limits(max_request_tokens=100, max_response_tokens=50),
    )
    assert s.offsets.tolist() == [0.0, 0.5, 2.25]
    assert s.request_tokens.tolist() == [1, 5, 100]  # 0 raised to the minimum of 1
    assert s.response_tokens.tolist() == [3, 7, 50]
    assert s.per_second().tolist() == [2, 0, 1]
    assert s.seconds == 3 and s.output_tokens == 60


def test_schedule_rejects_unsorted_offsets() -> None:
    with pytest.raises(ValueError, match="sorted"):
        schedule.Schedule(
            np.array([0.0, 2.0, 1.0]), np.ones(3, dtype=np.int64), np.ones(3, dtype=np.int64)
        )


def test_from_trace_takes_every_kept_row_of_the_window_at_its_scaled_time() -> None:
    s = schedule.from_trace(str(WEEK), "d0+09:00+10m", 30.0)
    wl = prepare(load_trace(WEEK), window="d0+09:00+10m", speedup=30.0, failed="skip")
    turns = sorted(
        (t.trace_offset_s, t.request_tokens, t.response_tokens)
        for c in wl.conversations()
        for t in c.turns
    )
    assert len(s) == len(turns) > 10
    first = turns[0][0]
    assert np.allclose(s.offsets, [t[0] - first for t in turns], atol=1e-6)
    assert s.response_tokens.min() > 0  # failed rows are skipped
    assert s.duration_s <= 600 / 30.0
    assert "speedup 30" in s.source


def test_burstgpt_csv_is_read_back_by_the_plugin_as_one_turn_conversations(tmp_path: Path) -> None:
    s = small()
    path = formats.write_burstgpt_csv(s, tmp_path / "t.csv")
    wl = prepare(load_trace(path), speedup=1.0)
    assert wl.n_conversations == wl.n_requests == len(s)
    got = sorted(
        (c.start_s, c.turns[0].request_tokens, c.turns[0].response_tokens)
        for c in wl.conversations()
    )
    assert [g[0] for g in got] == pytest.approx(s.offsets.tolist())
    assert [g[1:] for g in got] == list(
        zip(s.request_tokens.tolist(), s.response_tokens.tolist(), strict=True)
    )


def test_guidellm_and_vllm_rows(tmp_path: Path) -> None:
    s = small()
    g = [
        json.loads(x)
        for x in formats.write_guidellm_jsonl(s, tmp_path / "g.jsonl").read_text().splitlines()
    ]
    assert g[2] == {"timestamp": 1.0, "prompt_tokens": 40, "output_tokens": 2}
    v = [
        json.loads(x)
        for x in formats.write_vllm_timed_trace(s, tmp_path / "v.jsonl").read_text().splitlines()
    ]
    assert [len(r["hash_ids"]) for r in v] == [math.ceil(p / 16) for p in s.request_tokens.tolist()]
    blocks = [h for r in v for h in r["hash_ids"]]
    assert len(blocks) == len(set(blocks))  # no prompt shares a block with another
    assert [r["output_length"] for r in v] == s.response_tokens.tolist()


def test_fidelity_of_a_constantly_late_replay_is_perfect() -> None:
    s = small()
    f = fidelity.measure(s, 1000.0 + 0.2 + s.offsets)  # every request 200 ms late: invisible
    assert f.mae_per_s == 0.0 and f.lag_p99_ms == pytest.approx(0.0, abs=1e-6)
    assert f.sent == f.scheduled == 4


def test_fidelity_counts_a_late_request_in_the_wrong_second() -> None:
    s = small()  # offsets 0, 0.5, 1.0, 2.25
    sends = 1000.0 + s.offsets
    sends[1] += 1.5  # due at 0.5, sent at 2.0
    f = fidelity.measure(s, sends, scheduled=s.offsets)
    assert f.lag_p99_ms == pytest.approx(1500.0)
    assert f.mae_per_s == pytest.approx(2 / 3)  # second 0 lost one, second 2 gained one
    assert f.max_abs_per_s == 1
    rank = fidelity.measure(s, sends)  # by rank the late one swaps partners
    assert rank.lag_p99_ms < f.lag_p99_ms


def test_fidelity_of_missing_sends() -> None:
    s = small()
    f = fidelity.measure(s, 50.0 + s.offsets[:3], scheduled=s.offsets[:3])
    assert f.sent == 3 and f.achieved_rate < f.scheduled_rate
    assert f.mae_per_s == pytest.approx(1 / 3)


BURN = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c",
    "import time\\nx = bytearray(150 * 2**20)\\nfor i in range(0, len(x), 4096): x[i] = 1\\n"
    "t = time.process_time()\\nwhile time.process_time() - t < 0.6: pass\\ntime.sleep(0.5)"])
child.wait()
"""


def test_run_measured_counts_the_whole_tree(tmp_path: Path) -> None:
    u = run_measured(
        [sys.executable, "-c", BURN], log_path=tmp_path / "log", timeout_s=60, interval_s=0.05
    )
    assert u.returncode == 0 and not u.timed_out
    assert u.cpu_s >= 0.6  # the grandchild's CPU is included
    assert u.peak_processes >= 2
    assert u.peak_rss_mb >= 150
    assert u.cpu_between(u.started_at - 10, u.started_at + u.wall_s + 10) == pytest.approx(u.cpu_s)


def test_run_measured_kills_a_run_that_overstays(tmp_path: Path) -> None:
    u = run_measured(
        [sys.executable, "-c", "import time; time.sleep(60)"],
        log_path=tmp_path / "log",
        timeout_s=1.0,
    )
    assert u.timed_out and u.wall_s < 30 and u.returncode != 0


def test_cpu_between_interpolates() -> None:
    u = TreeUsage(0, 10.0, 4.0, 1.0, 1, 100.0, samples=[(100.0, 0.0), (102.0, 2.0), (104.0, 4.0)])
    assert u.cpu_between(101.0, 103.0) == pytest.approx(2.0)
    assert u.cpu_between(90.0, 200.0) == pytest.approx(4.0)


def test_parsers_read_each_tools_output(tmp_path: Path) -> None:
    s = small()
    formats.write_burstgpt_csv(s, tmp_path / "trace.csv")
    (tmp_path / "report").mkdir()
    entries = [
        {
            "trace_row": 3,
            "sent_at": 101.5,
            "last_byte_at": 102.0,
            "lateness": 0.5,
            "outcome": "ok",
            "completion_tokens": 2,
        },
        {
            "trace_row": 1,
            "sent_at": 100.0,
            "last_byte_at": 100.1,
            "lateness": 0.0,
            "outcome": "http_error",
            "completion_tokens": None,
        },
        {"trace_row": 4, "outcome": "not_sent", "not_sent_reason": "window_ended"},
    ]
    (tmp_path / "report" / "requests.jsonl").write_text(
        "".join(json.dumps(e) + "\n" for e in entries)
    )
    p = tools.Ours("python", "v").parse(tmp_path)
    assert (p.completed, p.failed, p.output_tokens) == (1, 1, 2)
    assert p.scheduled.tolist() == [1.0, 0.0] and p.lateness_p99_ms == pytest.approx(500.0)

    gl = {
        "benchmarks": [
            {
                "requests": {
                    "successful": [
                        {
                            "info": {
                                "timings": {"request_start": 5.0, "request_end": 6.0},
                                "settings": {"relative_timestamp": 0.5},
                            },
                            "output_metrics": {"text_tokens": 7},
                        }
                    ],
                    "errored": [],
                    "incomplete": None,
                    "total": None,
                },
                "metrics": {"request_dispatch_delay": {"total": {"percentiles": {"p99": 0.25}}}},
            }
        ]
    }
    (tmp_path / "guidellm.json").write_text(json.dumps(gl))
    p = tools.GuideLLM("python", "v").parse(tmp_path)
    assert (p.completed, p.output_tokens, p.lateness_p99_ms) == (1, 7, 250.0)
    assert p.scheduled.tolist() == [0.5]

    art = tmp_path / "artifacts"
    art.mkdir()
    recs = [
        {
            "metadata": {
                "benchmark_phase": "profiling",
                "request_start_ns": 2_000_000_000,
                "request_end_ns": 3_000_000_000,
            },
            "metrics": {"usage_completion_tokens": {"value": 9}},
        },
        {
            "metadata": {"benchmark_phase": "profiling", "request_start_ns": 2_500_000_000},
            "metrics": {},
            "error": {"code": 500},
        },
    ]
    (art / "profile_export.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    (art / "profile_export_aiperf.json").write_text(
        json.dumps({"replay_sched_lag_p99": {"avg": 3.5}})
    )
    p = tools.AIPerf("python", "v").parse(tmp_path)
    assert (p.completed, p.failed, p.output_tokens, p.lateness_p99_ms) == (1, 1, 9, 3.5)
    assert p.sends.tolist() == [2.0, 2.5]

    formats.write_vllm_timed_trace(s, tmp_path / "trace.jsonl")
    (tmp_path / "vllm.json").write_text(
        json.dumps(
            {
                "start_times": [1.0, 1.5],
                "latencies": [0.5, None],
                "output_lens": [3, 0],
                "completed": 1,
                "failed": 1,
            }
        )
    )
    p = tools.VllmBench("python", "v").parse(tmp_path)
    assert p.sends.tolist() == pytest.approx(
        [1.0 + tools.WALL_MINUS_PERF, 1.5 + tools.WALL_MINUS_PERF]
    )
    assert p.scheduled.tolist() == [0.0, 0.5] and p.output_tokens == 3


def test_update_readme_replaces_only_the_marked_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{report.BEGIN}\nold table\n{report.END}\nafter\n")
    report.update_readme(readme, "new table")
    assert readme.read_text() == f"intro\n{report.BEGIN}\nnew table\n{report.END}\nafter\n"
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="block"):
        report.update_readme(readme, "x")


def _run(
    tool: str, cpu_s: float, mae: float, tokens: int = 10_000, pass_index: int = 0
) -> compare.RunResult:
    s = small()
    r = compare.RunResult("sim", tool, tool.upper(), "v", ["x"], pass_index)
    r.usage = TreeUsage(0, 10.0, cpu_s, 100.0, 1, 0.0)
    r.replay_cpu_s = cpu_s / 2
    r.server_tokens = tokens
    r.parsed = tools.Parsed(s.offsets, s.offsets, len(s), 0, tokens, None)
    f = fidelity.measure(s, 100.0 + s.offsets)
    r.fidelity = fidelity.Fidelity(**{**f.__dict__, "mae_per_s": mae})
    return r


def test_summaries_take_medians_and_verdicts_compare_with_the_best_peer() -> None:
    runs = [
        _run("ours", 1.0, 0.0),
        _run("aiperf", 4.0, 0.5),
        _run("vllm", 3.0, 0.1),
        _run("ours", 2.0, 0.2, pass_index=1),
        _run("aiperf", 5.0, 0.4, pass_index=1),
        _run("vllm", 1.8, 0.0, pass_index=1),
        _run("ours", 9.0, 0.1, pass_index=2),
    ]
    sums = summary.summarize(runs)
    assert [s.tool for s in sums] == ["ours", "aiperf", "vllm"]
    ours = sums[0]
    assert ours.cpu().median == pytest.approx(0.2) and (ours.cpu().low, ours.cpu().high) == (
        0.1,
        0.9,
    )
    assert ours.mae().median == pytest.approx(0.1)
    assert report.best_peer(sums, lambda s: s.cpu()).tool == "vllm"  # median 0.24 < aiperf 0.45
    v = report.verdicts(sums)
    assert v[0].startswith("CPU per streamed token (whole run): ours 0.200 vs VLLM 0.240")
    assert "NOT MET" in v[0]  # 0.83x, not <= 0.5x
    assert any("against AIPERF: 0.44x" in line and "MET" in line for line in v)
    assert v[-1].endswith("NOT MET")  # MAE 0.1 > vllm's 0.05
    assert "0.83x" in report.ratio_table(sums)


def test_stat_ignores_missing_values() -> None:
    st = summary.Stat.of([float("nan"), 2.0, None, 4.0])
    assert (st.median, st.low, st.high) == (3.0, 2.0, 4.0)
    assert st.fmt("{:.1f}") == "3.0 (2.0-4.0)"
    assert summary.Stat.of([]).fmt() == "n/a"
