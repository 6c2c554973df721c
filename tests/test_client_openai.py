"""The ``openai``-SDK transport: same records as the raw transport, same outcomes for faults.

The SDK's sockets block the calling thread unless gevent monkey-patches them (Locust does), so
these tests talk to the scripted server running in a child process.
"""

from __future__ import annotations

import json

import pytest

from locust_burstgpt.client import ClientConfig, Outcome, RequestRecord, make_client
from tests.servers.scripted import ScriptedServerProcess

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


@pytest.fixture(scope="module")
def server():
    with ScriptedServerProcess(limit_s=120) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server: ScriptedServerProcess):
    c = make_client(
        ClientConfig(
            base_url=server.base_url,
            transport="openai",
            api_key="sk-t",
            first_token_timeout_s=0.5,
            idle_timeout_s=0.5,
        )
    )
    yield c
    c.close()


def test_ok_stream_matches_the_raw_transport(server: ScriptedServerProcess, client) -> None:
    raw = make_client(ClientConfig(base_url=server.base_url))
    body = {**CHAT, "n": 6, "prompt_tokens": 9, "ignore_eos": True}
    a = client.send(body, RequestRecord("oai"))
    b = raw.send(body, RequestRecord("raw"))
    for rec in (a, b):
        assert rec.outcome is Outcome.OK, rec.error
        assert rec.reply_text == "".join(f" t{i}" for i in range(6))
        assert len(rec.chunk_times) == 6
        assert (rec.prompt_tokens, rec.completion_tokens, rec.finish_reason) == (9, 6, "length")
        assert rec.sent_at < rec.first_token_at <= rec.last_byte_at
    raw.close()


def test_completions_endpoint(server: ScriptedServerProcess) -> None:
    c = make_client(
        ClientConfig(base_url=server.base_url, transport="openai", endpoint="completions")
    )
    rec = c.send({"model": "m", "prompt": "Once", "n": 2, "max_tokens": 2}, RequestRecord("c"))
    assert rec.outcome is Outcome.OK, rec.error
    assert rec.reply_text == " t0 t1"
    c.close()


@pytest.mark.parametrize(
    "scenario, outcome, status",
    [
        ("http_500", Outcome.HTTP_ERROR, 500),
        ("http_429", Outcome.HTTP_ERROR, 429),
        ("close_before_response", Outcome.CONNECTION_ERROR, None),
        ("stall_before_first_token", Outcome.TIMEOUT_BEFORE_FIRST_TOKEN, 200),
        ("stall_mid_stream", Outcome.TIMEOUT_MID_STREAM, 200),
        ("cut_mid_stream", Outcome.STREAM_CUT, 200),
        ("malformed_sse", Outcome.PROTOCOL_ERROR, 200),
        ("error_in_stream", Outcome.HTTP_ERROR, 503),
    ],
)
def test_faults(client, scenario: str, outcome: Outcome, status: int | None) -> None:
    rec = client.send({**CHAT, "scenario": scenario, "n": 3, "seconds": 3}, RequestRecord(scenario))
    assert rec.outcome is outcome, (rec.outcome, rec.error)
    assert rec.http_status == status
    if scenario == "http_429":
        assert rec.retry_after_s == 3.0
    assert client.send(CHAT, RequestRecord("next")).outcome is Outcome.OK


def test_connections_are_kept_alive(server: ScriptedServerProcess) -> None:
    """The SDK's stream closes at [DONE]; the transport drains first, so connections are reused."""
    c = make_client(ClientConfig(base_url=server.base_url, transport="openai"))
    before = json.loads(c.send({**CHAT, "scenario": "stats"}, RequestRecord("s0")).reply_text)
    for i in range(20):
        assert c.send({**CHAT, "n": 3}, RequestRecord(str(i))).outcome is Outcome.OK
    after = json.loads(c.send({**CHAT, "scenario": "stats"}, RequestRecord("s1")).reply_text)
    assert after["requests"] - before["requests"] == 21
    assert after["connections"] - before["connections"] <= 1
    c.close()


def test_request_closed_unanswered_is_resent_once_like_the_raw_transport(
    server: ScriptedServerProcess,
) -> None:
    """A server closing a kept-alive connection on a request (its idle timeout firing as the request
    arrives) must not turn into an error: one resend, as the raw transport does."""
    c = make_client(ClientConfig(base_url=server.base_url, transport="openai"))
    before = json.loads(c.send({**CHAT, "scenario": "stats"}, RequestRecord("s0")).reply_text)
    assert c.send(CHAT, RequestRecord("a")).attempts == 1
    rec = c.send({**CHAT, "scenario": "close_before_response"}, RequestRecord("b"))
    assert rec.outcome is Outcome.CONNECTION_ERROR, (
        rec.error
    )  # resent once, closed again: a real error
    assert rec.attempts == 2
    after = json.loads(c.send({**CHAT, "scenario": "stats"}, RequestRecord("s1")).reply_text)
    assert after["requests"] - before["requests"] == 4  # stats, a, b twice
    c.close()


@pytest.mark.parametrize(
    "scenario, extra",
    [
        ("byte_by_byte", {"texts": ["ü", "é€", "中文", "🎉", " plain"]}),
        ("sse_variants", {}),
        ("no_done_close_delimited", {"n": 4}),
        ("done_then_close", {"n": 3}),
    ],
)
def test_stream_shapes(client, scenario: str, extra: dict) -> None:
    rec = client.send({**CHAT, "scenario": scenario, **extra}, RequestRecord(scenario))
    assert rec.outcome is Outcome.OK, rec.error
    expected = {
        "byte_by_byte": "ü" + "é€中文🎉 plain",
        "sse_variants": "abc",
        "no_done_close_delimited": " t0 t1 t2 t3",
        "done_then_close": " t0 t1 t2",
    }
    assert rec.reply_text == expected[scenario]
    assert rec.completion_tokens is not None
