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

llama.cpp adds a request's generated tokens to ``llamacpp:tokens_predicted_total`` only when the
request ends, so that counter alone books a long reply in the second it finished. Its ``/slots``
endpoint (on by default; ``--no-slots`` turns it off) says how many tokens each busy slot has
decoded so far, so ``generation_tokens`` there is the counter plus that sum: tokens in the second
the server generated them, as vLLM's counter, which grows at every step, gives them.
"""

from __future__ import annotations

import logging
import math
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from locust_burstgpt.client.sidechannel import SideChannel, SideChannelError

Source = tuple[str, ...]  # metric names whose values are added
log = logging.getLogger(__name__)

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
LLAMACPP_PREDICTED = "llamacpp:tokens_predicted_total"
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


def llamacpp_decoded(slots: Any) -> int | None:
    """Tokens decoded so far by the requests llama.cpp's busy slots are serving (``/slots``), or
    None when the answer has no such field (another build's format: then do not guess)."""
    if not isinstance(slots, list):
        return None
    total = 0
    for slot in slots:
        if not isinstance(slot, dict) or not slot.get("is_processing"):
            continue
        nxt = slot.get("next_token")
        if isinstance(nxt, list):  # a list of one per sequence in recent builds, a dict before
            nxt = nxt[0] if nxt else None
        n = nxt.get("n_decoded") if isinstance(nxt, dict) else None
        if not isinstance(n, int) or isinstance(n, bool):
            return None
        total += n
    return total


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
        path = parts.path or "/"
        # llama.cpp's /slots, next to its /metrics; None: not llama.cpp, or /slots did not answer
        self._slots_path: str | None = (
            path[: -len("metrics")] + "slots" if path.endswith("/metrics") else None
        )
        self._llamacpp: bool | None = None  # None until the first answer says which server

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

    def _decoding(self) -> int | None:
        """llama.cpp's tokens in flight, or None (and /slots not asked again) when unreadable."""
        if self._slots_path is None:
            return None
        try:
            status, body = self._side.get_json(self._slots_path)
        except SideChannelError:  # a slow answer this once: this scrape goes without
            return None
        decoded = llamacpp_decoded(body) if status == 200 else None
        if decoded is None:
            self._slots_path = None
            log.info(
                "llama.cpp's /slots did not answer with n_decoded (HTTP %s): "
                "server_generation_tokens books each request's tokens in the second it ended",
                status,
            )
        return decoded

    def scrape(self) -> dict[str, Any]:
        # /slots before /metrics: a request that ends between the two reads is then counted
        # twice for a moment, never missed, and the next delta is smaller by as much
        decoding = self._decoding() if self._llamacpp else None
        samples = self.fetch()
        if samples is None:
            if self.available is None:
                self.available = False
            return {}
        if self._llamacpp is None:
            self._llamacpp = LLAMACPP_PREDICTED in samples
            if self._llamacpp:  # the baseline: taken before the load, nothing is in flight yet
                decoding = self._decoding()
                if decoding is not None:
                    log.info(
                        "server_generation_tokens: %s plus the busy slots' n_decoded (/slots)",
                        LLAMACPP_PREDICTED,
                    )
        llamacpp = LLAMACPP_PREDICTED in samples
        values: dict[str, Any] = {}
        for key, names in GAUGES.items():
            v = pick(samples, names)
            if v is not None:
                values[key] = v
        for key, names in COUNTERS.items():
            v = pick(samples, names)
            if v is None:
                continue
            if key == "generation_tokens" and llamacpp and self._slots_path is not None:
                if decoding is None:  # /slots did not answer this once: the next scrape
                    continue  # books these seconds' tokens, none twice
                v += decoding
            if key in self._last:
                values[key] = max(0.0, v - self._last[key])
            self._last[key] = v
        self.available = bool(values) or bool(self._last)
        return values
