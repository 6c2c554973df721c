"""What every process of a run does, by the part it plays; the concrete roles build on these.

A Locust process is one of three: a ``LocalRunner`` sends and reports (``_local.LocalRole``), a
``MasterRunner`` runs the shape, assigns conversations and reports (``_master.MasterRole``), a
``WorkerRunner`` sends what it was assigned (``_worker.WorkerRole``). The sending part and the
reporting part live here, so the local role is simply both.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gevent
from gevent.event import Event

from locust_burstgpt.generator_health import LoopLagProbe, ScheduleHealth
from locust_burstgpt.replay import Ledger, ProcessReplay, ReplayObserver, TurnResult, class_label

if TYPE_CHECKING:
    from locust_burstgpt.plugin._state import PluginState

log = logging.getLogger("locust_burstgpt")


@dataclass
class TickSample:
    """One shape tick: replay time, the users it asked for, and when (wall clock)."""

    t: float
    target: int
    wall: float
    curve: int | None = None  # what the trace's concurrency alone asked for
    in_progress: int | None = None  # conversations in progress at the tick


class Role:
    """The part one Locust process plays in a run; Locust's events call the ``test_*`` methods."""

    name = "role"

    def __init__(self, state: PluginState) -> None:
        self.state = state
        self.environment = state.environment

    @property
    def settings(self) -> Any:
        return self.state.source.settings

    @property
    def workload(self) -> Any:
        return self.state.source.workload

    def init(self) -> None:
        """Locust's ``init``: options are parsed, the runner exists."""

    def test_start(self) -> None:
        """Locust's ``test_start``."""

    def test_stopping(self) -> None:
        """Locust's ``test_stopping``: stop sending, drain, collect the books."""

    def test_stop(self) -> None:
        """Locust's ``test_stop``: the books are final."""

    def fail_start(self, message: str) -> None:
        """The run cannot start: one clear line, exit code 2, stop."""
        log.error("%s", message)
        self.environment.process_exit_code = 2
        gevent.spawn(self.environment.runner.quit)


def freeze_heap() -> None:
    """Move the loaded trace out of the garbage collector's sight: full collections over a large heap
    pause every greenlet for milliseconds, which would show up as lateness."""
    gc.collect()
    gc.freeze()


class SendingRole(Role):
    """Sends requests: holds this process's replay (built in ``test_start``) for its Locust users."""

    def __init__(self, state: PluginState) -> None:
        super().__init__(state)
        self.replay: ProcessReplay | None = None
        self.replay_ready = Event()
        self.probe: LoopLagProbe | None = None

    def reset_sending(self) -> None:
        if self.probe is not None:
            self.probe.stop()
        self.probe = None
        self.replay = None
        self.replay_ready.clear()

    def build_replay(
        self,
        indices: Sequence[int],
        epoch_wall: float,
        observer: ReplayObserver,
        ledger: Ledger | None = None,
    ) -> ProcessReplay | None:
        """This process's replay, or None (after saying why, with ``replay_failed``)."""
        host = self.environment.host
        try:
            replay = ProcessReplay(
                self.settings,
                self.workload,
                list(indices),
                epoch_wall,
                base_url=host,
                observer=observer,
                hooks=self.state.request_hooks(),
                ledger=ledger,
            )
        except Exception as e:  # noqa: BLE001 - one clear line, then stop the run
            log.debug("replay setup failed", exc_info=True)
            self.replay_failed(f"Cannot start the replay against {host}: {e}")
            return None
        self.replay = replay
        return replay

    def replay_failed(self, message: str) -> None:
        self.fail_start(message)

    def stop_sending(self, reason: str) -> None:
        if self.replay is not None:
            self.replay.stop(reason)


class ReportingRole(Role):
    """Reports the run: the run report, the generator's health, the shape's ticks, the end."""

    def __init__(self, state: PluginState) -> None:
        super().__init__(state)
        self.reset_reporting()

    def reset_reporting(self) -> None:
        self.epoch_wall: float | None = None  # wall-clock time of trace offset 0
        self.end_reason: str | None = None
        self.ticks: list[TickSample] = []
        self.report: Any = None  # report.run_report.RunReport
        self.health: ScheduleHealth | None = None
        self.sampler: Any = None  # _feed.SecondSampler
        self.server_description: dict | None = None
        self.finished = False
        self.final_ledger: Ledger | None = None
        self.final_verdict: Any = None
        self.final_summary: dict | None = None
        self.final_duration_s: float | None = None

    def duration_s(self) -> float:
        """Seconds since the replay's start; frozen when the run ends."""
        if self.final_duration_s is not None:
            return self.final_duration_s
        return max(1e-9, time.time() - self.report.epoch_wall)

    def note_tick(
        self, t: float, target: int, curve: int | None = None, in_progress: int | None = None
    ) -> None:
        self.ticks.append(TickSample(t, target, time.time(), curve, in_progress))

    def in_progress(self) -> int:
        """Conversations in progress now (on every sending process)."""
        raise NotImplementedError

    def all_ended(self) -> bool:
        """Every scheduled request has ended (sent with an outcome, or not sent)."""
        raise NotImplementedError

    def start_report(self) -> None:
        from locust_burstgpt.plugin._feed import SecondSampler
        from locust_burstgpt.report.run_report import RunReport

        settings = self.settings
        limits = {
            k: v
            for k, v in settings.slo_spec.per_request_limits().items()
            if k in ("ttft", "tpot", "e2e")
        }
        self.report = RunReport(self.epoch_wall, settings.report_dir, limits)
        self.health = ScheduleHealth(settings.arrival, strict=settings.strict_curve)
        self.sampler = SecondSampler(self, self._scraper())

    def _scraper(self) -> Any:
        settings, host = self.settings, self.environment.host
        if settings.server_metrics is None or not host:
            return None
        from locust_burstgpt.client.sidechannel import same_origin, server_root
        from locust_burstgpt.report.server_metrics import ServerMetricsScraper

        url = settings.server_metrics or server_root(host) + "/metrics"
        key = settings.api_key if same_origin(url, host) else None  # the key stays with --host
        return ServerMetricsScraper(url, key, verify_tls=not settings.insecure)

    def note_end(self) -> None:
        """The run is ending now: requests due before now and never sent count as late."""
        if self.health is not None and self.epoch_wall is not None:
            self.health.ended(time.time() - self.epoch_wall)

    def account(self, result: TurnResult) -> None:
        """One request's end into the run report and the generator's health check."""
        self.report.add(result)
        if self.health is not None:
            self.health.add(result)

    # -- the books, for the web UI and the end of the run ------------------------------------
    def live_ledger(self) -> Ledger:
        """The books so far."""
        raise NotImplementedError

    def run_ledger(self) -> Ledger:
        """The run's final books, once every process has accounted (at ``test_stop``)."""
        return self.live_ledger()

    def books(self) -> Ledger:
        """The final books once the run ended, else the books so far."""
        if self.finished and self.final_ledger is not None:
            return self.final_ledger
        return self.live_ledger()

    def distributed_problems(self) -> list[str]:
        """Trust problems only a distributed run has (lost workers)."""
        return []

    def distributed_warnings(self) -> list[str]:
        return []

    def live_problems(self) -> list[str]:
        """Why the run cannot be trusted, as known now (the final verdict's list once it ended)."""
        if self.final_verdict is not None:
            return list(self.final_verdict.trust_problems)
        problems = self.health.problems() if self.health is not None else []
        return problems + self.distributed_problems()

    def books_by_class(self, led: Ledger) -> dict[str, dict[str, int]]:
        """The books per trace class: scheduled from the workload, sent from the processes'
        counters, ended and not sent from the report (in flight = sent - ended)."""
        report = self.report
        scheduled: dict[str, int] = {}
        if self.workload is not None:
            for (model, log_type), n in self.workload.class_turns().items():
                label = class_label(model, log_type)
                scheduled[label] = scheduled.get(label, 0) + n
        done = (
            {label: cm.counters["requests"] for label, cm in report.metrics.classes.items()}
            if report
            else {}
        )
        not_sent = report.not_sent_by_class if report is not None else {}
        labels = set(scheduled) | set(led.sent_by_class) | set(not_sent)
        return {
            label: {
                "scheduled": scheduled.get(label, 0),
                "sent": led.sent_by_class.get(label, 0),
                "in_flight": max(0, led.sent_by_class.get(label, 0) - done.get(label, 0)),
                "not_sent": not_sent.get(label, 0),
            }
            for label in sorted(labels)
        }

    def live_books(self) -> dict[str, Any]:
        """Scheduled / sent / in flight / not sent, now (the final books once the run has ended)."""
        led = self.books()
        return {
            "scheduled": led.scheduled,
            "sent": led.sent,
            "in_flight": led.in_flight,
            "not_sent": sum(led.not_sent.values()),
            "outcomes": dict(led.outcomes),
            "not_sent_reasons": dict(led.not_sent),
            "balances": led.balances(),
            "by_class": self.books_by_class(led),
        }

    def finish(self) -> None:
        from locust.stats import CSV_STATS_INTERVAL_SEC

        from locust_burstgpt.plugin._finish import finish_run

        finish_run(self)
        if getattr(self.environment.parsed_options, "csv_prefix", None):
            # Locust's --csv writer rewrites its files once per interval and not again at exit:
            # let it run once more, so the files hold the requests accounted at the very end
            # (those cancelled at the drain's end, say)
            gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.1)


def exit_on_bad_options(message: str) -> None:
    """At ``init``, before any load: one line and exit code 2."""
    log.error("%s", message)
    sys.exit(2)
