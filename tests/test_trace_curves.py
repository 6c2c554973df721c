"""Per-second curves against a brute-force count straight from the definitions."""

from __future__ import annotations

import numpy as np
import pytest

from locust_burstgpt.trace import Curves, load_trace, prepare
from locust_burstgpt.trace.curves import arrivals_per_second, max_in_progress
from tests.conftest import BURSTGPT_3_400
from tests.trace_support import (
    HEADER_8,
    brute_arrivals,
    brute_max_per_second,
    brute_schedule,
    read_plain,
    row8,
    write_csv,
)


def _random_trace(rng: np.random.Generator, path, n: int, fractional: bool) -> None:
    ts = (
        np.sort(rng.uniform(0, 60, n))
        if fractional
        else np.sort(rng.integers(0, 60, n)).astype(float)
    )
    sessions = ["a", "b", "c", None, None]
    rows = []
    for t in ts:
        sid = sessions[rng.integers(len(sessions))]
        elapsed = (
            float(rng.choice([0, 0.5, 1, 2, 3, 7, 15]))
            if fractional
            else float(rng.integers(0, 12))
        )
        rows.append(
            row8(
                round(float(t), 3), sid, elapsed, int(rng.integers(1, 50)), int(rng.integers(0, 30))
            )
        )
    write_csv(path, HEADER_8, rows)


def _brute_curves(
    path, window_start: float, window_end: float, speedup: float, length: int, failed: str
):
    plain = [
        r
        for r in read_plain(path)
        if (failed == "send" or r.resp > 0) and window_start <= r.ts < window_end
    ]
    convs = brute_schedule(plain, window_start, speedup, lambda r: r.elapsed)
    conv_iv = [(c[0][0], c[-1][0] + c[-1][1]) for c in convs]
    req_iv = [(s, s + el) for c in convs for (s, el, _, _) in c]
    return (
        brute_max_per_second(conv_iv, length),
        brute_arrivals([a for a, _ in req_iv], length),
        brute_max_per_second(req_iv, length),
    )


@pytest.mark.parametrize("seed", range(60))
def test_curves_match_brute_force_on_small_random_traces(tmp_path, seed):
    rng = np.random.default_rng(seed)
    path = tmp_path / "t.csv"
    fractional = seed % 2 == 1
    _random_trace(rng, path, int(rng.integers(1, 25)), fractional)
    speedup = [1.0, 2.0, 3.7, 0.5][seed % 4]
    failed = "send" if seed % 3 else "skip"
    raw = load_trace(path)
    wl = prepare(raw, window="0+60", speedup=speedup, failed=failed)
    length = len(wl.curves)
    assert length == int(np.ceil(60 / speedup))
    conc, arr, flight = _brute_curves(path, 0.0, 60.0, speedup, length, failed)
    assert wl.curves.concurrency.tolist() == conc
    assert wl.curves.arrivals.tolist() == arr
    assert wl.curves.in_flight.tolist() == flight
    for arr_ in (wl.curves.concurrency, wl.curves.arrivals, wl.curves.in_flight):
        assert arr_.dtype == np.int32


def test_speedup_scales_arrivals_and_think_but_not_service(tmp_path):
    # One conversation: turns at 0 and 100 with 40 s service each; one single request at 20.
    rows = [row8(0, "s", 40, 1, 1), row8(20, None, 40, 1, 1), row8(100, "s", 40, 1, 1)]
    raw = load_trace(write_csv(tmp_path / "t.csv", HEADER_8, rows))
    wl = prepare(raw, window="0+200", speedup=4)
    # scaled: conversation s starts 0, turn 1 at 40 + 60/4 = 55, ends 95; single at 5..45
    assert wl.duration_s == 50 and len(wl.curves) == 50
    c = wl.curves.concurrency
    assert (
        c[0:5].tolist() == [1] * 5 and c[5:45].tolist() == [2] * 40 and c[45:50].tolist() == [1] * 5
    )
    f = wl.curves.in_flight
    assert (
        f[0:5].tolist() == [1] * 5 and f[5:40].tolist() == [2] * 35 and f[40:45].tolist() == [1] * 5
    )
    assert f[45:50].tolist() == [0] * 5  # the think gap: nothing in flight until 55
    assert (
        wl.curves.arrivals.tolist() == [1] + [0] * 4 + [1] + [0] * 44
    )  # turn 1 (55) is past the end


def test_speedup_against_brute_force_on_the_genuine_slice():
    raw = load_trace(BURSTGPT_3_400)
    wl = prepare(raw, window="busiest:1h", speedup=3)
    conc, arr, flight = _brute_curves(
        BURSTGPT_3_400, wl.window.start, wl.window.end, 3.0, len(wl.curves), "skip"
    )
    plain_rows = [
        r
        for r in read_plain(BURSTGPT_3_400)
        if r.resp > 0 and wl.window.start <= r.ts < wl.window.end
    ]
    sched = brute_schedule(plain_rows, wl.window.start, 3.0, lambda r: r.elapsed)
    assert wl.n_conversations == len(sched)
    assert wl.curves.concurrency.tolist() == conc
    assert wl.curves.arrivals.tolist() == arr
    assert wl.curves.in_flight.tolist() == flight


def test_zero_length_intervals_count_at_their_instant():
    out = max_in_progress(np.array([0.0, 2.5, 2.5, 4.0]), np.array([0.0, 0.0, 0.0, 1.0]), 6)
    assert out.tolist() == [1, 0, 2, 0, 1, 0]


def test_back_to_back_intervals_do_not_overlap():
    out = max_in_progress(np.array([0.0, 1.5, 3.0]), np.array([1.5, 1.5, 1.0]), 5)
    assert out.tolist() == [1, 1, 1, 1, 0]


def test_intervals_outside_the_window_are_ignored():
    starts = np.array([-5.0, -2.0, 3.2, 9.5, 12.0])
    durs = np.array([2.0, 3.5, 0.0, 5.0, 1.0])
    want = brute_max_per_second([(s, s + d) for s, d in zip(starts, durs, strict=True)], 10)
    assert max_in_progress(starts, durs, 10).tolist() == want
    assert arrivals_per_second(starts, 10).tolist() == brute_arrivals(list(starts), 10)


def test_curves_at_is_constant_time_lookup_and_zero_outside():
    c = Curves(
        concurrency=np.array([3, 4], np.int32),
        arrivals=np.array([1, 0], np.int32),
        in_flight=np.array([2, 2], np.int32),
        estimated=False,
    )
    assert c.at(0) == (3, 1, 2) and c.at(1.99) == (4, 0, 2)
    assert c.at(2) == (0, 0, 0) and c.at(-0.1) == (0, 0, 0)
    assert len(c) == 2


def test_large_chunked_input_matches_a_simple_count():
    # Bigger than one processing chunk: compare with a direct per-second count (integer times).
    rng = np.random.default_rng(5)
    n = 2_500_000
    starts = np.sort(rng.integers(0, 200_000, n)).astype(float)
    durs = rng.integers(0, 40, n).astype(float)
    length = 200_000
    ends = np.maximum(starts + durs, starts + 1)  # whole seconds: [start, max(end, start+1))
    diff = np.bincount(starts.astype(int), minlength=length + 50) - np.bincount(
        ends.astype(int), minlength=length + 50
    )
    want = np.cumsum(diff)[:length]
    assert np.array_equal(max_in_progress(starts, durs, length), want)


def test_absurd_durations_and_times_do_not_overflow():
    starts = np.array([2.0, -1e300, 1e300, 4.5])
    durs = np.array([1e300, 2e300, 5.0, np.inf])
    assert max_in_progress(starts, durs, 8).tolist() == [1, 1, 2, 2, 3, 3, 3, 3]
    assert arrivals_per_second(starts, 8).tolist() == [0, 0, 1, 0, 1, 0, 0, 0]
