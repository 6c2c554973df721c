"""What became of one scheduled request: the one record type on the report path.

Why one type: a request is accounted in several places (the run report, its JSONL file, the timeline,
the generator's health check, Locust's statistics, user hooks), and in a distributed run on another
process than the one that sent it. Each of them reads a ``TurnResult``; it is turned into a plain
dict only at the two edges that need one, a ``requests.jsonl`` line and a worker's message to the
master (``to_json``/``from_json``, the same dict). Times in a JSON line are wall-clock seconds;
chunk times are milliseconds after the send, to 0.01 ms, so a line stays compact.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from locust_burstgpt.client.records import Outcome, RequestRecord

NOT_SENT = "not_sent"


@dataclass(frozen=True)
class TurnMeta:
    """Which trace turn a request replays, repeated on its JSON line."""

    request_id: str
    conversation: str
    turn: int  # 0-based index within the conversation
    turns: int  # the conversation's number of turns
    trace_row: int  # 1-based data row in the trace file
    trace_model: str
    trace_log_type: str
    label: str  # the trace class it is reported under, e.g. "GPT-4 conversation"
    trace_request_tokens: int
    trace_response_tokens: int
    trace_elapsed_s: float | None
    trace_elapsed_estimated: bool

    @classmethod
    def of(cls, conversation: Any, turn: Any, label: str, request_id: str) -> TurnMeta:
        """The identity of ``turn`` of ``conversation`` (trace objects, see ``trace.conversations``)."""
        return cls(
            request_id=request_id,
            conversation=conversation.id,
            turn=turn.index,
            turns=len(conversation.turns),
            trace_row=turn.row,
            trace_model=conversation.model,
            trace_log_type=conversation.log_type,
            label=label,
            trace_request_tokens=turn.request_tokens,
            trace_response_tokens=turn.response_tokens,
            trace_elapsed_s=turn.elapsed_s,
            trace_elapsed_estimated=turn.elapsed_estimated,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "conversation": self.conversation,
            "turn": self.turn,
            "turns": self.turns,
            "trace_row": self.trace_row,
            "trace_model": self.trace_model,
            "trace_log_type": self.trace_log_type,
            "class": self.label,
            "trace_request_tokens": self.trace_request_tokens,
            "trace_response_tokens": self.trace_response_tokens,
            "trace_elapsed_s": self.trace_elapsed_s,
            "trace_elapsed_estimated": self.trace_elapsed_estimated,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TurnMeta:
        return cls(
            request_id=str(d.get("request_id")),
            conversation=str(d.get("conversation")),
            turn=int(d.get("turn") or 0),
            turns=int(d.get("turns") or 0),
            trace_row=int(d.get("trace_row") or 0),
            trace_model=str(d.get("trace_model")),
            trace_log_type=str(d.get("trace_log_type")),
            label=str(d.get("class") or "all"),
            trace_request_tokens=int(d.get("trace_request_tokens") or 0),
            trace_response_tokens=int(d.get("trace_response_tokens") or 0),
            trace_elapsed_s=d.get("trace_elapsed_s"),
            trace_elapsed_estimated=bool(d.get("trace_elapsed_estimated")),
        )


@dataclass(eq=False)
class TurnResult:
    """One scheduled request's end: sent (with the client's record and its one outcome) or not sent
    (with the reason)."""

    meta: TurnMeta
    record: RequestRecord | None = None  # None: not sent
    scheduled_offset_s: float | None = None  # when it was due, seconds after the replay's start
    not_sent_reason: str | None = None
    # not sent, and its due time was never known (it depended on a reply that never came): the
    # scheduled offset is the turn's trace time, a placeholder for the timeline
    due_nominal: bool = False
    error: str | None = None  # why a turn was not sent (its prompt could not be built)
    dropped_turns: int = 0  # oldest turns left out of the prompt (history over the target)
    retries: tuple[dict[str, Any], ...] = ()  # earlier attempts answered 429/503 and sent again
    # where its lateness came from (None when it had no due time): waiting for a Locust user to
    # take its conversation (strict curve), waiting for a free connection of the client's pool;
    # the rest of the lateness is the event loop's (the generator itself)
    user_wait_s: float | None = None
    connection_wait_s: float | None = None
    # the JSON form this result was read from (a worker's message): written out as it came
    _json: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def sent(self) -> bool:
        return self.record is not None

    @property
    def label(self) -> str:
        return self.meta.label

    @property
    def outcome(self) -> str:
        """The outcome's name, ``not_sent`` for a request never sent."""
        if self.record is None:
            return NOT_SENT
        return self.record.outcome.value if self.record.outcome is not None else "none"

    @property
    def lateness(self) -> float | None:
        return None if self.record is None else self.record.lateness

    def wall(self, t: float | None) -> float | None:
        """An instant of the record as wall-clock seconds."""
        return None if self.record is None else self.record.wall(t)

    # -- the JSON edge -----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The ``requests.jsonl`` line (and a worker's message) for this result."""
        if self._json is not None:
            return self._json
        rec = self.record
        if rec is None:
            d: dict[str, Any] = {
                "request_id": self.meta.request_id,
                "outcome": NOT_SENT,
                "not_sent_reason": self.not_sent_reason,
                "scheduled_offset_s": self.scheduled_offset_s,
                "scheduled_offset_nominal": self.due_nominal,
                **self.meta.to_json(),
            }
            if self.error is not None:
                d["error"] = self.error
            return d
        d = rec.to_dict()
        d["chunk_ms"] = chunk_offsets_ms(rec.chunk_times, rec.sent_at)
        d["scheduled_offset_s"] = self.scheduled_offset_s
        d.update(self.meta.to_json())
        d["dropped_turns"] = self.dropped_turns
        d["user_wait_s"] = self.user_wait_s
        d["connection_wait_s"] = self.connection_wait_s
        if self.retries:
            d["retries"] = list(self.retries)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> TurnResult:
        """A result from its JSON form; the record's times are wall-clock seconds."""
        meta = TurnMeta.from_json(d)
        if d.get("outcome") == NOT_SENT:
            return cls(
                meta,
                None,
                scheduled_offset_s=d.get("scheduled_offset_s"),
                not_sent_reason=d.get("not_sent_reason"),
                due_nominal=bool(d.get("scheduled_offset_nominal")),
                error=d.get("error"),
                _json=d,
            )
        return cls(
            meta,
            _record_from_json(d),
            scheduled_offset_s=d.get("scheduled_offset_s"),
            dropped_turns=int(d.get("dropped_turns") or 0),
            retries=tuple(d.get("retries") or ()),
            user_wait_s=d.get("user_wait_s"),
            connection_wait_s=d.get("connection_wait_s"),
            _json=d,
        )


def not_sent(
    meta: TurnMeta,
    reason: str,
    scheduled_offset_s: float | None,
    error: str | None = None,
    nominal: bool = False,
) -> TurnResult:
    """A scheduled request that was never sent, with the reason (``nominal``: the due time is the
    turn's trace time, its real one was never known)."""
    return TurnResult(
        meta,
        None,
        scheduled_offset_s=scheduled_offset_s,
        not_sent_reason=reason,
        due_nominal=nominal,
        error=error,
    )


def attempt_summary(record: RequestRecord) -> dict[str, Any]:
    """An earlier attempt of a retried request, as listed in its line's ``retries``."""
    d = record.to_dict()
    keys = (
        "request_id",
        "outcome",
        "http_status",
        "error",
        "scheduled_at",
        "sent_at",
        "last_byte_at",
        "retry_after_s",
    )
    return {k: d[k] for k in keys}


def chunk_offsets_ms(times: Any, sent: float | None) -> list[float]:
    """Chunk arrival times as milliseconds after the send, to 0.01 ms (vectorised: one per token)."""
    if sent is None or not len(times):
        return []
    return np.round((np.asarray(times, dtype=np.float64) - sent) * 1000.0, 2).tolist()


def _record_from_json(d: dict[str, Any]) -> RequestRecord:
    """The client record of a JSON line (times in wall-clock seconds, so ``wall_anchor`` is 0)."""
    sent = d.get("sent_at")
    chunk_ms = d.get("chunk_ms")
    chunks = array("d")
    if sent is not None and chunk_ms:  # vectorised: one value per streamed token
        chunks.frombytes((np.asarray(chunk_ms, dtype=np.float64) / 1000.0 + sent).tobytes())
    try:
        outcome = Outcome(d.get("outcome"))
    except ValueError:
        outcome = None  # not one of ours: the record has no outcome, which the books will show
    return RequestRecord(
        request_id=str(d.get("request_id")),
        scheduled_at=d.get("scheduled_at"),
        sent_at=sent,
        first_token_at=d.get("first_token_at"),
        chunk_times=chunks,
        last_byte_at=d.get("last_byte_at"),
        prompt_tokens=d.get("prompt_tokens"),
        completion_tokens=d.get("completion_tokens"),
        cached_tokens=d.get("cached_tokens"),
        finish_reason=d.get("finish_reason"),
        http_status=d.get("http_status"),
        outcome=outcome,
        error=d.get("error"),
        wall_anchor=0.0,
        attempts=int(d.get("attempts") or 0),
        retry_after_s=d.get("retry_after_s"),
        target_prompt_tokens=d.get("target_prompt_tokens"),
        expected_prompt_tokens=d.get("expected_prompt_tokens"),
        target_completion_tokens=d.get("target_completion_tokens"),
    )
