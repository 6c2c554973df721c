"""Every fault mode produces exactly its documented wire behaviour (raw sockets)."""

from __future__ import annotations

import json
import random

import pytest

from locust_burstgpt.sim import run_in_thread
from locust_burstgpt.sim.faults import Fault, FaultError, FaultPlan, FaultRule, parse_fault_header
from tests.sim_client import RawClient, chat, metric
from tests.support import wait_until


@pytest.fixture(scope="module")
def sim():
    # 2 ms steps: stalls are measured against a steady, known token cadence.
    handle = run_in_thread(profile="fast", config={"profile_overrides": {"step_base_s": 0.002}})
    yield handle
    handle.stop()


def post(sim, body, fault: str | None):
    headers = {"x-sim-fault": fault} if fault else {}
    c = RawClient(sim.base_url)
    return c, c.request("POST", "/v1/chat/completions", body, headers)


def content_events(r) -> list[tuple[float, dict]]:
    out = []
    for t, e in r.events():
        if e == b"[DONE]":
            continue
        o = json.loads(e)
        if (
            o["choices"]
            and "content" in o["choices"][0]["delta"]
            and "role" not in o["choices"][0]["delta"]
        ):
            out.append((t, o))
    return out


@pytest.mark.parametrize(
    ("kind", "status", "etype"),
    [
        ("http_500", 500, "InternalServerError"),
        ("http_503", 503, "ServiceUnavailableError"),
    ],
)
def test_error_faults_answer_with_status_and_error_body(sim, kind, status, etype):
    c, r = post(sim, chat(), kind)
    with c:
        assert r.status == status and r.complete
        assert r.json()["error"]["type"] == etype and "retry-after" not in r.headers
        assert (
            c.request("POST", "/v1/chat/completions", chat(max_tokens=2)).status == 200
        )  # keep-alive


def test_http_429_carries_retry_after(sim):
    c, r = post(sim, chat(), "http_429; retry_after=7")
    c.close()
    assert r.status == 429 and r.headers["retry-after"] == "7"
    assert r.json()["error"]["type"] == "RateLimitError"
    c, r = post(sim, chat(), "http_429")
    c.close()
    assert r.headers["retry-after"] == "1"


def test_stall_before_first_token_sends_headers_then_nothing_for_the_stall(sim):
    c, r = post(sim, chat(max_tokens=4), "stall_before_first_token; seconds=0.4")
    c.close()
    assert r.status == 200 and r.complete
    assert r.t_headers - r.t_sent < 0.2
    first = r.chunks[0][0]
    assert first - r.t_sent >= 0.4
    assert len(content_events(r)) == 4


def test_stall_mid_stream_pauses_after_k_tokens_then_finishes_normally(sim):
    c, r = post(sim, chat(max_tokens=10), "stall_mid_stream; after=3; seconds=0.4")
    c.close()
    ev = content_events(r)
    assert len(ev) == 10 and r.complete
    gaps = [b[0] - a[0] for a, b in zip(ev, ev[1:], strict=False)]
    assert gaps[2] >= 0.4  # between content chunk 3 and 4
    assert max(gaps[:2] + gaps[3:]) < 0.2
    assert r.json_events()[-1]["usage"]["completion_tokens"] == 10


def test_cut_mid_stream_closes_after_k_tokens_without_terminator(sim):
    before = metric(sim.base_url, "vllm:request_success_total", 'finished_reason="abort"')
    c, r = post(sim, chat(max_tokens=10), "cut_mid_stream; after=4")
    with c:
        assert r.status == 200 and r.eof and not r.complete
        events = r.events()
        assert b"[DONE]" not in [e for _, e in events]
        objs = [json.loads(e) for _, e in events]
        assert "role" in objs[0]["choices"][0]["delta"]
        assert len(objs) == 5 and all(o["choices"][0]["finish_reason"] is None for o in objs)
    wait_until(
        lambda: (
            metric(sim.base_url, "vllm:request_success_total", 'finished_reason="abort"')
            == before + 1
        ),
        what="the cut request to be aborted",
    )


def test_cut_mid_stream_on_a_plain_request_closes_without_a_response(sim):
    c, r = post(sim, chat(max_tokens=10, stream=False), "cut_mid_stream; after=2")
    c.close()
    assert r.status == 0 and r.eof


def test_malformed_sse_inserts_one_broken_event_after_k_tokens(sim):
    c, r = post(sim, chat(max_tokens=6), "malformed_sse; after=2")
    c.close()
    assert r.complete
    payloads = [e for _, e in r.events()]
    bad = []
    for i, e in enumerate(payloads):
        if e == b"[DONE]":
            continue
        try:
            json.loads(e)
        except json.JSONDecodeError:
            bad.append(i)
    assert bad == [3]  # role, content 1, content 2, then the broken one
    assert payloads[-1] == b"[DONE]"
    good = [json.loads(e) for i, e in enumerate(payloads) if i not in bad and e != b"[DONE]"]
    assert good[-1]["usage"]["completion_tokens"] == 6


def test_malformed_sse_on_a_plain_request_returns_broken_json(sim):
    c, r = post(sim, chat(max_tokens=6, stream=False), "malformed_sse")
    c.close()
    assert r.status == 200 and r.complete
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.body)


def test_bad_fault_header_is_a_400_naming_the_header(sim):
    c, r = post(sim, chat(), "explode")
    c.close()
    assert r.status == 400 and r.json()["error"]["param"] == "x-sim-fault"
    assert "unknown fault kind 'explode'" in r.json()["error"]["message"]
    c, r = post(sim, chat(), "stall_mid_stream; after=soon")
    c.close()
    assert r.status == 400 and "after must be a int" in r.json()["error"]["message"]


def test_automatic_503_when_the_waiting_queue_is_full():
    cfg = {"max_waiting": 1, "profile_overrides": {"max_num_seqs": 1, "step_base_s": 0.01}}
    sim = run_in_thread(profile="fast", config=cfg)
    clients = [RawClient(sim.base_url) for _ in range(3)]
    try:
        t0 = clients[0].send("POST", "/v1/chat/completions", chat(max_tokens=80))  # 0.8 s
        wait_until(
            lambda: metric(sim.base_url, "vllm:num_requests_running") == 1, what="one running"
        )
        t1 = clients[1].send("POST", "/v1/chat/completions", chat("queued", max_tokens=2))
        wait_until(
            lambda: metric(sim.base_url, "vllm:num_requests_waiting") == 1, what="one waiting"
        )
        r = clients[2].request("POST", "/v1/chat/completions", chat("rejected", max_tokens=2))
        assert r.status == 503 and "max_waiting 1" in r.json()["error"]["message"]
        assert clients[0].read(t0).complete and clients[1].read(t1).complete
    finally:
        for c in clients:
            c.close()
        sim.stop()


def test_config_rules_by_every_and_by_window_over_http():
    cfg = {
        "faults": [
            {"kind": "http_500", "every": 3},
            {"kind": "http_429", "windows": [[0, 3600]], "rate": 0.0},
        ]
    }
    sim = run_in_thread(profile="fast", config=cfg)
    try:
        with RawClient(sim.base_url) as c:
            statuses = [
                c.request("POST", "/v1/chat/completions", chat(max_tokens=1)).status
                for _ in range(7)
            ]
            forced_off = c.request(
                "POST", "/v1/chat/completions", chat(max_tokens=1), {"x-sim-fault": "none"}
            ).status  # request 8
            ninth = c.request("POST", "/v1/chat/completions", chat(max_tokens=1)).status
    finally:
        sim.stop()
    assert statuses == [200, 200, 500, 200, 200, 500, 200]
    assert forced_off == 200 and ninth == 500


def test_fault_plan_rates_windows_and_seed_are_deterministic():
    rules = [
        FaultRule(Fault("http_500"), rate=0.25),
        FaultRule(Fault("cut_mid_stream", after=2), windows=[(10.0, 20.0)]),
    ]
    a = FaultPlan(rules, seed=42)
    b = FaultPlan(rules, seed=42)
    seq_a = [a.choose(None, 5.0) for _ in range(400)]
    assert seq_a == [b.choose(None, 5.0) for _ in range(400)]
    n500 = sum(1 for f in seq_a if f is not None)
    assert 60 < n500 < 140  # ~100 expected at rate 0.25
    assert all(f is None or f.kind == "http_500" for f in seq_a)
    inside = [a.choose(None, 15.0) for _ in range(50)]
    assert all(
        f is not None for f in inside
    )  # the window rule catches whatever the rate rule misses
    assert FaultPlan(rules, seed=1).choose("stall_mid_stream; after=1; seconds=2", 0.0) == Fault(
        "stall_mid_stream", after=1, seconds=2.0
    )


def test_fault_header_parsing():
    assert parse_fault_header("None") is None
    assert parse_fault_header(" HTTP_429 ;retry_after=3") == Fault("http_429", retry_after=3)
    for bad in ("", "http_500; colour=red", "cut_mid_stream; after=-1"):
        with pytest.raises(FaultError):
            parse_fault_header(bad)


def test_rate_faults_follow_the_seeded_draws_over_http():
    sim = run_in_thread(
        profile="fast", config={"seed": 7, "faults": [{"kind": "http_503", "rate": 0.3}]}
    )
    try:
        with RawClient(sim.base_url) as c:
            codes = [
                c.request("POST", "/v1/chat/completions", chat(max_tokens=1)).status
                for _ in range(100)
            ]
    finally:
        sim.stop()
    rng = random.Random(7)  # the documented rule: one seeded draw per request and rate rule
    expected = [rng.random() < 0.3 for _ in range(100)]
    assert [s == 503 for s in codes] == expected
    assert 15 < sum(expected) < 45
