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

Times are resolved to whole microseconds before counting (a zero-length item lasts 1 us), so
instants that are equal in exact arithmetic but were reached by different floating-point
paths (a turn that starts exactly when the previous one completes) compare equal. Counts at
whole seconds come from histograms of ceil(start) and ceil(end) (chunked, so big inputs touch
little new memory); inside a second the count can only rise at a start, so when starts are not
whole seconds the maximum is also taken at every start instant (sorted starts and ends).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Curves:
    """1-second curves over [0, ceil(duration_s)) of the scaled window."""

    concurrency: np.ndarray  # int32: conversations in progress (max over the second)
    arrivals: np.ndarray  # int32: requests scheduled to start within the second
    in_flight: np.ndarray  # int32: requests in progress (max over the second)
    estimated: bool  # service times (partly) from the estimate, not recorded

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
US = 1_000_000  # microseconds per second: the resolution at which instants are compared


_US_LIMIT = float(2**62)  # clip here so absurd (but valid) times cannot overflow int64


def to_us(seconds: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Whole microseconds (int64, round half to even) of float seconds."""
    tmp = np.multiply(seconds, US)
    np.clip(tmp, -_US_LIMIT, _US_LIMIT, out=tmp)
    np.rint(tmp, out=tmp)
    if out is None:
        return tmp.astype(np.int64)
    out[...] = tmp
    return out


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

    Whole seconds: count(t) = #(start <= t) - #(end <= t), with x <= t <=> ceil(x) <= t, in
    whole microseconds and with every interval at least 1 us long. Intervals outside
    [0, length) cancel out by clipping. Starts may be given as ``(raw - offset) / scale`` so
    callers need not materialize them.
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

    def add(
        self,
        starts: np.ndarray,
        durations: np.ndarray,
        where: np.ndarray | None = None,
        *,
        offset: float = 0.0,
        scale: float = 1.0,
        arrivals: ArrivalCounter | None = None,
    ) -> None:
        """Add intervals starting at ``(starts - offset) / scale`` (rows where ``where`` is True).

        ``arrivals``, if given, also counts the starts (sharing the work when they are whole
        seconds, where the floor and the ceiling of a start coincide).
        """
        if arrivals is not None:
            assert arrivals.length == self.length
        part = _Part(
            np.asarray(starts, dtype=np.float64),
            np.asarray(durations, dtype=np.float64),
            where,
            float(offset),
            float(scale),
        )
        self._parts.append(part)
        if self.length == 0 or part.raw.size == 0:
            return
        k = min(part.raw.size, CHUNK)
        sbuf, fbuf = np.empty(k), np.empty(k)
        s_us, e_us, bins = (np.empty(k, dtype=np.int64) for _ in range(3))
        limit = self.length * US
        for s, d in part.chunks(sbuf):
            k = s.size
            if k == 0:
                continue
            su, eu, b = s_us[:k], e_us[:k], bins[:k]
            to_us(s, out=su)
            np.add(s, d, out=fbuf[:k])
            to_us(fbuf[:k], out=eu)
            np.maximum(eu, su + 1, out=eu)  # at least 1 us long
            np.clip(su, 0, limit, out=su)
            np.clip(eu, 0, limit, out=eu)
            whole = not np.any(su % US)
            if not whole:
                self._fractional = True
            _ceil_seconds(su, b)
            if arrivals is not None and whole:  # floor == ceil: one count, two uses
                _bump(self.delta, b, +1, arrivals.counts)
            else:
                if arrivals is not None:
                    arrivals.add_us(su)
                _bump(self.delta, b, +1)
            _ceil_seconds(eu, b)
            _bump(self.delta, b, -1)

    def result(self) -> np.ndarray:
        """int32 per-second maximum over [0, length)."""
        out = np.cumsum(self.delta, out=self.delta)[: self.length]
        if self._fractional:
            pieces = [p.materialize() for p in self._parts]
            _raise_at_starts(
                out, np.concatenate([p[0] for p in pieces]), np.concatenate([p[1] for p in pieces])
            )
        return out


class ArrivalCounter:
    """Counts starts per second over [0, length); starts may be ``(raw - offset) / scale``."""

    def __init__(self, length: int) -> None:
        self.length = max(0, length)
        self.counts = np.zeros(self.length + 1, dtype=np.int32)  # last bin: outside, dropped

    def add(
        self,
        starts: np.ndarray,
        where: np.ndarray | None = None,
        *,
        offset: float = 0.0,
        scale: float = 1.0,
    ) -> None:
        part = _Part(np.asarray(starts, dtype=np.float64), None, where, float(offset), float(scale))
        if self.length == 0 or part.raw.size == 0:
            return
        k = min(part.raw.size, CHUNK)
        sbuf, ubuf = np.empty(k), np.empty(k, dtype=np.int64)
        for s, _ in part.chunks(sbuf):
            if s.size:
                self.add_us(to_us(s, out=ubuf[: s.size]))

    def add_us(self, us: np.ndarray) -> None:
        """Count starts given in whole microseconds (``us`` is not modified)."""
        u = us // US  # floor: the second it falls in
        u[(u < 0) | (u >= self.length)] = self.length  # outside -> the dropped bin
        _bump(self.counts, u, +1)

    def result(self) -> np.ndarray:
        return self.counts[: self.length]


def _ceil_seconds(us: np.ndarray, out: np.ndarray) -> None:
    """out = ceil(us / 1e6) for non-negative microseconds."""
    np.add(us, US - 1, out=out)
    out //= US


def _bump(target: np.ndarray, bins: np.ndarray, sign: int, also: np.ndarray | None = None) -> None:
    """target[b] += sign (and also[b] += 1) for every b in ``bins`` (bins is clobbered)."""
    lo, hi = int(bins.min()), int(bins.max())
    bins -= lo
    local = np.bincount(bins, minlength=hi - lo + 1)
    if sign > 0:
        target[lo : hi + 1] += local
    else:
        target[lo : hi + 1] -= local
    if also is not None:
        also[lo : hi + 1] += local


def max_in_progress(starts: np.ndarray, durations: np.ndarray, length: int) -> np.ndarray:
    """For t in [0, length): max over instants x of [t, t+1) of the number of intervals
    [starts[i], starts[i] + durations[i]) containing x (zero-length ones contain their start)."""
    counter = InProgressCounter(length)
    counter.add(starts, durations)
    return counter.result()


def _raise_at_starts(out: np.ndarray, starts: np.ndarray, durations: np.ndarray) -> None:
    """Within a second the count only rises at a start: take the max at every fractional start."""
    length = out.size
    s_us = to_us(starts)
    e_us = np.maximum(to_us(starts + durations), s_us + 1)
    q = s_us[(s_us >= 0) & (s_us < length * US) & (s_us % US != 0)]
    if q.size == 0:
        return
    q.sort()
    s_us.sort()
    e_us.sort()
    at_q = np.searchsorted(s_us, q, side="right") - np.searchsorted(e_us, q, side="right")
    sec = q // US
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
