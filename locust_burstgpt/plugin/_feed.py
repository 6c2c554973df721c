"""Where a process's request results go: Locust's statistics and the plugin's own event, the run
report (in-process, or shipped to the master by a worker), and the once-a-second sampler.

Workers batch their results and ship them to the master every second (``messages.Entries``) and once
more after draining, before their final books, so the master's report holds every scheduled request
of the run exactly once.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import gevent
from gevent.queue import SimpleQueue

from locust_burstgpt.client import Outcome
from locust_burstgpt.generator_health import LiveWarnings
from locust_burstgpt.replay import Ledger, ReplayObserver, TurnResult
from locust_burstgpt.replay.messages import Entries

log = logging.getLogger("locust_burstgpt")

SHIP_INTERVAL_S = 1.0


class LocustEvents(ReplayObserver):
    """Every attempt into Locust's statistics (so ``--csv``/``--html`` keep working; E2E as the response
    time, output tokens as the size; every outcome but ``ok`` is a failure there, cancelled ones
    included, so a run with requests that got no complete reply exits 1 unless an SLO gate decides),
    and every scheduled request's result to ``environment.events.burstgpt_request``."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.hook = environment.events.burstgpt_request

    def on_retry(self, result: TurnResult) -> None:
        self._request(result)

    def on_result(self, result: TurnResult) -> None:
        if result.record is not None:  # a cancelled request is a failure too: no complete reply
            self._request(result)
        self.hook.fire(result=result, environment=self.environment)

    def _request(self, result: TurnResult) -> None:
        record = result.record
        assert record is not None
        exc = None
        if record.outcome != Outcome.OK:
            exc = RuntimeError(
                f"{record.outcome.value}"
                + (f" {record.http_status}" if record.http_status else "")
                + (f": {record.error}" if record.error else "")
            )
        self.environment.events.request.fire(
            request_type="LLM",
            name=result.label,
            response_time=(record.e2e or 0.0) * 1000.0,
            response_length=record.completion_tokens or 0,
            exception=exc,
            context={},
            url=None,
            response=None,
            start_time=None,
        )


class DeferredReport(ReplayObserver):
    """Local process: hand results to the report from a greenlet that yields after each one.

    Why: accounting a finished request costs ~0.1-0.7 ms; when a burst of replies finishes together,
    doing it inline would delay the dispatcher's next release by the sum.
    """

    def __init__(self, sink: Callable[[TurnResult], None]) -> None:
        self.sink = sink
        self.queue: Any = SimpleQueue()
        self._greenlet = gevent.spawn(self._loop)

    def on_result(self, result: TurnResult) -> None:
        self.queue.put(result)

    def _loop(self) -> None:
        while True:
            result = self.queue.get()
            self._sink(result)
            gevent.sleep(0)

    def _sink(self, result: TurnResult) -> None:
        try:
            self.sink(result)
        except Exception:  # noqa: BLE001 - one bad result must not stop the accounting of the rest
            log.exception("could not account request %s", result.meta.request_id)

    def close(self) -> None:
        """Account everything queued so far (called before the books are closed)."""
        self._greenlet.kill(block=True)
        while not self.queue.empty():
            self._sink(self.queue.get())


class EntryShipper(ReplayObserver):
    """Worker side: buffer results and send them to the master in batches, with the books so far."""

    def __init__(self, runner: Any, ledger: Ledger) -> None:
        self.runner = runner
        self.ledger = ledger
        self.probe: Any = None  # generator_health.LoopLagProbe: its per-second loop lag rides along
        self.in_progress: Callable[[], int] = lambda: 0
        self.buffer: list[dict[str, Any]] = []
        self._greenlet: gevent.Greenlet | None = None

    def start(self, probe: Any = None, in_progress: Callable[[], int] | None = None) -> None:
        """Ship every second from now on (with the probe's loop lag and the conversations in
        progress, for the master's shape)."""
        self.probe = probe
        if in_progress is not None:
            self.in_progress = in_progress
        self._greenlet = gevent.spawn(self._loop)

    def on_result(self, result: TurnResult) -> None:
        self.buffer.append(result.to_json())

    def _loop(self) -> None:
        while True:
            gevent.sleep(SHIP_INTERVAL_S)
            self.flush()

    def flush(self) -> None:
        batch, self.buffer = self.buffer, []
        lags = self.probe.take() if self.probe is not None else []
        message = Entries(batch, self.ledger, lags, self.in_progress())
        self.runner.send_message(Entries.TYPE, message.to_data())

    def close(self) -> None:
        """Stop shipping every second; ship what is left."""
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
        self.flush()


class SecondSampler:
    """Master/local side: once a second, note target vs actual users, scrape the server's metrics,
    check the generator's health and flush the JSONL file."""

    def __init__(self, role: Any, scraper: Any = None) -> None:
        self.role = role  # _roles.ReportingRole
        self.scraper = scraper
        self._warnings = LiveWarnings()
        self._scraped_at: float | None = None  # replay offset of the last scrape
        self._greenlet = gevent.spawn(self._loop)

    def _loop(self) -> None:
        epoch = self.role.report.epoch_wall
        if self.scraper is not None:
            # the counters' baseline, taken in the lead before offset 0: without it the first
            # second's deltas start at the first tick and miss what the server did before it
            self.scraper.scrape()
            self._scraped_at = time.time() - epoch
        while True:
            now = time.time()
            gevent.sleep(max(0.0, 1.0 - ((now - epoch) % 1.0)) + 0.02)
            self.sample()

    def sample(self, final: bool = False) -> None:
        """``final``: the end-of-run sample, taken at any instant; its counter deltas are spread
        over the seconds since the last scrape (the loop's samples book the second just ended)."""
        report = self.role.report
        now = time.time() - report.epoch_wall
        second = int(math.floor(now)) - (0 if final else 1)
        ticks = self.role.ticks
        tick = ticks[-1] if ticks else None
        runner = self.role.environment.runner
        report.timeline.note_target(
            second,
            tick.target if tick else None,
            runner.user_count if runner else None,
            tick.curve if tick else None,
            self.role.in_progress(),
        )
        if self.scraper is not None:
            values = self.scraper.scrape()
            if values and final and self._scraped_at is not None:
                report.timeline.note_server_spread(self._scraped_at, now, values)
            elif values:
                report.timeline.note_server(second, values)
            self._scraped_at = now
        self.check_health()
        report.flush()

    def check_health(self) -> None:
        """Say at once (not only at the end) when the generator stops keeping up, and again when
        later evidence names another cause: the same diagnosis the final verdict gives."""
        health = self.role.health
        if health is None:
            return
        probe = getattr(self.role, "probe", None)
        if probe is not None:
            health.note_lags(probe.take())
        for line in self._warnings.news(health.diagnosis()):
            log.warning("%s", line)

    def stop(self) -> None:
        """No more samples from the loop (the final one is taken by the caller)."""
        self._greenlet.kill(block=False)

    def close(self) -> None:
        self.stop()
        if self.scraper is not None:
            self.scraper.close()
