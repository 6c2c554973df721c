"""Everything a run produced, on the process that reports it (the master, or the only process).

Every scheduled request reaches ``add`` exactly once as an entry dict (``entries.py``), whether it
was sent by this process or shipped from a worker, so the JSONL file, the timeline, the metrics
store and the entry-based reconciliation all see the same requests.
"""

from __future__ import annotations

import json
import logging
from array import array
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from locust_burstgpt.client import Outcome, RequestRecord
from locust_burstgpt.metrics import MetricsStore, PerRequestSLO
from locust_burstgpt.report.requests_log import RequestsLog
from locust_burstgpt.report.timeline import Timeline

log = logging.getLogger("locust_burstgpt")


def entry_to_record(entry: dict[str, Any]) -> RequestRecord:
    """Rebuild a client record (times in wall-clock seconds) from a shipped entry."""
    sent = entry.get("sent_at")
    chunk_ms = entry.get("chunk_ms")
    chunks = array("d")
    if sent is not None and chunk_ms:  # vectorised: one value per streamed token
        chunks.frombytes((np.asarray(chunk_ms, dtype=np.float64) / 1000.0 + sent).tobytes())
    outcome = entry.get("outcome")
    return RequestRecord(
        request_id=str(entry.get("request_id")),
        scheduled_at=entry.get("scheduled_at"),
        sent_at=sent,
        first_token_at=entry.get("first_token_at"),
        chunk_times=chunks,
        last_byte_at=entry.get("last_byte_at"),
        prompt_tokens=entry.get("prompt_tokens"),
        completion_tokens=entry.get("completion_tokens"),
        cached_tokens=entry.get("cached_tokens"),
        finish_reason=entry.get("finish_reason"),
        http_status=entry.get("http_status"),
        outcome=Outcome(outcome) if outcome and outcome != "not_sent" else None,
        error=entry.get("error"),
        wall_anchor=0.0,
        target_prompt_tokens=entry.get("target_prompt_tokens"),
        expected_prompt_tokens=entry.get("expected_prompt_tokens"),
        target_completion_tokens=entry.get("target_completion_tokens"),
    )


class RunReport:
    def __init__(
        self, epoch_wall: float, report_dir: str | None, per_request_limits: dict[str, float]
    ) -> None:
        self.epoch_wall = epoch_wall
        self.dir = Path(report_dir) if report_dir else None
        slo = (
            PerRequestSLO(**{f"{k}_s": v for k, v in per_request_limits.items()})
            if per_request_limits
            else None
        )
        self.metrics = MetricsStore(slo=slo)
        self.timeline = Timeline(epoch_wall)
        self.entries = 0
        self.outcomes: Counter = Counter()
        self.not_sent: Counter = Counter()
        self.not_sent_by_class: Counter = Counter()  # per class; ended ones are in metrics.classes
        self.requests_log = RequestsLog(self.dir / "requests.jsonl") if self.dir else None

    def add(self, entry: dict[str, Any]) -> None:
        self.entries += 1
        if self.requests_log is not None:
            self.requests_log.write(entry)
        self.timeline.add(entry)
        outcome = entry.get("outcome")
        label = entry.get("class") or "all"
        if outcome == "not_sent":
            self.not_sent[entry.get("not_sent_reason") or "unknown"] += 1
            self.not_sent_by_class[label] += 1
            return
        self.outcomes[outcome] += 1
        record = entry_to_record(entry)
        self.metrics.record(label, record, recorded_elapsed_s=entry.get("trace_elapsed_s"))

    def flush(self) -> None:
        if self.requests_log is not None:
            self.requests_log.flush()

    def close(self) -> None:
        if self.requests_log is not None:
            self.requests_log.close()

    def entry_ledger(self) -> dict[str, Any]:
        """Counts from the entries themselves (cross-checks the processes' counters)."""
        sent = sum(self.outcomes.values())
        return {
            "entries": self.entries,
            "sent": sent,
            "outcomes": dict(self.outcomes),
            "not_sent": dict(self.not_sent),
        }

    def write_json(self, name: str, data: Any) -> Path | None:
        if self.dir is None:
            return None
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / name
        path.write_text(json.dumps(data, indent=2, default=str))
        return path
