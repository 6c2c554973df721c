"""The length, turn and think-time distributions of ``params.json``, and how they are sampled.

Every distribution samples by inverse transform from uniforms in [0, 1), so the synthesizer can
choose how the uniforms are drawn (independently, or stratified to cut sampling noise) and one
code path serves every kind:

* ``quantiles``: an empirical quantile function tabulated at evenly spaced probabilities
  ``0, 1/(n-1), ..., 1`` (linear interpolation in between). The empirical distribution is the
  nonparametric maximum-likelihood estimate, and tabulating it keeps ``params.json`` small.
* ``pmf``: a probability mass function over integer values (turns per conversation).
* ``zipf``: a Zipf law truncated to ``[low, high]``, P(k) proportional to k^-theta (the paper's
  length model, used by the ``paper-demo`` preset).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: Probability knots of fitted quantile tables (every 0.5 %).
QUANTILE_KNOTS = 201


class ParamsError(ValueError):
    """A ``params.json`` that does not follow the schema; the message names the field."""


@dataclass(frozen=True)
class Quantiles:
    """Empirical quantile function at ``len(x)`` evenly spaced probabilities from 0 to 1."""

    x: tuple[float, ...]

    kind = "quantiles"

    @classmethod
    def fit(cls, values: np.ndarray, knots: int = QUANTILE_KNOTS) -> Quantiles:
        """Tabulate the empirical quantile function of ``values`` (at least one value)."""
        values = np.asarray(values, dtype=np.float64)
        if values.size == 0:
            raise ValueError("cannot fit a distribution to no values")
        q = np.quantile(values, np.linspace(0.0, 1.0, knots))
        return cls(tuple(float(v) for v in q))

    def sample(self, u: np.ndarray) -> np.ndarray:
        """Inverse transform: the quantile function at probabilities ``u``."""
        x = np.asarray(self.x)
        return np.interp(u, np.linspace(0.0, 1.0, x.size), x)

    def quantile(self, q: float) -> float:
        return float(self.sample(np.array([q]))[0])

    def mean(self) -> float:
        """Mean of the piecewise-linear quantile function (exact for the tabulated law)."""
        x = np.asarray(self.x)
        return float(x[0]) if x.size == 1 else float(np.mean((x[1:] + x[:-1]) / 2))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "x": [round6(v) for v in self.x]}


@dataclass(frozen=True)
class Pmf:
    """P(value) for integer values, sorted ascending; probabilities sum to 1."""

    values: tuple[int, ...]
    probs: tuple[float, ...]

    kind = "pmf"

    @classmethod
    def fit(cls, values: np.ndarray) -> Pmf:
        """Relative frequencies: the maximum-likelihood estimate of a categorical law."""
        vals, counts = np.unique(np.asarray(values, dtype=np.int64), return_counts=True)
        if vals.size == 0:
            raise ValueError("cannot fit a distribution to no values")
        return cls(tuple(int(v) for v in vals), tuple(float(c) / counts.sum() for c in counts))

    def sample(self, u: np.ndarray) -> np.ndarray:
        cdf = np.cumsum(self.probs)
        cdf[-1] = 1.0
        idx = np.minimum(np.searchsorted(cdf, u, side="right"), len(self.values) - 1)
        return np.asarray(self.values, dtype=np.int64)[idx]

    def quantile(self, q: float) -> float:
        return float(self.sample(np.array([q]))[0])

    def mean(self) -> float:
        return float(np.dot(self.values, self.probs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "values": list(self.values),
            "probs": [round6(p) for p in self.probs],
        }


@dataclass(frozen=True)
class Zipf:
    """Zipf law truncated to ``[low, high]``: P(k) proportional to ``k ** -theta``."""

    theta: float
    low: int = 1
    high: int = 1023

    kind = "zipf"

    def _cdf(self) -> tuple[np.ndarray, np.ndarray]:
        k = np.arange(self.low, self.high + 1, dtype=np.float64)
        cdf = np.cumsum(k**-self.theta)
        return k, cdf / cdf[-1]

    def sample(self, u: np.ndarray) -> np.ndarray:
        k, cdf = self._cdf()
        return k[np.minimum(np.searchsorted(cdf, u, side="right"), k.size - 1)]

    def quantile(self, q: float) -> float:
        return float(self.sample(np.array([q]))[0])

    def mean(self) -> float:
        k, cdf = self._cdf()
        return float(np.dot(k, np.diff(cdf, prepend=0.0)))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "theta": self.theta, "low": self.low, "high": self.high}


Distribution = Quantiles | Pmf | Zipf


@dataclass(frozen=True)
class Bucketed:
    """A distribution that depends on a covariate: one distribution per covariate bucket.

    Bucket ``i`` holds covariate values ``edges[i-1] <= x < edges[i]`` (the first and last are
    open-ended), so ``len(dists) == len(edges) + 1``.
    """

    edges: tuple[float, ...]
    dists: tuple[Distribution, ...]

    @classmethod
    def fit(
        cls, covariate: np.ndarray, values: np.ndarray, *, min_rows: int, max_buckets: int
    ) -> Bucketed:
        """Buckets at covariate quantiles with at least ``min_rows`` values each; empirical laws."""
        covariate = np.asarray(covariate, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64)
        n = max(1, min(max_buckets, values.size // max(min_rows, 1)))
        inner = np.unique(np.quantile(covariate, np.linspace(0, 1, n + 1)[1:-1])) if n > 1 else []
        edges: list[float] = []
        lo = -np.inf
        for e in inner:  # drop an edge that would leave a bucket empty (ties at the edge)
            if np.any((covariate >= lo) & (covariate < e)) and np.any(covariate >= e):
                edges.append(float(e))
                lo = e
        bucket = np.searchsorted(np.asarray(edges), covariate, side="right")
        return cls(
            tuple(edges), tuple(Quantiles.fit(values[bucket == i]) for i in range(len(edges) + 1))
        )

    def bucket(self, x: np.ndarray) -> np.ndarray:
        return np.searchsorted(np.asarray(self.edges), x, side="right")

    def sample(self, u: np.ndarray, x: np.ndarray) -> np.ndarray:
        """Inverse transform at ``u``, each from the distribution of its covariate's bucket."""
        if len(self.dists) == 1:
            return self.dists[0].sample(u)
        bucket = self.bucket(x)
        first = self.dists[0]
        if (
            all(isinstance(d, Quantiles) and len(d.x) == len(first.x) for d in self.dists)
            and len(first.x) > 1
        ):
            table = np.array([d.x for d in self.dists])
            pos = np.asarray(u) * (table.shape[1] - 1)
            i = np.minimum(pos.astype(np.int64), table.shape[1] - 2)
            frac = pos - i
            return table[bucket, i] * (1 - frac) + table[bucket, i + 1] * frac
        out = np.empty(np.shape(u))
        for b in np.unique(bucket):
            sel = bucket == b
            out[sel] = self.dists[b].sample(np.asarray(u)[sel])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": [round6(e) for e in self.edges],
            "dists": [d.to_dict() for d in self.dists],
        }


def distribution_from_dict(data: Any, where: str) -> Distribution:
    """Parse one distribution object; ``where`` is its JSON path for error messages."""
    if not isinstance(data, dict):
        raise ParamsError(f"{where}: expected an object with a 'kind', found {type(data).__name__}")
    kind = data.get("kind")
    if kind == "quantiles":
        x = _numbers(data.get("x"), f"{where}.x")
        if not x:
            raise ParamsError(f"{where}.x: expected at least one value")
        if any(b < a for a, b in zip(x, x[1:], strict=False)):
            raise ParamsError(f"{where}.x: quantiles must never decrease")
        return Quantiles(tuple(x))
    if kind == "pmf":
        values = _numbers(data.get("values"), f"{where}.values")
        probs = _numbers(data.get("probs"), f"{where}.probs")
        if not values or len(values) != len(probs):
            raise ParamsError(
                f"{where}: 'values' and 'probs' must be non-empty and the same length"
            )
        if any(p < 0 for p in probs) or not np.isclose(sum(probs), 1.0, atol=1e-4):
            raise ParamsError(f"{where}.probs: expected probabilities >= 0 that sum to 1")
        if any(v != int(v) for v in values) or list(values) != sorted(set(values)):
            raise ParamsError(f"{where}.values: expected distinct whole numbers in ascending order")
        return Pmf(tuple(int(v) for v in values), tuple(probs))
    if kind == "zipf":
        theta = data.get("theta")
        low, high = data.get("low", 1), data.get("high", 1023)
        if not isinstance(theta, int | float) or theta <= 0:
            raise ParamsError(f"{where}.theta: expected a number > 0")
        if not (isinstance(low, int) and isinstance(high, int) and 1 <= low <= high):
            raise ParamsError(f"{where}: expected whole numbers 1 <= low <= high")
        return Zipf(float(theta), low, high)
    raise ParamsError(f"{where}.kind: expected 'quantiles', 'pmf' or 'zipf', found {kind!r}")


def bucketed_from_dict(data: Any, where: str) -> Bucketed:
    """Parse ``{"edges": [...], "dists": [...]}`` (edges ascending, one fewer than dists)."""
    if not isinstance(data, dict):
        raise ParamsError(f"{where}: expected an object with 'edges' and 'dists'")
    dists = data.get("dists")
    if not isinstance(dists, list) or not dists:
        raise ParamsError(f"{where}.dists: expected a non-empty list of distributions")
    edges = _numbers(data.get("edges", []), f"{where}.edges")
    if len(edges) != len(dists) - 1 or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
        raise ParamsError(
            f"{where}.edges: expected {len(dists) - 1} increasing numbers (one fewer than dists)"
        )
    return Bucketed(
        tuple(edges),
        tuple(distribution_from_dict(d, f"{where}.dists[{i}]") for i, d in enumerate(dists)),
    )


def _numbers(value: Any, where: str) -> list[float]:
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and np.isfinite(v) for v in value
    ):
        raise ParamsError(f"{where}: expected a list of finite numbers")
    return [float(v) for v in value]


def round6(v: float) -> float:
    """Six significant digits: exact enough for sampling, short enough to read."""
    return float(f"{v:.6g}")
