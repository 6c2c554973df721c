"""The one schedule every tool replays: a BurstGPT window as independent timed requests.

Every trace row in the window becomes one single-turn request at its own (scaled) timestamp with
its recorded Request and Response tokens, as AIPerf's BurstGPT loader reads the trace. Our plugin
also replays multi-turn conversations (history carried, later turns paced by the live replies);
peers cannot, so the comparison uses the single-turn reading for every tool.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from locust_burstgpt.trace import load_trace, prepare


@dataclass(frozen=True)
class Limits:
    """Optional caps on token counts (a small real server cannot serve BurstGPT's longest rows)."""

    max_request_tokens: int | None = None
    max_response_tokens: int | None = None
    min_request_tokens: int = 1

    def describe(self) -> str:
        parts = []
        if self.max_request_tokens:
            parts.append(f"request tokens capped at {self.max_request_tokens}")
        if self.max_response_tokens:
            parts.append(f"response tokens capped at {self.max_response_tokens}")
        if self.min_request_tokens > 1:
            parts.append(f"request tokens raised to at least {self.min_request_tokens}")
        return ", ".join(parts) or "token counts as recorded"


@dataclass
class Schedule:
    """Send offsets (seconds from the first request, which is at 0) and token counts."""

    offsets: np.ndarray  # float64, sorted, offsets[0] == 0
    request_tokens: np.ndarray  # int64
    response_tokens: np.ndarray  # int64
    source: str = ""  # how it was made (trace file, window, speedup, limits)
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.offsets.size
        if not (self.request_tokens.size == n and self.response_tokens.size == n):
            raise ValueError(
                "offsets, request_tokens and response_tokens must have the same length"
            )
        if n and (self.offsets[0] != 0.0 or np.any(np.diff(self.offsets) < 0)):
            raise ValueError("offsets must be sorted and start at 0")

    def __len__(self) -> int:
        return int(self.offsets.size)

    @property
    def duration_s(self) -> float:
        """Offset of the last request (the schedule spans [0, duration_s])."""
        return float(self.offsets[-1]) if self.offsets.size else 0.0

    @property
    def seconds(self) -> int:
        """Number of whole seconds the schedule touches."""
        return int(math.floor(self.duration_s)) + 1 if self.offsets.size else 0

    def per_second(self) -> np.ndarray:
        """Scheduled arrivals in each second [k, k+1)."""
        return np.bincount(np.floor(self.offsets).astype(np.int64), minlength=self.seconds)

    @property
    def output_tokens(self) -> int:
        return int(self.response_tokens.sum())


def from_arrays(
    offsets: np.ndarray,
    request_tokens: np.ndarray,
    response_tokens: np.ndarray,
    limits: Limits | None = None,
    source: str = "",
) -> Schedule:
    """A schedule from raw arrays: sorted by time, shifted so the first request is at 0, capped."""
    limits = limits or Limits()
    off = np.asarray(offsets, dtype=np.float64)
    req = np.asarray(request_tokens, dtype=np.int64)
    resp = np.asarray(response_tokens, dtype=np.int64)
    order = np.argsort(off, kind="stable")
    off, req, resp = off[order], req[order], resp[order]
    if off.size:
        off = np.round(off - off[0], 6)
    req = np.maximum(req, limits.min_request_tokens)
    if limits.max_request_tokens:
        req = np.minimum(req, limits.max_request_tokens)
    if limits.max_response_tokens:
        resp = np.minimum(resp, limits.max_response_tokens)
    return Schedule(off, req, resp, source=source)


def from_trace(
    path: str | None,
    window: str,
    speedup: float,
    limits: Limits | None = None,
    max_requests: int | None = None,
) -> Schedule:
    """Rows of ``window`` of the trace (failed rows skipped), timestamps divided by ``speedup``.

    ``max_requests`` keeps only the first that many requests, to bound a run.
    """
    raw = load_trace(path)
    wl = prepare(raw, window=window or None, speedup=speedup, failed="skip")
    turns = [
        t for c in wl.conversations() for t in c.turns if not t.failed and t.response_tokens > 0
    ]
    offsets = np.array([t.trace_offset_s for t in turns], dtype=np.float64)
    req = np.array([t.request_tokens for t in turns], dtype=np.int64)
    resp = np.array([t.response_tokens for t in turns], dtype=np.int64)
    if max_requests is not None and offsets.size > max_requests:
        keep = np.argsort(offsets, kind="stable")[:max_requests]
        offsets, req, resp = offsets[keep], req[keep], resp[keep]
    limits = limits or Limits()
    name = Path(raw.path).name
    source = (
        f"{name}, window {window or 'all'} ({wl.window.length:,.0f} trace s), speedup {speedup:g}, "
        f"{wl.meta['failed_rows']} failed rows skipped, {limits.describe()}"
    )
    sched = from_arrays(offsets, req, resp, limits, source)
    sched.meta = {
        "trace": name,
        "window": window,
        "speedup": speedup,
        "window_start": wl.window.start,
        "failed_rows_skipped": wl.meta["failed_rows"],
    }
    return sched
