"""Everything a run produced, on the process that reports it (the master, or the only process).

Every scheduled request reaches ``add`` exactly once as a ``TurnResult``, whether it was sent by this
process or shipped from a worker, so the JSONL file, the timeline, the metrics store and the
entry-based reconciliation all see the same requests.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

from locust_burstgpt.metrics import MetricsStore, PerRequestSLO
from locust_burstgpt.replay.results import TurnResult
from locust_burstgpt.report.requests_log import RequestsLog
from locust_burstgpt.report.timeline import Timeline

log = logging.getLogger("locust_burstgpt")


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

    def add(self, result: TurnResult) -> None:
        self.entries += 1
        if self.requests_log is not None:
            self.requests_log.write(result.to_json())
        self.timeline.add(result)
        label = result.label
        if result.record is None:
            self.not_sent[result.not_sent_reason or "unknown"] += 1
            self.not_sent_by_class[label] += 1
            return
        self.outcomes[result.outcome] += 1
        self.metrics.record(
            label,
            result.record,
            recorded_elapsed_s=result.meta.trace_elapsed_s,
            trace_prompt_tokens=result.meta.trace_request_tokens,
        )

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
