"""The per-second timeline of a run (``timeline.csv`` and the live charts).

Requests are placed by their own instants, so a second's row becomes final only once the requests
scheduled in it have ended; rows are computed on demand from counters and small per-second lists.
Seconds are counted from the replay's start (trace offset 0).
"""

from __future__ import annotations

import bisect
import csv
import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from locust_burstgpt.replay.results import TurnResult

OUTCOMES = (
    "ok",
    "http_error",
    "timeout_before_first_token",
    "timeout_mid_stream",
    "connection_error",
    "stream_cut",
    "protocol_error",
    "cancelled",
)


# A second's TTFT/TPOT lists become two final percentiles once requests have ended this much later:
# those values are placed at a request's end, and its entry reaches the report within a few seconds
# (the local queue, or a worker's next batch), so later additions do not happen in practice. Counted
# if they do (``Timeline.stale_values``) and reported; the run's own metrics always hold every value.
HORIZON_S = 30
TAIL_SPARE = (
    8  # lateness values kept beyond the p99's rank, for requests of that second still running
)


class _Tail:
    """The largest lateness values of a finished second: enough to give its exact p99 later.

    Why: lateness is placed at the send second but known only when the request ends, possibly
    minutes later, so a second's lateness keeps growing after its other figures are final. The p99
    (inverted CDF) of ``n`` values is the ``n - ceil(0.99 n)``-th largest, so only about 1 % of the
    values (plus ``TAIL_SPARE``, and twice the share for later growth) need to be kept.
    """

    __slots__ = ("n", "top", "floor")

    def __init__(self, values: list[float]) -> None:
        self.n = 0
        self.top: list[float] = []  # the largest values seen, largest first
        self.floor = -math.inf  # the largest value dropped: every kept value is above it
        for v in sorted(values, reverse=True):
            self.add(v)

    def add(self, value: float) -> None:
        self.n += 1
        if value <= self.floor:
            return
        bisect.insort(self.top, value, key=lambda v: -v)
        keep = 2 * (self.n // 100) + TAIL_SPARE
        if len(self.top) > keep:
            self.floor = max(self.floor, self.top[keep])
            del self.top[keep:]

    def p99(self) -> float | None:
        if self.n == 0:
            return None
        rank = self.n - 1 - _inverted_cdf_index(self.n, 0.99)  # position counted from the largest
        # past the kept values only after over 1 % of a second's requests arrived later than the
        # others; the largest value dropped is then an upper bound
        return self.top[rank] if rank < len(self.top) else self.floor


def _inverted_cdf_index(n: int, q: float) -> int:
    """0-based index of numpy's ``inverted_cdf`` percentile in ``n`` sorted values."""
    qn = q * n
    j = math.floor(qn)
    return j if qn - j > 0 else max(j - 1, 0)


class _Second:
    """One second's counts; its TTFT/TPOT/lateness lists are compacted once the second is final."""

    __slots__ = (
        "scheduled",
        "sent",
        "completed",
        "not_sent",
        "outcomes",
        "output_tokens",
        "ttft",
        "tpot",
        "lateness",
        "starts",
        "ends",
        "final",
    )

    def __init__(self) -> None:
        self.scheduled = self.sent = self.completed = self.not_sent = 0
        self.outcomes: dict[str, int] = {}
        self.output_tokens = 0
        self.ttft: list[float] = []
        self.tpot: list[float] = []
        self.lateness: list[float] | _Tail = []
        # started/ended intervals give requests in flight
        self.starts = self.ends = 0
        self.final: tuple[float | None, float | None, float | None, float | None] | None = None

    def compact(self) -> None:
        self.final = (
            _pct(self.ttft, 50),
            _pct(self.ttft, 99),
            _pct(self.tpot, 50),
            _pct(self.tpot, 99),
        )
        self.ttft = self.tpot = _NONE
        if isinstance(self.lateness, list):
            self.lateness = _Tail(self.lateness)

    def percentiles(self) -> tuple[float | None, ...]:
        if self.final is not None:
            ttft_tpot = self.final
        else:
            ttft_tpot = (
                _pct(self.ttft, 50),
                _pct(self.ttft, 99),
                _pct(self.tpot, 50),
                _pct(self.tpot, 99),
            )
        late = self.lateness.p99() if isinstance(self.lateness, _Tail) else _pct(self.lateness, 99)
        return (*ttft_tpot, late)


_NONE: list[float] = []  # shared by compacted seconds; never appended to


def _sec(t: float | None, epoch: float) -> int | None:
    if t is None:
        return None
    return int(math.floor(t - epoch))


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return float(np.percentile(np.asarray(values), q, method="inverted_cdf"))


class Timeline:
    """Per-second counts and percentiles; memory grows with the run's seconds, not its requests."""

    def __init__(self, epoch_wall: float) -> None:
        self.epoch = epoch_wall
        self._s: dict[int, _Second] = defaultdict(_Second)
        self._open: set[int] = set()  # seconds whose TTFT/TPOT lists are not compacted yet
        self._newest_end = -math.inf
        self.stale_values = 0  # TTFT/TPOT values that arrived after their second was final
        self.targets: dict[int, int] = {}
        self.users: dict[int, int] = {}
        self.curve_users: dict[int, int] = {}
        self.in_progress: dict[int, int] = {}
        self._server_keys: list[str] = []  # column order of the server values below
        self._server: dict[int, list[float | None]] = {}

    def add(self, result: TurnResult) -> None:
        """Count one scheduled request's end."""
        sched = result.scheduled_offset_s
        if sched is not None:
            self._s[int(math.floor(sched))].scheduled += 1
        rec = result.record
        if rec is None:
            if sched is not None:
                self._s[int(math.floor(sched))].not_sent += 1
            return
        sent = _sec(rec.wall(rec.sent_at), self.epoch)
        end = _sec(rec.wall(rec.last_byte_at), self.epoch)
        if sent is not None:
            s = self._s[sent]
            s.sent += 1
            s.starts += 1
            lateness = rec.lateness
            if lateness is not None:
                if isinstance(s.lateness, _Tail):
                    s.lateness.add(lateness)
                else:
                    s.lateness.append(lateness)
                    self._open.add(sent)
        done = end if end is not None else sent
        if done is not None:
            s = self._s[done]
            s.completed += 1
            s.ends += 1
            outcome = result.outcome
            s.outcomes[outcome] = s.outcomes.get(outcome, 0) + 1
            self._book_tokens(rec, done)
            if outcome == "ok":
                for value, values in ((rec.ttft, s.ttft), (rec.tpot, s.tpot)):
                    if value is None:
                        continue
                    if s.final is not None:
                        self.stale_values += 1
                    else:
                        values.append(value)
            if s.final is None:
                self._open.add(done)
            if done > self._newest_end:
                self._newest_end = done
                self._compact_before(done - HORIZON_S)

    def _compact_before(self, second: float) -> None:
        for sec in [k for k in self._open if k < second]:
            self._open.discard(sec)
            self._s[sec].compact()

    def _book_tokens(self, rec: Any, done: int) -> None:
        """A request's output tokens in the seconds its chunks arrived (usage's count spread evenly
        over the chunks, since a server may put several tokens in one), as the server generated
        them; not all in the second the request ended."""
        n = int(rec.completion_tokens or 0)
        times = rec.chunk_times
        if n <= 0:
            return
        if not len(times):
            self._s[done].output_tokens += n
            return
        secs = np.floor(
            np.asarray(times, dtype=np.float64) + (rec.wall_anchor - self.epoch)
        ).astype(np.int64)
        if secs[0] == secs[-1]:
            self._s[int(secs[0])].output_tokens += n
            return
        base, extra = divmod(n, len(secs))
        per = np.full(len(secs), base, dtype=np.int64)
        per[:extra] += 1
        seconds, where = np.unique(secs, return_inverse=True)
        for sec, tokens in zip(
            seconds.tolist(), np.bincount(where, weights=per).tolist(), strict=True
        ):
            self._s[sec].output_tokens += int(tokens)

    def note_target(
        self,
        second: int,
        target: int | None,
        users: int | None,
        curve: int | None = None,
        in_progress: int | None = None,
    ) -> None:
        """The shape's target, Locust's users, the users the trace's curve alone asks for, and the
        conversations in progress, in ``second``."""
        self.targets[second] = target
        self.users[second] = users
        if curve is not None:
            self.curve_users[second] = curve
        if in_progress is not None:
            self.in_progress[second] = in_progress

    def note_server(self, second: int, values: dict[str, float]) -> None:
        """Server metrics for a second; a second scraped twice (the final scrape) adds its counter
        deltas and keeps the newer gauges."""
        from locust_burstgpt.report.server_metrics import COUNTERS

        keys = self._server_keys
        for key in values:
            if key not in keys:
                keys.append(key)
        known = self._server.get(second)
        if known is None:
            known = self._server[second] = []
        known.extend([None] * (len(keys) - len(known)))
        for key, value in values.items():
            i = keys.index(key)
            old = known[i]
            known[i] = old + value if key in COUNTERS and old is not None else value

    def note_server_spread(self, start: float, end: float, values: dict[str, float]) -> None:
        """Server metrics scraped at ``end`` whose counters moved since a scrape at ``start``
        (replay offsets): counter deltas spread over those seconds by overlap, gauges at ``end``."""
        from locust_burstgpt.report.server_metrics import COUNTERS

        parts = overlap_weights(start, end)
        last = parts[-1][0]
        for second, weight in parts:
            share = {k: v * weight for k, v in values.items() if k in COUNTERS}
            if second == last:
                share.update({k: v for k, v in values.items() if k not in COUNTERS})
            self.note_server(second, share)

    def server_values(self, second: int) -> dict[str, float]:
        """The server metrics noted for ``second`` (empty if none)."""
        known = self._server.get(second) or []
        return {k: v for k, v in zip(self._server_keys, known, strict=False) if v is not None}

    def rows(self, upto: int | None = None) -> list[dict[str, Any]]:
        """One dict per second from 0 to the last second seen (or ``upto``)."""
        keys = set(self._s) | set(self.targets) | set(self._server)
        if not keys:
            return []
        last = max(keys) if upto is None else upto
        server_keys = sorted(self._server_keys)
        rows = []
        in_flight = 0
        empty = _Second()
        for sec in range(min(0, min(keys)), last + 1):
            s = self._s.get(sec, empty)
            in_flight += s.starts - s.ends
            ttft50, ttft99, tpot50, tpot99, late99 = s.percentiles()
            row: dict[str, Any] = {
                "second": sec,
                "curve_users": self.curve_users.get(sec),
                "target_users": self.targets.get(sec),
                "actual_users": self.users.get(sec),
                "conversations_in_progress": self.in_progress.get(sec),
                "scheduled": s.scheduled,
                "sent": s.sent,
                "not_sent": s.not_sent,
                "in_flight": max(in_flight, 0),
                "completed": s.completed,
                **{f"outcome_{o}": s.outcomes.get(o, 0) for o in OUTCOMES},
                "output_tokens": s.output_tokens,
                "ttft_p50_s": ttft50,
                "ttft_p99_s": ttft99,
                "tpot_p50_s": tpot50,
                "tpot_p99_s": tpot99,
                "lateness_p99_s": late99,
            }
            server = self.server_values(sec)
            for k in server_keys:
                row[f"server_{k}"] = server.get(k)
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


def overlap_weights(start: float, end: float) -> list[tuple[int, float]]:
    """Each whole second that [start, end] touches, with the share of the interval inside it."""
    first, last = math.floor(start), math.floor(end)
    if end <= start or first == last:
        return [(int(last), 1.0)]
    span = end - start
    return [
        (int(sec), (min(end, sec + 1) - max(start, sec)) / span) for sec in range(first, last + 1)
    ]
