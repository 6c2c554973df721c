"""A locustfile for tests: the plugin's classes plus a dump of what happened, written at quit.

Each process writes ``$BURSTGPT_TEST_DUMP.<role>.<pid>.json`` with the shape's targets, the user
count Locust had at the following tick, every request record, and the process's ledger.
"""

import json
import os
import time

from locust import events
from locust.runners import MasterRunner, WorkerRunner

from locust_burstgpt.plugin import BurstGPTShape, BurstGPTUser, controller

RECORDS: list[dict] = []
OBSERVED: list[tuple[int, int]] = []


class ReplayUser(BurstGPTUser):
    pass


class InstrumentedShape(BurstGPTShape):
    def tick(self):
        ticks = controller.get().ticks
        if self.runner is not None and ticks:
            OBSERVED.append((ticks[-1].target, self.runner.user_count))
        return super().tick()


def _collect(state, turn, record, built):
    epoch = controller.get().runtime.engine.epoch
    RECORDS.append(
        {
            "conversation": state.conversation.id,
            "turn": turn.index,
            "label": state.label,
            "conv_start_s": state.conversation.start_s,
            "scheduled": None if record.scheduled_at is None else record.scheduled_at - epoch,
            "sent": None if record.sent_at is None else record.sent_at - epoch,
            "sent_wall": None
            if record.sent_at is None
            else time.time() - (time.perf_counter() - record.sent_at),
            "outcome": record.outcome.value,
            "http_status": record.http_status,
            "e2e": record.e2e,
            "prompt_tokens": record.prompt_tokens,
            "expected_prompt_tokens": built.expected_prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "output_target": record.extra["output_target"],
            "prompt_target": record.extra["prompt_target"],
            "request_id": record.request_id,
            "dropped_turns": built.dropped_turns,
            "reply_text": record.reply_text,
        }
    )


@events.test_start.add_listener
def _hook(environment, **_kw):
    runtime = controller.get().runtime
    if runtime is not None:
        runtime.listeners.append(_collect)


@events.quitting.add_listener
def _dump(environment, **_kw):
    out = os.environ.get("BURSTGPT_TEST_DUMP")
    if not out:
        return
    ctl = controller.get()
    runner = environment.runner
    role = (
        "master"
        if isinstance(runner, MasterRunner)
        else "worker"
        if isinstance(runner, WorkerRunner)
        else "local"
    )
    ledger = ctl.runtime.ledger.to_dict() if ctl.runtime is not None else None
    data = {
        "role": role,
        "pid": os.getpid(),
        "observed": OBSERVED,
        "ticks": [(s.t, s.target) for s in ctl.ticks],
        "records": RECORDS,
        "ledger": ledger,
        "worker_ledgers": {k: v.to_dict() for k, v in ctl.worker_ledgers.items()},
        "end_reason": ctl.end_reason,
        "conversations": ctl.workload.n_conversations if ctl.workload is not None else None,
        "requests": ctl.workload.n_requests if ctl.workload is not None else None,
    }
    with open(f"{out}.{role}.{os.getpid()}.json", "w") as f:
        json.dump(data, f)
