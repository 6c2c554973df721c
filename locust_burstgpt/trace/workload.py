"""``prepare``: turn a RawTrace into a replayable ``Workload`` (filters, window, scaling, curves)."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np

from . import service_model
from .conversations import Conversation, ConversationTable, RowArrays
from .curves import ArrivalCounter, Curves, InProgressCounter, curve_length
from .errors import TraceError
from .filters import category_mask, check_policy, combine, failed_mask
from .heap import BIG_INPUT_ROWS, reuse_freed_memory
from .load import RawTrace
from .scaling import Selection, identity, poisson_starts, scale_rate
from .window import Window, parse_window, resolve, trace_span


class Workload:
    """The conversations to replay over a scaled window, with their per-second curves.

    Time 0 is the window start; every offset is in scaled seconds (trace seconds / speedup),
    except service times, which are never scaled.
    """

    def __init__(
        self,
        raw: RawTrace,
        table: ConversationTable,
        selection: Selection,
        window: Window,
        speedup: float,
        curves: Curves,
        meta: dict[str, Any],
        row_filter: np.ndarray | None = None,
    ) -> None:
        self.raw = raw
        self.row_filter = row_filter  # model/log-type mask over the file's rows (None: all)
        self.table = table
        self._sel = selection
        self.window = window
        self.speedup = speedup
        self.duration_s = window.length / speedup
        self.start_offsets = selection.start
        self.n_conversations = int(selection.start.size)
        self.n_requests = int(meta["requests"])
        self.elapsed_estimated = bool(curves.estimated)
        self.curves = curves
        self.meta = meta
        self._class_turns: dict[tuple[str, str], int] | None = None

    def conversation(self, i: int) -> Conversation:
        """Conversation ``i`` in start order, 0 <= i < n_conversations (built on demand)."""
        if not 0 <= i < self.n_conversations:
            raise IndexError(f"conversation {i} out of range 0..{self.n_conversations - 1}")
        return self.table.conversation(
            self._sel.source_of(i), start_s=float(self._sel.start[i]), copy=self._sel.copy_of(i)
        )

    def conversations(self) -> Iterator[Conversation]:
        for i in range(self.n_conversations):
            yield self.conversation(i)

    def __len__(self) -> int:
        return self.n_conversations

    def turn_counts(self) -> np.ndarray:
        """Number of turns of every conversation, in start order."""
        if self._sel.source is None:
            return self.table.lengths
        return self.table.lengths[self._sel.source]

    def class_turns(self) -> dict[tuple[str, str], int]:
        """Scheduled requests per (model, log type) of each conversation's first turn, the class
        its requests are reported under; vectorised, so it costs nothing for large traces."""
        if self._class_turns is not None:
            return self._class_turns
        table = self.table
        r = table.r
        first = table.first if self._sel.source is None else table.first[self._sel.source]
        n_logs = max(1, len(r.log_types))
        codes = r.model_codes[first].astype(np.int64) * n_logs + r.log_codes[first]
        sums = np.bincount(codes, weights=self.turn_counts(), minlength=len(r.models) * n_logs)
        self._class_turns = {
            (r.models[c // n_logs], r.log_types[c % n_logs]): int(v)
            for c, v in enumerate(sums)
            if v
        }
        return self._class_turns

    def request_schedule(self) -> tuple[np.ndarray, np.ndarray]:
        """Scheduled start (replay model) and unscaled service time of every request."""
        return request_intervals(self.table, self._sel)

    def __repr__(self) -> str:
        return (
            f"Workload({self.n_conversations:,} conversations, {self.n_requests:,} requests, "
            f"{self.duration_s:,.0f} s{', estimated service times' if self.elapsed_estimated else ''})"
        )


def request_intervals(
    table: ConversationTable, sel: Selection | None
) -> tuple[np.ndarray, np.ndarray]:
    """(scheduled start, service seconds) of every request of the selected conversations."""
    if sel is None or sel.source is None:
        return table.r.used(table.req_start), table.r.used(table.r.elapsed)
    assert sel.copy is not None
    starts, services = [], []
    conv = table.conv_of_row
    for j in np.unique(sel.copy):
        mine = sel.copy == j
        delta = np.full(table.n_conversations + 1, np.nan)  # last slot: rows not replayed
        delta[sel.source[mine]] = sel.start[mine] - table.start[sel.source[mine]]
        per_row = delta[conv]
        take = ~np.isnan(per_row)
        starts.append(table.req_start[take] + per_row[take])
        services.append(table.r.elapsed[take])
    if not starts:
        return np.empty(0), np.empty(0)
    return np.concatenate(starts), np.concatenate(services)


def _curves(
    table: ConversationTable,
    sel: Selection,
    req_start: np.ndarray | None,
    req_service: np.ndarray | None,
    duration_s: float,
    estimated: bool,
) -> Curves:
    """The three curves; with every conversation once, one-turn ones are counted only once."""
    length = curve_length(duration_s)
    arrivals = ArrivalCounter(length)
    if sel.source is None:
        flight = InProgressCounter(length)
        table.add_singles(flight, arrivals)  # a one-turn conversation is its request
        conc = flight.fork()
        conc.add(table.group_start, table.group_duration)
        flight.add(table.group_req_start, table.group_elapsed)
        arrivals.add(table.group_req_start)
    else:
        assert req_start is not None and req_service is not None
        conc = InProgressCounter(length)
        conc.add(sel.start, table.duration[sel.source])
        flight = InProgressCounter(length)
        flight.add(req_start, req_service)
        arrivals.add(req_start)
    return Curves(
        concurrency=conc.result(),
        arrivals=arrivals.result(),
        in_flight=flight.result(),
        estimated=estimated,
    )


def service_times(raw: RawTrace) -> tuple[np.ndarray, np.ndarray]:
    """Per-row elapsed seconds (recorded, else estimated) and the 'estimated' flags."""
    df = raw.df
    elapsed = df["elapsed"].to_numpy(dtype=np.float64)
    est = np.isnan(elapsed)
    if est.any():
        elapsed = elapsed.copy()
        elapsed[est] = service_model.estimate(
            df["model"].array[est], df["response_tokens"].to_numpy()[est]
        )
    return elapsed, est


def _row_arrays(
    raw: RawTrace, rows: slice, included: np.ndarray | None, elapsed: np.ndarray, est: np.ndarray
) -> RowArrays:
    """Views of the columns for the contiguous file rows ``rows``; ``included`` marks the
    replayed ones (None: all)."""
    df = raw.df
    model = df["model"].array
    log = df["log_type"].array
    codes, names = raw.session_codes
    return RowArrays(
        first_position=int(rows.start),
        timestamp=df["timestamp"].to_numpy()[rows],
        session_codes=codes[rows],
        session_names=names,
        elapsed=elapsed[rows],
        estimated=est[rows],
        request_tokens=df["request_tokens"].to_numpy()[rows],
        response_tokens=df["response_tokens"].to_numpy()[rows],
        model_codes=np.asarray(model.codes)[rows],
        log_codes=np.asarray(log.codes)[rows],
        models=[str(c) for c in model.categories],
        log_types=[str(c) for c in log.categories],
        included=None if included is None or included.all() else included,
    )


#: Longest curve computed, in seconds (about 3.2 years; three int32 curves of 400 MB each).
MAX_CURVE_SECONDS = 100_000_000


def _check_curve_length(raw: RawTrace, seconds: float, what: str) -> None:
    """Refuse per-second curves that could not fit in memory (absurd timestamps or windows)."""
    if not seconds <= MAX_CURVE_SECONDS:
        raise TraceError(
            raw.path,
            f"{what} spans {seconds:.4g} s, more than the {MAX_CURVE_SECONDS:,} s "
            "the per-second curves can cover; expected timestamps in seconds within a "
            "few years (check the column) or a shorter --window",
            column="Timestamp",
        )


def _names(values: Sequence[str] | str | None) -> list[str] | None:
    """A list of names from a list or a comma-separated string (None stays None)."""
    if values is None:
        return None
    if isinstance(values, str):
        values = values.split(",")
    return [str(v).strip() for v in values if str(v).strip()]


def prepare(
    raw: RawTrace,
    *,
    models: Sequence[str] | None = None,
    log_types: Sequence[str] | None = None,
    failed: Literal["skip", "send"] = "skip",
    window: str | None = None,
    speedup: float = 1.0,
    rate_scale: float | None = None,
    seed: int = 0,
    arrival: Literal["trace", "poisson"] = "trace",
) -> Workload:
    """Filter, window, group into conversations, scale, and compute the curves.

    Order: model/log-type filters and the failed-row policy pick rows; the window is resolved
    on those rows (so ``busiest`` means busiest in what will be replayed); rows in the window
    form conversations (a session cut by the window start begins at its first turn inside it);
    speedup scales arrival and think times; ``rate_scale`` thins or superposes conversations;
    ``arrival="poisson"`` then redraws their starts as a Poisson process of the same mean rate.
    Raises ``ValueError`` (with a hint) for bad options.
    """
    with reuse_freed_memory(raw.rows >= BIG_INPUT_ROWS):
        return _prepare(
            raw,
            models=models,
            log_types=log_types,
            failed=failed,
            window=window,
            speedup=speedup,
            rate_scale=rate_scale,
            seed=seed,
            arrival=arrival,
        )


def _prepare(
    raw: RawTrace,
    *,
    models: Sequence[str] | None,
    log_types: Sequence[str] | None,
    failed: str,
    window: str | None,
    speedup: float,
    rate_scale: float | None,
    seed: int,
    arrival: str,
) -> Workload:
    policy = check_policy(failed)
    if arrival not in ("trace", "poisson"):
        raise ValueError(f"arrival {arrival!r}: expected 'trace' or 'poisson'")
    models, log_types = _names(models), _names(log_types)
    if not (speedup > 0 and math.isfinite(speedup)):
        raise ValueError(f"speedup {speedup!r}: expected a number > 0")
    if rate_scale is not None and not (rate_scale > 0 and math.isfinite(rate_scale)):
        raise ValueError(f"rate_scale {rate_scale!r}: expected a number > 0")
    spec = parse_window(window)
    df = raw.df
    n = len(df)
    keep = combine(
        category_mask(df["model"], models, "model"),
        category_mask(df["log_type"], log_types, "log type"),
    )
    fail = failed_mask(df["response_tokens"].to_numpy())
    chosen = combine(keep, ~fail) if policy == "skip" else keep  # None: every row
    ts_all = df["timestamp"].to_numpy()
    elapsed, est = service_times(raw)

    def concurrency(first: float, last: float) -> np.ndarray:
        whole = ConversationTable(
            _row_arrays(raw, slice(0, n), chosen, elapsed, est), window_start=first, speedup=1.0
        )
        counter = InProgressCounter(int(last - first))
        whole.add_conversations(counter)
        return counter.result()

    if keep is None:
        span = trace_span(ts_all)  # failed rows count: they are trace time
    else:
        kept = np.flatnonzero(keep)
        span = trace_span(ts_all[kept[[0, -1]]] if kept.size else kept.astype(float))
    searching = spec.kind in ("busiest", "peak-concurrency")
    ts_sel = ts_all if chosen is None or not searching else ts_all[chosen]
    if searching:
        _check_curve_length(raw, span[1] - span[0], "the trace")
    resolved = resolve(spec, ts_sel, span=span, concurrency=concurrency)
    _check_curve_length(raw, resolved.length / speedup, f"window {spec.text!r}")
    wlo, whi = (
        int(i) for i in np.searchsorted(ts_all, [resolved.start, resolved.end], side="left")
    )
    rows = slice(wlo, whi)
    included = None if chosen is None else chosen[rows]
    in_fail = fail[rows]
    failed_in_window = int(np.count_nonzero(in_fail if keep is None else in_fail & keep[rows]))

    table = ConversationTable(
        _row_arrays(raw, rows, included, elapsed, est), window_start=resolved.start, speedup=speedup
    )
    rows_used = table.n_turns
    duration_s = resolved.length / speedup
    if rate_scale is None or rate_scale == 1.0:
        selection = identity(table.start)
        req_start = req_service = None
        n_requests = table.n_turns
    else:
        selection = scale_rate(table.start, table.lengths, duration_s, float(rate_scale), seed)
        req_start, req_service = request_intervals(table, selection)
        n_requests = int(req_start.size)
    if arrival == "poisson":
        selection = poisson_starts(selection, table.n_conversations, duration_s, seed)
        req_start, req_service = request_intervals(table, selection)
        n_requests = int(req_start.size)
    estimated = table.estimated
    curves = _curves(table, selection, req_start, req_service, duration_s, estimated)

    warnings = list(raw.warnings)
    if estimated:
        unknown = (
            service_model.unknown_models(table.r.used(df["model"].array[rows])) if rows_used else []
        )
        n_est = int(np.count_nonzero(table.r.used(table.r.estimated)))
        warnings.append(
            f"service times of {n_est:,} of {table.n_turns:,} requests are ESTIMATED "
            "(no recorded Elapsed time): elapsed = a + b * response tokens, "
            "fitted per model on BurstGPT_3 rows"
            + (f"; models {', '.join(unknown)} use the ChatGPT line" if unknown else "")
        )
    if table.n_turns == 0:
        warnings.append("no requests in the selected window after filters")
    meta: dict[str, Any] = {
        "file": raw.path,
        "sha256": raw.sha256,
        "window": {
            "spec": spec.text,
            "kind": spec.kind,
            "start": resolved.start,
            "end": resolved.end,
            "length_s": resolved.length,
        },
        "filters": {"models": models, "log_types": log_types},
        "speedup": speedup,
        "rate_scale": rate_scale,
        "seed": seed,
        "arrival": arrival,
        "duration_s": duration_s,
        "rows_in": raw.rows,
        "rows_used": int(rows_used),
        "failed_rows": failed_in_window,
        "failed": policy,
        "conversations": int(selection.start.size),
        "requests": n_requests,
        "elapsed_estimated": estimated,
        "warnings": warnings,
    }
    return Workload(raw, table, selection, resolved, speedup, curves, meta, row_filter=keep)
