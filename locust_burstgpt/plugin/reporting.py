"""Feeding the run report: request entries from the runtime (or from workers) and a per-second sampler.

Workers batch their entries and ship them to the master every second (``burstgpt_entries``) and
once more after draining, before their final accounts, so the master's report holds every
scheduled request of the run exactly once.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import gevent

from locust_burstgpt.report.entries import not_sent_entry, request_entry, turn_meta

log = logging.getLogger("locust_burstgpt")

SHIP_INTERVAL_S = 1.0


def connect_runtime(runtime: Any, sink: Any) -> None:
    """Turn every request and every unsent turn of ``runtime`` into an entry passed to ``sink(entry)``."""
    epoch_wall = runtime.epoch_wall

    def on_record(state: Any, turn: Any, record: Any, built: Any) -> None:
        meta = turn_meta(state.conversation, turn, state.label, record.request_id)
        meta["dropped_turns"] = built.dropped_turns
        entry = request_entry(record, meta, epoch_wall)
        retries = record.extra.get("retries")
        if retries:  # earlier attempts answered 429/503; the turn stays in the second it was due
            entry["retries"] = retries
            if retries[0]["scheduled_at"] is not None:
                entry["scheduled_offset_s"] = round(retries[0]["scheduled_at"] - epoch_wall, 6)
        sink(entry)

    def on_not_sent(
        conv: Any,
        label: str,
        first: int,
        due: float | None,
        reason: str,
        end: int | None = None,
        error: str | None = None,
    ) -> None:
        for k in range(first, len(conv.turns) if end is None else end):
            rid = f"{runtime.run_id}-{conv.id}-{k}"
            entry = not_sent_entry(
                turn_meta(conv, conv.turns[k], label, rid), reason, due if k == first else None
            )
            if error is not None:  # why the prompt could not be built, for the report's reader
                entry["error"] = error
            sink(entry)

    runtime.listeners.append(on_record)
    runtime.engine.on_not_sent = on_not_sent


class DeferredSink:
    """Local process: hand entries to the report from a greenlet that yields after each one.

    Why: accounting a finished request costs ~0.1-0.7 ms; when a burst of replies finishes together,
    doing it inline would delay the dispatcher's next release by the sum.
    """

    def __init__(self, sink: Any) -> None:
        from gevent.queue import SimpleQueue

        self.sink = sink
        self.queue: Any = SimpleQueue()
        self._greenlet = gevent.spawn(self._loop)

    def __call__(self, entry: dict[str, Any]) -> None:
        self.queue.put(entry)

    def _loop(self) -> None:
        while True:
            entry = self.queue.get()
            self.sink(entry)
            gevent.sleep(0)

    def flush(self) -> None:
        """Account everything queued so far (called before the books are closed)."""
        while not self.queue.empty():
            self.sink(self.queue.get())

    def close(self) -> None:
        self._greenlet.kill(block=True)
        self.flush()


class EntryShipper:
    """Worker side: buffer entries and send them to the master in batches."""

    def __init__(self, runner: Any, ledger: Any, probe: Any = None) -> None:
        self.runner = runner
        self.ledger = ledger
        self.probe = probe  # generator_health.LoopLagProbe: its per-second loop lag rides along
        self.buffer: list[dict[str, Any]] = []
        self._greenlet = gevent.spawn(self._loop)

    def __call__(self, entry: dict[str, Any]) -> None:
        self.buffer.append(entry)

    def _loop(self) -> None:
        while True:
            gevent.sleep(SHIP_INTERVAL_S)
            self.flush()

    def flush(self) -> None:
        batch, self.buffer = self.buffer, []
        lags = self.probe.take() if self.probe is not None else []
        self.runner.send_message(
            "burstgpt_entries",
            {"entries": batch, "ledger": self.ledger.to_dict(), "loop_lag": lags},
        )

    def close(self) -> None:
        self._greenlet.kill(block=False)
        self.flush()


class SecondSampler:
    """Master/local side: once a second, note target vs actual users and flush the JSONL file."""

    def __init__(self, environment: Any, report: Any, ctl: Any, scraper: Any = None) -> None:
        self.environment = environment
        self.report = report
        self.ctl = ctl
        self.scraper = scraper
        self._warned: set[str] = set()
        self._greenlet = gevent.spawn(self._loop)

    def _loop(self) -> None:
        epoch = self.report.epoch_wall
        while True:
            now = time.time()
            gevent.sleep(max(0.0, 1.0 - ((now - epoch) % 1.0)) + 0.02)
            self.sample()

    def sample(self) -> None:
        second = int(math.floor(time.time() - self.report.epoch_wall)) - 1  # the second just ended
        ticks = self.ctl.ticks
        target = ticks[-1].target if ticks else None
        runner = self.environment.runner
        self.report.timeline.note_target(second, target, runner.user_count if runner else None)
        if self.scraper is not None:
            values = self.scraper.scrape()
            if values:
                self.report.timeline.note_server(second, values)
        self.check_health()
        self.report.flush()

    def check_health(self) -> None:
        """Say at once (not only at the end) when the generator stops keeping up."""
        health = self.ctl.health
        if health is None:
            return
        if self.ctl.probe is not None:
            health.note_lags(self.ctl.probe.take())
        for problem in health.problems():
            kind = problem.split(":", 1)[0]
            if kind not in self._warned:
                self._warned.add(kind)
                log.warning("UNTRUSTWORTHY RUN so far: %s", problem)

    def stop(self) -> None:
        self._greenlet.kill(block=False)
