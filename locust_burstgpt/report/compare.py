"""Compare runs' ``requests.jsonl``: per-class metric deltas with bootstrap confidence intervals.

Why a bootstrap over conversations: requests of one conversation share its history and are sent
close together, so they are not independent draws; resampling whole conversations keeps that
correlation in the interval instead of pretending to have more evidence than there is. When two
runs replayed the same conversations (same trace rows), the resampling is paired: the same
conversations are drawn for both, so the interval reflects the change, not the workload's spread.

A metric's verdict needs both: the interval of the relative change excludes zero, and the point
change is at least ``min_effect`` (a shift too small to matter on a shared machine is not called).
Pure numpy: no Locust, no HTTP.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PERCENTILES = (50, 90, 95, 99)
LATENCIES = ("ttft", "tpot", "itl", "e2e")  # seconds; lower is better
ALL = "All"


class CompareError(ValueError):
    """A report directory that cannot be compared (missing or malformed files)."""


@dataclass
class Run:
    """One run's sent requests, grouped into conversations (the bootstrap's units)."""

    name: str
    duration_s: float
    slo: dict[str, float]  # per-request limits (s) of the run's --burstgpt-slo, for goodput
    # class -> conversation key -> that conversation's sent entries
    classes: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)

    def conversations(self, cls: str) -> dict[str, list[dict[str, Any]]]:
        if cls == ALL:
            merged: dict[str, list[dict[str, Any]]] = {}
            for convs in self.classes.values():
                for key, entries in convs.items():
                    merged.setdefault(key, []).extend(entries)
            return merged
        return self.classes.get(cls, {})


def load_run(path: str | Path) -> Run:
    """A report directory (``requests.jsonl`` and ``summary.json``) as a ``Run``."""
    d = Path(path)
    summary_path, requests_path = d / "summary.json", d / "requests.jsonl"
    for p in (summary_path, requests_path):
        if not p.is_file():
            raise CompareError(f"{p}: not found (is {d} a --burstgpt-report directory?)")
    try:
        summary = json.loads(summary_path.read_text())
    except json.JSONDecodeError as exc:
        raise CompareError(f"{summary_path}: not JSON ({exc})") from None
    duration = summary.get("run_duration_s")
    if not isinstance(duration, (int, float)) or duration <= 0:
        raise CompareError(f"{summary_path}: no positive run_duration_s")
    run = Run(d.name or str(d), float(duration), _slo_limits(summary))
    by_conv: dict[str, list[dict[str, Any]]] = {}
    with requests_path.open() as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                e = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CompareError(f"{requests_path}, line {n}: not JSON ({exc})") from None
            if not isinstance(e, dict) or "outcome" not in e:
                raise CompareError(f"{requests_path}, line {n}: no 'outcome' field")
            if e["outcome"] == "not_sent":
                continue
            conv = str(e.get("conversation") or e.get("request_id") or n)
            by_conv.setdefault(conv, []).append(e)
    for conv, entries in by_conv.items():
        # a conversation is known by its first turn's trace row in every run of the same window
        # (and by its copy, "<id>#copy<j>", when a rate scale above 1 replays it more than once)
        rows = [e.get("trace_row") for e in entries if e.get("trace_row") is not None]
        copy = conv.partition("#")[2]
        key = f"row{min(rows)}{'#' + copy if copy else ''}" if rows else f"id{conv}"
        for e in entries:
            cls = str(e.get("class") or "requests")
            run.classes.setdefault(cls, {}).setdefault(key, []).append(e)
    if not run.classes:
        raise CompareError(f"{requests_path}: no sent requests")
    return run


def _slo_limits(summary: dict[str, Any]) -> dict[str, float]:
    for m in (summary.get("metrics") or {}).values():
        slo = (m.get("goodput") or {}).get("slo") if isinstance(m, dict) else None
        if slo:
            return {k[: -len("_s")]: v for k, v in slo.items() if v is not None}
    return {}


# -- per-request values -----------------------------------------------------------------------
def latency_values(run: Run, metric: str, cls: str = ALL) -> np.ndarray:
    """Every value of a latency metric over a class's ``ok`` requests (for plots)."""
    values = _latency(metric)
    return np.asarray(
        [v for entries in run.conversations(cls).values() for e in entries for v in values(e)],
        float,
    )


def _latency(metric: str) -> Callable[[dict[str, Any]], list[float]]:
    def values(e: dict[str, Any]) -> list[float]:
        if e["outcome"] != "ok":
            return []
        if metric == "itl":
            return list(np.diff(np.asarray(e.get("chunk_ms") or [], float)) / 1000.0)
        v = e.get(metric)
        return [float(v)] if isinstance(v, (int, float)) else []

    return values


def _good(limits: dict[str, float]) -> Callable[[dict[str, Any]], list[float]]:
    def values(e: dict[str, Any]) -> list[float]:
        if e["outcome"] == "cancelled":  # as in the run's own goodput: not finished
            return []
        ok = e["outcome"] == "ok" and all(_meets(e.get(m), m, limit) for m, limit in limits.items())
        return [1.0 if ok else 0.0]

    return values


def _meets(value: Any, metric: str, limit: float) -> bool:
    if value is None:  # TPOT is undefined below 2 output tokens: nothing to violate (as in vLLM)
        return metric == "tpot"
    return float(value) <= limit


def _failed(e: dict[str, Any]) -> list[float]:
    return [0.0 if e["outcome"] == "ok" else 1.0]


def _tokens(e: dict[str, Any]) -> list[float]:
    return [float(e.get("completion_tokens") or 0)]


@dataclass(frozen=True)
class MetricSpec:
    """How one compared figure is computed from a sample of requests."""

    name: str  # e.g. ttft_p99, output_tokens_per_s
    family: str  # specs of one family share their per-request values (and resamples)
    per_request: Callable[[dict[str, Any]], list[float]]
    reduce: Callable[[SampleView, float], float]  # (sample, run duration) -> figure
    higher_is_better: bool
    unit: str  # "s", "1/s" or "" (a fraction)


def metric_names() -> set[str]:
    """Every metric a comparison can report (goodput when a run has an SLO)."""
    return {s.name for s in metric_specs({"ttft": 1.0})}


def metric_specs(limits: dict[str, float]) -> list[MetricSpec]:
    specs = [
        MetricSpec(f"{m}_p{p}", m, _latency(m), lambda v, _d, p=p: v.percentile(p), False, "s")
        for m in LATENCIES
        for p in PERCENTILES
    ]
    specs.append(
        MetricSpec("output_tokens_per_s", "tokens", _tokens, lambda v, d: v.sum() / d, True, "1/s")
    )
    specs.append(MetricSpec("error_ratio", "errors", _failed, lambda v, _d: v.mean(), False, ""))
    if limits:
        specs.append(
            MetricSpec("goodput", "goodput", _good(limits), lambda v, _d: v.mean(), True, "")
        )
    return specs


class Sample:
    """One metric's values over a run's conversations, sorted once. A bootstrap resample is a
    weight per conversation (how often it was drawn), so no value is copied per resample, and
    the percentiles equal numpy's (linear) on the resample written out in full."""

    def __init__(self, units: list[np.ndarray]) -> None:
        sizes = np.asarray([u.size for u in units], np.int64)
        values = np.concatenate(units) if units else np.empty(0)
        order = np.argsort(values, kind="stable")
        self.values = values[order]
        self.unit_of = np.repeat(np.arange(len(units)), sizes)[order]
        self.unit_sum = np.asarray([float(u.sum()) for u in units])
        self.unit_n = sizes
        self.units = len(units)

    def view(self, draws: np.ndarray | None = None) -> SampleView:
        """The whole sample (``draws`` None) or a resample: ``draws[i]`` copies of unit ``i``."""
        return SampleView(self, draws)


class SampleView:
    def __init__(self, sample: Sample, draws: np.ndarray | None) -> None:
        self.s = sample
        self.draws = draws
        self._cum: np.ndarray | None = None

    def _count(self) -> int:
        if self.draws is None:
            return int(self.s.values.size)
        return int(self.draws @ self.s.unit_n)

    def sum(self) -> float:
        return float(self.s.unit_sum.sum() if self.draws is None else self.draws @ self.s.unit_sum)

    def mean(self) -> float:
        n = self._count()
        return self.sum() / n if n else math.nan

    def percentile(self, p: float) -> float:
        n = self._count()
        if n == 0:
            return math.nan
        h = (n - 1) * p / 100.0
        lo = math.floor(h)
        a, b = self._at(lo), self._at(min(lo + 1, n - 1))
        return a + (h - lo) * (b - a)

    def _at(self, k: int) -> float:
        """The k-th smallest value of the (resampled) sample."""
        if self.draws is None:
            return float(self.s.values[k])
        if self._cum is None:
            self._cum = np.cumsum(self.draws[self.s.unit_of])
        return float(self.s.values[int(np.searchsorted(self._cum, k, side="right"))])


# -- the comparison -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Delta:
    cls: str
    metric: str
    unit: str
    higher_is_better: bool
    baseline: float
    value: float
    # relative, (value - baseline) / baseline; for fractions (unit ""), the difference in points
    change: float | None
    low: float | None  # confidence interval of the change
    high: float | None
    verdict: str  # better | worse | no detectable change | no data

    def as_dict(self) -> dict[str, Any]:
        return {k: _finite(v) for k, v in self.__dict__.items()}


def _finite(v: Any) -> Any:
    return None if isinstance(v, float) and not math.isfinite(v) else v


@dataclass(frozen=True)
class CompareOptions:
    confidence: float = 0.95
    min_effect: float = 0.05  # relative change below this is never called
    min_points: float = 0.01  # nor a change of a fraction (goodput, errors) below this
    resamples: int = 1000
    seed: int = 0
    min_conversations: int = 5  # fewer in a class: no verdict


def compare_runs(base: Run, other: Run, options: CompareOptions = CompareOptions()) -> list[Delta]:
    """Every class both runs have (and All), every metric: the change from ``base``."""
    families: dict[str, list[MetricSpec]] = {}
    for spec in metric_specs(base.slo or other.slo):
        families.setdefault(spec.family, []).append(spec)
    classes = [ALL] + sorted(set(base.classes) & set(other.classes))
    rng = np.random.default_rng(options.seed)
    out: list[Delta] = []
    for cls in classes:
        a, b = base.conversations(cls), other.conversations(cls)
        for specs in families.values():
            out += _family(cls, specs, a, b, (base.duration_s, other.duration_s), rng, options)
    return out


Conversations = dict[str, list[dict[str, Any]]]


def _family(
    cls: str,
    specs: list[MetricSpec],
    a: Conversations,
    b: Conversations,
    durations: tuple[float, float],
    rng: np.random.Generator,
    options: CompareOptions,
) -> list[Delta]:
    """The deltas of one family's metrics: one set of resamples serves them all."""
    paired = set(a) == set(b)  # the same conversations: draw the same ones from both runs
    keys_a = sorted(a)
    keys_b = keys_a if paired else sorted(b)
    per_request = specs[0].per_request
    sa = Sample([np.asarray([v for e in a[k] for v in per_request(e)], float) for k in keys_a])
    sb = Sample([np.asarray([v for e in b[k] for v in per_request(e)], float) for k in keys_b])
    da, db = durations
    points = [(s.reduce(sa.view(), da), s.reduce(sb.view(), db)) for s in specs]
    enough = min(len(keys_a), len(keys_b)) >= options.min_conversations
    reps: list[list[float | None]] = [[] for _ in specs]
    if enough and all(math.isfinite(x) and math.isfinite(y) for x, y in points):
        for _ in range(options.resamples):
            wa = np.bincount(rng.integers(0, sa.units, sa.units), minlength=sa.units)
            wb = (
                wa
                if paired
                else np.bincount(rng.integers(0, sb.units, sb.units), minlength=sb.units)
            )
            ra, rb = sa.view(wa), sb.view(wb)
            for spec, col in zip(specs, reps, strict=True):
                col.append(_change(spec, spec.reduce(ra, da), spec.reduce(rb, db)))
    return [
        _delta(cls, spec, x, y, col, enough, options)
        for spec, (x, y), col in zip(specs, points, reps, strict=True)
    ]


def _delta(
    cls: str,
    spec: MetricSpec,
    va: float,
    vb: float,
    reps: list[float | None],
    enough: bool,
    options: CompareOptions,
) -> Delta:
    common = dict(
        cls=cls,
        metric=spec.name,
        unit=spec.unit,
        higher_is_better=spec.higher_is_better,
        baseline=va,
        value=vb,
    )
    if not (math.isfinite(va) and math.isfinite(vb)):
        return Delta(**common, change=None, low=None, high=None, verdict="no data")
    change = _change(spec, va, vb)
    arr = np.asarray([r for r in reps if r is not None and math.isfinite(r)])
    if not enough or len(arr) < options.resamples / 2:  # mostly empty resamples: say nothing
        return Delta(**common, change=change, low=None, high=None, verdict="too few to tell")
    tail = (1 - options.confidence) / 2 * 100
    low, high = (float(x) for x in np.percentile(arr, [tail, 100 - tail]))
    verdict = _verdict(spec, change, low, high, options)
    return Delta(**common, change=change, low=low, high=high, verdict=verdict)


def _change(spec: MetricSpec, a: float, b: float) -> float | None:
    if not (math.isfinite(a) and math.isfinite(b)):
        return None
    if spec.unit == "":  # a fraction: points
        return b - a
    if a == 0:
        return 0.0 if b == 0 else math.copysign(math.inf, b)
    return (b - a) / abs(a)


def _verdict(
    spec: MetricSpec, change: float | None, low: float, high: float, o: CompareOptions
) -> str:
    floor = o.min_points if spec.unit == "" else o.min_effect
    if change is None or abs(change) < floor or low <= 0 <= high:
        return "no detectable change"
    up = low > 0  # the whole interval above zero
    return "better" if up == spec.higher_is_better else "worse"
