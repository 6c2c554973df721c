"""The Prometheus scrape maps llama.cpp's and vLLM's own metric names onto the timeline's columns.

The counters below are what ``llama-server`` (build b10434) and vLLM 0.32.0 (CPU) exported before
and after the second turn of the same chat (211 then 245 prompt tokens, 20 output tokens each); the
gauges are set to non-zero values so that their mapping shows. The live servers are checked against
request usage in ``test_real_servers.py``.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from locust_burstgpt.report.server_metrics import (
    ServerMetricsScraper,
    llamacpp_decoded,
    parse_prometheus,
)

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


SlotsAnswer = tuple[int, Any, float]  # HTTP status, JSON body, seconds to wait before answering


@contextmanager
def metrics_server(
    pages: list[str], slots: list[SlotsAnswer] | None = None, asked: list[str] | None = None
) -> Iterator[str]:
    """A /metrics endpoint on 127.0.0.1 answering ``pages`` in order (the last one repeats), and
    /slots answering ``slots`` so (404, as with llama.cpp's ``--no-slots``, when not given).
    ``asked`` collects the paths requested."""
    served: list[str] = list(pages)
    slot_answers: list[SlotsAnswer] = list(slots or [(404, {"error": "not supported"}, 0.0)])
    seen = asked if asked is not None else []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            seen.append(self.path)
            if self.path == "/slots":
                status, doc, wait_s = (
                    slot_answers.pop(0) if len(slot_answers) > 1 else slot_answers[0]
                )
                time.sleep(wait_s)  # a server busy with a decode step
                body, kind = json.dumps(doc).encode(), "application/json"
            else:
                status, kind = 200, "text/plain; version=0.0.4"
                body = (served.pop(0) if len(served) > 1 else served[0]).encode()
            self.send_response(status)
            self.send_header("Content-Type", kind)
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


def busy(*decoded: int, idle: int = 2) -> list[dict]:
    """``/slots`` as llama-server b10434 answers it: busy slots with their tokens decoded so far."""
    slots: list[dict] = [{"id": i, "is_processing": False} for i in range(idle)]
    for n in decoded:
        slots.append(
            {
                "id": len(slots),
                "is_processing": True,
                "id_task": 100 + len(slots),
                "next_token": [{"has_next_token": True, "n_remain": 50, "n_decoded": n}],
            }
        )
    return slots


def llamacpp_page(predicted: int) -> str:
    return f"llamacpp:tokens_predicted_total {predicted}\nllamacpp:requests_processing 1\n"


def test_llamacpp_generation_counts_the_tokens_of_requests_still_in_flight():
    # llama.cpp adds a request's tokens to tokens_predicted_total when it ends: 300 tokens of
    # three streams, seconds apart, must show in the seconds they were generated, not at the end
    pages = [llamacpp_page(p) for p in (0, 0, 60, 210, 510)]
    slots = [(200, busy(*d), 0.0) for d in ((), (40, 41, 40), (100, 101), (200,), ())]
    asked: list[str] = []
    with metrics_server(pages, slots, asked) as url:
        scraper = ServerMetricsScraper(url)
        deltas = [scraper.scrape().get("generation_tokens") for _ in pages]
    assert deltas == [None, 121.0, 140.0, 149.0, 100.0]  # 510 in all, as the counter says
    assert asked[:3] == ["/metrics", "/slots", "/slots"]  # /slots first once llama.cpp is known


def test_llamacpp_without_slots_books_each_request_when_it_ends():
    asked: list[str] = []
    with metrics_server(
        [llamacpp_page(0), llamacpp_page(0), llamacpp_page(60)], None, asked
    ) as url:
        scraper = ServerMetricsScraper(url)
        deltas = [scraper.scrape().get("generation_tokens") for _ in range(3)]
    assert deltas == [None, 0.0, 60.0]
    assert asked.count("/slots") == 1  # a 404 (--no-slots) is not asked again


def test_a_slow_slots_answer_moves_its_tokens_to_the_next_second_and_counts_none_twice():
    pages = [llamacpp_page(p) for p in (0, 0, 0, 90)]
    slots = [(200, busy(), 0.0), (200, busy(30), 0.0), (200, busy(60), 1.0), (200, busy(), 0.0)]
    with metrics_server(pages, slots) as url:
        scraper = ServerMetricsScraper(url, timeout_s=0.3)
        deltas = [scraper.scrape().get("generation_tokens") for _ in pages]
    assert deltas == [None, 30.0, None, 60.0]  # 90 in all


def test_slots_formats_of_other_builds():
    older = [{"is_processing": True, "next_token": {"n_decoded": 7}}, {"is_processing": False}]
    assert llamacpp_decoded(older) == 7  # a dict, not a list of one, in older builds
    assert llamacpp_decoded(busy(3, 4)) == 7
    assert llamacpp_decoded([{"is_processing": True}]) is None  # no n_decoded: do not guess
    assert llamacpp_decoded({"error": "x"}) is None


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
