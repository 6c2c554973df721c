"""LLM metrics per request class (e.g. "GPT-4 conversation").

Definitions (vLLM's benchmark, so numbers compare), all from one ``RequestRecord``:

* TTFT = first content chunk - send; ITL = gaps between consecutive content chunks (every gap
  of every request is one sample); TPOT = (E2E - TTFT) / (completion tokens - 1), requests with
  fewer than 2 output tokens have none; E2E = last byte - send.
* Latency metrics (TTFT, ITL, TPOT, E2E, E2E ratio) count successful (``ok``) requests only, as
  vLLM does; lateness (send - scheduled) counts every request that was sent.
* E2E ratio = E2E / the trace's recorded Elapsed time, for rows whose Elapsed time is > 0.
* Output tokens/s = completion tokens of ok requests / duration, where duration is the span from
  the first send to the last byte over all recorded requests (or what the caller passes).
* Goodput (with a ``PerRequestSLO``): fraction of finished requests (cancelled ones excluded)
  that are ``ok`` and meet every threshold, and that count per second of duration.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from locust_burstgpt.client.records import Outcome, RequestRecord
from locust_burstgpt.metrics.histogram import PERCENTILES, ExactHistogram

LATENCY_METRICS: tuple[str, ...] = ("ttft", "itl", "tpot", "e2e", "lateness", "e2e_ratio")
ALL = "All"
_COUNTERS = (
    "requests",
    "ok",
    "good",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "prompt_checked",
    "prompt_exact",
    "expected_checked",
    "expected_exact",
    "completion_checked",
    "completion_exact",
    "cancelled",
    "prompt_trace_checked",
    "prompt_trace_exact",
    "prompt_adjusted",
    "prompt_adjusted_exact",
)
_FLOATS = ("completion_ratio_sum",)


@dataclass(frozen=True)
class PerRequestSLO:
    """Per-request thresholds (seconds); None means no limit. Goodput counts requests meeting all."""

    ttft_s: float | None = None
    tpot_s: float | None = None
    e2e_s: float | None = None

    def met_by(self, r: RequestRecord) -> bool:
        if r.outcome is not Outcome.OK:
            return False
        for limit, value in ((self.ttft_s, r.ttft), (self.e2e_s, r.e2e)):
            if limit is not None and (value is None or value > limit):
                return False
        if self.tpot_s is not None:
            tpot = r.tpot  # undefined for < 2 output tokens: nothing to violate (as in vLLM)
            if tpot is not None and tpot > self.tpot_s:
                return False
        return True

    def to_dict(self) -> dict[str, float | None]:
        return {"ttft_s": self.ttft_s, "tpot_s": self.tpot_s, "e2e_s": self.e2e_s}


class ClassMetrics:
    """Histograms and counters of one request class."""

    def __init__(self) -> None:
        self.hist = {m: ExactHistogram() for m in LATENCY_METRICS}
        self.outcomes: dict[str, int] = {}
        self.counters = dict.fromkeys(_COUNTERS, 0)
        self.floats = dict.fromkeys(_FLOATS, 0.0)
        self.first_sent_wall = math.inf
        self.last_byte_wall = -math.inf

    def add(
        self,
        r: RequestRecord,
        recorded_elapsed_s: float | None,
        slo: PerRequestSLO | None,
        trace_prompt_tokens: int | None = None,
    ) -> None:
        c, h = self.counters, self.hist
        c["requests"] += 1
        outcome = r.outcome.value if r.outcome is not None else "none"
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        if r.outcome is Outcome.CANCELLED:
            c["cancelled"] += 1
        late = r.lateness
        if late is not None:
            h["lateness"].add(late)
        if r.sent_at is not None:
            self.first_sent_wall = min(self.first_sent_wall, r.sent_at + r.wall_anchor)
        if r.last_byte_at is not None:
            self.last_byte_wall = max(self.last_byte_wall, r.last_byte_at + r.wall_anchor)
        if slo is not None and slo.met_by(r):
            c["good"] += 1
        if r.outcome is not Outcome.OK:
            return
        c["ok"] += 1
        c["prompt_tokens"] += r.prompt_tokens or 0
        c["completion_tokens"] += r.completion_tokens or 0
        c["cached_tokens"] += r.cached_tokens or 0
        for name, value in (("ttft", r.ttft), ("tpot", r.tpot), ("e2e", r.e2e)):
            if value is not None:
                h[name].add(value)
        times = r.chunk_times
        if len(times) > 1:
            h["itl"].add_array(np.diff(np.asarray(times, dtype=np.float64)))
        e2e = r.e2e
        if recorded_elapsed_s and recorded_elapsed_s > 0 and e2e is not None:
            h["e2e_ratio"].add(e2e / recorded_elapsed_s)
        self._fidelity(r, trace_prompt_tokens)

    def _fidelity(self, r: RequestRecord, trace_prompt: int | None) -> None:
        """Realized lengths against the trace's and against the target actually asked for (the
        trace's, unless raised to the chat template's minimum or clipped to the context)."""
        c = self.counters
        target_p = r.target_prompt_tokens
        expected_p = r.expected_prompt_tokens
        target_c = r.target_completion_tokens
        if r.prompt_tokens is not None:
            if target_p is not None:
                c["prompt_checked"] += 1
                c["prompt_exact"] += int(r.prompt_tokens == target_p)
            if trace_prompt is not None:
                c["prompt_trace_checked"] += 1
                c["prompt_trace_exact"] += int(r.prompt_tokens == trace_prompt)
                if target_p is not None and target_p != trace_prompt:
                    c["prompt_adjusted"] += 1
                    c["prompt_adjusted_exact"] += int(r.prompt_tokens == target_p)
            if expected_p is not None:
                c["expected_checked"] += 1
                c["expected_exact"] += int(r.prompt_tokens == expected_p)
        if r.completion_tokens is not None and target_c:
            c["completion_checked"] += 1
            c["completion_exact"] += int(r.completion_tokens == target_c)
            self.floats["completion_ratio_sum"] += r.completion_tokens / target_c

    def merge(self, other: ClassMetrics) -> None:
        for m in LATENCY_METRICS:
            self.hist[m].merge(other.hist[m])
        for k, v in other.outcomes.items():
            self.outcomes[k] = self.outcomes.get(k, 0) + v
        for k, v in other.counters.items():
            self.counters[k] = self.counters.get(k, 0) + v
        for k, v in other.floats.items():
            self.floats[k] = self.floats.get(k, 0.0) + v
        self.first_sent_wall = min(self.first_sent_wall, other.first_sent_wall)
        self.last_byte_wall = max(self.last_byte_wall, other.last_byte_wall)

    @property
    def span_s(self) -> float | None:
        span = self.last_byte_wall - self.first_sent_wall
        return span if math.isfinite(span) and span > 0 else None

    def summary(
        self,
        slo: PerRequestSLO | None,
        duration_s: float | None,
        percentiles: tuple[float, ...] = PERCENTILES,
    ) -> dict[str, Any]:
        c = self.counters
        duration = duration_s if duration_s is not None else self.span_s
        finished = c["requests"] - c["cancelled"]
        out: dict[str, Any] = {
            "requests": c["requests"],
            "ok": c["ok"],
            "outcomes": dict(sorted(self.outcomes.items())),
            "success_rate": c["ok"] / finished if finished else None,
            "duration_s": duration,
            "prompt_tokens": c["prompt_tokens"],
            "completion_tokens": c["completion_tokens"],
            "cached_tokens": c["cached_tokens"],
            "output_tokens_per_s": c["completion_tokens"] / duration if duration else None,
            "requests_per_s": c["requests"] / duration if duration else None,
        }
        for m in LATENCY_METRICS:
            out[m] = self.hist[m].summary(percentiles)
        if slo is None:
            out["goodput"] = None
        else:
            out["goodput"] = {
                "slo": slo.to_dict(),
                "good": c["good"],
                "fraction": c["good"] / finished if finished else None,
                "per_s": c["good"] / duration if duration else None,
            }
        out["length"] = {
            # == the target asked for (the trace's, or the adjusted one below)
            "prompt_exact_fraction": _ratio(c["prompt_exact"], c["prompt_checked"]),
            # == the trace's own Request tokens
            "prompt_trace_fraction": _ratio(c["prompt_trace_exact"], c["prompt_trace_checked"]),
            "prompt_checked": c["prompt_trace_checked"] or c["prompt_checked"],
            # targets that differ from the trace (raised to the chat template's minimum, or clipped
            # to the model's context), and how many of those prompts equal their adjusted target
            "prompt_adjusted": c["prompt_adjusted"],
            "prompt_adjusted_exact": c["prompt_adjusted_exact"],
            "prompt_as_built_fraction": _ratio(c["expected_exact"], c["expected_checked"]),
            "completion_exact_fraction": _ratio(c["completion_exact"], c["completion_checked"]),
            "completion_mean_ratio": _ratio(
                self.floats["completion_ratio_sum"], c["completion_checked"]
            ),
        }
        return out


class MetricsStore:
    """Per-class metrics of a run (on the master of a distributed run: every worker's requests)."""

    def __init__(self, slo: PerRequestSLO | None = None) -> None:
        self.slo = slo
        self.classes: dict[str, ClassMetrics] = {}

    def record(
        self,
        label: str,
        record: RequestRecord,
        recorded_elapsed_s: float | None = None,
        trace_prompt_tokens: int | None = None,
    ) -> None:
        """Account one finished request under ``label`` (``trace_prompt_tokens``: the trace's
        Request tokens of the turn it replays, for length fidelity against the trace)."""
        cm = self.classes.get(label)
        if cm is None:
            cm = self.classes[label] = ClassMetrics()
        cm.add(record, recorded_elapsed_s, self.slo, trace_prompt_tokens)

    def total(self) -> ClassMetrics:
        """All classes together."""
        total = ClassMetrics()
        for cm in self.classes.values():
            total.merge(cm)
        return total

    def summary(
        self, duration_s: float | None = None, percentiles: tuple[float, ...] = PERCENTILES
    ) -> dict[str, Any]:
        """``{label: {...}, "All": {...}}``: counts, latency percentiles (s), rates, goodput."""
        out = {
            label: cm.summary(self.slo, duration_s, percentiles)
            for label, cm in sorted(self.classes.items())
        }
        out[ALL] = self.total().summary(self.slo, duration_s, percentiles)
        return out


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None
