"""Window selection: which stretch of trace time to replay.

Grammar (trace seconds are the Timestamp column's: seconds from 00:00 of the trace's day 0)::

    WINDOW    := (none) | "all" | START "+" DURATION | "first:" DURATION
               | "busiest:" DURATION | "peak-concurrency:" DURATION
    START     := SECONDS                     e.g. 19440110 or 3600.5
               | "d" DAY ["+" HH ":" MM [":" SS]]   e.g. d0+14:00, d225+09:30:15, d3
    DURATION  := NUMBER ["s" | "m" | "h" | "d"]     e.g. 600, 90s, 10m, 1.5h, 2d

``d0+14:00+10m`` is day 0 from 14:00 for ten minutes. The window is the half-open interval
[start, start + duration) of trace time; rows whose Timestamp falls in it are replayed.
``busiest:D`` is the window of length D with the most arrivals (after the model, log-type and
failed-row filters); ``peak-concurrency:D`` the one with the highest mean concurrency c(t)
(computed at speedup 1). Both search start times on whole trace seconds, earliest on ties.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = r"(?:\d+(?:\.\d*)?|\.\d+)[smhd]?"
_START = r"d\d+(?:\+\d{1,2}:\d{2}(?::\d{2}(?:\.\d*)?)?)?|\d+(?:\.\d*)?"
_RANGE_RE = re.compile(rf"^(?P<start>{_START})\+(?P<dur>{_DURATION})$")
_NAMED_RE = re.compile(rf"^(?P<kind>first|busiest|peak-concurrency):(?P<dur>{_DURATION})$")
_DAY_RE = re.compile(r"^d(\d+)(?:\+(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d*)?))?)?$")

GRAMMAR_HINT = (
    "expected 'all', '<start>+<duration>' (start in trace seconds or d<day>+HH:MM, "
    "e.g. 'd0+14:00+10m' or '19440110+600'), 'first:<duration>', 'busiest:<duration>' "
    "or 'peak-concurrency:<duration>'; durations take s/m/h/d suffixes"
)


class WindowSyntaxError(ValueError):
    """A window string that does not follow the grammar (or is empty in time)."""


@dataclass(frozen=True)
class WindowSpec:
    """A parsed window: ``kind`` is all, range, first, busiest or peak-concurrency."""

    kind: str
    text: str
    start: float | None = None
    duration: float | None = None


@dataclass(frozen=True)
class Window:
    """A resolved window in trace seconds: [start, end)."""

    spec: WindowSpec
    start: float
    end: float

    @property
    def length(self) -> float:
        return self.end - self.start


def parse_duration(text: str) -> float:
    """Seconds in ``text`` (``600``, ``90s``, ``10m``, ``1.5h``, ``2d``); must be > 0."""
    m = re.fullmatch(_DURATION, text.strip())
    if not m:
        raise WindowSyntaxError(
            f"duration {text!r}: expected a number with an optional s/m/h/d suffix"
        )
    unit = text.strip()[-1] if text.strip()[-1] in "smhd" else ""
    value = float(text.strip().rstrip("smhd")) * _UNITS[unit]
    if value <= 0:
        raise WindowSyntaxError(f"duration {text!r}: expected a length > 0")
    return value


def parse_start(text: str) -> float:
    """Trace seconds for ``19440110`` or ``d225+09:30`` (day 225, 09:30:00)."""
    m = _DAY_RE.match(text)
    if m:
        day, hh, mm, ss = m.groups()
        h, mi, s = int(hh or 0), int(mm or 0), float(ss or 0)
        if h > 23 or mi > 59 or s >= 60:
            raise WindowSyntaxError(f"window start {text!r}: expected HH:MM[:SS] within a day")
        return int(day) * 86400.0 + h * 3600.0 + mi * 60.0 + s
    try:
        return float(text)
    except ValueError:
        raise WindowSyntaxError(f"window start {text!r}: {GRAMMAR_HINT}") from None


def parse_window(text: str | None) -> WindowSpec:
    """Parse the window grammar (module docstring); raise ``WindowSyntaxError`` with a hint."""
    raw = "" if text is None else text.strip()
    if raw in ("", "all"):
        return WindowSpec("all", raw or "all")
    m = _NAMED_RE.match(raw)
    if m:
        return WindowSpec(m["kind"], raw, duration=parse_duration(m["dur"]))
    m = _RANGE_RE.match(raw)
    if m:
        return WindowSpec(
            "range", raw, start=parse_start(m["start"]), duration=parse_duration(m["dur"])
        )
    raise WindowSyntaxError(f"window {raw!r}: {GRAMMAR_HINT}")


def trace_span(timestamps: np.ndarray) -> tuple[float, float]:
    """[floor(first), floor(last) + 1): whole trace seconds covering every row."""
    if timestamps.size == 0:
        return 0.0, 1.0
    return float(math.floor(timestamps[0])), float(math.floor(timestamps[-1]) + 1)


def best_start(per_second: np.ndarray, base: float, duration: float) -> float:
    """Start (trace seconds) of the ``duration``-long run of seconds with the largest sum."""
    width = max(1, math.ceil(duration))
    if width >= per_second.size:
        return base
    csum = np.concatenate(([0], np.cumsum(per_second, dtype=np.int64)))
    sums = csum[width:] - csum[:-width]
    return base + float(int(np.argmax(sums)))  # argmax returns the earliest maximum


def resolve(
    spec: WindowSpec,
    timestamps: np.ndarray,
    *,
    span: tuple[float, float] | None = None,
    concurrency: Callable[[float, float], np.ndarray] | None = None,
) -> Window:
    """Turn a spec into [start, end) trace seconds, given the selected rows' sorted timestamps.

    ``span`` is the trace's extent for ``all``/``first`` (default: that of ``timestamps``).
    ``concurrency(start, end)`` returns the per-second c(t) over [start, end) at speedup 1; it is
    only called for ``peak-concurrency``.
    """
    first, last = span if span is not None else trace_span(timestamps)
    if spec.kind == "all":
        return Window(spec, first, last)
    assert spec.duration is not None
    if spec.kind == "range":
        assert spec.start is not None
        return Window(spec, spec.start, spec.start + spec.duration)
    if spec.kind == "first":
        return Window(spec, first, first + spec.duration)
    first, last = trace_span(timestamps)  # the searches only look where selected rows are
    if spec.kind == "busiest":
        seconds = np.floor(timestamps - first).astype(np.int64)
        counts = np.bincount(seconds, minlength=int(last - first))
        start = best_start(counts, first, spec.duration)
        return Window(spec, start, start + spec.duration)
    if spec.kind == "peak-concurrency":
        if concurrency is None:
            raise ValueError("peak-concurrency windows need a concurrency curve")
        curve = concurrency(first, last)
        start = best_start(curve, first, spec.duration)
        return Window(spec, start, start + spec.duration)
    raise WindowSyntaxError(f"window {spec.text!r}: {GRAMMAR_HINT}")
