"""The Prometheus scrape maps llama.cpp's and vLLM's own metric names onto the timeline's columns.

The counters below are what ``llama-server`` (build b10434) and vLLM 0.32.0 (CPU) exported before
and after the second turn of the same chat (211 then 245 prompt tokens, 20 output tokens each); the
gauges are set to non-zero values so that their mapping shows. The live servers are checked against
request usage in ``test_real_servers.py``.
"""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from locust_burstgpt.report.server_metrics import ServerMetricsScraper, parse_prometheus

LLAMACPP_BEFORE = """\
# HELP llamacpp:prompt_tokens_total Number of prompt tokens processed, excluding cached tokens
# TYPE llamacpp:prompt_tokens_total counter
llamacpp:prompt_tokens_total 211
# TYPE llamacpp:prompt_tokens_cached_total counter
llamacpp:prompt_tokens_cached_total 0
# TYPE llamacpp:tokens_predicted_total counter
llamacpp:tokens_predicted_total 20
# TYPE llamacpp:requests_processing gauge
llamacpp:requests_processing 0
# TYPE llamacpp:requests_deferred gauge
llamacpp:requests_deferred 0
"""
LLAMACPP_AFTER = """\
llamacpp:prompt_tokens_total 226
llamacpp:prompt_tokens_cached_total 230
llamacpp:prompt_seconds_total 1.18907
llamacpp:tokens_predicted_total 40
llamacpp:n_tokens_max 264
llamacpp:prompt_tokens_seconds 190.065
llamacpp:requests_processing 1
llamacpp:requests_deferred 2
"""
VLLM_BEFORE = """\
vllm:num_requests_running{engine="0",model_name="smollm2"} 0.0
vllm:num_requests_waiting{engine="0",model_name="smollm2"} 0.0
vllm:kv_cache_usage_perc{engine="0",model_name="smollm2"} 0.0
vllm:prefix_cache_queries_total{engine="0",model_name="smollm2"} 211.0
vllm:prefix_cache_hits_total{engine="0",model_name="smollm2"} 0.0
vllm:prompt_tokens_total{engine="0",model_name="smollm2"} 211.0
vllm:prompt_tokens_created{engine="0",model_name="smollm2"} 1.7955093568855420e+09
vllm:generation_tokens_total{engine="0",model_name="smollm2"} 20.0
"""
VLLM_AFTER = """\
vllm:num_requests_running{engine="0",model_name="smollm2"} 3.0
vllm:num_requests_waiting{engine="0",model_name="smollm2"} 1.0
vllm:num_requests_waiting_by_reason{engine="0",model_name="smollm2",reason="capacity"} 1.0
vllm:kv_cache_usage_perc{engine="0",model_name="smollm2"} 0.25
vllm:prefix_cache_queries_total{engine="0",model_name="smollm2"} 456.0
vllm:prefix_cache_hits_total{engine="0",model_name="smollm2"} 128.0
vllm:prompt_tokens_total{engine="0",model_name="smollm2"} 456.0
vllm:prompt_tokens_by_source_total{engine="0",model_name="smollm2",source="local_compute"} 328.0
vllm:prompt_tokens_by_source_total{engine="0",model_name="smollm2",source="local_cache_hit"} 128.0
vllm:generation_tokens_total{engine="0",model_name="smollm2"} 40.0
"""


@contextmanager
def metrics_server(pages: list[str]) -> Iterator[str]:
    """A /metrics endpoint on 127.0.0.1 answering ``pages`` in order (the last one repeats)."""
    served: list[str] = list(pages)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = (served.pop(0) if len(served) > 1 else served[0]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/metrics"
    finally:
        httpd.shutdown()
        httpd.server_close()


def scrape_twice(before: str, after: str) -> dict[str, float]:
    with metrics_server([before, after]) as url:
        scraper = ServerMetricsScraper(url)
        first = scraper.scrape()
        assert "generation_tokens" not in first  # a counter's first reading is only a baseline
        return scraper.scrape()


def test_llamacpp_prompt_tokens_count_cached_and_computed_tokens_like_vllm():
    values = scrape_twice(LLAMACPP_BEFORE, LLAMACPP_AFTER)
    # second request: 245 prompt tokens, 230 of them from llama.cpp's prompt cache, 15 computed
    assert values == {
        "running": 1.0,
        "waiting": 2.0,
        "generation_tokens": 20.0,
        "prompt_tokens": 245.0,
        "prefix_cache_hits": 230.0,
        "prefix_cache_queries": 245.0,
    }


def test_vllm_names_map_onto_the_same_columns():
    values = scrape_twice(VLLM_BEFORE, VLLM_AFTER)
    assert values == {
        "running": 3.0,
        "waiting": 1.0,
        "kv_cache_usage": 0.25,
        "generation_tokens": 20.0,
        "prompt_tokens": 245.0,
        "prefix_cache_hits": 128.0,
        "prefix_cache_queries": 245.0,
    }


def test_older_llamacpp_without_cached_counter_still_reports_prompt_tokens():
    before = "llamacpp:prompt_tokens_total 100\nllamacpp:kv_cache_usage_ratio 0.1\n"
    after = "llamacpp:prompt_tokens_total 160\nllamacpp:kv_cache_usage_ratio 0.3\n"
    assert scrape_twice(before, after) == {"kv_cache_usage": 0.3, "prompt_tokens": 60.0}


def test_label_sets_are_summed_and_comments_skipped():
    samples = parse_prometheus(VLLM_AFTER + "# HELP x y\nbad line\nvllm:nan_metric NaN\n")
    assert samples["vllm:prompt_tokens_by_source_total"] == 456.0
    assert "vllm:nan_metric" not in samples


def test_a_server_without_metrics_is_marked_unavailable():
    scraper = ServerMetricsScraper("http://127.0.0.1:9/metrics", timeout_s=0.5)
    assert scraper.scrape() == {}
    assert scraper.available is False and scraper.failures == 1


# Importing Locust monkey-patches the interpreter (gevent), so the sampler runs in a child process.
SAMPLER_SCRIPT = """
from types import SimpleNamespace
from locust_burstgpt.plugin import _feed
from locust_burstgpt.report.run_report import RunReport

class StubScraper:  # hands out counter deltas, as ServerMetricsScraper.scrape does
    results = [{"running": 2.0, "generation_tokens": 10.0}, {"running": 0.0, "generation_tokens": 4.0}]
    def scrape(self):
        return self.results.pop(0)

report = RunReport(1000.0, None, {})
role = SimpleNamespace(report=report, ticks=[], health=None, environment=SimpleNamespace(runner=None),
                       in_progress=lambda: 0)
sampler = _feed.SecondSampler(role, StubScraper())
sampler.stop()
for now, final in ((1005.02, False), (1005.40, True)):  # the loop's last scrape, then finish_run's
    _feed.time.time = lambda now=now: now
    sampler.sample(final=final)
print({r["second"]: r.get("server_generation_tokens") for r in report.timeline.rows()
       if r.get("server_generation_tokens")})
"""


def _last_line(script: str) -> str:
    """Run ``script`` in a child interpreter (importing the plugin patches this one with gevent)
    and return the last line it printed."""
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_the_final_scrape_does_not_erase_the_last_second_of_counter_deltas():
    # The sampler scrapes 0.02 s after each second boundary and labels the result with the second
    # that just ended; at the end of a run ``finish_run`` scrapes once more, inside the run's last
    # second, and that delta belongs to the last second (before, it was added to the second before,
    # which then showed more tokens than the server made in it). Both deltas must survive, so that
    # the timeline's server_generation_tokens add up to what the server generated during the run.
    last = _last_line(SAMPLER_SCRIPT)
    # the loop's scrape books second 4 (just ended); the final one the run's last second, 5
    assert last == "{4: 10.0, 5: 4.0}"


BASELINE_SCRIPT = """
import gevent
from types import SimpleNamespace
from locust_burstgpt.plugin import _feed
from locust_burstgpt.report.run_report import RunReport
from locust_burstgpt.report.server_metrics import ServerMetricsScraper

class Counters(ServerMetricsScraper):  # the real delta logic over a server whose counter we set
    value = 500.0  # generated before the run (the prompt builder's probes, earlier runs)
    def fetch(self):
        return {"vllm:generation_tokens_total": self.value}

scraper = Counters("http://127.0.0.1:9/metrics")
report = RunReport(1000.0, None, {})
role = SimpleNamespace(report=report, ticks=[], health=None, environment=SimpleNamespace(runner=None),
                       in_progress=lambda: 0)
_feed.time.time = lambda: 999.5  # in the lead before offset 0
sampler = _feed.SecondSampler(role, scraper)
gevent.sleep(0)  # the sampler's greenlet runs up to its first sleep
sampler.stop()
scraper.value += 37.0  # the run's first second
_feed.time.time = lambda: 1001.02
sampler.sample()
print(sum(r.get("server_generation_tokens") or 0 for r in report.timeline.rows()))
"""


def test_counters_have_a_baseline_before_the_first_request():
    # Without a scrape before offset 0 the first sample only sets the baseline, and what the server
    # did in the run's first second (a short request, its cached prompt tokens) is never booked.
    last = _last_line(BASELINE_SCRIPT)
    assert float(last) == 37.0
