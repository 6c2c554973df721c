"""BurstGPT trace handling: load, validate, filter, window, group, scale, and per-second curves.

Pure pandas/numpy (no Locust or gevent), so the command line tools and tests stay light.

    raw = load_trace("BurstGPT_3.csv")
    wl = prepare(raw, window="busiest:10m", speedup=4)
    wl.curves.at(12.5)          # (concurrency, arrivals, in_flight) in second 12
    wl.conversation(0).turns    # built on demand
"""

from __future__ import annotations

from .conversations import Conversation, Turn
from .curves import Curves
from .errors import TraceError
from .load import DEFAULT_TRACE, RawTrace, load_trace
from .window import WindowSyntaxError, parse_duration, parse_window
from .workload import Workload, prepare

__all__ = [
    "DEFAULT_TRACE",
    "Conversation",
    "Curves",
    "RawTrace",
    "TraceError",
    "Turn",
    "WindowSyntaxError",
    "Workload",
    "load_trace",
    "parse_duration",
    "parse_window",
    "prepare",
]
