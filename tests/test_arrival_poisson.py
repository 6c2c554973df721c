"""``--burstgpt-arrival poisson``: the paper's counterfactual. The same conversations, turns,
lengths and think times as the trace window, with conversation starts redrawn as a Poisson
process of the same mean rate; the bursts go, nothing else changes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from locust_burstgpt.trace import load_trace, prepare
from tests.conftest import BURSTGPT_1_7DAYS, BURSTGPT_3_400
from tests.plugin_runs import run_locust


def dispersion(starts: np.ndarray, duration_s: float, bin_s: float) -> float:
    """Index of dispersion (variance / mean) of conversation starts per bin: 1 for Poisson."""
    counts = np.bincount((starts // bin_s).astype(int), minlength=int(duration_s // bin_s))
    counts = counts[: int(duration_s // bin_s)]
    return float(counts.var() / counts.mean())


def turns_of(wl) -> list[tuple]:
    """Every conversation's turns, as the replay sends them (lengths, rows, think times)."""
    out = []
    for c in wl.conversations():
        out.append(
            tuple(
                (t.row, t.request_tokens, t.response_tokens, round(float(o - c.start_s), 9))
                for t, o in zip(c.turns, c.scheduled_offsets, strict=True)
            )
        )
    return sorted(out)


@pytest.mark.parametrize("rate_scale", [None, 0.5, 2.0])
def test_same_conversations_new_starts(rate_scale):
    raw = load_trace(BURSTGPT_3_400)
    kw = dict(window="busiest:1h", speedup=10, rate_scale=rate_scale, seed=3)
    trace, poisson = prepare(raw, **kw), prepare(raw, arrival="poisson", **kw)
    assert poisson.n_conversations == trace.n_conversations
    assert poisson.n_requests == trace.n_requests
    assert turns_of(poisson) == turns_of(trace)  # rows, lengths and think times as they were
    starts = np.asarray(poisson.start_offsets)
    assert np.all(np.diff(starts) >= 0) and 0 <= starts[0] and starts[-1] < poisson.duration_s
    assert not np.allclose(starts, np.asarray(trace.start_offsets))
    assert poisson.meta["arrival"] == "poisson" and trace.meta["arrival"] == "trace"
    # the curves follow the new starts: arrivals count the turns due inside the curve
    for wl in (trace, poisson):
        due = [o for c in wl.conversations() for o in c.scheduled_offsets]
        assert wl.curves.arrivals.sum() == sum(o < len(wl.curves.arrivals) for o in due)
    # seeded: the same seed gives the same starts
    again = prepare(raw, arrival="poisson", **kw)
    assert np.array_equal(np.asarray(again.start_offsets), starts)


def test_a_bursty_window_loses_its_bursts():
    raw = load_trace(BURSTGPT_1_7DAYS)
    kw = dict(window="busiest:1h", speedup=1, seed=0)
    trace, poisson = prepare(raw, **kw), prepare(raw, arrival="poisson", **kw)
    d_trace = dispersion(np.asarray(trace.start_offsets), trace.duration_s, 60)
    d_poisson = dispersion(np.asarray(poisson.start_offsets), poisson.duration_s, 60)
    print(f"\nindex of dispersion per minute: trace {d_trace:.1f}, poisson {d_poisson:.2f}")
    assert d_trace > 5  # BurstGPT's API bursts
    assert 0.4 < d_poisson < 2.0  # 1 for a Poisson process, with this many minutes' spread


def test_bad_arrival_is_rejected():
    raw = load_trace(BURSTGPT_3_400)
    with pytest.raises(ValueError, match="arrival 'uniform'"):
        prepare(raw, window="busiest:1h", arrival="uniform")


def test_a_poisson_replay_runs_open_loop_through_locust(sim_fast, tmp_path):
    report = tmp_path / "report"
    run = run_locust(
        tmp_path,
        sim_fast.base_url,
        "--burstgpt-window",
        "busiest:1h",
        "--burstgpt-speedup",
        "240",
        "--burstgpt-arrival",
        "poisson",
        "--burstgpt-report",
        str(report),
    )
    assert run.returncode == 0, run.output[-3000:]
    summary = json.loads((report / "summary.json").read_text())
    assert summary["trace"]["arrival"] == "poisson" and summary["settings"]["arrival"] == "poisson"
    books = summary["reconciliation"]
    assert books["balances"] is True and books["scheduled"] == books["sent"]
    lines = [json.loads(x) for x in (report / "requests.jsonl").read_text().splitlines()]
    expected = prepare(
        load_trace(BURSTGPT_3_400), window="busiest:1h", speedup=240, arrival="poisson"
    )
    first = sorted(x["scheduled_offset_s"] for x in lines if x["turn"] == 0)
    assert first == pytest.approx(sorted(expected.start_offsets), abs=1e-3)
    assert summary["verdict"]["trusted"], summary["verdict"]
