"""A single-process run (``LocalRunner``): it sends every conversation and reports the run."""

from __future__ import annotations

import time

from locust_burstgpt.generator_health import LoopLagProbe
from locust_burstgpt.plugin._feed import DeferredReport, LocustEvents
from locust_burstgpt.plugin._roles import ReportingRole, SendingRole, freeze_heap
from locust_burstgpt.replay import Ledger, Observers
from locust_burstgpt.settings import OptionError
from locust_burstgpt.trace import TraceError

START_LEAD_S = 1.0  # from test_start to trace offset 0: time to build the replay


class LocalRole(SendingRole, ReportingRole):
    name = "local"

    def __init__(self, state) -> None:  # noqa: ANN001 - PluginState (import cycle)
        super().__init__(state)
        self.sink: DeferredReport | None = None

    def test_start(self) -> None:
        self.reset_reporting()
        self.reset_sending()
        self.sink = None
        env = self.environment
        try:
            workload = self.state.source.ensure(env.parsed_options)
        except (OptionError, TraceError) as e:
            self.fail_start(str(e))
            return
        self.state.simulator.ensure_host(env, self.settings.sim_profile)
        freeze_heap()
        self.epoch_wall = time.time() + START_LEAD_S
        self.start_report()
        self.sink = DeferredReport(self.account)  # accounting off the dispatcher's path
        replay = self.build_replay(
            range(workload.n_conversations),
            self.epoch_wall,
            Observers([LocustEvents(env), self.sink]),
        )
        if replay is None:
            return
        self.server_description = replay.describe_server()
        self.probe = LoopLagProbe(self.epoch_wall)
        replay.start()
        self.replay_ready.set()

    def in_progress(self) -> int:
        return self.replay.dispatcher.in_progress if self.replay is not None else 0

    def all_ended(self) -> bool:
        return self.replay is not None and self.replay.ledger.balances()

    def live_ledger(self) -> Ledger:
        return self.replay.ledger if self.replay is not None else Ledger()

    def test_stopping(self) -> None:
        self.note_end()
        self.stop_sending(self.end_reason or "stopped")
        if self.sink is not None:
            self.sink.close()

    def test_stop(self) -> None:
        self.finish()
