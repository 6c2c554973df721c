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


#: Rows per chunk: temporaries stay small and are reused, so big inputs touch little new memory
#: (on a busy virtual machine fresh pages cost as much as the arithmetic).
CHUNK = 1 << 20


@dataclass
class _Part:
    """Intervals [(raw - offset) / scale, ... + duration), optionally only rows where ``where``."""

    raw: np.ndarray
    durations: np.ndarray | None
    where: np.ndarray | None
    offset: float
    scale: float

    def chunks(self, buf: np.ndarray):
        """Yield (starts, durations) per chunk; starts are written into ``buf``."""
        n = self.raw.size
        for lo in range(0, n, CHUNK):
            r = self.raw[lo : lo + CHUNK]
            d = None if self.durations is None else self.durations[lo : lo + CHUNK]
            if self.where is not None:
                keep = self.where[lo : lo + CHUNK]
                r = r[keep]
                d = None if d is None else d[keep]
            s = buf[: r.size]
            np.subtract(r, self.offset, out=s)
            if self.scale != 1:
                s /= self.scale
            yield s, d

    def materialize(self) -> tuple[np.ndarray, np.ndarray]:
        r, d = self.raw, self.durations
        if self.where is not None:
            r = r[self.where]
            d = None if d is None else d[self.where]
        s = (r - self.offset) / self.scale
        return s, (np.zeros_like(s) if d is None else d)


class InProgressCounter:
    """Accumulates intervals [start, start + duration) and yields the per-second maximum count.

    Whole seconds: count(t) = #(start <= t) - #(end' <= t), where x <= t <=> ceil(x) <= t and
    ceil(end') = max(ceil(end), floor(start) + 1), so a zero-length interval counts at its
    start instant. Intervals outside [0, length) cancel out by clipping. Inside a second the
    count can only rise at a start, so fractional starts are evaluated too (``result``).
    Starts may be given as ``(raw - offset) / scale`` so callers need not materialize them.
    """

    def __init__(self, length: int) -> None:
        self.length = max(0, length)
        self.delta = np.zeros(self.length + 1, dtype=np.int32)
        self._parts: list[_Part] = []
        self._fractional = False

    def fork(self) -> InProgressCounter:
        """An independent counter that already holds everything added so far."""
        twin = InProgressCounter.__new__(InProgressCounter)
        twin.length = self.length
        twin.delta = self.delta.copy()
        twin._parts = list(self._parts)
        twin._fractional = self._fractional
        return twin

    def add(self, starts: np.ndarray, durations: np.ndarray, where: np.ndarray | None = None,
            *, offset: float = 0.0, scale: float = 1.0) -> None:
        """Add intervals starting at ``(starts - offset) / scale`` (rows where ``where`` is True)."""
        part = _Part(np.asarray(starts, dtype=np.float64), np.asarray(durations, dtype=np.float64),
                     where, float(offset), float(scale))
        self._parts.append(part)
        if self.length == 0 or part.raw.size == 0:
            return
        k = min(part.raw.size, CHUNK)
        sbuf, fbuf, ibuf = np.empty(k), np.empty(k), np.empty(k, dtype=np.intp)
        for s, d in part.chunks(sbuf):
            k = s.size
            if k == 0:
                continue
            f, i = fbuf[:k], ibuf[:k]
            np.ceil(s, out=f)
            if not self._fractional and not np.array_equal(f, s):
                self._fractional = True
            np.clip(f, 0, self.length, out=f)
            i[...] = f
            _bump(self.delta, i, +1)
            np.floor(s, out=i, casting="unsafe")
            i += 1
            np.add(s, d, out=f)
            np.ceil(f, out=f)
            np.maximum(f, i, out=f)
            np.clip(f, 0, self.length, out=f)
            i[...] = f
            _bump(self.delta, i, -1)

    def result(self) -> np.ndarray:
        """int32 per-second maximum over [0, length)."""
        out = np.cumsum(self.delta, out=self.delta)[: self.length]
        if self._fractional:
            pieces = [p.materialize() for p in self._parts]
            _raise_at_starts(out, np.concatenate([p[0] for p in pieces]),
                             np.concatenate([p[1] for p in pieces]))
        return out


class ArrivalCounter:
    """Counts starts per second over [0, length); starts may be ``(raw - offset) / scale``."""

    def __init__(self, length: int) -> None:
        self.length = max(0, length)
        self.counts = np.zeros(self.length + 1, dtype=np.int32)  # last bin: outside, dropped

    def add(self, starts: np.ndarray, where: np.ndarray | None = None, *, offset: float = 0.0,
            scale: float = 1.0) -> None:
        part = _Part(np.asarray(starts, dtype=np.float64), None, where, float(offset), float(scale))
        if self.length == 0 or part.raw.size == 0:
            return
        k = min(part.raw.size, CHUNK)
        sbuf, ibuf = np.empty(k), np.empty(k, dtype=np.intp)
        for s, _ in part.chunks(sbuf):
            if s.size == 0:
                continue
            i = ibuf[: s.size]
            np.floor(s, out=s)
            s[(s < 0) | (s >= self.length)] = self.length          # out of range -> last bin
            i[...] = s
            _bump(self.counts, i, +1)

    def result(self) -> np.ndarray:
        return self.counts[: self.length]


def _bump(target: np.ndarray, bins: np.ndarray, sign: int) -> None:
    """target[b] += sign for every b in ``bins`` (bins is clobbered)."""
    lo, hi = int(bins.min()), int(bins.max())
    bins -= lo
    local = np.bincount(bins, minlength=hi - lo + 1)
    if sign > 0:
        target[lo : hi + 1] += local
    else:
        target[lo : hi + 1] -= local


def max_in_progress(starts: np.ndarray, durations: np.ndarray, length: int) -> np.ndarray:
    """For t in [0, length): max over instants x of [t, t+1) of the number of intervals
    [starts[i], starts[i] + durations[i]) containing x (zero-length ones contain their start)."""
    counter = InProgressCounter(length)
    counter.add(starts, durations)
    return counter.result()


def _raise_at_starts(out: np.ndarray, starts: np.ndarray, durations: np.ndarray) -> None:
    """Within a second the count only rises at a start: take the max at every fractional start."""
    length = out.size
    q = starts[(starts >= 0) & (starts < length) & (starts != np.floor(starts))]
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
    out[secs] = np.maximum(out[secs], np.maximum.reduceat(at_q, head).astype(out.dtype))


def arrivals_per_second(starts: np.ndarray, length: int) -> np.ndarray:
    """Number of ``starts`` in each [t, t+1) for t in [0, length)."""
    counter = ArrivalCounter(length)
    counter.add(starts)
    return counter.result()


def curve_length(duration_s: float) -> int:
    """Number of whole seconds covering [0, duration_s)."""
    return max(0, math.ceil(duration_s - 1e-9))


def build_curves(conv_start: np.ndarray, conv_duration: np.ndarray, req_start: np.ndarray,
                 req_service: np.ndarray, duration_s: float, estimated: bool) -> Curves:
    """The three curves over [0, ceil(duration_s)) from plain interval arrays."""
    length = curve_length(duration_s)
    return Curves(
        concurrency=max_in_progress(conv_start, conv_duration, length),
        arrivals=arrivals_per_second(req_start, length),
        in_flight=max_in_progress(req_start, req_service, length),
        estimated=estimated,
    )
