"""Per-second curves over the scaled window: concurrency c(t), arrivals r(t), in-flight requests.

Definition (the one a user count must satisfy to replay without queueing): an item (a
conversation, or a request) is *in progress* on the half-open interval [start, end); an item
whose end equals its start counts as in progress at its start instant. ``concurrency[t]`` and
``in_flight[t]`` are the **maximum, over every instant of [t, t+1), of the number of items in
progress at that instant**. ``arrivals[t]`` counts requests scheduled to start in [t, t+1).

A conversation is in progress from its first turn's scheduled submission to its last turn's
completion (scheduled start + elapsed), with scaled arrivals and think times and unscaled
service times (see ``conversations``). A request is in progress from its scheduled start for its
elapsed time.

The computation is O(n log n) in numpy: counts at whole seconds from cumulative histograms of
ceil(start) and ceil(end); inside a second the count can only rise at a start, so the maximum is
also taken at every start instant (from sorted starts and ends).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Curves:
    """1-second curves over [0, ceil(duration_s)) of the scaled window."""

    concurrency: np.ndarray   # int32: conversations in progress (max over the second)
    arrivals: np.ndarray      # int32: requests scheduled to start within the second
    in_flight: np.ndarray     # int32: requests in progress (max over the second)
    estimated: bool           # service times (partly) from the estimate, not recorded

    def __len__(self) -> int:
        return int(self.concurrency.size)

    def at(self, t: float) -> tuple[int, int, int]:
        """(concurrency, arrivals, in_flight) for second floor(t); zeros outside the window."""
        i = math.floor(t)
        if 0 <= i < self.concurrency.size:
            return int(self.concurrency[i]), int(self.arrivals[i]), int(self.in_flight[i])
        return 0, 0, 0


def max_in_progress(starts: np.ndarray, durations: np.ndarray, length: int) -> np.ndarray:
    """For t in [0, length): max over instants x of [t, t+1) of the number of intervals
    [starts[i], starts[i] + durations[i]) containing x (zero-length ones contain their start).

    Written to touch little fresh memory: on a busy virtual machine new pages cost about as
    much as the arithmetic, so buffers are reused and intervals are passed as start + duration.
    """
    if length <= 0 or starts.size == 0:
        return np.zeros(max(length, 0), dtype=np.int32)
    starts = np.asarray(starts, dtype=np.float64)
    durations = np.asarray(durations, dtype=np.float64)
    if starts.min() < 0 or starts.max() >= length:      # drop intervals outside the window
        keep = (starts < length) & ((starts + durations > 0) | (starts >= 0))
        starts, durations = starts[keep], durations[keep]
        if starts.size == 0:
            return np.zeros(length, dtype=np.int32)
    # Count at each whole second t: #(start <= t) - #(end' <= t), using x <= t <=> ceil(x) <= t,
    # with ceil(end') = max(ceil(end), floor(start) + 1) so a zero-length interval has its instant.
    fbuf = np.ceil(starts)
    fractional = not np.array_equal(fbuf, starts)
    ibuf = np.empty(starts.size, dtype=np.intp)
    np.clip(fbuf, 0, length, out=fbuf)
    ibuf[...] = fbuf
    counts = np.bincount(ibuf, minlength=length + 1)
    np.floor(starts, out=ibuf, casting="unsafe")
    ibuf += 1
    np.add(starts, durations, out=fbuf)
    np.ceil(fbuf, out=fbuf)
    np.maximum(fbuf, ibuf, out=fbuf)
    np.clip(fbuf, 0, length, out=fbuf)
    ibuf[...] = fbuf
    counts -= np.bincount(ibuf, minlength=length + 1)
    del fbuf, ibuf
    np.cumsum(counts, out=counts)
    out = counts[:length].astype(np.int32)
    del counts
    if fractional:
        _raise_at_starts(out, starts, durations)
    return out


def _raise_at_starts(out: np.ndarray, starts: np.ndarray, durations: np.ndarray) -> None:
    """Within a second the count only rises at a start: take the max at every fractional start."""
    q = starts[(starts >= 0) & (starts != np.floor(starts))]
    if q.size == 0:
        return
    q.sort()
    ends = starts + durations
    ends = np.where(ends > starts, ends, np.nextafter(starts, np.inf))
    ends.sort()
    at_q = np.searchsorted(np.sort(starts), q, side="right") - np.searchsorted(ends, q, side="right")
    sec = q.astype(np.int64)
    head = np.flatnonzero(np.concatenate(([True], sec[1:] != sec[:-1])))
    secs = sec[head]  # distinct seconds, so plain fancy assignment is safe
    out[secs] = np.maximum(out[secs], np.maximum.reduceat(at_q, head))


def arrivals_per_second(starts: np.ndarray, length: int) -> np.ndarray:
    """Number of ``starts`` in each [t, t+1) for t in [0, length)."""
    if length <= 0:
        return np.zeros(0, dtype=np.int32)
    if starts.size and (starts.min() < 0 or starts.max() >= length):
        starts = starts[(starts >= 0) & (starts < length)]
    sec = np.empty(starts.size, dtype=np.intp)
    np.floor(starts, out=sec, casting="unsafe")
    return np.bincount(sec, minlength=length).astype(np.int32)


def curve_length(duration_s: float) -> int:
    """Number of whole seconds covering [0, duration_s)."""
    return max(0, math.ceil(duration_s - 1e-9))


def build_curves(conv_start: np.ndarray, conv_duration: np.ndarray, req_start: np.ndarray,
                 req_service: np.ndarray, duration_s: float, estimated: bool) -> Curves:
    """The three curves over [0, ceil(duration_s))."""
    length = curve_length(duration_s)
    return Curves(
        concurrency=max_in_progress(conv_start, conv_duration, length),
        arrivals=arrivals_per_second(req_start, length),
        in_flight=max_in_progress(req_start, req_service, length),
        estimated=estimated,
    )
