"""The per-second timeline of a run (``timeline.csv`` and the live charts).

Requests are placed by their own instants, so a second's row becomes final only once the requests
scheduled in it have ended; rows are computed on demand from counters and small per-second lists.
Seconds are counted from the replay's start (trace offset 0).
"""

from __future__ import annotations

import csv
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

OUTCOMES = ("ok", "http_error", "timeout_before_first_token", "timeout_mid_stream", "connection_error",
            "stream_cut", "protocol_error", "cancelled")


@dataclass
class _Second:
    scheduled: int = 0
    sent: int = 0
    completed: int = 0
    not_sent: int = 0
    outcomes: Counter = field(default_factory=Counter)
    output_tokens: int = 0
    ttft: list[float] = field(default_factory=list)
    tpot: list[float] = field(default_factory=list)
    lateness: list[float] = field(default_factory=list)
    # started/ended intervals give requests in flight
    starts: int = 0
    ends: int = 0


def _sec(t: float | None, epoch: float) -> int | None:
    if t is None:
        return None
    return int(math.floor(t - epoch))


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values), q, method="inverted_cdf"))


class Timeline:
    def __init__(self, epoch_wall: float) -> None:
        self.epoch = epoch_wall
        self._s: dict[int, _Second] = defaultdict(_Second)
        self.targets: dict[int, int] = {}
        self.users: dict[int, int] = {}
        self.server: dict[int, dict[str, float]] = {}

    def add(self, entry: dict[str, Any]) -> None:
        """Count one request entry (see ``entries.py``)."""
        sched = entry.get("scheduled_offset_s")
        if sched is not None:
            self._s[int(math.floor(sched))].scheduled += 1
        if entry.get("outcome") == "not_sent":
            if sched is not None:
                self._s[int(math.floor(sched))].not_sent += 1
            return
        sent = _sec(entry.get("sent_at"), self.epoch)
        end = _sec(entry.get("last_byte_at"), self.epoch)
        if sent is not None:
            s = self._s[sent]
            s.sent += 1
            s.starts += 1
            if entry.get("lateness") is not None:
                s.lateness.append(entry["lateness"])
        done = end if end is not None else sent
        if done is not None:
            s = self._s[done]
            s.completed += 1
            s.ends += 1
            s.outcomes[entry.get("outcome") or "unknown"] += 1
            s.output_tokens += int(entry.get("completion_tokens") or 0)
            if entry.get("ttft") is not None and entry.get("outcome") == "ok":
                s.ttft.append(entry["ttft"])
            if entry.get("tpot") is not None and entry.get("outcome") == "ok":
                s.tpot.append(entry["tpot"])

    def note_target(self, second: int, target: int, users: int) -> None:
        self.targets[second] = target
        self.users[second] = users

    def note_server(self, second: int, values: dict[str, float]) -> None:
        """Server metrics for a second; a second scraped twice (the final scrape) adds its counter
        deltas and keeps the newer gauges."""
        from locust_burstgpt.report.server_metrics import COUNTERS

        known = self.server.get(second)
        if known is None:
            self.server[second] = dict(values)
            return
        for key, value in values.items():
            known[key] = known.get(key, 0.0) + value if key in COUNTERS else value

    def rows(self, upto: int | None = None) -> list[dict[str, Any]]:
        """One dict per second from 0 to the last second seen (or ``upto``)."""
        keys = set(self._s) | set(self.targets) | set(self.server)
        if not keys:
            return []
        last = max(keys) if upto is None else upto
        server_keys = sorted({k for v in self.server.values() for k in v})
        rows = []
        in_flight = 0
        for sec in range(min(0, min(keys)), last + 1):
            s = self._s.get(sec, _Second())
            in_flight += s.starts - s.ends
            row: dict[str, Any] = {
                "second": sec,
                "target_users": self.targets.get(sec),
                "actual_users": self.users.get(sec),
                "scheduled": s.scheduled,
                "sent": s.sent,
                "not_sent": s.not_sent,
                "in_flight": max(in_flight, 0),
                "completed": s.completed,
                **{f"outcome_{o}": s.outcomes.get(o, 0) for o in OUTCOMES},
                "output_tokens": s.output_tokens,
                "ttft_p50_s": _pct(s.ttft, 50), "ttft_p99_s": _pct(s.ttft, 99),
                "tpot_p50_s": _pct(s.tpot, 50), "tpot_p99_s": _pct(s.tpot, 99),
                "lateness_p99_s": _pct(s.lateness, 99),
            }
            for k in server_keys:
                row[f"server_{k}"] = self.server.get(sec, {}).get(k)
            rows.append(row)
        return rows

    def write_csv(self, path: Path) -> int:
        rows = self.rows()
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            if not rows:
                f.write("second\n")
                return 0
            w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if v is None else v) for k, v in r.items()})
        return len(rows)
