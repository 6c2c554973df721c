"""``fit``: estimate the workload model of ``params.json`` from a trace, per (log type, model).

Methods (each documented in the provisioning docs, with why):

* Arrivals of conversations (every row of a file without Session IDs starts one). The start rate
  is a rank-1 Poisson model ``rate[bin] * level[day]``, fitted by maximum likelihood (iterative
  proportional fitting over the window's exposure, so partial days and partial bins count for
  what they covered). Gaps between consecutive starts are mapped to operational time (expected
  starts between them under that rate), which removes the time-of-day and day-to-day trends; a
  Gamma shape is then estimated per bin from the gaps ending in it, pooling neighbouring bins
  until ``min_gaps`` gaps are used. Whole-second timestamps (BurstGPT's) are spread uniformly
  within their second (with a fixed seed) before gaps are taken, so the many 0-s gaps of busy
  periods do not distort the shape. Shape estimator: ``moments`` (shape = 1 / CV^2, the default,
  because it reproduces the trace's burstiness) or ``mle`` (scipy's Gamma maximum likelihood,
  which follows the bulk of short gaps and under-states the long quiet periods).
* Conversations: turns per conversation as relative frequencies; think time (from the end of a
  response to the next request) as an empirical distribution.
* Lengths: first-turn request tokens; the increment of later turns over ``previous request +
  previous response`` (requests carry the history); response tokens per request-token bucket
  (buckets at request quantiles), all as empirical distributions (the nonparametric maximum
  likelihood estimate), which keeps the percentiles of the source.
* Failures (0 response tokens): their share, and the share of those with 0 request tokens.
* Service time: least squares ``elapsed = a + b * response tokens`` with empirical residuals, on
  rows with a recorded Elapsed time; otherwise the project's documented service-time model.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..trace import Workload, load_trace, prepare
from ..trace import service_model as default_service
from .distributions import Bucketed, Pmf, Quantiles
from .params import (
    DAY_S,
    Arrivals,
    ClassParams,
    Conversations,
    Elapsed,
    Failures,
    Lengths,
    Params,
    Source,
)

SHAPE_ESTIMATORS = ("moments", "mle")
SHAPE_LIMITS = (0.01, 100.0)
MIN_GAPS_FOR_SHAPE = 10
JITTER_SEED = 0  # fits are deterministic: the same trace always gives the same params.json


@dataclass(frozen=True)
class FitOptions:
    """Knobs of the fit; the defaults are what the docs and presets use."""

    bin_s: int = 1200
    shape_estimator: str = "moments"
    min_gaps: int = 50  # gaps behind each bin's Gamma shape (neighbours pooled)
    bucket_rows: int = 80  # rows per response/increment bucket, at least
    max_buckets: int = 10
    min_samples: int = 20  # below this, think/increment/elapsed pool over the log type

    def check(self) -> None:
        if self.bin_s <= 0 or DAY_S % self.bin_s:
            raise ValueError(
                f"bin {self.bin_s} s: expected a whole number of seconds dividing a day (86400 s)"
            )
        if self.shape_estimator not in SHAPE_ESTIMATORS:
            raise ValueError(
                f"shape estimator {self.shape_estimator!r}: expected one of {', '.join(SHAPE_ESTIMATORS)}"
            )
        if (
            self.min_gaps < 2
            or self.bucket_rows < 1
            or self.max_buckets < 1
            or self.min_samples < 1
        ):
            raise ValueError(
                "min_gaps >= 2, bucket_rows >= 1, max_buckets >= 1 and min_samples >= 1 are required"
            )


def fit_trace(
    path: str | os.PathLike[str] | None,
    *,
    window: str | None = None,
    options: FitOptions | None = None,
) -> Params:
    """Load a trace (any format ``load_trace`` reads), select ``window``, and fit it."""
    raw = load_trace(path)
    workload = prepare(raw, window=window, failed="send")
    return fit_workload(workload, options)


def fit_workload(workload: Workload, options: FitOptions | None = None) -> Params:
    """Fit every (log type, model) class of a prepared workload (failed rows included)."""
    opts = options or FitOptions()
    opts.check()
    if workload.speedup != 1.0:
        raise ValueError("fit needs the trace's own time scale: prepare it with speedup 1")
    w0, w1 = float(workload.window.start), float(workload.window.end)
    df = workload.raw.df
    lo, hi = np.searchsorted(df["timestamp"].to_numpy(), [w0, w1], side="left")
    if hi <= lo:
        raise ValueError(
            f"{workload.raw.path}: no rows in window {workload.window.spec.text!r}; nothing to fit"
        )
    rows = _Rows.from_frame(df.iloc[lo:hi])

    classes: list[ClassParams] = []
    for key in rows.class_keys():
        classes.append(_fit_class(rows, key, w0, w1, opts))
    classes.sort(key=lambda c: (c.log_type, c.model))
    raw = workload.raw
    source = Source(
        name=Path(raw.path).name,
        sha256=raw.sha256,
        rows=int(hi - lo),
        window=workload.window.spec.text,
        window_start_s=float(w0),
        window_end_s=float(w1),
        has_sessions=raw.has_sessions,
        has_elapsed=raw.has_elapsed,
    )
    notes = []
    if not raw.has_elapsed:
        notes.append(
            "no Elapsed time in the source: service times use the default model "
            "(fitted on the bundled BurstGPT_3 rows)"
        )
    if not raw.has_sessions:
        notes.append("no Session IDs in the source: every row is a one-turn conversation")
    if any(r is None for c in classes for r in c.arrivals.rate_per_s):
        notes.append(
            "the window does not cover every time-of-day bin: uncovered bins use the "
            "class's mean rate"
        )
    start = w0 % DAY_S  # synth defaults to the same time of day, on day 0
    params = Params(
        source=source,
        bin_s=opts.bin_s,
        start_s=float(start),
        classes=classes,
        generator=f"locust-burstgpt {__version__}",
        notes=notes,
    )
    return Params.from_dict(params.to_dict())  # exactly what params.json will hold (rounded)


@dataclass
class _Rows:
    """The window's rows grouped into conversations, with each conversation's class.

    Rows are ordered conversation by conversation (conversations in first-turn order, turns in
    time order), so a conversation's turns are contiguous from ``offsets[i]``.
    """

    ts: np.ndarray
    request: np.ndarray
    response: np.ndarray
    elapsed: np.ndarray  # recorded (NaN where the trace has none)
    think: np.ndarray  # think time after this row (0 on a conversation's last row)
    conv: np.ndarray  # conversation index per row
    turn: np.ndarray  # 0-based turn index per row
    offsets: np.ndarray  # first row of each conversation
    lengths: np.ndarray  # turns per conversation
    class_codes: np.ndarray  # per conversation: index into ``keys``
    keys: list[tuple[str, str]]  # (log type, model)

    @classmethod
    def from_frame(cls, df: pd.DataFrame) -> _Rows:
        """Group a normalized trace frame (rows in time order) into conversations."""
        n = len(df)
        session = df["session_id"]
        has = session.notna().to_numpy()
        first_pos = np.arange(n, dtype=np.int64)
        if has.any():
            codes, _ = pd.factorize(session[has], sort=False)
            idx = np.flatnonzero(has)
            heads = np.full(int(codes.max()) + 1, n, dtype=np.int64)
            np.minimum.at(heads, codes, idx)
            first_pos[idx] = heads[codes]
        order = np.lexsort((np.arange(n), first_pos))
        key = first_pos[order]
        is_head = np.concatenate(([True], key[1:] != key[:-1]))
        conv = np.cumsum(is_head) - 1
        offsets = np.flatnonzero(is_head)
        lengths = np.diff(np.append(offsets, n))

        ts = df["timestamp"].to_numpy(dtype=np.float64)[order]
        recorded = df["elapsed"].to_numpy(dtype=np.float64)[order]
        response = df["response_tokens"].to_numpy(dtype=np.int64)[order]
        model_cat = pd.Categorical(df["model"])
        log_cat = pd.Categorical(df["log_type"])
        model_codes = np.asarray(model_cat.codes, dtype=np.int64)[order]
        log_codes = np.asarray(log_cat.codes, dtype=np.int64)[order]
        service = recorded.copy()
        missing = np.isnan(service)
        if missing.any():
            service[missing] = default_service.estimate(
                pd.Categorical.from_codes(model_codes[missing], categories=model_cat.categories),
                response[missing],
            )
        think = np.zeros(n)
        same = conv[1:] == conv[:-1]
        think[:-1] = np.where(same, np.maximum(ts[1:] - ts[:-1] - service[:-1], 0.0), 0.0)

        # class of a conversation = (log type, model) of its first turn, as a dense code
        pair = log_codes[offsets] * len(model_cat.categories) + model_codes[offsets]
        used, class_codes = np.unique(pair, return_inverse=True)
        keys = [
            (
                str(log_cat.categories[u // len(model_cat.categories)]),
                str(model_cat.categories[u % len(model_cat.categories)]),
            )
            for u in used
        ]
        return cls(
            ts=ts,
            request=df["request_tokens"].to_numpy(dtype=np.int64)[order],
            response=response,
            elapsed=recorded,
            think=think,
            conv=conv,
            turn=np.arange(n) - offsets[conv],
            offsets=offsets,
            lengths=lengths,
            class_codes=class_codes.astype(np.int64),
            keys=keys,
        )

    def class_keys(self) -> list[tuple[str, str]]:
        return list(self.keys)

    def row_mask(self, code: int) -> np.ndarray:
        return self.class_codes[self.conv] == code

    def log_type_mask(self, log_type: str) -> np.ndarray:
        codes = [i for i, k in enumerate(self.keys) if k[0] == log_type]
        return np.isin(self.class_codes[self.conv], codes)

    def model_mask(self, model: str) -> np.ndarray:
        codes = [i for i, k in enumerate(self.keys) if k[1] == model]
        return np.isin(self.class_codes[self.conv], codes)


def _fit_class(
    rows: _Rows, key: tuple[str, str], w0: float, w1: float, opts: FitOptions
) -> ClassParams:
    log_type, model = key
    code = rows.keys.index(key)
    in_class = rows.row_mask(code)
    conv_ids = np.flatnonzero(rows.class_codes == code)
    starts = rows.ts[rows.offsets[conv_ids]]
    whole_seconds = bool(np.all(rows.ts == np.floor(rows.ts)))
    arrivals = fit_arrivals(starts, w0, w1, opts, resolution_s=1.0 if whole_seconds else 0.0)

    req, resp = rows.request, rows.response
    zero_zero = (req == 0) & (resp == 0)
    has_next = np.zeros(rows.ts.size, dtype=bool)
    has_next[:-1] = rows.conv[1:] == rows.conv[:-1]
    pair_ok = has_next.copy()
    pair_ok[:-1] &= ~zero_zero[:-1] & ~zero_zero[1:]
    increment = np.zeros(rows.ts.size)
    increment[:-1] = req[1:] - req[:-1] - resp[:-1]

    def pooled(values: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
        """Rows of ``values`` (1-D, or 2-D with one row per trace row) for this class, or for its
        log type when the class alone has fewer than ``min_samples``."""
        mine = values[mask & in_class]
        if len(mine) >= opts.min_samples:
            return mine
        wider = values[mask & rows.log_type_mask(log_type)]
        chosen = wider if len(wider) > len(mine) else mine
        return chosen if len(chosen) else None

    history = np.zeros(rows.ts.size)
    history[:-1] = req[:-1] + resp[:-1]
    think = pooled(rows.think, has_next)
    inc_pairs = pooled(np.column_stack([history, increment]), pair_ok)

    first_rows = in_class & (rows.turn == 0) & ~zero_zero
    first_values = req[first_rows] if first_rows.any() else req[in_class & ~zero_zero]
    ok = in_class & (resp > 0)
    response = (
        Bucketed.fit(req[ok], resp[ok], min_rows=opts.bucket_rows, max_buckets=opts.max_buckets)
        if ok.any()
        else Bucketed((), (Quantiles((1.0,)),))
    )
    increment_model = (
        None
        if inc_pairs is None
        else Bucketed.fit(
            inc_pairs[:, 0],
            inc_pairs[:, 1],
            min_rows=opts.bucket_rows,
            max_buckets=opts.max_buckets,
        )
    )
    n_rows = int(in_class.sum())
    failed = in_class & (resp == 0)
    n_failed = int(failed.sum())

    return ClassParams(
        log_type=log_type,
        model=model,
        rows=n_rows,
        conversations_count=int(conv_ids.size),
        arrivals=arrivals,
        conversations=Conversations(
            turns=Pmf.fit(rows.lengths[conv_ids]),
            think_s=None if think is None else Quantiles.fit(think),
        ),
        lengths=Lengths(
            first_request=Quantiles.fit(first_values) if first_values.size else Quantiles((0.0,)),
            response=response,
            increment=increment_model,
            max_request=max(1, int(req[in_class].max())),
        ),
        failures=Failures(
            rate=n_failed / n_rows,
            zero_request_fraction=float(zero_zero[failed].mean()) if n_failed else 1.0,
        ),
        elapsed=_fit_elapsed(rows, in_class, model, opts),
    )


def fit_arrivals(
    starts: np.ndarray, w0: float, w1: float, opts: FitOptions, *, resolution_s: float = 1.0
) -> Arrivals:
    """Time-of-day rate, day levels and per-bin Gamma shape of ``starts`` within [w0, w1)."""
    bin_s = opts.bin_s
    nb = DAY_S // bin_s
    starts = np.sort(np.asarray(starts, dtype=np.float64))
    grid = _Grid(w0, w1, bin_s)
    counts = np.zeros((grid.days, nb))
    seg = grid.segment_of(starts)
    np.add.at(counts, (grid.seg_day[seg], grid.seg_bin[seg]), 1.0)
    exposure = grid.exposure_matrix()
    rate, level = _rank1_poisson(counts, exposure)

    covered = exposure.sum(axis=0) > 0
    intensity = (
        np.where(covered[grid.seg_bin], np.nan_to_num(rate)[grid.seg_bin], 0.0)
        * level[grid.seg_day]
    )
    cum = np.concatenate(([0.0], np.cumsum(intensity * grid.seg_len)))

    def operational(t: np.ndarray) -> np.ndarray:
        t = np.clip(t, w0, w1)
        s = grid.segment_of(t)
        return cum[s] + intensity[s] * (t - grid.seg_lo[s])

    if starts.size >= 2:
        if resolution_s > 0:  # place each start uniformly within its recorded second (fixed seed)
            jitter = np.random.default_rng(JITTER_SEED).random(starts.size) * resolution_s
            starts = np.sort(starts + jitter)
        prev, nxt = starts[:-1], starts[1:]
        gaps = operational(nxt) - operational(prev)
        gap_bins = grid.seg_bin[grid.segment_of(prev)]
        keep = gaps > 0
        gaps, gap_bins = gaps[keep], gap_bins[keep]
    else:
        gaps, gap_bins = np.empty(0), np.empty(0, dtype=np.int64)
    shape, used = _shapes(gaps, gap_bins, nb, opts)
    return Arrivals(
        rate_per_s=[float(r) if c else None for r, c in zip(rate, covered, strict=True)],
        shape=[float(k) for k in shape],
        gaps=[int(n) for n in used],
        exposure_s=[float(e) for e in exposure.sum(axis=0)],
        day_levels=[float(v) for v in level],
        shape_estimator=opts.shape_estimator,
    )


class _Grid:
    """The window cut into segments: each is the part of one time-of-day bin on one day."""

    def __init__(self, w0: float, w1: float, bin_s: int) -> None:
        first = math.floor(w0 / bin_s)
        last = math.ceil(w1 / bin_s)
        lo = np.arange(first, max(last, first + 1), dtype=np.float64) * bin_s
        self.bin_s = bin_s
        self.first = first
        self.seg_lo = np.maximum(lo, w0)
        self.seg_len = np.clip(np.minimum(lo + bin_s, w1) - self.seg_lo, 0.0, None)
        self.day0 = math.floor(w0 / DAY_S)
        self.seg_day = (np.floor(lo / DAY_S) - self.day0).astype(np.int64)
        self.seg_bin = ((lo % DAY_S) // bin_s).astype(np.int64)
        self.days = int(self.seg_day[-1]) + 1

    def segment_of(self, t: np.ndarray) -> np.ndarray:
        s = np.floor(np.asarray(t) / self.bin_s).astype(np.int64) - self.first
        return np.clip(s, 0, self.seg_lo.size - 1)

    def exposure_matrix(self) -> np.ndarray:
        out = np.zeros((self.days, DAY_S // self.bin_s))
        np.add.at(out, (self.seg_day, self.seg_bin), self.seg_len)
        return out


def _rank1_poisson(
    counts: np.ndarray, exposure: np.ndarray, iterations: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood ``rate[bin] * level[day]`` for Poisson counts over the exposure.

    Levels are normalised so that an average observed day (weighted by expected traffic) has
    level 1. Bins never observed get rate NaN; days with no expected traffic keep level 1.
    """
    days, bins = counts.shape
    level = np.ones(days)
    rate = np.zeros(bins)
    col_exposure = exposure.sum(axis=0) > 0
    for _ in range(iterations):
        denom = level @ exposure
        rate = np.divide(counts.sum(axis=0), denom, out=np.zeros(bins), where=denom > 0)
        expected = exposure @ rate
        new_level = np.divide(counts.sum(axis=1), expected, out=np.ones(days), where=expected > 0)
        if np.allclose(new_level, level, rtol=1e-10, atol=1e-12):
            level = new_level
            break
        level = new_level
    expected = exposure @ rate
    weight = expected.sum()
    if weight > 0:
        mean_level = float(level @ expected / weight)
        if mean_level > 0:
            level = level / mean_level
            rate = rate * mean_level
    return np.where(col_exposure, rate, np.nan), level


def _shapes(
    gaps: np.ndarray, gap_bins: np.ndarray, nb: int, opts: FitOptions
) -> tuple[np.ndarray, np.ndarray]:
    """Gamma shape per bin from operational gaps, widening to neighbouring bins as needed."""
    shape = np.ones(nb)
    used = np.zeros(nb, dtype=np.int64)
    if gaps.size < MIN_GAPS_FOR_SHAPE:  # too few to say anything: Poisson (shape 1)
        return shape, used
    by_bin = [gaps[gap_bins == b] for b in range(nb)]
    n_by_bin = np.array([g.size for g in by_bin])
    need = min(opts.min_gaps, gaps.size)
    for b in range(nb):
        for w in range(nb // 2 + 1):
            members = sorted({(b + j) % nb for j in range(-w, w + 1)})
            if n_by_bin[members].sum() >= need:
                break
        sample = np.concatenate([by_bin[m] for m in members])
        shape[b] = _estimate_shape(sample, opts.shape_estimator)
        used[b] = sample.size
    return shape, used


def _estimate_shape(x: np.ndarray, estimator: str) -> float:
    if x.size < 2:
        return 1.0
    if estimator == "mle":
        from scipy import stats

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            k = float(stats.gamma.fit(x, floc=0.0)[0])
    else:
        var = float(np.var(x, ddof=1))
        k = float(np.mean(x) ** 2 / var) if var > 0 else SHAPE_LIMITS[1]
    return float(np.clip(k, *SHAPE_LIMITS))


def _fit_elapsed(rows: _Rows, in_class: np.ndarray, model: str, opts: FitOptions) -> Elapsed:
    """Least-squares service-time line for the class (or its model, or the default model)."""
    recorded = ~np.isnan(rows.elapsed) & (rows.response > 0)
    for mask, source in (
        (in_class & recorded, "fitted"),
        (rows.model_mask(model) & recorded, f"fitted on all {model} rows"),
    ):
        if mask.sum() >= opts.min_samples:
            x = rows.response[mask].astype(np.float64)
            y = rows.elapsed[mask]
            design = np.column_stack([np.ones_like(x), x])
            (a, b), *_ = np.linalg.lstsq(design, y, rcond=None)
            return Elapsed(float(a), float(b), Quantiles.fit(y - (a + b * x)), source)
    a, b = default_service.COEFFICIENTS.get(
        model, default_service.COEFFICIENTS[default_service.FALLBACK_MODEL]
    )
    return Elapsed(
        float(a),
        float(b),
        Quantiles((0.0,)),
        "default: least-squares line fitted on the bundled BurstGPT_3 rows",
    )
