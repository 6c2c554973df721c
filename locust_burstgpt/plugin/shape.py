"""BurstGPTShape: Locust's user count follows the trace's per-second concurrency curve.

Each tick (Locust ticks once a second) sets users = ceil(c x headroom), where c is the largest
concurrency of the seconds from now until just after the next tick, on the replay's clock (the one
the dispatchers release conversations on). It ends the test when the window ends or
``--run-time`` is reached, whichever is first. Locust does not apply ``--run-time``
to shapes, so the shape does.
"""

from __future__ import annotations

import math
import time

from locust import LoadTestShape

from locust_burstgpt.plugin._state import state_of

LOOKAHEAD_S = 1.5  # one tick period plus Locust's tick jitter and ramp time


def target_users(curve, t: float, headroom: float, arrival: str) -> int:  # noqa: ANN001 - ndarray
    """Users wanted at replay time ``t`` (s); before the start, the curve's first second."""
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
        if t >= workload.duration_s:
            role.end_reason = "window_ended"
            return None
        if run_time and self.get_run_time() >= run_time:
            role.end_reason = "stopped"
            return None
        users = target_users(workload.curves.concurrency, t, settings.headroom, settings.arrival)
        role.note_tick(t, users)
        current = self.get_current_user_count()
        # spawn the whole difference within this tick (Locust warns above 100/s but obeys)
        return users, float(max(1, abs(users - current)))
