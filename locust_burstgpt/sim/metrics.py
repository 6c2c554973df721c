"""Prometheus text exposition of the simulator's state under vLLM's metric names.

Why it exists: the plugin and users scrape ``/metrics`` from real vLLM servers; the simulator
exports the same names and label conventions (``model_name``, ``engine``) so the same scraping
code and dashboards work against it. Latency histograms are measured on the wire (the time each
chunk was written), not taken from the model.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence

from locust_burstgpt.sim.engine import Engine

# Bucket bounds as in vLLM's metrics.
TTFT_BUCKETS = (
    0.001,
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.25,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
    160.0,
    640.0,
    2560.0,
)
ITL_BUCKETS = (
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.5,
    5.0,
    7.5,
    10.0,
    20.0,
    40.0,
    80.0,
)
E2E_BUCKETS = (
    0.3,
    0.5,
    0.8,
    1.0,
    1.5,
    2.0,
    2.5,
    5.0,
    10.0,
    15.0,
    20.0,
    30.0,
    40.0,
    50.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
    7680.0,
)
# Simulator-only: how late a chunk was written compared with its step's scheduled end.
SEND_DELAY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.002,
    0.003,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.2,
    0.5,
    1.0,
)


class Histogram:
    """Cumulative-bucket histogram (non-cumulative counts kept, summed when rendered)."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, v: float) -> None:
        self.counts[bisect_left(self.bounds, v)] += 1
        self.sum += v
        self.count += 1

    def render(self, name: str, labels: str, help_text: str) -> list[str]:
        out = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        acc = 0
        for b, c in zip(self.bounds, self.counts, strict=False):
            acc += c
            out.append(f'{name}_bucket{{{labels},le="{b}"}} {acc}')
        out.append(f'{name}_bucket{{{labels},le="+Inf"}} {self.count}')
        out.append(f"{name}_sum{{{labels}}} {self.sum!r}")
        out.append(f"{name}_count{{{labels}}} {self.count}")
        return out


class WireMetrics:
    """Latencies and counters measured by the wire layer."""

    def __init__(self) -> None:
        self.ttft = Histogram(TTFT_BUCKETS)
        self.itl = Histogram(ITL_BUCKETS)
        self.e2e = Histogram(E2E_BUCKETS)
        self.send_delay = Histogram(SEND_DELAY_BUCKETS)
        self.faults: dict[str, int] = {}
        self.http_errors: dict[int, int] = {}
        self.streamed_chunks = 0


def render(engine: Engine, wire: WireMetrics, model: str) -> str:
    """The whole /metrics page."""
    lab = f'engine="0",model_name="{model}"'
    st = engine.stats
    lines: list[str] = []

    def gauge(name: str, value: float, help_text: str) -> None:
        lines.extend(
            (f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name}{{{lab}}} {value}")
        )

    def counter(name: str, value: float, help_text: str) -> None:
        lines.extend(
            (f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name}{{{lab}}} {value}")
        )

    gauge("vllm:num_requests_running", engine.num_running, "Requests in the running batch.")
    gauge("vllm:num_requests_waiting", engine.num_waiting, "Requests waiting to be scheduled.")
    gauge("vllm:kv_cache_usage_perc", engine.kv.usage(), "KV-cache usage, 1 means 100 percent.")
    counter("vllm:prompt_tokens_total", st.prompt_tokens, "Prompt tokens of admitted requests.")
    counter("vllm:generation_tokens_total", st.generation_tokens, "Generated tokens.")
    counter(
        "vllm:prefix_cache_queries_total",
        st.prefix_queries,
        "Prompt tokens looked up in the prefix cache.",
    )
    counter(
        "vllm:prefix_cache_hits_total", st.prefix_hits, "Prompt tokens found in the prefix cache."
    )
    counter("vllm:num_preemptions_total", st.preemptions, "Preempted (recomputed) requests.")
    lines.extend(
        (
            "# HELP vllm:request_success_total Finished requests by reason.",
            "# TYPE vllm:request_success_total counter",
        )
    )
    for reason in ("stop", "length", "abort"):
        lines.append(
            f'vllm:request_success_total{{{lab},finished_reason="{reason}"}} {st.finished[reason]}'
        )
    lines += wire.ttft.render(
        "vllm:time_to_first_token_seconds", lab, "Time to first token (wire)."
    )
    lines += wire.itl.render("vllm:inter_token_latency_seconds", lab, "Inter-token latency (wire).")
    lines += wire.e2e.render("vllm:e2e_request_latency_seconds", lab, "Request latency (wire).")
    lines += wire.send_delay.render(
        "burstgpt_sim:token_send_delay_seconds",
        lab,
        "Chunk write time minus its step's scheduled end.",
    )
    counter("burstgpt_sim:engine_steps_total", st.steps, "Engine steps run.")
    counter("burstgpt_sim:streamed_chunks_total", wire.streamed_chunks, "Content chunks streamed.")
    lines.extend(
        (
            "# HELP burstgpt_sim:faults_injected_total Faults injected by kind.",
            "# TYPE burstgpt_sim:faults_injected_total counter",
        )
    )
    for kind, n in sorted(wire.faults.items()):
        lines.append(f'burstgpt_sim:faults_injected_total{{{lab},kind="{kind}"}} {n}')
    lines.extend(
        (
            "# HELP burstgpt_sim:http_errors_total Error responses by status.",
            "# TYPE burstgpt_sim:http_errors_total counter",
        )
    )
    for status, n in sorted(wire.http_errors.items()):
        lines.append(f'burstgpt_sim:http_errors_total{{{lab},status="{status}"}} {n}')
    return "\n".join(lines) + "\n"
