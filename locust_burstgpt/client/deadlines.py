"""Per-request deadlines (first token, idle gap, total) enforced by one timer per client.

Why not socket timeouts or a ``gevent.Timeout`` per read: gevent implements a socket timeout by
arming a timer on every blocking read, which costs microseconds per streamed chunk. Here a
request only stores the arrival time of its latest bytes (one attribute write), and a single
periodic hub timer throws ``DeadlineExceeded`` into any request greenlet that is past a deadline.
The throw happens from the hub while that greenlet is blocked inside the client (the only time
it is registered), exactly as ``gevent.Timeout`` does it. Resolution: the check interval.
"""

from __future__ import annotations

import math
import time
from typing import Any

import gevent
from gevent import getcurrent

FIRST_TOKEN = "first_token"
IDLE = "idle"
TOTAL = "total"


class DeadlineExceeded(Exception):
    """Raised inside a request greenlet whose deadline passed; ``kind`` says which one."""

    def __init__(self, kind: str, limit_s: float) -> None:
        super().__init__(f"{kind} deadline of {limit_s:g} s passed")
        self.kind = kind
        self.limit_s = limit_s


class Deadline:
    """Deadlines of one in-flight request (absolute perf_counter seconds)."""

    __slots__ = (
        "greenlet",
        "first_token_by",
        "total_by",
        "idle_s",
        "last",
        "streaming",
        "ft_s",
        "total_s",
    )

    def __init__(
        self, start: float, first_token_s: float | None, idle_s: float | None, total_s: float | None
    ) -> None:
        self.greenlet: Any = getcurrent()
        self.ft_s = first_token_s
        self.total_s = total_s
        self.first_token_by = start + first_token_s if first_token_s else math.inf
        self.total_by = start + total_s if total_s else math.inf
        self.idle_s = idle_s if idle_s else math.inf
        self.last = start  # arrival of the latest bytes; the transport updates it
        self.streaming = False  # True once the first content token arrived

    def expired(self, now: float) -> DeadlineExceeded | None:
        if now >= self.total_by:
            return DeadlineExceeded(TOTAL, self.total_s or 0.0)
        if not self.streaming:
            if now >= self.first_token_by:
                return DeadlineExceeded(FIRST_TOKEN, self.ft_s or 0.0)
        elif now - self.last >= self.idle_s:
            return DeadlineExceeded(IDLE, self.idle_s)
        return None


class Watchdog:
    """One periodic hub timer that checks every registered request's deadlines."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._active: dict[int, Deadline] = {}
        self._timer: Any = None

    def watch(self, d: Deadline) -> None:
        self._active[id(d)] = d
        if self._timer is None:
            self._timer = gevent.get_hub().loop.timer(self.interval_s, self.interval_s)
        if not self._timer.active:
            self._timer.start(self._tick)

    def unwatch(self, d: Deadline) -> None:
        self._active.pop(id(d), None)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer.close()
            self._timer = None
        self._active.clear()

    def _tick(self) -> None:
        if not self._active:
            self._timer.stop()
            return
        now = time.perf_counter()
        for key, d in list(self._active.items()):
            exc = d.expired(now)
            if exc is not None and self._active.pop(key, None) is not None:
                # runs in the hub while d.greenlet waits inside the client: raises at that wait
                d.greenlet.throw(exc)
