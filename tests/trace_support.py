"""Helpers shared by the trace tests: tiny trace files and an independent reader (no tests here)."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from tests.support import HEADER_1, HEADER_3

HEADER_6 = HEADER_1.split(",")
HEADER_8 = HEADER_3.split(",")


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def row8(
    ts: float,
    sid: str | None,
    elapsed: float,
    req: int,
    resp: int,
    model: str = "ChatGPT",
    log: str | None = None,
) -> list[object]:
    log = log or ("Conversation log" if sid else "API log")
    return [ts, sid or "", elapsed, model, req, resp, req + resp, log]


@dataclass
class PlainRow:
    row: int
    ts: float
    sid: str | None
    elapsed: float | None
    model: str
    req: int
    resp: int
    total: int
    log: str


def read_plain(path: Path) -> list[PlainRow]:
    """Read a BurstGPT CSV with the csv module only (an implementation independent of ours)."""
    out = []
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        for i, r in enumerate(reader, start=1):
            el = r.get("Elapsed time")
            out.append(
                PlainRow(
                    row=i,
                    ts=float(r["Timestamp"]),
                    sid=r.get("Session ID") or None,
                    elapsed=float(el) if el not in (None, "") else None,
                    model=r["Model"],
                    req=int(r["Request tokens"]),
                    resp=int(r["Response tokens"]),
                    total=int(r["Total tokens"]),
                    log=r["Log Type"],
                )
            )
    return out


def brute_schedule(
    rows: list[PlainRow], window_start: float, speedup: float, elapsed_of
) -> list[list[tuple[float, float, PlainRow, float]]]:
    """Conversations as lists of (scheduled start, service, row, scaled think), straight from the
    product definition: group by Session ID in time order, single rows alone, replay model."""
    groups: dict[str, list[PlainRow]] = {}
    convs: list[list[PlainRow]] = []
    for r in rows:
        if r.sid:
            if r.sid not in groups:
                groups[r.sid] = []
                convs.append(groups[r.sid])
            groups[r.sid].append(r)
        else:
            convs.append([r])
    out = []
    for turns in convs:
        turns = sorted(turns, key=lambda r: (r.ts, r.row))
        t = (turns[0].ts - window_start) / speedup
        sched = []
        for k, r in enumerate(turns):
            el = elapsed_of(r)
            if k + 1 < len(turns):
                think = max(0.0, turns[k + 1].ts - (r.ts + el)) / speedup
            else:
                think = 0.0
            sched.append((t, el, r, think))
            t += el + think
        out.append(sched)
    out.sort(key=lambda c: (c[0][0], c[0][2].row))
    return out


def _us(x: float) -> int:
    return round(x * 1_000_000)


def brute_max_per_second(intervals: list[tuple[float, float]], length: int) -> list[int]:
    """Per second t: the max over instants of [t, t+1) of #intervals containing the instant.

    The documented semantics: instants are whole microseconds, an interval [a, b) is half-open
    and lasts at least 1 us (so a zero-length one contains exactly its start). Checked at t and
    at every interval start or end inside the second, which is where the count can change."""
    iv = [(_us(a), max(_us(b), _us(a) + 1)) for a, b in intervals]

    def count(x: int) -> int:
        return sum(1 for a, b in iv if a <= x < b)

    out = []
    for t in range(length):
        lo, hi = t * 1_000_000, (t + 1) * 1_000_000
        points = {lo} | {p for a, b in iv for p in (a, b) if lo <= p < hi}
        out.append(max(count(p) for p in points))
    return out


def brute_arrivals(starts: list[float], length: int) -> list[int]:
    out = [0] * length
    for s in starts:
        sec = math.floor(_us(s) / 1_000_000)
        if 0 <= sec < length:
            out[sec] += 1
    return out
