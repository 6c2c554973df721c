"""What one request did: its timeline, token counts and exactly one outcome.

Why a dataclass of raw timestamps rather than finished metrics: every metric (TTFT, ITL, TPOT,
E2E, lateness) is derived from the same few instants, so they can never disagree with each other,
and reports can recompute anything later. Times are ``time.perf_counter()`` seconds of this
process; ``wall_anchor`` converts them to wall-clock time (``t + wall_anchor``) for merging
across processes.
"""

from __future__ import annotations

import time
from array import array
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

#: ``time.time() - time.perf_counter()`` at import: adding it to a perf_counter reading gives
#: the wall-clock time of that instant in this process.
WALL_ANCHOR: float = time.time() - time.perf_counter()


class Outcome(str, Enum):
    """The one way a request ended. Every request the client sends gets exactly one."""

    OK = "ok"
    HTTP_ERROR = "http_error"  # non-200 status, or an error object inside the stream
    TIMEOUT_BEFORE_FIRST_TOKEN = "timeout_before_first_token"
    TIMEOUT_MID_STREAM = "timeout_mid_stream"
    CONNECTION_ERROR = "connection_error"  # no response: connect/TLS/reset before the status line
    STREAM_CUT = "stream_cut"  # response started, then the stream ended before it was complete
    PROTOCOL_ERROR = "protocol_error"  # unparseable HTTP, SSE or JSON
    CANCELLED = "cancelled"  # the calling greenlet was killed (e.g. the test stopped)


def _times() -> array:
    return array("d")


@dataclass(eq=False)
class RequestRecord:
    """One request's timeline and result; the client fills it in place."""

    request_id: str
    scheduled_at: float | None = None  # when the workload wanted it sent (perf_counter)
    sent_at: float | None = None  # when the client started it (after getting a pool slot)
    first_token_at: float | None = None  # arrival of the first chunk carrying content
    chunk_times: array = field(default_factory=_times)  # arrival of every content chunk
    last_byte_at: float | None = None  # arrival of the last byte of the stream
    prompt_tokens: int | None = None  # from the server's ``usage``
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    finish_reason: str | None = None
    http_status: int | None = None
    outcome: Outcome | None = None
    error: str | None = None
    reply_text: str = ""  # the assistant text received: the next turn's history
    # -- additions ---------------------------------------------------------------------------
    wall_anchor: float = WALL_ANCHOR
    attempts: int = 0  # 2 when a stale keep-alive connection forced one resend
    retry_after_s: float | None = None  # Retry-After of a 429/503, when the server sent one
    target_prompt_tokens: int | None = None  # what the workload asked for (optional, for reports)
    expected_prompt_tokens: int | None = None  # what the prompt builder says it built
    target_completion_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # free-form annotations of the caller

    # -- derived metrics (seconds; None when the instants they need are missing) ---------------
    @property
    def ttft(self) -> float | None:
        """Time to first token: first content chunk - send."""
        if self.first_token_at is None or self.sent_at is None:
            return None
        return self.first_token_at - self.sent_at

    @property
    def e2e(self) -> float | None:
        """End-to-end latency: last byte - send."""
        if self.last_byte_at is None or self.sent_at is None:
            return None
        return self.last_byte_at - self.sent_at

    @property
    def tpot(self) -> float | None:
        """Time per output token after the first, vLLM's definition: (E2E - TTFT) / (n - 1)."""
        n = self.completion_tokens
        e2e, ttft = self.e2e, self.ttft
        if n is None or n < 2 or e2e is None or ttft is None:
            return None
        return (e2e - ttft) / (n - 1)

    @property
    def itls(self) -> list[float]:
        """Inter-token latencies: gaps between consecutive content chunks."""
        t = self.chunk_times
        return [t[i] - t[i - 1] for i in range(1, len(t))]

    @property
    def lateness(self) -> float | None:
        """Send - scheduled: how late the generator was (coordinated omission shows here)."""
        if self.sent_at is None or self.scheduled_at is None:
            return None
        return self.sent_at - self.scheduled_at

    def wall(self, t: float | None) -> float | None:
        """A perf_counter instant of this record as wall-clock seconds."""
        return None if t is None else t + self.wall_anchor

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/msgpack-safe view (times as wall-clock seconds)."""
        return {
            "request_id": self.request_id,
            "outcome": self.outcome.value if self.outcome is not None else None,
            "http_status": self.http_status,
            "error": self.error,
            "scheduled_at": self.wall(self.scheduled_at),
            "sent_at": self.wall(self.sent_at),
            "first_token_at": self.wall(self.first_token_at),
            "last_byte_at": self.wall(self.last_byte_at),
            "ttft": self.ttft,
            "e2e": self.e2e,
            "tpot": self.tpot,
            "lateness": self.lateness,
            "chunks": len(self.chunk_times),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached_tokens": self.cached_tokens,
            "finish_reason": self.finish_reason,
            "attempts": self.attempts,
            "retry_after_s": self.retry_after_s,
            "target_prompt_tokens": self.target_prompt_tokens,
            "expected_prompt_tokens": self.expected_prompt_tokens,
            "target_completion_tokens": self.target_completion_tokens,
        }
