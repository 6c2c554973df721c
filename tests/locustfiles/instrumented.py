"""A locustfile for tests: the plugin's classes plus a dump of what happened, written at quit.

Each process writes ``$BURSTGPT_TEST_DUMP.<role>.<pid>.json`` with the shape's targets, the user
count Locust had at the following tick, every request record (from the plugin's
``burstgpt_request`` event), and the process's books.
"""

import json
import os

from locust import events

from locust_burstgpt.plugin import BurstGPTShape, BurstGPTUser, state

RECORDS: list[dict] = []
OBSERVED: list[tuple[int, int]] = []


class ReplayUser(BurstGPTUser):
    pass


class InstrumentedShape(BurstGPTShape):
    def tick(self):
        role = state(self.runner.environment).reporting if self.runner is not None else None
        if role is not None and role.ticks:
            OBSERVED.append((role.ticks[-1].target, self.runner.user_count))
        return super().tick()


@events.burstgpt_request.add_listener
def _collect(result, environment, **_kw):
    record = result.record
    if record is None:
        return  # not sent: the books count it
    start = state(environment).sending.replay.epoch_wall

    def offset(t):  # seconds after the replay's start
        return None if t is None else record.wall(t) - start

    RECORDS.append(
        {
            "conversation": result.meta.conversation,
            "turn": result.meta.turn,
            "label": result.label,
            "conv_start_s": _conv_start(environment, result.meta.conversation),
            "scheduled": offset(record.scheduled_at),
            "sent": offset(record.sent_at),
            "sent_wall": result.wall(record.sent_at),
            "outcome": record.outcome.value,
            "http_status": record.http_status,
            "e2e": record.e2e,
            "prompt_tokens": record.prompt_tokens,
            "expected_prompt_tokens": record.expected_prompt_tokens,
            "completion_tokens": record.completion_tokens,
            "output_target": record.target_completion_tokens,
            "prompt_target": record.target_prompt_tokens,
            "request_id": record.request_id,
            "dropped_turns": result.dropped_turns,
            "reply_text": record.reply_text,
        }
    )


_STARTS: dict = {}


def _conv_start(environment, conversation_id):
    """The conversation's scheduled start (s after the replay's start), from the workload."""
    if not _STARTS:
        for conv in state(environment).source.workload.conversations():
            _STARTS[conv.id] = conv.start_s
    return _STARTS[conversation_id]


@events.quitting.add_listener
def _dump(environment, **_kw):
    out = os.environ.get("BURSTGPT_TEST_DUMP")
    if not out:
        return
    plugin = state(environment)
    role = plugin.role
    sending, reporting = plugin.sending, plugin.reporting
    replay = sending.replay if sending is not None else None
    workload = plugin.source.workload
    data = {
        "role": role.name,
        "pid": os.getpid(),
        "observed": OBSERVED,
        "ticks": [(s.t, s.target) for s in reporting.ticks] if reporting is not None else [],
        "records": RECORDS,
        "ledger": replay.ledger.to_dict() if replay is not None else None,
        "worker_ledgers": {k: v.to_dict() for k, v in getattr(role, "worker_ledgers", {}).items()},
        "end_reason": getattr(role, "end_reason", None),
        "conversations": workload.n_conversations if workload is not None else None,
        "requests": workload.n_requests if workload is not None else None,
    }
    with open(f"{out}.{role.name}.{os.getpid()}.json", "w") as f:
        json.dump(data, f)
