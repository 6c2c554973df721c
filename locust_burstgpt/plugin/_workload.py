"""The checked settings and the workload they select, rebuilt only when the options change.

Why its own object: the shape asks every second (the web UI may have changed the options since the
last run), every role needs the same workload, and loading a trace is the one slow step; it is done
once per distinct set of options.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import MutableMapping
from typing import Any

from locust_burstgpt.settings import OptionError, ReplaySettings, settings_from_options

log = logging.getLogger("locust_burstgpt")

# The bundled default trace spans 11.5 h; with no window/speedup given, replay its busiest hour 30x
# faster (2 minutes), so the first run shows bursts and multi-turn conversations within a minute.
DEMO_WINDOW = "busiest:1h"
DEMO_SPEEDUP = 30.0


class WorkloadSource:
    """Settings and workload of the current options (``ensure``), and what the demo defaults chose."""

    def __init__(self, secrets: MutableMapping[str, str]) -> None:
        self.secrets = secrets  # real values of secret options (the web UI form masks them)
        self.settings: ReplaySettings | None = None
        self.workload: Any = None  # trace.Workload
        self.demo_defaults = False
        self._key: tuple | None = None

    def ensure(self, parsed_options: Any) -> Any:
        """(Re)build settings and workload from the options; only when they changed."""
        settings = settings_from_options(parsed_options, self.secrets)
        demo = (
            settings.trace is None
            and settings.window is None
            and float(getattr(parsed_options, "burstgpt_speedup", 1.0)) == 1.0
        )
        key = (
            settings.trace,
            settings.window,
            settings.models,
            settings.log_types,
            settings.failed,
            settings.speedup,
            settings.rate_scale,
            settings.seed,
            settings.arrival == "poisson",  # the starts differ; trace and saturate share them
            demo,
        )
        if self.workload is not None and key == self._key:
            self.settings = settings
            return self.workload
        from locust_burstgpt.trace import TraceError, WindowSyntaxError, load_trace, prepare

        window, speedup = settings.window, settings.speedup
        if demo:
            window, speedup = DEMO_WINDOW, DEMO_SPEEDUP
            log.info(
                "Bundled BurstGPT_3 slice with no --burstgpt-window/--burstgpt-speedup: replaying "
                "its busiest hour (%s) at speedup %g",
                DEMO_WINDOW,
                DEMO_SPEEDUP,
            )
        started = time.perf_counter()
        try:
            raw = load_trace(settings.trace)
        except TraceError as e:
            raise OptionError(f"--burstgpt-trace: {e}") from None
        _check_filter("--burstgpt-models", settings.models, raw.df["model"])
        _check_filter("--burstgpt-log-types", settings.log_types, raw.df["log_type"])
        try:
            workload = prepare(
                raw,
                models=settings.models,
                log_types=settings.log_types,
                failed=settings.failed,
                window=window,
                speedup=speedup,
                rate_scale=None if settings.rate_scale == 1.0 else settings.rate_scale,
                seed=settings.seed,
                arrival="poisson" if settings.arrival == "poisson" else "trace",
            )
        except WindowSyntaxError as e:
            raise OptionError(f"--burstgpt-window: {e}") from None
        except TraceError:
            raise
        except ValueError as e:  # a filter or window the trace cannot satisfy
            raise OptionError(f"the trace options select nothing usable: {e}") from None
        self.settings, self.workload, self._key, self.demo_defaults = settings, workload, key, demo
        curves = workload.curves
        peak = int(curves.concurrency.max()) if len(curves.concurrency) else 0
        log.info(
            "Trace %s: %d conversations, %d requests over %.0f s (window %s, speedup %g)%s; peak "
            "concurrency %d -> up to %d users (headroom %g); loaded in %.2f s",
            workload.meta.get("file"),
            workload.n_conversations,
            workload.n_requests,
            workload.duration_s,
            window or "whole trace",
            speedup,
            " [service times estimated]" if workload.elapsed_estimated else "",
            peak,
            int(math.ceil(peak * settings.headroom)),
            settings.headroom,
            time.perf_counter() - started,
        )
        return workload

    def fingerprint(self) -> list[Any]:
        """What must be equal on the master and every worker for a shared assignment."""
        w = self.workload
        return [
            w.meta.get("sha256"),
            int(w.n_conversations),
            int(w.n_requests),
            float(w.duration_s),
        ]

    def chart_title(self) -> str:
        """One line naming the trace, window and speedup (file name only: reports travel)."""
        meta = self.workload.meta if self.workload is not None else {}
        s = self.settings
        window = (DEMO_WINDOW if self.demo_defaults else (s.window if s else None)) or "whole trace"
        speedup = DEMO_SPEEDUP if self.demo_defaults else (s.speedup if s else 1.0)
        return (
            f"{os.path.basename(str(meta.get('file', 'trace')))}, window {window}, "
            f"speedup {speedup:g}"
        )


def _check_filter(flag: str, wanted: tuple[str, ...] | None, column: Any) -> None:
    """Every value a filter names must occur in the trace (a typo would silently replay nothing)."""
    if not wanted:
        return
    present = sorted(str(v) for v in column.dropna().unique())
    missing = [w for w in wanted if w not in present]
    if missing:
        raise OptionError(
            f"{flag}: {', '.join(repr(m) for m in missing)} not in the trace; it has: "
            f"{', '.join(present)}"
        )
