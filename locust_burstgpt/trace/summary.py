"""Descriptive statistics of a prepared workload (what ``burstgpt inspect`` prints).

Populations, so every number has one meaning:

* ``rows``, ``failed_rows``, ``span_s``, ``models``, ``log_types``: every row of the file in
  the window (failed rows included), after the model/log-type filters;
* everything else describes what would be replayed: the rows kept by the failed-row policy
  (default: failed rows dropped), grouped into conversations, at the given speedup.

Arrival statistics use the trace timestamps of the replayed rows (divided by the speedup):
per-second counts over every second of the window (empty ones included) give
``arrivals_per_s`` and ``index_of_dispersion_1s`` (variance / mean of those counts).
Inter-arrival times are the gaps between consecutive arrivals; BurstGPT stamps whole seconds,
so many gaps are exactly 0, which a Gamma likelihood cannot take. When every timestamp is a
whole second we therefore *dequantize*: add an independent U(0, 1) s offset (seeded) to each
arrival before taking gaps, which is what "arrived somewhere within that second" means; the
fraction of zero gaps before that is reported as ``zero_gap_fraction``. The Gamma shape and
scale are the maximum-likelihood fit with location 0 (the paper models arrivals as Gamma).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from .workload import Workload

DEQUANTIZE_SEED = 0


def gamma_mle(x: np.ndarray) -> tuple[float, float]:
    """Maximum-likelihood Gamma(shape k, scale theta) with location 0 for positive ``x``.

    Solves log(k) - digamma(k) = log(mean) - mean(log x) by Newton's method from Minka's
    closed-form start; theta = mean / k. Same estimator as ``scipy.stats.gamma.fit(x, floc=0)``.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.size < 2 or np.any(x <= 0):
        raise ValueError("gamma_mle needs at least two positive values")
    mean = float(x.mean())
    s = math.log(mean) - float(np.log(x).mean())
    if s <= 0:  # all values equal: the likelihood grows without bound in k
        return math.inf, 0.0
    k = (3 - s + math.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s)
    for _ in range(50):
        f = math.log(k) - float(special.digamma(k)) - s
        fp = 1 / k - float(special.polygamma(1, k))
        step = f / fp
        k_new = k - step
        if k_new <= 0:
            k_new = k / 2
        if abs(k_new - k) < 1e-12 * k:
            k = k_new
            break
        k = k_new
    return k, mean / k


def _stats(values: np.ndarray, keys: tuple[str, ...]) -> dict[str, float | None]:
    if values.size == 0:
        return dict.fromkeys(keys)
    out: dict[str, float | None] = {}
    for key in keys:
        if key == "mean":
            out[key] = float(values.mean())
        elif key == "max":
            out[key] = float(values.max())
        else:
            out[key] = float(np.percentile(values, float(key[1:])))
    return out


def _counts(categories: Any) -> dict[str, int]:
    values, counts = np.unique(np.asarray(categories.codes), return_counts=True)
    names = [str(c) for c in categories.categories]
    return {names[v]: int(c) for v, c in zip(values, counts, strict=True) if v >= 0}


def interarrival_stats(arrivals: np.ndarray, seed: int = DEQUANTIZE_SEED) -> dict[str, Any]:
    """Mean, CV, Gamma MLE of the gaps between sorted arrival times (see module docstring)."""
    keys = {
        "mean": None,
        "cv": None,
        "gamma_shape": None,
        "gamma_scale": None,
        "zero_gap_fraction": None,
        "dequantized": False,
    }
    if arrivals.size < 3:
        return keys
    arrivals = np.sort(np.asarray(arrivals, dtype=np.float64))
    raw_gaps = np.diff(arrivals)
    whole = bool(np.all(arrivals == np.floor(arrivals)))
    if whole:
        jitter = np.random.default_rng(seed).uniform(0.0, 1.0, arrivals.size)
        gaps = np.diff(np.sort(arrivals + jitter))
    else:
        gaps = raw_gaps
    positive = gaps[gaps > 0]
    shape = scale = None
    if positive.size >= 2:
        k, theta = gamma_mle(positive)
        shape, scale = (float(k), float(theta)) if math.isfinite(k) else (None, None)
    mean = float(raw_gaps.mean())
    return {
        "mean": mean,
        "cv": float(raw_gaps.std() / mean) if mean > 0 else None,
        "gamma_shape": shape,
        "gamma_scale": scale,
        "zero_gap_fraction": float(np.mean(raw_gaps == 0)),
        "dequantized": whole,
    }


def summarize(wl: Workload) -> dict[str, Any]:
    """The ``burstgpt inspect --json`` object for a prepared workload."""
    raw, table, meta = wl.raw, wl.table, wl.meta
    df = raw.df
    start, end = wl.window.start, wl.window.end
    ts_all = df["timestamp"].to_numpy()
    lo, hi = (int(i) for i in np.searchsorted(ts_all, [start, end], side="left"))
    in_window: slice | np.ndarray = slice(lo, hi)
    if wl.row_filter is not None:
        in_window = lo + np.flatnonzero(wl.row_filter[lo:hi])
    window_ts = ts_all[in_window]

    used = table.r
    arrivals = (used.used(used.timestamp) - start) / wl.speedup
    length = max(1, math.ceil(wl.duration_s - 1e-9))
    per_second = (
        np.bincount(np.clip(np.floor(arrivals), 0, length - 1).astype(np.int64), minlength=length)
        if arrivals.size
        else np.zeros(length, np.int64)
    )
    mean_rate = float(per_second.mean())
    lengths = wl.turn_counts()
    think = _think_times(table)
    conc = wl.curves.concurrency
    return {
        "file": raw.path,
        "sha256": raw.sha256,
        "window": meta["window"],
        "speedup": wl.speedup,
        "failed_policy": meta["failed"],
        "rows": int(window_ts.size),
        "failed_rows": int(np.count_nonzero(df["response_tokens"].to_numpy()[in_window] == 0)),
        "rows_used": used.n_used,
        "span_s": float(window_ts[-1] - window_ts[0]) if window_ts.size else 0.0,
        "duration_s": wl.duration_s,
        "models": _counts(df["model"].array[in_window]),
        "log_types": _counts(df["log_type"].array[in_window]),
        "conversations": wl.n_conversations,
        "requests": wl.n_requests,
        "turns_per_conversation": _stats(lengths.astype(np.float64), ("mean", "p50", "p90", "max")),
        "think_time_s": _stats(think, ("p10", "p50", "p90")),
        "arrivals_per_s": {
            "mean": mean_rate,
            "p99": float(np.percentile(per_second, 99)),
            "max": float(per_second.max()),
        },
        "interarrival_s": interarrival_stats(arrivals),
        "index_of_dispersion_1s": float(per_second.var() / mean_rate) if mean_rate > 0 else None,
        "request_tokens": _stats(
            used.used(used.request_tokens).astype(np.float64), ("mean", "p50", "p90", "p99", "max")
        ),
        "response_tokens": _stats(
            used.used(used.response_tokens).astype(np.float64), ("mean", "p50", "p90", "p99", "max")
        ),
        "concurrency": {
            **_stats(conc.astype(np.float64), ("mean", "p99", "max")),
            "estimated": wl.curves.estimated,
        },
        "in_flight": {
            **_stats(wl.curves.in_flight.astype(np.float64), ("mean", "p99", "max")),
            "estimated": wl.curves.estimated,
        },
        "elapsed_estimated": wl.elapsed_estimated,
        "warnings": meta["warnings"],
    }


def _think_times(table: Any) -> np.ndarray:
    """Scaled think times between consecutive turns (last turns have none)."""
    if table.group_rows.size == 0:
        return np.empty(0)
    not_last = np.ones(table.group_rows.size, dtype=bool)
    not_last[table.group_offsets[1:] - 1] = False
    return table.group_think[not_last]
