"""Window grammar and selectors (range, day+clock, first, busiest, peak-concurrency)."""

from __future__ import annotations

import numpy as np
import pytest

from locust_burstgpt.trace import (
    WindowSyntaxError,
    load_trace,
    parse_duration,
    parse_window,
    prepare,
)
from tests.conftest import BURSTGPT_1_7DAYS, BURSTGPT_3_400
from tests.trace_support import (
    HEADER_8,
    brute_max_per_second,
    brute_schedule,
    read_plain,
    row8,
    write_csv,
)


@pytest.mark.parametrize(
    "text,seconds",
    [("600", 600), ("90s", 90), ("10m", 600), ("1.5h", 5400), ("2d", 172800), (".5m", 30)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-5m", "10x", "m", "1e3"])
def test_bad_durations(text):
    with pytest.raises(WindowSyntaxError):
        parse_duration(text)


@pytest.mark.parametrize(
    "text,start,duration",
    [
        ("d0+14:00+10m", 14 * 3600, 600),
        ("d225+09:30:15+1h", 225 * 86400 + 9 * 3600 + 30 * 60 + 15, 3600),
        ("d3+2h", 3 * 86400, 7200),
        ("19440110+600", 19440110, 600),
        ("3600.5+30s", 3600.5, 30),
    ],
)
def test_range_grammar(text, start, duration):
    spec = parse_window(text)
    assert (spec.kind, spec.start, spec.duration) == ("range", start, duration)


@pytest.mark.parametrize(
    "text",
    [
        "d0+25:00+1h",
        "d0+14:61+1h",
        "14:00+1h",
        "busiest",
        "busiest:",
        "peak:1h",
        "d0+14:00",
        "1000-2000",
        "first:0",
    ],
)
def test_bad_windows_explain_the_grammar(text):
    with pytest.raises(WindowSyntaxError) as info:
        parse_window(text)
    assert (
        repr(text.strip()) in str(info.value)
        or "duration" in str(info.value)
        or "HH:MM" in str(info.value)
    )


def test_whole_trace_window_covers_every_row():
    wl = prepare(load_trace(BURSTGPT_1_7DAYS), failed="send")
    assert (wl.window.start, wl.window.end) == (5.0, 604_759.0)
    assert wl.n_requests == 19_431 and wl.duration_s == 604_754.0
    assert len(wl.curves) == 604_754


def test_day_clock_window_selects_exactly_those_rows():
    raw = load_trace(BURSTGPT_1_7DAYS)
    wl = prepare(raw, window="d2+14:00+30m", failed="send")
    start = 2 * 86400 + 14 * 3600
    want = [r.row for r in read_plain(BURSTGPT_1_7DAYS) if start <= r.ts < start + 1800]
    assert wl.n_requests == len(want) > 10
    assert sorted(c.turns[0].row for c in wl.conversations()) == want
    assert wl.meta["window"]["start"] == start and wl.meta["window"]["end"] == start + 1800
    assert wl.duration_s == 1800 and len(wl.curves) == 1800
    assert wl.conversation(0).start_s == pytest.approx(raw.df.loc[want[0], "timestamp"] - start)


def test_first_window_starts_at_the_first_row():
    wl = prepare(load_trace(BURSTGPT_3_400), window="first:1h")
    assert wl.window.start == 19_440_110 and wl.window.end == 19_440_110 + 3600


def test_busiest_window_has_the_most_arrivals_brute_force():
    raw = load_trace(BURSTGPT_1_7DAYS)
    rows = [r for r in read_plain(BURSTGPT_1_7DAYS) if r.resp > 0]  # failed rows skipped by default
    ts = np.array([r.ts for r in rows])
    wl = prepare(raw, window="busiest:10m")
    starts = np.arange(int(ts[0]), int(ts[-1]) + 1)  # every whole-second start
    counts = np.searchsorted(ts, starts + 600) - np.searchsorted(ts, starts)
    assert wl.n_requests == counts.max()
    assert wl.window.start == starts[np.flatnonzero(counts == counts.max())[0]]  # earliest best


def test_busiest_respects_filters():
    raw = load_trace(BURSTGPT_1_7DAYS)
    wl = prepare(raw, window="busiest:1h", models=["GPT-4"])
    assert {c.model for c in wl.conversations()} == {"GPT-4"}
    rows = [r for r in read_plain(BURSTGPT_1_7DAYS) if r.resp > 0 and r.model == "GPT-4"]
    ts = np.array([r.ts for r in rows])
    starts = np.arange(int(ts[0]), int(ts[-1]) + 1)
    assert wl.n_requests == int(
        (np.searchsorted(ts, starts + 3600) - np.searchsorted(ts, starts)).max()
    )


def test_peak_concurrency_window_brute_force(tmp_path):
    # Two conversations overlap only around t=100..160: that hour-long stretch is the peak.
    rows = [
        row8(0, None, 5, 1, 1),
        row8(100, "a", 30, 1, 1),
        row8(120, "b", 20, 1, 1),
        row8(150, "a", 10, 1, 1),
        row8(400, None, 3, 1, 1),
        row8(500, "c", 1, 1, 1),
    ]
    path = write_csv(tmp_path / "t.csv", HEADER_8, rows)
    wl = prepare(load_trace(path), window="peak-concurrency:60s")
    plain = read_plain(path)
    convs = brute_schedule(plain, 0.0, 1.0, lambda r: r.elapsed)
    curve = brute_max_per_second([(c[0][0], c[-1][0] + c[-1][1]) for c in convs], 501)
    sums = [sum(curve[s : s + 60]) for s in range(0, 501 - 60 + 1)]
    assert wl.window.start == sums.index(max(sums))
    assert wl.window.end == wl.window.start + 60


def test_window_after_filters_may_be_empty(tmp_path):
    wl = prepare(load_trace(BURSTGPT_3_400), window="0+10m")
    assert wl.n_conversations == 0 and wl.n_requests == 0
    assert len(wl.curves) == 600 and wl.curves.concurrency.max() == 0
    assert any("no requests" in w for w in wl.meta["warnings"])
