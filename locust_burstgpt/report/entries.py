"""One plain dict per scheduled request: what ``requests.jsonl`` holds and what workers ship to the
master. Times are wall-clock seconds (comparable across processes on NTP-synced hosts); chunk
times are milliseconds after the send, rounded to 0.01 ms, so a line stays compact."""

from __future__ import annotations

from typing import Any

import numpy as np


def request_entry(record: Any, meta: dict[str, Any], epoch_wall: float) -> dict[str, Any]:
    """Entry for a request that was sent (``record`` is a client RequestRecord)."""
    entry = record.to_dict()
    sent = record.sent_at
    entry["chunk_ms"] = chunk_offsets_ms(record.chunk_times, sent)
    entry["scheduled_offset_s"] = (
        None if entry["scheduled_at"] is None else round(entry["scheduled_at"] - epoch_wall, 6)
    )
    entry.update(meta)
    return entry


def not_sent_entry(
    meta: dict[str, Any], reason: str, scheduled_offset_s: float | None
) -> dict[str, Any]:
    """Entry for a scheduled request that was never sent, with the reason."""
    return {
        "request_id": meta.get("request_id"),
        "outcome": "not_sent",
        "not_sent_reason": reason,
        "scheduled_offset_s": scheduled_offset_s,
        **meta,
    }


def turn_meta(conversation: Any, turn: Any, label: str, request_id: str) -> dict[str, Any]:
    """Trace identity of a turn, repeated on its entry."""
    return {
        "request_id": request_id,
        "conversation": conversation.id,
        "turn": turn.index,
        "turns": len(conversation.turns),
        "trace_row": turn.row,
        "trace_model": conversation.model,
        "trace_log_type": conversation.log_type,
        "class": label,
        "trace_request_tokens": turn.request_tokens,
        "trace_response_tokens": turn.response_tokens,
        "trace_elapsed_s": turn.elapsed_s,
        "trace_elapsed_estimated": turn.elapsed_estimated,
    }


def chunk_offsets_ms(times: Any, sent: float | None) -> list[float]:
    """Chunk arrival times as milliseconds after the send, to 0.01 ms (vectorised: one per token)."""
    if sent is None or not len(times):
        return []
    return np.round((np.asarray(times, dtype=np.float64) - sent) * 1000.0, 2).tolist()
