"""How faithfully a tool sent the schedule, computed the same way for every tool.

Not every tool records when its schedule started, so the schedule's zero is placed by the tool's
own sends. Each send is paired with its scheduled offset: exactly, where the tool's output says
which request it was (ours: the trace row; GuideLLM: the relative timestamp; vLLM: the request's
index), else by rank (sorted sends with sorted offsets; AIPerf). Each pair's ``send - offset`` is
that request's offset from the schedule, and the least-late request defines zero (the same
anchoring as AIPerf's ``replay_sched_lag``). ``lag`` is then how much later than
the least-late request each request went out; a constant delay of every request is invisible.

Achieved arrivals per second are the anchored sends counted per whole second, compared with the
schedule's per-second counts over every second either of them touches; the mean absolute error
(requests per second) summarizes it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .schedule import Schedule


@dataclass(frozen=True)
class Fidelity:
    scheduled: int
    sent: int
    mae_per_s: float  # mean |achieved - scheduled| arrivals per second
    max_abs_per_s: float
    scheduled_rate: float  # mean scheduled arrivals per second
    achieved_rate: float  # sent / (span of anchored sends, at least the schedule's)
    lag_p50_ms: float
    lag_p99_ms: float
    lag_max_ms: float
    paired: int  # requests paired with a scheduled offset


def percentile(values: np.ndarray, q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if values.size == 0:
        return float("nan")
    s = np.sort(values)
    k = max(0, min(s.size - 1, int(np.ceil(q / 100.0 * s.size)) - 1))
    return float(s[k])


def measure(
    schedule: Schedule, send_times: np.ndarray, scheduled: np.ndarray | None = None
) -> Fidelity:
    """Fidelity of ``send_times`` (wall-clock seconds) against ``schedule``.

    ``scheduled`` (optional, same length as ``send_times``) is each send's own scheduled offset;
    without it sends and offsets are paired by rank.
    """
    sends = np.asarray(send_times, dtype=np.float64)
    if scheduled is not None:
        scheduled = np.asarray(scheduled, dtype=np.float64)
        if scheduled.shape != sends.shape:
            raise ValueError("scheduled must have one offset per send")
        n = int(sends.size)
        offsets = sends - scheduled
    else:
        sends = np.sort(sends)
        n = min(sends.size, len(schedule))
        offsets = sends[:n] - schedule.offsets[:n]
    if n == 0:
        nan = float("nan")
        return Fidelity(len(schedule), int(sends.size), nan, nan, nan, 0.0, nan, nan, nan, 0)
    zero = float(offsets.min())
    lag = offsets - zero
    rel = sends - zero
    bins = int(max(schedule.seconds, np.floor(rel.max()) + 1))
    achieved = np.bincount(np.floor(rel).astype(np.int64), minlength=bins)
    planned = np.bincount(np.floor(schedule.offsets).astype(np.int64), minlength=bins)
    err = np.abs(achieved - planned)
    span = max(schedule.duration_s, float(rel.max()))
    sched_rate = len(schedule) / max(schedule.duration_s, 1e-9)
    return Fidelity(
        scheduled=len(schedule),
        sent=int(sends.size),
        mae_per_s=float(err.mean()),
        max_abs_per_s=float(err.max()),
        scheduled_rate=sched_rate,
        achieved_rate=sends.size / max(span, 1e-9),
        lag_p50_ms=percentile(lag, 50) * 1000.0,
        lag_p99_ms=percentile(lag, 99) * 1000.0,
        lag_max_ms=float(lag.max()) * 1000.0,
        paired=n,
    )
