"""Exact percentiles to a fixed resolution, from a store that is bounded and mergeable.

Why not Locust's stats or a sketch: Locust rounds response times to whole milliseconds below
100 ms and to 2 significant digits above, and sketches (t-digest, DDSketch) bound relative
error, not absolute error. LLM latencies need both small (ITL of 5 ms) and large (E2E of 60 s)
values correct to 0.1 ms.

How: every value is rounded to the nearest multiple of ``resolution`` (default 0.1 ms, so the
stored value is within 0.05 ms of the true one) and only the count per occupied multiple is
kept. Memory is therefore bounded by the number of distinct multiples seen, at most
``(max - min) / resolution`` whatever the number of samples (ITL values within 0..10 s: at most
100,000 entries). Merging adds counts, so worker histograms merge on the master without loss.
Percentiles use NumPy's default ("linear") definition, as vLLM's benchmark does, on the
rounded values; min and max are kept exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

DEFAULT_RESOLUTION = 1e-4  # seconds: 0.1 ms
PERCENTILES: tuple[float, ...] = (50.0, 90.0, 95.0, 99.0, 99.9)


class ExactHistogram:
    """Counts per multiple of ``resolution``; exact count, sum, min and max."""

    __slots__ = ("resolution", "_inv", "_counts", "count", "total", "min", "max", "_sorted")

    def __init__(self, resolution: float = DEFAULT_RESOLUTION) -> None:
        if not resolution > 0:
            raise ValueError(f"resolution must be > 0, got {resolution}")
        self.resolution = resolution
        self._inv = 1.0 / resolution
        self._counts: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = -math.inf
        self._sorted: list[int] | None = None

    def __len__(self) -> int:
        return self.count

    @property
    def distinct(self) -> int:
        """Number of occupied bins (what the memory use is proportional to)."""
        return len(self._counts)

    def add(self, value: float, n: int = 1) -> None:
        """Record ``value`` (seconds) ``n`` times. NaN and infinities are rejected."""
        if not math.isfinite(value):
            raise ValueError(f"cannot record non-finite value {value!r}")
        key = math.floor(value * self._inv + 0.5)
        counts = self._counts
        counts[key] = counts.get(key, 0) + n
        self.count += n
        self.total += value * n
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self._sorted = None

    def add_many(self, values: Iterable[float]) -> None:
        for v in values:
            self.add(v)

    def add_array(self, values: np.ndarray) -> None:
        """Record every value of a float array: the same bins as ``add``, at numpy speed (ITLs arrive
        by the hundred per request)."""
        v = np.asarray(values, dtype=np.float64)
        if not v.size:
            return
        if not np.isfinite(v).all():
            raise ValueError(f"cannot record non-finite values {v[~np.isfinite(v)][:3].tolist()!r}")
        keys, n = np.unique(np.floor(v * self._inv + 0.5).astype(np.int64), return_counts=True)
        counts = self._counts
        for k, c in zip(keys.tolist(), n.tolist(), strict=True):
            counts[k] = counts.get(k, 0) + c
        self.count += int(v.size)
        self.total += float(v.sum())
        lo, hi = float(v.min()), float(v.max())
        if lo < self.min:
            self.min = lo
        if hi > self.max:
            self.max = hi
        self._sorted = None

    def merge(self, other: ExactHistogram | Mapping[str, Any]) -> ExactHistogram:
        """Add another histogram (or its ``to_dict()``) into this one; returns self."""
        if not isinstance(other, ExactHistogram):
            other = ExactHistogram.from_dict(other)
        if other.count == 0:
            return self
        if other.resolution != self.resolution:
            raise ValueError(
                f"cannot merge histograms of resolution {other.resolution} and {self.resolution}"
            )
        counts = self._counts
        for k, c in other._counts.items():
            counts[k] = counts.get(k, 0) + c
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)
        self._sorted = None
        return self

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0..100), NumPy "linear" definition; None when empty."""
        return self.percentiles((q,))[q]

    def percentiles(self, qs: Sequence[float] = PERCENTILES) -> dict[float, float | None]:
        """Several percentiles in one pass over the sorted bins."""
        for q in qs:
            if not 0.0 <= q <= 100.0:
                raise ValueError(f"percentile must be within 0..100, got {q}")
        n = self.count
        if n == 0:
            return {q: None for q in qs}
        # ranks whose order statistics we need: floor and ceil of q/100 * (n - 1)
        wanted: set[int] = set()
        plan = []
        for q in qs:
            rank = q / 100.0 * (n - 1)
            lo = math.floor(rank)
            hi = min(lo + 1, n - 1)
            wanted.update((lo, hi))
            plan.append((q, rank, lo, hi))
        stats = self._order_statistics(sorted(wanted))
        out: dict[float, float | None] = {}
        for q, rank, lo, hi in plan:
            a, b = stats[lo], stats[hi]
            out[q] = a + (b - a) * (rank - lo)
        return out

    def _order_statistics(self, ranks: list[int]) -> dict[int, float]:
        """Value of each 0-based order statistic in ``ranks`` (ascending)."""
        if self._sorted is None:
            self._sorted = sorted(self._counts)
        res, counts, n = self.resolution, self._counts, self.count
        out: dict[int, float] = {}
        i = 0
        seen = 0
        for key in self._sorted:
            seen += counts[key]
            while i < len(ranks) and ranks[i] < seen:
                # clamp: a rounded bin value may lie just outside the exact min/max
                out[ranks[i]] = min(max(key * res, self.min), self.max)
                i += 1
            if i == len(ranks):
                break
        # the extremes are known exactly, not just to the resolution
        if 0 in out:
            out[0] = self.min
        if n - 1 in out:
            out[n - 1] = self.max
        return out

    def summary(self, qs: Sequence[float] = PERCENTILES) -> dict[str, float | int | None]:
        """count, mean, min, max and the percentiles as ``p50``, ``p99.9``, ..."""
        out: dict[str, float | int | None] = {
            "count": self.count,
            "mean": self.mean,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
        }
        for q, v in self.percentiles(qs).items():
            out[_pname(q)] = v
        return out

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (ints, floats, lists) for msgpack/JSON; bins delta-encoded."""
        keys = sorted(self._counts)
        deltas, prev = [], 0
        for k in keys:
            deltas.append(k - prev)
            prev = k
        return {
            "res": self.resolution,
            "n": self.count,
            "sum": self.total,
            "min": self.min if self.count else None,
            "max": self.max if self.count else None,
            "k": deltas,
            "c": [self._counts[k] for k in keys],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExactHistogram:
        try:
            h = cls(float(d["res"]))
            deltas, counts = list(d["k"]), list(d["c"])
            if len(deltas) != len(counts):
                raise ValueError("bins and counts differ in length")
            key = 0
            for delta, c in zip(deltas, counts, strict=True):
                key += int(delta)
                h._counts[key] = h._counts.get(key, 0) + int(c)
            h.count = int(d["n"])
            h.total = float(d["sum"])
            if h.count:
                h.min, h.max = float(d["min"]), float(d["max"])
            if sum(h._counts.values()) != h.count:
                raise ValueError("bin counts do not add up to n")
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a serialized ExactHistogram: {e}") from None
        return h


def _pname(q: float) -> str:
    return f"p{q:g}"
