"""Per-process state of a replay, shared by the shape, the users and the event listeners.

One object per process because Locust instantiates shapes at import time (before options exist),
runs the shape on the master only, and runs users on workers only; they meet here.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

from gevent.event import Event

from locust_burstgpt.ledger import Ledger
from locust_burstgpt.settings import OptionError, ReplaySettings, settings_from_options

log = logging.getLogger("locust_burstgpt")

# The bundled default trace spans 11.5 h; with no window/speedup given, replay its busiest hour 30x
# faster (2 minutes), so the first run shows bursts and multi-turn conversations within a minute.
DEMO_WINDOW = "busiest:1h"
DEMO_SPEEDUP = 30.0


@dataclass
class TickSample:
    t: float
    target: int
    wall: float


@dataclass
class Controller:
    settings: ReplaySettings | None = None
    workload: Any = None
    workload_key: tuple | None = None
    epoch_wall: float | None = None  # wall-clock time of trace offset 0 (aligned across workers)
    end_reason: str | None = None
    runtime: Any = None  # ReplayRuntime on local/worker processes
    sim: Any = None  # embedded simulator handle (master/local)
    host: str | None = None
    ticks: list[TickSample] = field(default_factory=list)
    worker_ledgers: dict[str, Ledger] = field(default_factory=dict)
    assignment: dict | None = None  # worker: what the master assigned
    assigned: dict[str, int] = field(default_factory=dict)  # master: conversations per worker
    demo_defaults: bool = False
    runtime_ready: Event = field(default_factory=Event)
    report: Any = None  # RunReport on the reporting process (master or local)
    sampler: Any = None
    shipper: Any = None  # EntryShipper on workers
    finished: bool = False
    lost_workers: dict[str, Ledger] = field(default_factory=dict)
    lost_info: dict[str, dict] = field(default_factory=dict)  # master: when and why each was lost
    revived_workers: set[str] = field(default_factory=set)  # declared lost, then heard from again
    watch: Any = None  # master: lost_workers.WorkerWatch
    health: Any = None  # reporting process: generator_health.ScheduleHealth
    probe: Any = None  # sending process: generator_health.LoopLagProbe
    live_worker_ledgers: dict[str, Ledger] = field(default_factory=dict)
    server_description: dict | None = None
    last_summary: dict | None = None
    last_verdict: Any = None
    last_ledger: Ledger | None = None
    user_class: Any = None  # the first active BurstGPTUser subclass (request hooks)

    def ensure_workload(self, environment: Any) -> Any:
        """(Re)build settings and workload from the current options; only when they changed."""
        settings = settings_from_options(environment.parsed_options)
        demo = (
            settings.trace is None and settings.window is None and _speedup_is_default(environment)
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
            demo,
        )
        if self.workload is not None and key == self.workload_key:
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
            )
        except WindowSyntaxError as e:
            raise OptionError(f"--burstgpt-window: {e}") from None
        except TraceError:
            raise
        except ValueError as e:  # a filter or window the trace cannot satisfy
            raise OptionError(f"the trace options select nothing usable: {e}") from None
        self.settings, self.workload, self.workload_key, self.demo_defaults = (
            settings,
            workload,
            key,
            demo,
        )
        curves = workload.curves
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
            int(curves.concurrency.max()) if len(curves.concurrency) else 0,
            int(
                math.ceil(
                    (curves.concurrency.max() if len(curves.concurrency) else 0) * settings.headroom
                )
            ),
            settings.headroom,
            time.perf_counter() - started,
        )
        return workload

    def chart_title(self) -> str:
        """One line naming the trace, window and speedup (file name only: reports travel)."""
        meta = self.workload.meta if self.workload is not None else {}
        s = self.settings
        window = (DEMO_WINDOW if self.demo_defaults else (s.window if s else None)) or "whole trace"
        speedup = DEMO_SPEEDUP if self.demo_defaults else (s.speedup if s else 1.0)
        return f"{os.path.basename(str(meta.get('file', 'trace')))}, window {window}, speedup {speedup:g}"

    def note_tick(self, t: float, target: int) -> None:
        self.ticks.append(TickSample(t, target, time.time()))

    def reset_run(self) -> None:
        self.epoch_wall = None
        self.end_reason = None
        self.ticks.clear()
        self.worker_ledgers.clear()
        self.lost_workers.clear()
        self.lost_info.clear()
        self.revived_workers.clear()
        if self.watch is not None:
            self.watch.stop()
        self.watch = None
        self.health = None
        if self.probe is not None:
            self.probe.stop()
        self.probe = None
        self.live_worker_ledgers.clear()
        self.last_ledger = None
        self.last_verdict = None
        self.last_summary = None
        self.assigned.clear()
        self.report = None
        self.sampler = None
        self.finished = False
        self.runtime = None
        self.runtime_ready.clear()


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


def _speedup_is_default(environment: Any) -> bool:
    return float(getattr(environment.parsed_options, "burstgpt_speedup", 1.0)) == 1.0


_CONTROLLER = Controller()


def get() -> Controller:
    return _CONTROLLER


def reset() -> Controller:
    """A fresh controller (tests run several Locust environments in one process)."""
    global _CONTROLLER
    _CONTROLLER = Controller()
    return _CONTROLLER
