"""``synth``: generate a BurstGPT_3-schema trace from ``params.json`` at any rate and length.

How a trace is made (all vectorised with numpy; a million rows take a few seconds):

1. The window [start, start + duration) is cut into segments, one per time-of-day bin per day.
   A class's expected conversation starts in a segment are ``rate[bin] * level[day] * seconds``
   (day levels cycle over the fitted days), and every class is scaled by one factor so that the
   expected number of requests (starts times mean turns) is ``rate * duration``.
2. Starts form one Gamma renewal process per class in operational time (one unit = one expected
   start): operational time runs at the segment's expected starts per second, and each gap has
   the shape of the bin it starts in. Times are cumulative sums of gaps, so start i is placed at
   the sum of the gaps before it (never at its own gap from time 0). A gap may span quiet
   segments: a night lull stays one long gap, as in the source. The first start is drawn from
   the process's stationary residual life (``Gamma(shape + 1) * U``), so the window's start
   adds no artefact, and the expected count in every segment is exactly its share.
3. Each conversation draws its turns, its first request, and then turn by turn: the response
   (from the bucket of the request), the service time, the think time, and the next request
   (``request + response + increment``). Turn k+1 is sent at ``ts_k + elapsed_k + think_k``.
   Turn counts and first requests use stratified uniforms, so short traces already match the
   fitted distributions closely; everything else is drawn independently.
4. Failures are drawn per row last: the response becomes 0, and, with the fitted share, the
   request too.

Conversations are never cut: turns of a conversation that started inside the window are kept
even when they fall after its end.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from .distributions import Distribution
from .params import DAY_S, ClassParams, Params

HEADER = (
    "Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type"
)
DAY_LEVEL_MODES = ("cycle", "flat")
TAIL_MODES = ("keep", "cut")
TIMESTAMP_DECIMALS = 3


@dataclass
class SynthTrace:
    """A synthesized trace in row (time) order, column-wise."""

    timestamp: np.ndarray  # float64 s from 00:00 of day 0, non-decreasing
    session: np.ndarray  # int64 index into ``session_ids``, -1 for rows without one
    session_ids: np.ndarray  # bytes (S36) UUID-4 strings, one per conversation with a session
    elapsed: np.ndarray  # int64 s
    class_code: np.ndarray  # int64 index into ``classes``
    classes: list[tuple[str, str]]  # (model, log type)
    request_tokens: np.ndarray  # int64
    response_tokens: np.ndarray  # int64
    conversations: int
    start_s: float
    duration_s: float
    target_rate: float

    @property
    def rows(self) -> int:
        return int(self.timestamp.size)

    @property
    def rate(self) -> float:
        """Requests per second of the window (rows / duration)."""
        return self.rows / self.duration_s

    def to_arrow(self) -> pa.Table:
        """The 8 BurstGPT_3 columns, in order, as an Arrow table."""

        def column(names: list[str]) -> pa.DictionaryArray:
            uniq = sorted(set(names))
            per_class = np.array([uniq.index(n) for n in names], dtype=np.int32)
            codes = per_class[self.class_code] if self.rows else np.empty(0, np.int32)
            return pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(uniq, pa.string()))

        has = self.session >= 0
        sid_index = pa.array(np.where(has, self.session, 0).astype(np.int32), mask=~has)
        sid_dict = (
            pa.array(self.session_ids, pa.binary()).cast(pa.string())
            if self.session_ids.size
            else pa.array([""], pa.string())
        )
        return pa.table(
            {
                "Timestamp": pa.array(self.timestamp),
                "Session ID": pa.DictionaryArray.from_arrays(sid_index, sid_dict),
                "Elapsed time": pa.array(self.elapsed),
                "Model": column([m for m, _ in self.classes]),
                "Request tokens": pa.array(self.request_tokens),
                "Response tokens": pa.array(self.response_tokens),
                "Total tokens": pa.array(self.request_tokens + self.response_tokens),
                "Log Type": column([lt for _, lt in self.classes]),
            }
        )


def synthesize(
    params: Params,
    *,
    rate: float | None = None,
    duration_s: float | None = None,
    start_s: float | None = None,
    seed: int = 0,
    day_levels: str = "cycle",
    tail: str = "keep",
) -> SynthTrace:
    """Generate a trace; defaults: the fitted mean rate, the fitted window's length and start.

    ``rate`` is requests per second over the window; ``day_levels`` ``cycle`` repeats the fitted
    day-to-day levels, ``flat`` uses level 1 every day; ``tail`` ``keep`` keeps every turn of
    conversations started in the window, ``cut`` drops rows at or after its end.
    """
    rate = params.mean_rate if rate is None else float(rate)
    duration = params.source.duration_s if duration_s is None else float(duration_s)
    start = params.start_s if start_s is None else float(start_s)
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError(f"rate {rate!r}: expected requests per second > 0")
    if not (duration > 0 and math.isfinite(duration)):
        raise ValueError(f"duration {duration!r}: expected seconds > 0")
    if not (start >= 0 and math.isfinite(start)):
        raise ValueError(f"start {start!r}: expected seconds >= 0 from 00:00 of day 0")
    if day_levels not in DAY_LEVEL_MODES:
        raise ValueError(f"day levels {day_levels!r}: expected one of {', '.join(DAY_LEVEL_MODES)}")
    if tail not in TAIL_MODES:
        raise ValueError(f"tail {tail!r}: expected one of {', '.join(TAIL_MODES)}")
    for c in params.classes:
        for name in (c.model, c.log_type):
            if any(ch in name for ch in ',"\n\r'):
                raise ValueError(
                    f"class name {name!r}: commas, quotes and line breaks cannot be written to CSV"
                )
    rng = np.random.default_rng(seed)

    seg_lo, seg_len, seg_bin, seg_day = _segments(start, duration, params.bin_s)
    expected = []
    for c in params.classes:
        rates = np.asarray(c.arrivals.filled_rates())
        levels = np.asarray(c.arrivals.day_levels) if day_levels == "cycle" else np.ones(1)
        expected.append(rates[seg_bin] * levels[seg_day % levels.size] * seg_len)
    requests = sum(
        float(e.sum()) * c.conversations.turns.mean()
        for e, c in zip(expected, params.classes, strict=True)
    )
    if requests <= 0:
        raise ValueError(
            "the model has no traffic in this window (every bin's rate is 0); choose another --start"
        )
    factor = rate * duration / requests

    parts = []
    n_sessions = n_conversations = 0
    for code, (c, mu) in enumerate(zip(params.classes, expected, strict=True)):
        starts = _renewal_starts(
            mu * factor, np.asarray(c.arrivals.shape)[seg_bin], seg_lo, seg_len, rng
        )
        part = _conversations(c, starts, rng)
        part["class_code"] = np.full(part["timestamp"].size, code, dtype=np.int64)
        if c.has_sessions:
            part["session"] = part["conv"] + n_sessions
            n_sessions += starts.size
        else:
            part["session"] = np.full(part["timestamp"].size, -1, dtype=np.int64)
        part["conv"] = part["conv"] + n_conversations
        n_conversations += starts.size
        parts.append(part)

    cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    ts = (
        np.floor(cols["timestamp"] * 10**TIMESTAMP_DECIMALS) / 10**TIMESTAMP_DECIMALS
    )  # never past the end
    order = np.argsort(ts, kind="stable")
    if tail == "cut":
        order = order[ts[order] < start + duration]
    return SynthTrace(
        timestamp=ts[order],
        session=cols["session"][order],
        session_ids=_uuid4(n_sessions, rng),
        elapsed=cols["elapsed"][order],
        class_code=cols["class_code"][order],
        classes=[(c.model, c.log_type) for c in params.classes],
        request_tokens=cols["request"][order],
        response_tokens=cols["response"][order],
        conversations=int(np.unique(cols["conv"][order]).size),
        start_s=start,
        duration_s=duration,
        target_rate=rate,
    )


def write_trace(trace: SynthTrace, path: str | os.PathLike[str]) -> None:
    """Write the 8-column BurstGPT_3 CSV (exact header), atomically (temp file, then rename)."""
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            fh.write((HEADER + "\n").encode())
            pacsv.write_csv(
                trace.to_arrow(), fh, pacsv.WriteOptions(include_header=False, quoting_style="none")
            )
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()


def _segments(start: float, duration: float, bin_s: int) -> tuple[np.ndarray, ...]:
    """[start, start + duration) cut at bin boundaries: (lo, length, bin, day) per segment."""
    end = start + duration
    first = math.floor(start / bin_s)
    last = max(math.ceil(end / bin_s), first + 1)
    lo = np.arange(first, last, dtype=np.float64) * bin_s
    seg_lo = np.maximum(lo, start)
    seg_len = np.clip(np.minimum(lo + bin_s, end) - seg_lo, 0.0, None)
    seg_bin = ((lo % DAY_S) // bin_s).astype(np.int64)
    seg_day = np.floor(lo / DAY_S).astype(np.int64)
    return seg_lo, seg_len, seg_bin, seg_day


def _renewal_starts(
    mu: np.ndarray,
    shape: np.ndarray,
    seg_lo: np.ndarray,
    seg_len: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """One Gamma renewal process in operational time across all segments.

    ``mu[s]`` is the expected number of arrivals in segment ``s``: operational time runs at
    ``mu[s] / seg_len[s]`` per second there, and one unit of it holds one arrival on average. A gap
    takes the shape of the segment it starts in, and may span quiet segments (a long lull at
    night stays one long gap, as in the source, instead of restarting at every bin boundary).
    """
    bounds = np.concatenate(([0.0], np.cumsum(mu)))
    total = bounds[-1]
    if total <= 0:
        return np.empty(0)
    out: list[np.ndarray] = []
    s = int(np.searchsorted(bounds, 0.0, side="right")) - 1
    k = shape[min(s, shape.size - 1)]
    nxt = float(rng.standard_gamma(k + 1.0) / k * rng.random())  # stationary residual life
    while nxt < total:
        s = int(np.searchsorted(bounds, nxt, side="right")) - 1
        end, k = bounds[s + 1], shape[s]
        left = end - nxt
        n = int(left + 6.0 * math.sqrt(left / k) + 4)
        pos = nxt + np.concatenate(([0.0], np.cumsum(rng.standard_gamma(k, n) / k)))
        inside = pos < end
        got = pos[inside]
        out.append(seg_lo[s] + (got - bounds[s]) / mu[s] * seg_len[s])
        nxt = (
            float(pos[~inside][0])
            if not inside.all()
            else float(pos[-1] + rng.standard_gamma(k) / k)
        )
    if not out:
        return np.empty(0)
    return np.concatenate(out)


def _stratified(n: int, rng: np.random.Generator) -> np.ndarray:
    """n uniforms, one in each of n equal strata of [0, 1), in random order."""
    return (rng.permutation(n) + rng.random(n)) / max(n, 1)


def _conversations(
    c: ClassParams, starts: np.ndarray, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Rows of the conversations starting at ``starts`` (conversation-major order)."""
    n = starts.size
    turns = c.conversations.turns.sample(_stratified(n, rng)).astype(np.int64)
    turns = np.maximum(turns, 1)
    total = int(turns.sum())
    offsets = np.cumsum(turns) - turns
    ts = np.empty(total)
    req = np.empty(total, dtype=np.int64)
    resp = np.empty(total, dtype=np.int64)
    elapsed = np.empty(total, dtype=np.int64)
    conv = np.repeat(np.arange(n), turns)

    lengths, el = c.lengths, c.elapsed
    by_turns = np.argsort(-turns, kind="stable")  # conversations with most turns first
    sorted_turns = turns[by_turns]
    cur_ts = starts[by_turns].astype(np.float64)
    cur_req = np.maximum(np.rint(lengths.first_request.sample(_stratified(n, rng))), 0).astype(
        np.int64
    )[by_turns]
    think = c.conversations.think_s
    k = 0
    while True:
        active = int(np.searchsorted(-sorted_turns, -k, side="left"))  # count of turns > k
        if active == 0:
            break
        idx = offsets[by_turns[:active]] + k
        r = cur_req[:active]
        out = np.maximum(np.rint(lengths.response.sample(rng.random(active), r)), 1).astype(
            np.int64
        )
        service = _service(el.intercept_s, el.per_response_token_s, el.residual_s, out, rng)
        ts[idx], req[idx], resp[idx], elapsed[idx] = cur_ts[:active], r, out, service
        more = int(np.searchsorted(-sorted_turns, -(k + 1), side="left"))
        if more == 0:
            break
        gap = think.sample(rng.random(more)) if think is not None else np.zeros(more)
        cur_ts = cur_ts[:more] + service[:more] + np.maximum(gap, 0.0)
        history = r[:more] + out[:more]
        inc = (
            lengths.increment.sample(rng.random(more), history)
            if lengths.increment is not None
            else np.zeros(more)
        )
        cur_req = np.clip(history + np.rint(inc).astype(np.int64), 1, lengths.max_request)
        k += 1

    fail = rng.random(total) < c.failures.rate
    if fail.any():
        resp[fail] = 0
        zero = fail & (rng.random(total) < c.failures.zero_request_fraction)
        req[zero] = 0
        elapsed[fail] = _service(
            el.intercept_s, 0.0, el.residual_s, np.zeros(int(fail.sum()), np.int64), rng
        )
    return {"timestamp": ts, "request": req, "response": resp, "elapsed": elapsed, "conv": conv}


def _service(
    a: float, b: float, residual: Distribution, response: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    noise = residual.sample(rng.random(response.size))
    return np.maximum(np.rint(a + b * response + noise), 0).astype(np.int64)


_HEX = np.array([f"{i:02x}".encode() for i in range(256)], dtype="S2")


def _uuid4(n: int, rng: np.random.Generator) -> np.ndarray:
    """n random UUID-4 strings (as S36 bytes), reproducible from the generator."""
    if n == 0:
        return np.empty(0, dtype="S36")
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80
    hexed = _HEX[raw].view("S1").reshape(n, 32)
    dash = np.full((n, 1), b"-", dtype="S1")
    parts = [
        hexed[:, 0:8],
        dash,
        hexed[:, 8:12],
        dash,
        hexed[:, 12:16],
        dash,
        hexed[:, 16:20],
        dash,
        hexed[:, 20:32],
    ]
    return np.ascontiguousarray(np.concatenate(parts, axis=1)).view("S36").ravel()
