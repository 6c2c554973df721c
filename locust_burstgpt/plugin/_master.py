"""The master of a distributed run (``MasterRunner``): it runs the shape, assigns whole conversations
to the workers explicitly, takes in every worker's results and books, and reports the run.

See ``replay.messages`` for the protocol and ``_lost_workers`` for what happens when a worker goes.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import gevent
import numpy as np

from locust_burstgpt.plugin._lost_workers import WorkerWatch
from locust_burstgpt.plugin._roles import ReportingRole, freeze_heap
from locust_burstgpt.replay import Ledger, TurnResult
from locust_burstgpt.replay.messages import Assign, Entries, Final, StopRequest, WorkerError
from locust_burstgpt.settings import OptionError
from locust_burstgpt.trace import TraceError

log = logging.getLogger("locust_burstgpt")

START_LEAD_S = 2.0  # from test_start to trace offset 0: the assignment reaches the workers first
FINAL_GRACE_S = 15.0  # beyond the drain timeout, how long to wait for a worker's final books


class MasterRole(ReportingRole):
    name = "master"

    def __init__(self, state) -> None:  # noqa: ANN001 - PluginState (import cycle)
        super().__init__(state)
        self.reset_workers()

    def reset_workers(self) -> None:
        self.watch: WorkerWatch | None = None
        self.assigned: dict[str, int] = {}  # worker -> conversations assigned
        self.worker_ledgers: dict[str, Ledger] = {}  # final books, per worker
        self.live_worker_ledgers: dict[str, Ledger] = {}  # latest books shipped with results
        self.worker_in_progress: dict[str, int] = {}  # latest conversations in progress, per worker
        self.lost_workers: dict[str, Ledger] = {}
        self.lost_info: dict[str, dict] = {}  # when and why each was lost
        self.revived_workers: set[str] = set()  # declared lost, then heard from again

    def init(self) -> None:
        runner = self.environment.runner
        runner.register_message(Final.TYPE, self._on_final)
        runner.register_message(WorkerError.TYPE, self._on_error)
        runner.register_message(Entries.TYPE, self._on_entries)

    # -- the run -------------------------------------------------------------------------------
    def test_start(self) -> None:
        if self.watch is not None:
            self.watch.stop()
        self.reset_reporting()
        self.reset_workers()
        env, runner = self.environment, self.environment.runner
        try:
            workload = self.state.source.ensure(env.parsed_options)
        except (OptionError, TraceError) as e:
            self.fail_start(str(e))
            return
        self.state.simulator.ensure_host(env, self.settings.sim_profile)
        freeze_heap()
        self.epoch_wall = time.time() + START_LEAD_S
        self.start_report()
        workers = sorted(
            (c for c in runner.clients.values() if c.state != "missing"), key=lambda c: c.id
        )
        if not workers:
            log.error("No workers connected: nothing to replay")
            return
        order = np.arange(workload.n_conversations, dtype=np.int64)
        self.watch = WorkerWatch(self)
        fingerprint = self.state.source.fingerprint()
        for k, client in enumerate(workers):
            indices = order[k :: len(workers)].tolist()
            self.watch.assign(client.id, indices)
            message = Assign(indices, self.epoch_wall, fingerprint, k, len(workers))
            runner.send_message(Assign.TYPE, message.to_data(), client_id=client.id)
        self.watch.start()
        log.info(
            "Assigned %d conversations to %d workers (round robin by start time)",
            workload.n_conversations,
            len(workers),
        )

    def test_stopping(self) -> None:
        self.note_end()
        runner = self.environment.runner
        reason = self.end_reason or "stopped"
        alive = [
            c.id
            for c in runner.clients.values()
            if c.state != "missing" and c.id in self.assigned and c.id not in self.lost_workers
        ]
        for client_id in alive:
            runner.send_message(
                StopRequest.TYPE, StopRequest(reason).to_data(), client_id=client_id
            )
        drain = self.settings.drain_timeout_s if self.settings else 30.0
        deadline = time.monotonic() + drain + FINAL_GRACE_S
        while time.monotonic() < deadline and not all(
            c in self.worker_ledgers or c in self.lost_workers for c in alive
        ):
            gevent.sleep(0.1)  # the watch keeps running: a worker dying now is accounted as lost
        missing = [c for c in alive if c not in self.worker_ledgers and c not in self.lost_workers]
        if missing:
            log.error("No final accounts from workers %s", ", ".join(missing))

    def test_stop(self) -> None:
        if self.watch is not None:
            self.watch.check()
            self.watch.stop()
        self.finish()

    # -- messages from the workers ------------------------------------------------------------
    def _on_final(self, environment: Any, msg: Any, **_kw: Any) -> None:
        if self.watch is not None and not self.watch.accept(msg.node_id):
            return
        self.worker_ledgers[msg.node_id] = Final.from_data(msg.data).ledger

    def _on_entries(self, environment: Any, msg: Any, **_kw: Any) -> None:
        if self.watch is not None and not self.watch.accept(msg.node_id):
            return
        entries = Entries.from_data(msg.data)
        self.live_worker_ledgers[msg.node_id] = entries.ledger
        self.worker_in_progress[msg.node_id] = entries.in_progress
        if self.health is not None:
            self.health.note_lags(entries.loop_lag, msg.node_id)
        if self.report is None:
            return
        for data in entries.results:
            result = TurnResult.from_json(data)
            if self.watch is not None:
                self.watch.count(msg.node_id, result)
            self.account(result)

    def _on_error(self, environment: Any, msg: Any, **_kw: Any) -> None:
        log.error("Worker %s: %s", msg.node_id, WorkerError.from_data(msg.data).message)
        self.environment.process_exit_code = 2
        gevent.spawn(self.environment.runner.quit)

    # -- the books -----------------------------------------------------------------------------
    def in_progress(self) -> int:
        return sum(n for cid, n in self.worker_in_progress.items() if cid not in self.lost_workers)

    def all_ended(self) -> bool:
        """Every assigned worker's latest books balance (or it was lost and accounted)."""
        if not self.assigned:
            return False
        for client_id in self.assigned:
            if client_id in self.lost_workers:
                continue
            led = self.worker_ledgers.get(client_id) or self.live_worker_ledgers.get(client_id)
            if led is None or not led.balances():
                return False
        return True

    def run_ledger(self) -> Ledger:
        """The sum of every worker's final books and the rebuilt books of lost workers."""
        total = Ledger()
        for led in (*self.worker_ledgers.values(), *self.lost_workers.values()):
            total = total.add(led)
        return total

    def live_ledger(self) -> Ledger:
        """Every worker's latest books (final where it has sent them)."""
        total = Ledger()
        for client_id in self.assigned:
            led = (
                self.lost_workers.get(client_id)
                or self.worker_ledgers.get(client_id)
                or self.live_worker_ledgers.get(client_id)
            )
            if led is not None:
                total = total.add(led)
        return total

    def lost_text(self) -> str:
        return "; ".join(
            f"{cid}: {i['why']}, {i['lost_requests']} requests lost, "
            f"{i['reassigned_conversations']} conversations reassigned"
            for cid, i in sorted(self.lost_info.items())
        )

    def distributed_problems(self) -> list[str]:
        problems = []
        if self.lost_workers and not self.settings.reassign_lost:
            problems.append(
                f"{len(self.lost_workers)} worker(s) lost during the run ({self.lost_text()}); "
                "their unfinished requests are counted as not sent (lost_worker). "
                "--burstgpt-reassign-lost replays the conversations they had not started elsewhere"
            )
        if self.revived_workers:
            problems.append(
                f"worker(s) {', '.join(sorted(self.revived_workers))} answered after being "
                "declared lost: their later results were ignored and may have been sent twice"
            )
        return problems

    def distributed_warnings(self) -> list[str]:
        if self.lost_workers and self.settings.reassign_lost:
            return [
                f"{len(self.lost_workers)} worker(s) lost during the run ({self.lost_text()}); "
                "requests they had in flight or had not finished are counted as not sent "
                "(lost_worker)"
            ]
        return []
