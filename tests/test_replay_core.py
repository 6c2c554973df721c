"""The replay core driven in-process, without Locust: a few greenlets play the users, the embedded
simulator is the server, an observer collects what happened. Every scheduled request ends in exactly
one result, the books balance, multi-turn prompts are exact, and a result shipped as JSON (a worker's
message) gives the master the numbers the sending process had."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import gevent
import msgpack
import pytest

from locust_burstgpt.options import OPTIONS
from locust_burstgpt.replay import ProcessReplay, ReplayObserver, RequestHooks, TurnResult
from locust_burstgpt.report.run_report import RunReport
from locust_burstgpt.settings import settings_from_options
from locust_burstgpt.trace import load_trace, prepare
from tests.support import write_trace

# three 3-turn conversations and four one-turn API requests over 10 trace seconds
ROWS = [
    "0.0,s1,1,ChatGPT,40,12,52,Conversation log\n",
    "0.5,,1,GPT-4,30,8,38,API log\n",
    "1.0,s2,1,GPT-4,60,10,70,Conversation log\n",
    "2.0,s1,1,ChatGPT,90,12,102,Conversation log\n",
    "3.0,,1,ChatGPT,25,6,31,API log\n",
    "3.5,s3,1,ChatGPT,35,9,44,Conversation log\n",
    "4.0,s2,1,GPT-4,120,10,130,Conversation log\n",
    "5.0,s1,1,ChatGPT,150,12,162,Conversation log\n",
    "6.0,,1,GPT-4,20,5,25,API log\n",
    "6.5,s3,1,ChatGPT,80,9,89,Conversation log\n",
    "7.0,s2,1,GPT-4,180,10,190,Conversation log\n",
    "8.0,s3,1,ChatGPT,130,9,139,Conversation log\n",
    "9.0,,1,ChatGPT,22,4,26,API log\n",
]


class Collect(ReplayObserver):
    def __init__(self) -> None:
        self.results: list[TurnResult] = []
        self.retries: list[TurnResult] = []

    def on_result(self, result: TurnResult) -> None:
        self.results.append(result)

    def on_retry(self, result: TurnResult) -> None:
        self.retries.append(result)


def _settings(**overrides):
    values = {o.dest: o.default for o in OPTIONS}
    values.update({f"burstgpt_{k}": v for k, v in overrides.items()})
    return settings_from_options(SimpleNamespace(**values), {})


@pytest.fixture(scope="module")
def workload(tmp_path_factory):
    path = write_trace(tmp_path_factory.mktemp("core") / "trace.csv", ROWS)
    return prepare(load_trace(str(path)), window="0+12s", speedup=4.0)


def _run(workload, sim, observer, *, stop_after_s: float | None = None, hooks=None):
    """Replay ``workload`` with 8 user greenlets until every request ended (or ``stop_after_s``)."""
    replay = ProcessReplay(
        _settings(tokenizer="simpletok", drain_timeout=5.0),
        workload,
        range(workload.n_conversations),
        time.time() + 0.5,
        sim.base_url,
        observer,
        hooks=hooks,
    )
    d = replay.dispatcher

    def user() -> None:
        while True:
            d.run_for_user(d.take())

    users = [gevent.spawn(user) for _ in range(8)]
    replay.start()
    led = replay.ledger
    with gevent.Timeout(60):
        if stop_after_s is None:
            while len(observer.results) < led.scheduled:
                gevent.sleep(0.05)
        else:
            gevent.sleep(stop_after_s)
    replay.stop("stopped")
    gevent.killall(users)
    replay.close()
    return replay


def test_every_scheduled_request_ends_in_one_result_and_the_books_balance(workload, sim_fast):
    seen = Collect()
    replay = _run(workload, sim_fast, seen)
    led = replay.ledger
    assert led.scheduled == workload.n_requests == len(ROWS)
    ids = [r.meta.request_id for r in seen.results]
    assert len(ids) == len(set(ids)) == led.scheduled  # exactly one result per request
    assert led.balances() and led.sent == led.scheduled and dict(led.outcomes) == {"ok": led.sent}
    assert all(r.outcome == "ok" for r in seen.results)
    # multi-turn history: every prompt, history included, is the trace's size in the server's count
    for r in seen.results:
        assert r.record.prompt_tokens == r.meta.trace_request_tokens, r.meta
        assert r.record.completion_tokens == r.meta.trace_response_tokens, r.meta
    later = [r for r in seen.results if r.meta.turn > 0]
    assert len(later) == 6 and all(r.scheduled_offset_s is not None for r in later)
    # a later turn is due its think time after the previous turn's reply ended, never before
    by_turn = {(r.meta.conversation, r.meta.turn): r for r in seen.results}
    for r in later:
        prev = by_turn[(r.meta.conversation, r.meta.turn - 1)].record
        assert r.record.scheduled_at >= prev.last_byte_at


def test_stopping_early_books_every_turn_not_sent(workload, sim_fast):
    seen = Collect()
    replay = _run(workload, sim_fast, seen, stop_after_s=0.6)
    led = replay.ledger
    unsent = [r for r in seen.results if not r.sent]
    assert unsent and all(r.not_sent_reason == "stopped" for r in unsent)
    assert len(unsent) == led.not_sent["stopped"]
    assert len(seen.results) == led.scheduled and led.balances()


def test_a_turn_whose_request_cannot_be_built_is_not_sent_with_the_reason(workload, sim_fast):
    calls = {"n": 0}

    def hook(body: dict) -> dict:  # the second request built fails, as a user's hook might
        calls["n"] += 1
        if calls["n"] == 2:
            raise ValueError("no body for you")
        return body

    seen = Collect()
    replay = _run(workload, sim_fast, seen, hooks=RequestHooks(prepare_request=hook))
    failed = [r for r in seen.results if r.not_sent_reason == "prompt_failed"]
    assert len(failed) == 1 and failed[0].error == "ValueError: no body for you"
    assert replay.ledger.not_sent == {"prompt_failed": 1} and replay.ledger.balances()
    assert len(seen.results) == replay.ledger.scheduled


def test_results_shipped_as_json_give_the_master_the_local_numbers(workload, sim_fast, tmp_path):
    seen = Collect()
    replay = _run(workload, sim_fast, seen)
    local = RunReport(replay.epoch_wall, str(tmp_path / "local"), {"ttft": 1.0})
    master = RunReport(replay.epoch_wall, str(tmp_path / "master"), {"ttft": 1.0})
    for r in seen.results:
        local.add(r)
        wire = msgpack.unpackb(msgpack.packb(r.to_json()))  # what a worker's message carries
        master.add(TurnResult.from_json(wire))
    local.close()
    master.close()
    a, b = local.metrics.summary(duration_s=10.0), master.metrics.summary(duration_s=10.0)
    assert a.keys() == b.keys()
    for label in a:
        for metric in ("ttft", "itl", "tpot", "e2e", "lateness"):
            for q in ("p50", "p90", "p99", "max"):
                x, y = a[label][metric][q], b[label][metric][q]
                assert (x is None) == (y is None), (label, metric, q)
                # chunk times travel to 0.01 ms, so a gap near a bin edge of the 0.1 ms
                # histogram may land one bin over; more than that is a real difference
                if x is not None:
                    assert abs(x - y) <= 1e-4 + 2e-5 + 1e-9, (label, metric, q, x, y)
        assert a[label]["outcomes"] == b[label]["outcomes"]
        assert a[label]["completion_tokens"] == b[label]["completion_tokens"]
    lines_a = (tmp_path / "local" / "requests.jsonl").read_text().splitlines()
    lines_b = (tmp_path / "master" / "requests.jsonl").read_text().splitlines()
    assert [json.loads(x) for x in lines_a] == [json.loads(x) for x in lines_b]
    rows_a, rows_b = local.timeline.rows(), master.timeline.rows()
    assert len(rows_a) == len(rows_b)
    for x, y in zip(rows_a, rows_b, strict=True):  # times in wall-clock floats: equal to 1 us
        assert x.keys() == y.keys()
        for k in x:
            assert x[k] == (pytest.approx(y[k], abs=1e-6) if isinstance(y[k], float) else y[k])
