"""A worker of a distributed run (``WorkerRunner``): it sends the conversations the master assigned
and ships every result and its books to the master."""

from __future__ import annotations

import logging
from typing import Any

from locust_burstgpt.generator_health import LoopLagProbe
from locust_burstgpt.plugin._feed import EntryShipper, LocustEvents
from locust_burstgpt.plugin._roles import SendingRole, freeze_heap
from locust_burstgpt.replay import Ledger, Observers
from locust_burstgpt.replay.messages import Assign, AssignMore, Final, StopRequest, WorkerError
from locust_burstgpt.settings import OptionError
from locust_burstgpt.trace import TraceError

log = logging.getLogger("locust_burstgpt")


class WorkerRole(SendingRole):
    name = "worker"

    def __init__(self, state) -> None:  # noqa: ANN001 - PluginState (import cycle)
        super().__init__(state)
        self.assignment: Assign | None = None
        self.shipper: EntryShipper | None = None
        self.end_reason: str | None = None

    def init(self) -> None:
        runner = self.environment.runner
        runner.register_message(Assign.TYPE, self._on_assign)
        runner.register_message(AssignMore.TYPE, self._on_assign_more, concurrent=True)
        runner.register_message(StopRequest.TYPE, self._on_stop_request, concurrent=True)

    def _send(self, message: Any) -> None:
        self.environment.runner.send_message(message.TYPE, message.to_data())

    def replay_failed(self, message: str) -> None:
        log.error("%s", message)
        self.environment.process_exit_code = 2
        self._send(WorkerError(message))

    # -- messages from the master -------------------------------------------------------------
    def _on_assign(self, environment: Any, msg: Any, **_kw: Any) -> None:
        self.assignment = Assign.from_data(msg.data)

    def _on_assign_more(self, environment: Any, msg: Any, **_kw: Any) -> None:
        """Conversations of a lost worker that had not started: replay them too, on their schedule."""
        indices = AssignMore.from_data(msg.data).indices
        if not self.replay_ready.wait(timeout=10) or self.replay is None:
            self._send(
                WorkerError(
                    f"worker cannot take {len(indices)} reassigned conversations: its replay is "
                    "not running"
                )
            )
            return
        self.replay.extend(indices)
        log.info("Took over %d conversations of a lost worker", len(indices))

    def _on_stop_request(self, environment: Any, msg: Any, **_kw: Any) -> None:
        reason = StopRequest.from_data(msg.data).reason
        self.end_reason = reason
        self.stop_sending(reason)
        if self.shipper is not None:
            self.shipper.close()
        ledger = self.replay.ledger if self.replay is not None else Ledger()
        self._send(Final(ledger))

    # -- the run -------------------------------------------------------------------------------
    def test_start(self) -> None:
        assignment = self.assignment
        self.reset_sending()
        self.shipper = None
        self.end_reason = None
        if assignment is None:
            self._send(WorkerError("worker got no assignment before the test started"))
            return
        try:
            self.state.source.ensure(self.environment.parsed_options)
        except (OptionError, TraceError) as e:
            self._send(WorkerError(f"worker cannot load the trace: {e}"))
            return
        mine = self.state.source.fingerprint()
        if mine != list(assignment.fingerprint):
            self._send(
                WorkerError(
                    f"worker's workload {mine} differs from the master's {assignment.fingerprint}: "
                    "is the same trace file (same bytes) at the same path on every worker?"
                )
            )
            return
        freeze_heap()
        ledger = Ledger()
        shipper = EntryShipper(self.environment.runner, ledger)
        replay = self.build_replay(
            assignment.indices,
            assignment.epoch_wall,
            Observers([LocustEvents(self.environment), shipper]),
            ledger,
        )
        if replay is None:
            return
        self.probe = LoopLagProbe(assignment.epoch_wall)
        self.shipper = shipper
        shipper.start(self.probe, lambda: replay.dispatcher.in_progress)
        replay.start()
        self.replay_ready.set()
