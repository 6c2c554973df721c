"""``burstgpt inspect --plot``: one PNG with the curves, the daily profile and the length mix."""

from __future__ import annotations

import math
import os

import numpy as np

from .workload import Workload

#: Long curves are drawn as per-bucket maxima (peaks stay visible) with at most this many points.
MAX_POINTS = 4000


def _bucket_max(
    values: np.ndarray, max_points: int = MAX_POINTS
) -> tuple[np.ndarray, np.ndarray, int]:
    """(x seconds, per-bucket max, bucket width) so a long curve keeps its peaks when drawn."""
    width = max(1, math.ceil(values.size / max_points))
    if width == 1:
        return np.arange(values.size), values, 1
    pad = (-values.size) % width
    padded = np.concatenate([values, np.zeros(pad, dtype=values.dtype)])
    return np.arange(0, padded.size, width), padded.reshape(-1, width).max(axis=1), width


def plot_workload(wl: Workload, out: str | os.PathLike[str]) -> None:
    """Write a 2x2 PNG: concurrency (and in-flight) per second, arrivals per second,
    requests by hour of day (trace clock), request/response token histograms."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = wl.curves
    est = " (estimated service times)" if curves.estimated else ""
    fig, axes = plt.subplots(2, 2, figsize=(13, 8), constrained_layout=True)
    title = f"{os.path.basename(wl.raw.path)} - window {wl.meta['window']['spec']}, speedup {wl.speedup:g}"
    fig.suptitle(title)

    ax = axes[0, 0]
    x, c, width = _bucket_max(curves.concurrency)
    ax.plot(x, c, lw=0.8, label="conversations in progress c(t)")
    x2, f, _ = _bucket_max(curves.in_flight)
    ax.plot(x2, f, lw=0.8, alpha=0.7, label="requests in flight")
    ax.set_title("Concurrency per second" + est + (f", max per {width} s" if width > 1 else ""))
    ax.set_xlabel("seconds since window start (scaled)")
    ax.legend(loc="upper right", fontsize=8)

    ax = axes[0, 1]
    x, a, width = _bucket_max(curves.arrivals)
    ax.plot(x, a, lw=0.8, color="tab:green")
    ax.set_title("Arrivals per second" + (f" (max per {width} s)" if width > 1 else ""))
    ax.set_xlabel("seconds since window start (scaled)")

    ax = axes[1, 0]
    r = wl.table.r
    ts = r.used(r.timestamp)
    if ts.size:
        hours = (np.floor(ts / 3600.0) % 24).astype(np.int64)
        days = max(1.0, (ts[-1] - ts[0]) / 86400.0)
        ax.bar(np.arange(24), np.bincount(hours, minlength=24) / days, color="tab:purple")
    ax.set_title("Requests by hour of day (trace clock, mean per day)")
    ax.set_xlabel("hour of day")
    ax.set_xticks(range(0, 24, 3))

    ax = axes[1, 1]
    req = r.used(r.request_tokens)
    resp = r.used(r.response_tokens)
    top = max(int(req.max()) if req.size else 1, int(resp.max()) if resp.size else 1, 2)
    bins = np.unique(np.logspace(0, math.log10(top + 1), 50).astype(int))
    ax.hist(req[req > 0], bins=bins, alpha=0.6, label="request tokens")
    ax.hist(resp[resp > 0], bins=bins, alpha=0.6, label="response tokens")
    ax.set_xscale("log")
    ax.set_title("Token lengths (replayed rows)")
    ax.set_xlabel("tokens")
    ax.legend(fontsize=8)

    fig.savefig(out, dpi=100)
    plt.close(fig)
