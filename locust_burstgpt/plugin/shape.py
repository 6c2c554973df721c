"""BurstGPTShape: Locust's user count follows the trace's per-second concurrency curve, and grows
past it when the server is slower than the trace.

Each tick (Locust ticks once a second) sets users = ceil(c x headroom), where c is the larger of
the trace's concurrency over the seconds from now until just after the next tick (on the replay's
clock, the one the dispatchers release conversations on) and the conversations in progress now plus
those due to start before just after the next tick. So a slow server shows as more users (and in
TTFT/E2E), never as conversations waiting for one. With ``--burstgpt-strict-curve`` c is the trace's
concurrency only.

The test ends when every scheduled request has ended, or at ``--run-time``, or when the window has
ended and ``--burstgpt-overrun`` more seconds passed (turns that a slow server pushed past the window
are still sent until then), whichever is first. Locust does not apply ``--run-time`` to shapes, so
the shape does.
"""

from __future__ import annotations

import math
import time

import numpy as np
from locust import LoadTestShape

from locust_burstgpt.plugin._state import state_of

LOOKAHEAD_S = 1.5  # one tick period plus Locust's tick jitter and ramp time


def curve_users(curve: np.ndarray, t: float, headroom: float, arrival: str) -> int:
    """Users the trace's own concurrency asks for at replay time ``t`` (s)."""
    if arrival == "saturate":
        c = int(curve.max()) if len(curve) else 0
    else:
        # Locust's ticks are not aligned with the replay clock and come about a second apart, so
        # size for every second until after the next tick: a conversation due just after this
        # tick must find a user, not wait up to a second for the next one.
        first = int(math.floor(max(t, 0.0)))
        last = int(math.floor(max(t, 0.0) + LOOKAHEAD_S))
        window = curve[first : last + 1]
        c = int(window.max()) if len(window) else 0
    return int(math.ceil(c * headroom))


def starting_soon(start_offsets: np.ndarray, t: float) -> int:
    """Conversations due to start after ``t`` and before just after the next tick (offsets sorted)."""
    lo, hi = np.searchsorted(start_offsets, [max(t, 0.0), max(t, 0.0) + LOOKAHEAD_S], side="left")
    return int(hi - lo)


def target_users(
    curve: np.ndarray,
    t: float,
    headroom: float,
    arrival: str,
    in_progress: int = 0,
    upcoming: int = 0,
    strict: bool = False,
) -> int:
    """Users wanted at replay time ``t``: the curve's, or what is in progress and about to start
    when that is more (not with ``strict`` or in saturate mode, where users are the curve's)."""
    users = curve_users(curve, t, headroom, arrival)
    if strict or arrival == "saturate":
        return users
    return max(users, int(math.ceil((in_progress + upcoming) * headroom)))


class BurstGPTShape(LoadTestShape):
    """Abstract base: a locustfile declares ``class Shape(BurstGPTShape): pass`` to activate it."""

    abstract = True
    # The curve decides users and spawn rate, so Locust's -u/-r fields are hidden from the start
    # form. --run-time is still honoured: tick() ends the test when it is reached.
    use_common_options = False

    def tick(self) -> tuple[int, float] | None:
        if self.runner is None:
            return None
        environment = self.runner.environment
        state = state_of(environment)
        role = state.reporting
        state.source.ensure(environment.parsed_options)
        workload, settings = state.source.workload, state.source.settings
        if workload is None or role is None:
            return None  # options were invalid; the error is already logged
        t = time.time() - role.epoch_wall if role.epoch_wall else 0.0
        run_time = getattr(environment.parsed_options, "run_time", None)
        if run_time and self.get_run_time() >= run_time:
            role.end_reason = "stopped"
            return None
        if role.epoch_wall and role.all_ended():
            role.end_reason = "completed"
            return None
        if t >= workload.duration_s + settings.overrun_for(workload.duration_s):
            role.end_reason = "window_ended"
            return None
        curve = curve_users(workload.curves.concurrency, t, settings.headroom, settings.arrival)
        in_progress = role.in_progress()
        users = target_users(
            workload.curves.concurrency,
            t,
            settings.headroom,
            settings.arrival,
            in_progress=in_progress,
            upcoming=starting_soon(workload.start_offsets, t),
            # past the window the curve is 0: even capped users finish what is in progress
            strict=settings.strict_curve and t < workload.duration_s,
        )
        role.note_tick(t, users, curve, in_progress)
        current = self.get_current_user_count()
        # spawn the whole difference within this tick (Locust warns above 100/s but obeys)
        return users, float(max(1, abs(users - current)))
