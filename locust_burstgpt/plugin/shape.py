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

from locust_burstgpt.plugin import controller

LOOKAHEAD_S = 1.5  # one tick period plus Locust's tick jitter and ramp time


class BurstGPTShape(LoadTestShape):
    """Abstract base: a locustfile declares ``class Shape(BurstGPTShape): pass`` to activate it."""

    abstract = True
    # The curve decides users and spawn rate, so Locust's -u/-r fields are hidden from the start
    # form. --run-time is still honoured: tick() ends the test when it is reached.
    use_common_options = False

    def target_users(self, t: float) -> int:
        """Users wanted at replay time ``t`` (s); before the start, the curve's first second."""
        ctl = controller.get()
        workload = ctl.workload
        if workload is None:
            return 0
        curve = workload.curves.concurrency
        if ctl.settings.arrival == "saturate":
            c = int(curve.max()) if len(curve) else 0
        else:
            # Locust's ticks are not aligned with the replay clock and come about a second apart, so
            # size for every second until after the next tick: a conversation due just after this
            # tick must find a user, not wait up to a second for the next one.
            first = int(math.floor(max(t, 0.0)))
            last = int(math.floor(max(t, 0.0) + LOOKAHEAD_S))
            window = curve[first : last + 1]
            c = int(window.max()) if len(window) else 0
        return int(math.ceil(c * ctl.settings.headroom))

    def tick(self) -> tuple[int, float] | None:
        ctl = controller.get()
        if self.runner is not None:
            ctl.ensure_workload(self.runner.environment)
        if ctl.workload is None:
            return None  # options were invalid; the error is already logged
        t = time.time() - ctl.epoch_wall if ctl.epoch_wall else 0.0
        run_time = getattr(getattr(self.runner, "environment", None), "parsed_options", None)
        run_time = getattr(run_time, "run_time", None)
        if t >= ctl.workload.duration_s:
            ctl.end_reason = "window_ended"
            return None
        if run_time and self.get_run_time() >= run_time:
            ctl.end_reason = "stopped"
            return None
        users = self.target_users(t)
        ctl.note_tick(t, users)
        current = self.get_current_user_count()
        # spawn the whole difference within this tick (Locust warns above 100/s but obeys)
        return users, float(max(1, abs(users - current)))
