"""Exact LLM metrics: bounded percentile histograms and per-class aggregation.

In a distributed run workers ship each finished request to the master (``replay.results``), which
records them all into one store.

    store = MetricsStore(PerRequestSLO(ttft_s=2.0, tpot_s=0.08))
    store.record("GPT-4 conversation", record, recorded_elapsed_s=43)
    store.summary()["All"]["ttft"]["p99"]          # seconds, correct to 0.1 ms

Nothing here imports Locust.
"""

from __future__ import annotations

from locust_burstgpt.metrics.histogram import DEFAULT_RESOLUTION, PERCENTILES, ExactHistogram
from locust_burstgpt.metrics.store import (
    ALL,
    LATENCY_METRICS,
    ClassMetrics,
    MetricsStore,
    PerRequestSLO,
)

__all__ = [
    "ALL",
    "DEFAULT_RESOLUTION",
    "LATENCY_METRICS",
    "PERCENTILES",
    "ClassMetrics",
    "ExactHistogram",
    "MetricsStore",
    "PerRequestSLO",
]
