"""Scrape an inference server's Prometheus ``/metrics`` into a few comparable per-second values.

Why: a latency spike means little without the server's own view (queue length, KV-cache usage,
prefix-cache hits). vLLM (and the embedded simulator, which uses vLLM's names) and llama.cpp name
these differently; both map onto one set of keys:

* ``running`` / ``waiting``: requests in the batch / queued
* ``kv_cache_usage``: fraction 0..1
* ``generation_tokens`` / ``prompt_tokens``: tokens in the last interval (from counters); prompt
  tokens count every prompt token, whether computed or found in the prefix cache
* ``prefix_cache_hits`` / ``prefix_cache_queries``: prompt tokens found / looked up in the interval

Each key lists its sources in order of preference; a source is one metric name or several whose
samples are added. llama.cpp (checked against ``llama-server`` build b10434) counts computed and
cached prompt tokens apart: ``llamacpp:prompt_tokens_total`` excludes the tokens reused from its
prompt cache, which ``llamacpp:prompt_tokens_cached_total`` counts, so their sum is vLLM's
``vllm:prompt_tokens_total`` (every prompt token, cached or not) and also the number of prompt
tokens looked up in the cache. That build has no KV-cache usage gauge (older builds exported
``llamacpp:kv_cache_usage_ratio``; it is still read where present).
"""

from __future__ import annotations

import math
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from locust_burstgpt.client.sidechannel import SideChannel, SideChannelError

Source = tuple[str, ...]  # metric names whose values are added

GAUGES: dict[str, tuple[Source, ...]] = {
    "running": (("vllm:num_requests_running",), ("llamacpp:requests_processing",)),
    "waiting": (("vllm:num_requests_waiting",), ("llamacpp:requests_deferred",)),
    "kv_cache_usage": (
        ("vllm:kv_cache_usage_perc",),
        ("vllm:gpu_cache_usage_perc",),
        ("llamacpp:kv_cache_usage_ratio",),
    ),
}
_LLAMACPP_PROMPT = ("llamacpp:prompt_tokens_total", "llamacpp:prompt_tokens_cached_total")
COUNTERS: dict[str, tuple[Source, ...]] = {
    "generation_tokens": (("vllm:generation_tokens_total",), ("llamacpp:tokens_predicted_total",)),
    "prompt_tokens": (
        ("vllm:prompt_tokens_total",),
        _LLAMACPP_PROMPT,
        ("llamacpp:prompt_tokens_total",),
    ),
    "prefix_cache_hits": (
        ("vllm:prefix_cache_hits_total",),
        ("vllm:gpu_prefix_cache_hits_total",),
        ("llamacpp:prompt_tokens_cached_total",),
    ),
    "prefix_cache_queries": (
        ("vllm:prefix_cache_queries_total",),
        ("vllm:gpu_prefix_cache_queries_total",),
        _LLAMACPP_PROMPT,
    ),
}
_LINE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+([^\s]+)")


def parse_prometheus(text: str) -> dict[str, float]:
    """Sum every sample of each metric name over its label sets (one model per server here)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        if math.isnan(value):
            continue
        out[m.group(1)] = out.get(m.group(1), 0.0) + value
    return out


def pick(samples: dict[str, float], sources: tuple[Source, ...]) -> float | None:
    """The value of the first source whose every metric is present (summed), or None."""
    for names in sources:
        if all(name in samples for name in names):
            return sum(samples[name] for name in names)
    return None


class ServerMetricsScraper:
    """Polls one ``/metrics`` URL; ``scrape()`` returns gauges and counter deltas since the last call.

    ``api_key``: sent with the request; the caller passes it only when the URL has the origin of the
    server under test (a key never goes to another host)."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        verify_tls: bool = True,
        timeout_s: float = 2.0,
    ) -> None:
        parts = urlsplit(url)
        self.url = url
        self.timeout_s = timeout_s
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._side = SideChannel(
            urlunsplit((parts.scheme, parts.netloc, "", "", "")),
            api_key,
            verify_tls=verify_tls,
            timeout_s=timeout_s,
            concurrency=1,
        )
        self._last: dict[str, float] = {}
        self.failures = 0
        self.available: bool | None = None  # None until the first scrape

    def fetch(self) -> dict[str, float] | None:
        try:
            status, text = self._side.get_text(self._path)
        except SideChannelError:  # a server without metrics is normal; count and carry on
            self.failures += 1
            return None
        if status != 200:
            self.failures += 1
            return None
        return parse_prometheus(text)

    def close(self) -> None:
        self._side.close()

    def scrape(self) -> dict[str, Any]:
        samples = self.fetch()
        if samples is None:
            if self.available is None:
                self.available = False
            return {}
        values: dict[str, Any] = {}
        for key, names in GAUGES.items():
            v = pick(samples, names)
            if v is not None:
                values[key] = v
        for key, names in COUNTERS.items():
            v = pick(samples, names)
            if v is None:
                continue
            if key in self._last:
                values[key] = max(0.0, v - self._last[key])
            self._last[key] = v
        self.available = bool(values) or bool(self._last)
        return values
