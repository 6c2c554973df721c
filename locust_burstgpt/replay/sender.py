"""Sending one turn: the request goes out at its due time, is retried where the user asked for it,
and ends in exactly one result, which is booked and handed to the observer."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import gevent

from locust_burstgpt.client import LLMClient, Outcome, RequestRecord
from locust_burstgpt.prompts import PromptBuilder
from locust_burstgpt.replay.conversation import ConversationState
from locust_burstgpt.replay.ledger import Ledger
from locust_burstgpt.replay.observer import ReplayObserver
from locust_burstgpt.replay.results import TurnMeta, TurnResult, attempt_summary
from locust_burstgpt.replay.turns import PreparedTurn, TurnBuilder

RETRY_STATUSES = (429, 503)
RETRY_WAIT_DEFAULT_S = 1.0  # when a 429/503 has no (numeric) Retry-After
RETRY_WAIT_MAX_S = 60.0


def retry_wait_s(record: RequestRecord) -> float:
    """The server's Retry-After, or 1 s without one; never more than 60 s."""
    wait = record.retry_after_s if record.retry_after_s is not None else RETRY_WAIT_DEFAULT_S
    return min(max(0.0, wait), RETRY_WAIT_MAX_S)


class TurnSender:
    """Sends prepared turns over the process's client and accounts for each in the ledger."""

    def __init__(
        self,
        client: LLMClient,
        turns: TurnBuilder,
        prompts: PromptBuilder,
        ledger: Ledger,
        observer: ReplayObserver,
        *,
        run_id: str,
        epoch_wall: float,
        retry: int,
        api_key: str | None,
        stopping: Callable[[], bool],
        timed: bool = True,
    ) -> None:
        self.client = client
        self.turns = turns
        self.prompts = prompts
        self.ledger = ledger
        self.observer = observer
        self.run_id = run_id
        self.epoch_wall = epoch_wall
        self.retry = retry
        self.api_key = api_key
        self.stopping = stopping  # the replay is ending: no more retries
        # turns have due times (arrival trace); saturate has none, so no lateness is measured
        self.timed = timed

    def request_id(self, conversation_id: str, turn: int) -> str:
        return f"{self.run_id}-{conversation_id}-{turn}"

    def send(self, state: ConversationState, turn: Any, prepared: PreparedTurn) -> RequestRecord:
        """Send ``turn`` of ``state`` now (its due time) and account for it; returns its record."""
        conv, built = state.conversation, prepared.built
        led = self.ledger
        # counted when sent, not when prepared: a turn prepared twice (its user was removed while it
        # waited) is one turn
        if prepared.clipped:
            led.prompt_clipped += 1
        if built.dropped_turns:
            led.history_trimmed += 1
        if prepared.raised:
            led.prompt_raised += 1
        request_id = self.request_id(conv.id, turn.index)
        meta = TurnMeta.of(conv, turn, state.label, request_id)
        record = self._new_record(request_id, state.next_due if self.timed else None, prepared)
        first_due = record.scheduled_at
        user_wait = state.user_wait_s
        earlier: list[RequestRecord] = []  # attempts answered 429/503 and sent again
        state.request_started = True  # from here the turn is sent and ends with one outcome
        led.sent += 1
        led.sent_by_class[state.label] += 1
        connection_wait = 0.0
        try:
            connection_wait = self._send(prepared.body, record)
            while self._should_retry(record, len(earlier)):
                due = (record.last_byte_at or time.perf_counter()) + retry_wait_s(record)
                gevent.sleep(max(0.0, due - time.perf_counter()))  # killed here: the last stands
                earlier.append(record)
                led.retries += 1
                self._redact(record)
                self.observer.on_retry(
                    TurnResult(replace(meta, request_id=record.request_id), record)
                )
                record = self._new_record(f"{request_id}.r{len(earlier)}", due, prepared)
                connection_wait = self._send(prepared.body, record)
        finally:
            if record.outcome is None:  # defensive: the client guarantees an outcome
                record.outcome = Outcome.CANCELLED
            for r in (*earlier, record):
                self._redact(r)
            led.outcomes[record.outcome.value] += 1
            # a retried turn stays in the second it was first due; untimed, in the one it was sent
            due = first_due if first_due is not None else (earlier or [record])[0].sent_at
            due_wall = None if due is None else due + record.wall_anchor
            self.observer.on_result(
                TurnResult(
                    replace(meta, request_id=record.request_id),  # the attempt that stands
                    record,
                    scheduled_offset_s=None
                    if due_wall is None
                    else round(due_wall - self.epoch_wall, 6),
                    dropped_turns=built.dropped_turns,
                    retries=tuple(attempt_summary(r) for r in earlier),
                    user_wait_s=user_wait if self.timed else None,
                    connection_wait_s=connection_wait if self.timed else None,
                )
            )
        if record.outcome == Outcome.OK:
            self.prompts.observe(built, record)
            state.history = self.turns.next_history(prepared, record.reply_text)
        return record

    def _send(self, body: dict[str, Any], record: RequestRecord) -> float:
        """Send; returns how long the client waited for a connection (a full pool delays the
        send: part of the lateness, named as such)."""
        called = time.perf_counter()
        self.client.send(body, record)
        return max(0.0, (record.sent_at or called) - called)

    def _new_record(
        self, request_id: str, due: float | None, prepared: PreparedTurn
    ) -> RequestRecord:
        return RequestRecord(
            request_id=request_id,
            scheduled_at=due,
            target_prompt_tokens=prepared.prompt_target,
            expected_prompt_tokens=prepared.built.expected_prompt_tokens,
            target_completion_tokens=prepared.output_target,
        )

    def _should_retry(self, record: RequestRecord, retried: int) -> bool:
        """429/503 before any token, retries left, and the replay not stopping."""
        return (
            retried < self.retry
            and record.outcome == Outcome.HTTP_ERROR
            and record.http_status in RETRY_STATUSES
            and record.first_token_at is None
            and not self.stopping()
        )

    def _redact(self, record: RequestRecord) -> None:
        """A server may echo the API key in an error body ("Invalid API key: ..."): never keep it."""
        key = self.api_key
        if key and record.error and key in record.error:
            record.error = record.error.replace(key, "[api key]")
