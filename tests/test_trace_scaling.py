"""rate_scale: thinning and superposition of whole conversations."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from locust_burstgpt.trace import load_trace, prepare
from tests.conftest import BURSTGPT_1_7DAYS, BURSTGPT_3_400


@pytest.fixture(scope="module")
def seven_days():
    return load_trace(BURSTGPT_1_7DAYS)


@pytest.mark.parametrize("scale", [0.25, 0.5, 1.0, 2.0, 3.5])
def test_mean_rate_within_5_percent_of_target_on_the_seven_day_slice(seven_days, scale):
    base = prepare(seven_days)
    wl = prepare(seven_days, rate_scale=scale, seed=11)
    target = scale * base.n_requests / base.duration_s
    assert wl.duration_s == base.duration_s
    starts, _ = wl.request_schedule()
    in_window = np.count_nonzero((starts >= 0) & (starts < wl.duration_s))
    assert abs(in_window / wl.duration_s - target) <= 0.05 * target
    assert wl.curves.arrivals.sum() == in_window
    assert wl.meta["rate_scale"] == scale and wl.meta["requests"] == wl.n_requests


def _turns_by_conversation(wl):
    return {c.id: [t.row for t in c.turns] for c in wl.conversations()}


@pytest.mark.parametrize("scale", [0.4, 2.6])
def test_conversations_are_never_split(scale):
    raw = load_trace(BURSTGPT_3_400)
    base = _turns_by_conversation(prepare(raw))
    wl = prepare(raw, rate_scale=scale, seed=5)
    scaled = _turns_by_conversation(wl)
    assert len(scaled) == wl.n_conversations  # ids are distinct, copies included
    for cid, rows in scaled.items():
        original = cid.split("#copy")[0]
        assert rows == base[original]  # every turn, in order, nothing else
    copies = Counter(cid.split("#copy")[0] for cid in scaled)
    if scale > 1:
        assert max(copies.values()) == 3 and min(copies.values()) >= 2
    else:
        assert max(copies.values()) == 1
    assert wl.n_requests == sum(len(r) for r in scaled.values())
    assert abs(wl.n_requests - scale * sum(len(r) for r in base.values())) <= max(
        len(r) for r in base.values()
    )


def test_copies_keep_their_own_timing_and_stay_in_the_window():
    raw = load_trace(BURSTGPT_3_400)
    base = prepare(raw)
    wl = prepare(raw, rate_scale=2.0, seed=1)
    assert np.all(np.diff(wl.start_offsets) >= 0)
    assert wl.start_offsets.min() >= 0 and wl.start_offsets.max() < wl.duration_s
    by_id = {c.id: c for c in base.conversations()}
    for c in wl.conversations():
        orig = by_id[c.id.split("#copy")[0]]
        shift = c.start_s - orig.start_s
        assert [t.think_s for t in c.turns] == [t.think_s for t in orig.turns]
        assert [t.trace_offset_s for t in c.turns] == pytest.approx(
            [t.trace_offset_s + shift for t in orig.turns]
        )
        if "#copy" not in c.id:
            assert shift == 0


def test_scaling_is_deterministic_for_a_seed():
    raw = load_trace(BURSTGPT_3_400)
    a = prepare(raw, rate_scale=1.7, seed=3)
    b = prepare(raw, rate_scale=1.7, seed=3)
    c = prepare(raw, rate_scale=1.7, seed=4)
    assert np.array_equal(a.start_offsets, b.start_offsets)
    assert np.array_equal(a.curves.concurrency, b.curves.concurrency)
    assert not np.array_equal(a.start_offsets, c.start_offsets)


def test_scaled_curves_agree_with_the_scaled_schedule():
    from tests.trace_support import brute_arrivals, brute_max_per_second

    raw = load_trace(BURSTGPT_3_400)
    wl = prepare(raw, window="busiest:30m", rate_scale=2.5, speedup=2, seed=2)
    conv_iv, req_iv = [], []
    for c in wl.conversations():
        offsets = c.scheduled_offsets
        conv_iv.append((c.start_s, offsets[-1] + c.turns[-1].elapsed_s))
        req_iv += [(s, s + t.elapsed_s) for s, t in zip(offsets, c.turns, strict=True)]
    n = len(wl.curves)
    assert wl.curves.concurrency.tolist() == brute_max_per_second(conv_iv, n)
    assert wl.curves.in_flight.tolist() == brute_max_per_second(req_iv, n)
    assert wl.curves.arrivals.tolist() == brute_arrivals([a for a, _ in req_iv], n)


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf")])
def test_bad_rate_scale(bad):
    with pytest.raises(ValueError, match="rate_scale"):
        prepare(load_trace(BURSTGPT_3_400), rate_scale=bad)
