"""Is the load generator keeping up? Lateness and event-loop lag, per second, and the verdict on them.

Why: a generator that is CPU-bound sends late (coordinated omission) and times every byte late, so
its latencies describe itself, not the server. Two signals, both per second of the run:

* lateness (send - scheduled; trace arrival only): a second is *late* when most requests due in it
  were sent more than ``LATE_S`` late;
* loop lag, measured on every sending process by a greenlet that sleeps ``LoopLagProbe.INTERVAL_S``
  and notes how much later it woke: a second is *blocked* when the loop lost more than
  ``BLOCKED_SHARE`` of it.

``SUSTAIN_S`` such seconds in a row make the run untrustworthy; blocked seconds name the CPU as the
cause, late seconds without them name too few users or connections.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from time import perf_counter
from typing import Any

import gevent

LATE_S = 0.1
LATE_SHARE = 0.5
BLOCKED_SHARE = 0.3
SUSTAIN_S = 3
CPU_HINT_SHARE = 0.1  # late seconds whose loop lost this much point at the CPU, not at the user pool


class LoopLagProbe:
    """On a sending process: how much of each second the gevent loop was too busy to wake a sleeper."""

    INTERVAL_S = 0.05

    def __init__(self, epoch_wall: float) -> None:
        self.epoch_wall = epoch_wall
        self._pending: dict[int, float] = defaultdict(float)
        self._greenlet = gevent.spawn(self._loop)

    def _loop(self) -> None:
        interval = self.INTERVAL_S
        while True:
            t0 = perf_counter()
            gevent.sleep(interval)
            lag = perf_counter() - t0 - interval
            if lag > 0.001:
                self._spread(time.time() - self.epoch_wall - lag, lag)

    def _spread(self, start: float, lag: float) -> None:
        """Book a stall of ``lag`` seconds from replay time ``start`` on every second it covered."""
        end = start + lag
        while start < end:
            second = math.floor(start)
            upto = min(end, second + 1.0)
            self._pending[int(second)] += upto - start
            start = upto

    def take(self) -> list[list[float]]:
        """Loop time lost per second since the last call, as ``[[second, seconds_lost], ...]``."""
        pending, self._pending = self._pending, defaultdict(float)
        return [[s, round(v, 4)] for s, v in sorted(pending.items())]

    def stop(self) -> None:
        self._greenlet.kill(block=False)


def _streaks(seconds: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive seconds as (first, last)."""
    runs: list[tuple[int, int]] = []
    for s in sorted(seconds):
        if runs and s == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    return runs


class ScheduleHealth:
    """On the reporting process: per-second counts fed by request entries and the probes' lags."""

    def __init__(self, arrival: str) -> None:
        self.arrival = arrival
        self._due: dict[int, int] = defaultdict(int)
        self._late: dict[int, int] = defaultdict(int)
        self._worst: dict[int, float] = defaultdict(float)
        self._blocked: dict[int, float] = {}  # loop time lost (max over processes), where it matters
        self._recent: dict[str, dict[int, float]] = defaultdict(dict)  # process -> its last seconds' losses
        # the seconds currently over a threshold, kept as they change: the checks run every second
        # and must not walk the whole run
        self._late_seconds: set[int] = set()
        self._blocked_seconds: set[int] = set()

    def add(self, entry: dict[str, Any]) -> None:
        lateness, due = entry.get("lateness"), entry.get("scheduled_offset_s")
        if lateness is None or due is None:
            return
        s = int(math.floor(due))
        self._due[s] += 1
        if lateness > LATE_S:
            self._late[s] += 1
            self._worst[s] = max(self._worst[s], lateness)
        if self._late.get(s, 0) > LATE_SHARE * self._due[s]:
            self._late_seconds.add(s)
        else:
            self._late_seconds.discard(s)

    def note_lags(self, lags: Any, source: str = "local") -> None:
        """A probe's ``take()``, from process ``source`` (a second may arrive in two parts)."""
        recent = self._recent[source]
        for second, lost in lags or ():
            s = int(second)
            total = recent[s] = recent.get(s, 0.0) + float(lost)
            if total >= CPU_HINT_SHARE:  # kept sparse: a long healthy run stores nothing here
                self._blocked[s] = max(self._blocked.get(s, 0.0), total)
            if total > BLOCKED_SHARE:
                self._blocked_seconds.add(s)
            for old in [k for k in recent if k < s - 5]:
                del recent[old]

    def late_streaks(self) -> list[tuple[int, int]]:
        if self.arrival != "trace":
            return []  # saturate mode releases everything at once: lateness is waiting for a user
        return [r for r in _streaks(list(self._late_seconds)) if r[1] - r[0] + 1 >= SUSTAIN_S]

    def blocked_streaks(self) -> list[tuple[int, int]]:
        return [r for r in _streaks(list(self._blocked_seconds)) if r[1] - r[0] + 1 >= SUSTAIN_S]

    def problems(self) -> list[str]:
        """Plain sentences, one per kind of trouble; empty when the generator kept up."""
        late, blocked = self.late_streaks(), self.blocked_streaks()
        out = []
        if blocked:
            worst = max(self._blocked.get(s, 0.0) for a, b in blocked for s in range(a, b + 1))
            out.append(
                f"the load generator was saturated (CPU-bound): its event loop lost more than "
                f"{BLOCKED_SHARE:.0%} of each second for {_span(blocked)} (worst {min(worst, 1.0):.0%}), so "
                "requests left late and every time it measured includes its own delay; use more processes "
                "(--processes N, or more workers)")
        if late:
            seconds = [s for a, b in late for s in range(a, b + 1)]
            worst_late = max(self._worst.get(s, 0.0) for s in seconds)
            lost = max(self._blocked.get(s, 0.0) for s in seconds)
            if blocked:
                cause = ""
            elif lost >= CPU_HINT_SHARE:
                cause = (f"; the load process was short of CPU (its event loop lost up to {min(lost, 1.0):.0%} "
                         "of those seconds): use more processes, or a less busy machine")
            else:
                cause = "; the event loop was not blocked, so free users or connections ran out: raise --burstgpt-headroom"
            out.append(
                f"the schedule was not kept: most requests due in {_span(late)} were sent more than "
                f"{LATE_S * 1000:.0f} ms late (worst {worst_late:.2f} s){cause}")
        return out

    def summary(self) -> dict[str, Any]:
        return {"late_seconds": [list(r) for r in self.late_streaks()],
                "blocked_seconds": [list(r) for r in self.blocked_streaks()],
                "thresholds": {"late_s": LATE_S, "late_share": LATE_SHARE, "blocked_share": BLOCKED_SHARE,
                               "sustain_s": SUSTAIN_S}}


def _span(runs: list[tuple[int, int]]) -> str:
    parts = [f"seconds {a}-{b}" for a, b in runs]
    return ", ".join(parts) + f" ({sum(b - a + 1 for a, b in runs)} s)"
