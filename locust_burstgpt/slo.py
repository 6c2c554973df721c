"""SLO gates: ``ttft_p99<=2s,tpot_p99<=80ms,e2e_p90<=20s,goodput>=0.95,lateness_p99<=50ms,fail_ratio<=0.01``.

Why its own module: CI reads the verdicts to pass or fail a build, so the grammar is strict and every
mistake gets one line saying what was expected. Latency gates name a metric and a percentile; their
thresholds double as the per-request limits that define goodput (vLLM's definition: the fraction of
requests that meet every per-request SLO).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

LATENCY_METRICS = ("ttft", "itl", "tpot", "e2e", "lateness")
RATIO_METRICS = ("goodput", "fail_ratio")
RATE_METRICS = ("output_tokens_per_s", "requests_per_s")
PER_REQUEST = ("ttft", "tpot", "e2e", "itl")  # thresholds that define goodput
UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6}

_ITEM = re.compile(
    r"^(?P<metric>[a-z][a-z0-9_]*?)(?:_p(?P<pct>\d+(?:\.\d+)?))?\s*(?P<op><=|>=|<|>)\s*"
    r"(?P<num>[0-9]*\.?[0-9]+(?:[eE][-+]?\d+)?)\s*(?P<unit>[a-z]*)$"
)


class SLOSpecError(ValueError):
    """The --burstgpt-slo text is not valid; the message says which item and what was expected."""


@dataclass(frozen=True)
class Gate:
    metric: str
    percentile: float | None  # e.g. 99.0 for _p99; None for ratios and rates
    op: str
    threshold: float  # seconds for latency metrics
    text: str  # as the user wrote it

    @property
    def key(self) -> str:
        return (
            f"{self.metric}_p{_pct_text(self.percentile)}"
            if self.percentile is not None
            else self.metric
        )

    def passes(self, value: float | None) -> bool:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return {
            "<=": value <= self.threshold,
            "<": value < self.threshold,
            ">=": value >= self.threshold,
            ">": value > self.threshold,
        }[self.op]

    def miss_text(self, value: float | None) -> str:
        """How the measured value misses the gate, in the gate's own units."""
        if value is None:
            return f"{self.text}: no data"
        if self.metric in LATENCY_METRICS:
            return (
                f"{self.text}: measured {_fmt_s(value)}, {_fmt_s(abs(value - self.threshold))} "
                f"{'over' if value > self.threshold else 'under'} the limit"
            )
        return f"{self.text}: measured {value:.4g} (limit {self.threshold:.4g})"


@dataclass(frozen=True)
class SLOSpec:
    gates: tuple[Gate, ...]

    def per_request_limits(self) -> dict[str, float]:
        """metric -> seconds: the tightest upper limit per latency metric (defines goodput)."""
        limits: dict[str, float] = {}
        for g in self.gates:
            if g.metric in PER_REQUEST and g.op in ("<=", "<"):
                limits[g.metric] = min(limits.get(g.metric, math.inf), g.threshold)
        return limits


def _pct_text(p: float | None) -> str:
    if p is None:
        return ""
    return str(int(p)) if float(p).is_integer() else str(p)


def _fmt_s(v: float) -> str:
    return f"{v:.3f} s" if v >= 1 else f"{v * 1000:.1f} ms"


def parse_slo(text: str | None) -> SLOSpec:
    """Parse a comma-separated SLO spec; raise SLOSpecError naming the bad item."""
    gates: list[Gate] = []
    for raw in (text or "").split(","):
        item = raw.strip()
        if not item:
            continue
        m = _ITEM.match(item.lower())
        if not m:
            raise SLOSpecError(
                f"--burstgpt-slo: cannot read {item!r}; expected METRIC_pNN<=VALUE[s|ms|us] "
                f"(METRIC one of {', '.join(LATENCY_METRICS)}) or goodput>=X, fail_ratio<=X, "
                f"output_tokens_per_s>=X, requests_per_s>=X"
            )
        metric, pct, op, num, unit = m["metric"], m["pct"], m["op"], float(m["num"]), m["unit"]
        if metric in LATENCY_METRICS:
            if pct is None:
                raise SLOSpecError(
                    f"--burstgpt-slo: {item!r} needs a percentile, e.g. {metric}_p99"
                )
            p = float(pct)
            if not 0 < p <= 100:
                raise SLOSpecError(f"--burstgpt-slo: {item!r}: percentile must be in (0, 100]")
            if unit not in UNITS:
                raise SLOSpecError(f"--burstgpt-slo: {item!r}: give a unit: s, ms or us")
            gates.append(Gate(metric, p, op, num * UNITS[unit], item))
        elif metric in RATIO_METRICS or metric in RATE_METRICS:
            if pct is not None or unit:
                raise SLOSpecError(
                    f"--burstgpt-slo: {item!r}: {metric} takes a plain number, no percentile or unit"
                )
            if metric in RATIO_METRICS and not 0 <= num <= 1:
                raise SLOSpecError(
                    f"--burstgpt-slo: {item!r}: {metric} is a fraction between 0 and 1"
                )
            gates.append(Gate(metric, None, op, num, item))
        else:
            raise SLOSpecError(
                f"--burstgpt-slo: unknown metric {metric!r} in {item!r}; expected one of "
                f"{', '.join(LATENCY_METRICS + RATIO_METRICS + RATE_METRICS)}"
            )
    return SLOSpec(tuple(gates))
