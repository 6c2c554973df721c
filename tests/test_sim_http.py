"""The simulator over real sockets: OpenAI/vLLM wire format, validation, keep-alive, metrics, timing."""

from __future__ import annotations

import json
import socket
import statistics
import threading
import time

import pytest

from locust_burstgpt import simpletok
from locust_burstgpt.sim import SimulatorProcess, run_in_thread
from tests.sim_client import RawClient, chat, metric
from tests.support import wait_until

# ---- fixtures ----------------------------------------------------------------------------------


# ---- tests -------------------------------------------------------------------------------------


def test_streamed_chat_has_vllm_chunk_order_and_exact_usage(sim_fast_thread):
    with RawClient(sim_fast_thread.base_url) as c:
        r = c.request("POST", "/v1/chat/completions", chat("Tell me a story", max_tokens=12))
    assert r.status == 200 and r.complete
    assert r.headers["content-type"].startswith("text/event-stream")
    events = r.events()
    assert events[-1][1] == b"[DONE]"
    objs = r.json_events()
    role, content, final, usage = objs[0], objs[1:13], objs[13], objs[14]
    assert len(objs) == 15
    assert role["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert role["choices"][0]["finish_reason"] is None
    for o in objs:
        assert o["object"] == "chat.completion.chunk" and o["model"] == "burstgpt-sim"
        assert o["id"] == role["id"] and o["id"].startswith("chatcmpl-")
    pieces = [o["choices"][0]["delta"]["content"] for o in content]
    assert all(simpletok.count(p) == 1 for p in pieces)
    assert all(o["choices"][0]["finish_reason"] is None for o in content)
    assert final["choices"][0]["finish_reason"] == "length" and final["choices"][0]["delta"] == {}
    assert usage["choices"] == []
    prompt_tokens = simpletok.chat_prompt_count([{"role": "user", "content": "Tell me a story"}])
    assert usage["usage"] == {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": 12,
        "total_tokens": prompt_tokens + 12,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    assert simpletok.count("".join(pieces)) == 12


def test_stream_without_include_usage_has_no_usage_chunk(sim_fast_thread):
    with RawClient(sim_fast_thread.base_url) as c:
        r = c.request("POST", "/v1/chat/completions", chat(max_tokens=3, usage=False))
    objs = r.json_events()
    assert len(objs) == 5 and all("usage" not in o for o in objs)


def test_non_streaming_chat_returns_the_same_text_and_usage(sim_fast_thread):
    with RawClient(sim_fast_thread.base_url) as c:
        a = c.request("POST", "/v1/chat/completions", chat("same prompt", 10, stream=False)).json()
        b = c.request("POST", "/v1/chat/completions", chat("same prompt", 10)).json_events()
    assert a["object"] == "chat.completion"
    text = a["choices"][0]["message"]["content"]
    assert a["choices"][0]["message"]["role"] == "assistant"
    assert simpletok.count(text) == a["usage"]["completion_tokens"] == 10
    assert "".join(o["choices"][0]["delta"].get("content", "") for o in b if o["choices"]) == text


def test_completions_endpoint_counts_the_prompt_without_template(sim_fast_thread):
    prompt = "Once upon a time, there were 3 bears."
    with RawClient(sim_fast_thread.base_url) as c:
        r = c.request(
            "POST",
            "/v1/completions",
            {
                "prompt": prompt,
                "max_tokens": 5,
                "ignore_eos": True,
                "stream": True,
                "stream_options": {"include_usage": True},
            },
        )
        plain = c.request(
            "POST", "/v1/completions", {"prompt": prompt, "max_tokens": 5, "ignore_eos": True}
        ).json()
    objs = r.json_events()
    assert [o["object"] for o in objs] == ["text_completion"] * 7
    assert "".join(o["choices"][0]["text"] for o in objs[:5]) == plain["choices"][0]["text"]
    assert objs[5]["choices"][0]["finish_reason"] == "length"
    assert (
        objs[6]["usage"]["prompt_tokens"]
        == simpletok.count(prompt)
        == plain["usage"]["prompt_tokens"]
    )


def test_multi_turn_history_counts_exactly_and_hits_the_prefix_cache(sim_fast_thread):
    msgs = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Explain continuous batching in detail please " * 20},
    ]
    with RawClient(sim_fast_thread.base_url) as c:
        first = c.request(
            "POST", "/v1/chat/completions", chat(max_tokens=40, stream=False) | {"messages": msgs}
        ).json()
        msgs2 = msgs + [first["choices"][0]["message"], {"role": "user", "content": "And then?"}]
        tok = c.request(
            "POST",
            "/tokenize",
            {"model": "burstgpt-sim", "messages": msgs2, "add_generation_prompt": True},
        ).json()
        second = c.request(
            "POST", "/v1/chat/completions", chat(max_tokens=5) | {"messages": msgs2}
        ).json_events()
    usage = second[-1]["usage"]
    assert usage["prompt_tokens"] == tok["count"] == simpletok.chat_prompt_count(msgs2)
    # The first turn's prompt and reply are cached, in whole 16-token blocks.
    assert (
        usage["prompt_tokens_details"]["cached_tokens"]
        >= (first["usage"]["total_tokens"] // 16) * 16 - 16
    )
    assert usage["prompt_tokens_details"]["cached_tokens"] > first["usage"]["prompt_tokens"]


def test_tokenize_prompt_and_messages_follow_vllm_shape(sim_fast_thread):
    msgs = [{"role": "user", "content": "Hello, world!"}]
    with RawClient(sim_fast_thread.base_url) as c:
        p = c.request("POST", "/tokenize", {"prompt": "Hello, world!"}).json()
        m = c.request("POST", "/tokenize", {"messages": msgs, "add_generation_prompt": True}).json()
        n = c.request(
            "POST", "/tokenize", {"messages": msgs, "add_generation_prompt": False}
        ).json()
        models = c.request("GET", "/v1/models").json()
    assert p["count"] == 4 and p["tokens"] == simpletok.encode("Hello, world!")
    assert m["count"] == simpletok.chat_prompt_count(msgs) == len(m["tokens"])
    assert n["count"] == m["count"] - simpletok.CHAT_GENERATION_PROMPT
    assert p["max_model_len"] == models["data"][0]["max_model_len"] == 131072
    assert [d["id"] for d in models["data"]] == ["burstgpt-sim"]


@pytest.mark.parametrize(
    ("body", "status", "needle"),
    [
        (b"{not json", 400, "not valid JSON"),
        ({"model": "burstgpt-sim"}, 400, "'messages' is required"),
        ({"messages": "hi"}, 400, "'messages' is required"),
        ({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}, 400, "max_tokens"),
        (
            {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 200_000},
            400,
            "maximum context length is 131072 tokens. However, you requested 200008 tokens",
        ),
        ({"messages": [{"role": "user", "content": "hi"}], "model": "gpt-9"}, 404, "gpt-9"),
        ({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, 400, "'stream'"),
    ],
)
def test_bad_requests_get_openai_style_errors(sim_fast_thread, body, status, needle):
    with RawClient(sim_fast_thread.base_url) as c:
        r = c.request("POST", "/v1/chat/completions", body)
        assert r.status == status
        err = r.json()["error"]
        assert needle in err["message"] and err["code"] == status and "type" in err
        ok = c.request(
            "POST", "/v1/chat/completions", chat(max_tokens=2)
        )  # connection still usable
        assert ok.status == 200 and ok.complete


def test_unknown_path_and_wrong_method(sim_fast_thread):
    with RawClient(sim_fast_thread.base_url) as c:
        assert c.request("GET", "/v1/nothing").status == 404
        assert c.request("GET", "/v1/chat/completions").status == 405
        assert c.request("GET", "/health").status == 200


def test_keep_alive_and_pipelined_requests_are_served_in_order(sim_fast_thread):
    with RawClient(sim_fast_thread.base_url) as c:
        t = c.send("POST", "/v1/chat/completions", chat("one", 3))
        c.send("POST", "/v1/chat/completions", chat("two", 4, stream=False))
        c.send("GET", "/health")
        a, b, h = c.read(t), c.read(t), c.read(t)
    assert a.status == b.status == h.status == 200
    assert len(a.json_events()) == 6 and b.json()["usage"]["completion_tokens"] == 4


def test_expect_100_continue_and_http10_streaming(sim_fast_thread):
    with RawClient(sim_fast_thread.base_url) as c:
        body = json.dumps(chat(max_tokens=2)).encode()
        c.sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body)
        )
        assert c.f.readline().startswith(b"HTTP/1.1 100")
        assert c.f.readline() == b"\r\n"
        c.sock.sendall(body)
        assert c.read(time.monotonic()).complete
    with RawClient(sim_fast_thread.base_url) as c:
        r = c.request("POST", "/v1/chat/completions", chat(max_tokens=3), version="HTTP/1.0")
        assert r.eof and "transfer-encoding" not in r.headers
        assert len(r.json_events()) == 6


def test_accepted_sockets_have_tcp_nodelay(sim_fast_thread):
    with RawClient(sim_fast_thread.base_url) as c:
        assert c.request("GET", "/health").status == 200
        conns = list(sim_fast_thread.server.connections)
        assert conns
        for conn in conns:
            sock = conn.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def test_without_ignore_eos_length_is_natural_and_min_tokens_is_honoured():
    sim = run_in_thread(profile="fast", config={"natural_tokens_mean": 20})
    lengths = []
    try:
        with RawClient(sim.base_url) as c:
            for i in range(12):
                body = chat(f"prompt number {i}", max_tokens=600, stream=False)
                body.pop("ignore_eos")
                u = c.request("POST", "/v1/chat/completions", body).json()
                lengths.append((u["usage"]["completion_tokens"], u["choices"][0]["finish_reason"]))
            body = chat("x", max_tokens=50, stream=False, min_tokens=50)
            body.pop("ignore_eos")
            forced = c.request("POST", "/v1/chat/completions", body).json()
            body = chat("prompt number 0", max_tokens=3, stream=False)
            body.pop("ignore_eos")
            capped = c.request("POST", "/v1/chat/completions", body).json()
    finally:
        sim.stop()
    assert all(1 <= n <= 39 and fr == "stop" for n, fr in lengths)  # uniform on [1, 2 * 20 - 1]
    assert len({n for n, _ in lengths}) > 3  # lengths vary with the prompt
    assert forced["usage"]["completion_tokens"] == 50
    assert lengths[0][0] > 3  # so the same prompt with max_tokens=3 is cut by the cap:
    assert (
        capped["usage"]["completion_tokens"] == 3
        and capped["choices"][0]["finish_reason"] == "length"
    )


def test_emit_send_times_stamps_every_chunk_just_before_the_write():
    sim = run_in_thread(
        profile="fast",
        config={"emit_send_times": True, "profile_overrides": {"step_base_s": 0.005}},
    )
    try:
        with RawClient(sim.base_url) as c:
            t_wall0 = time.time()
            r = c.request("POST", "/v1/chat/completions", chat(max_tokens=10))
            t_wall1 = time.time()
    finally:
        sim.stop()
    objs = r.json_events()
    stamps = [o["sim_sent_at"] for o in objs]
    assert len(stamps) == 13
    assert t_wall0 <= stamps[0] and stamps[-1] <= t_wall1
    assert stamps == sorted(stamps)
    content_stamps = stamps[1:11]
    gaps = [b - a for a, b in zip(content_stamps, content_stamps[1:], strict=False)]
    assert statistics.median(gaps) == pytest.approx(0.005, abs=0.002)


def test_metrics_use_vllm_names_and_count_what_was_served():
    sim = run_in_thread(profile="fast")
    try:
        with RawClient(sim.base_url) as c:
            for i in range(3):
                c.request("POST", "/v1/chat/completions", chat(f"m{i}", max_tokens=7))
            page = c.request("GET", "/metrics").body.decode()
    finally:
        sim.stop()
    lab = 'engine="0",model_name="burstgpt-sim"'
    assert f"vllm:generation_tokens_total{{{lab}}} 21" in page
    assert f"vllm:time_to_first_token_seconds_count{{{lab}}} 3" in page
    assert f"vllm:inter_token_latency_seconds_count{{{lab}}} 18" in page
    assert f'vllm:request_success_total{{{lab},finished_reason="length"}} 3' in page
    for name in (
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:prompt_tokens_total",
        "vllm:prefix_cache_queries_total",
        "vllm:prefix_cache_hits_total",
        'vllm:time_to_first_token_seconds_bucket{engine="0",model_name="burstgpt-sim",le="+Inf"}',
    ):
        assert name in page


def test_one_sequence_ttft_and_itl_match_the_configured_coefficients():
    """Real clock, simulator in its own process: wire TTFT/ITL equal the formula within a few ms.

    Five sequential requests (distinct prompts of equal length, so no prefix-cache hits). A busy
    machine can only add latency (late wake-ups), so TTFT is judged by the fastest request, which
    must be neither early nor late; ITL by medians (steps are scheduled back to back, so one late
    write does not shift the ones after it).
    """
    over = {
        "step_base_s": 0.020,
        "prefill_token_s": 0.0002,
        "decode_seq_s": 0.004,
        "context_token_s": 0.0,
    }
    ttfts: list[float] = []
    itls: list[float] = []
    means: list[float] = []
    with (
        SimulatorProcess(profile="fast", config={"profile_overrides": over}) as sim,
        RawClient(sim.base_url) as c,
    ):
        c.request("GET", "/health")
        for tag in ("alpha", "bravo", "charlie", "delta", "echo"):
            msgs = [{"role": "user", "content": f"{tag} " + "word " * 95}]
            r = c.request("POST", "/v1/chat/completions", chat(max_tokens=12) | {"messages": msgs})
            usage = r.json_events()[-1]["usage"]
            assert usage["prompt_tokens"] == simpletok.chat_prompt_count(msgs) == 104
            assert usage["prompt_tokens_details"]["cached_tokens"] == 0
            times = [t for t, e in r.events() if b'"content":"' in e and b'"role"' not in e]
            assert len(times) == 12
            ttfts.append(times[0] - r.t_sent)
            gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
            itls += gaps
            means.append(statistics.fmean(gaps))
    expected_ttft = 0.020 + 0.0002 * 104
    assert expected_ttft - 0.001 <= min(ttfts) <= expected_ttft + 0.004
    assert statistics.median(itls) == pytest.approx(0.024, abs=0.002)
    assert statistics.median(means) == pytest.approx(0.024, abs=0.002)


def test_kv_cache_exhaustion_queues_requests_and_all_complete():
    over = {"kv_cache_tokens": 1024, "max_model_len": 512, "block_size": 16, "step_base_s": 0.004}
    sim = run_in_thread(profile="fast", config={"profile_overrides": over})
    results: list[dict] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        with RawClient(sim.base_url) as c:
            r = c.request(
                "POST",
                "/v1/chat/completions",
                chat(f"request {i} " + "pad " * 200, max_tokens=100, stream=False),
            )
        with lock:
            results.append(r.json())

    try:
        threads = [threading.Thread(target=one, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        waiting_seen = []
        wait_until(
            lambda: (
                waiting_seen.append(metric(sim.base_url, "vllm:num_requests_waiting"))
                or waiting_seen[-1] > 0
            ),
            what="vllm:num_requests_waiting > 0",
        )
        usage = metric(sim.base_url, "vllm:kv_cache_usage_perc")
        for t in threads:
            t.join(30)
    finally:
        sim.stop()
    assert 0.0 < usage <= 1.0
    assert len(results) == 8
    assert all(r["usage"]["completion_tokens"] == 100 for r in results)


def test_client_going_away_mid_stream_aborts_the_request():
    sim = run_in_thread(profile="fast", config={"profile_overrides": {"step_base_s": 0.005}})
    try:
        before = metric(sim.base_url, "vllm:request_success_total", 'finished_reason="abort"')
        c = RawClient(sim.base_url)
        c.send("POST", "/v1/chat/completions", chat(max_tokens=10_000))
        assert c.f.readline().startswith(b"HTTP/1.1 200")
        wait_until(lambda: metric(sim.base_url, "vllm:num_requests_running") == 1, what="running")
        c.close()
        wait_until(lambda: metric(sim.base_url, "vllm:num_requests_running") == 0, what="aborted")
        assert (
            metric(sim.base_url, "vllm:request_success_total", 'finished_reason="abort"')
            == before + 1
        )
        assert metric(sim.base_url, "vllm:kv_cache_usage_perc") == 0.0
    finally:
        sim.stop()


def test_garbage_request_line_gets_400_and_close(sim_fast_thread):
    with RawClient(sim_fast_thread.base_url) as c:
        c.sock.sendall(b"HELLO\r\n\r\n")
        r = c.read(time.monotonic())
        assert r.status == 400 and "Malformed" in r.json()["error"]["message"]
        assert c.at_eof()
