"""The raw transport against a scripted socket server: what it records, reuse, parsing edge cases."""

from __future__ import annotations

import logging

import gevent
import gevent.pool
import pytest

from locust_burstgpt.client import (
    ClientConfig,
    ClientConfigError,
    Outcome,
    RequestRecord,
    make_client,
)
from tests.test_client_scripted_server import ScriptedServer

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv


def client_for(srv: ScriptedServer, **kw):
    return make_client(ClientConfig(base_url=srv.base_url, **kw))


def test_ok_stream_fills_every_field(server: ScriptedServer) -> None:
    client = client_for(server)
    rec = RequestRecord("r1", scheduled_at=None)
    with gevent.Timeout(10):
        out = client.send({**CHAT, "n": 6, "itl": 0.01, "prompt_tokens": 11}, rec)
    assert out is rec
    assert rec.outcome is Outcome.OK and rec.error is None
    assert rec.http_status == 200
    assert rec.reply_text == "".join(f" t{i}" for i in range(6))
    assert len(rec.chunk_times) == 6  # role-only and finish/usage chunks are not content
    assert rec.first_token_at == rec.chunk_times[0]
    assert rec.sent_at < rec.first_token_at <= rec.chunk_times[-1] <= rec.last_byte_at
    assert (rec.prompt_tokens, rec.completion_tokens, rec.cached_tokens) == (11, 6, 0)
    assert rec.finish_reason == "length"
    assert rec.attempts == 1
    assert all(gap > 0.005 for gap in rec.itls)  # the server waited 10 ms between tokens
    assert rec.tpot == pytest.approx((rec.e2e - rec.ttft) / 5)
    client.close()


def test_request_body_and_headers(server: ScriptedServer) -> None:
    client = client_for(server, api_key="sk-secret-123", extra_headers={"X-Team": "load"})
    body = {**CHAT, "ignore_eos": True}
    with gevent.Timeout(10):
        client.send(body, RequestRecord("r"))
    sent = server.bodies[-1]
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert sent["ignore_eos"] is True and sent["messages"] == CHAT["messages"]
    assert "stream" not in body  # the caller's dict is not modified
    headers = server.headers[-1]
    assert headers["authorization"] == "Bearer sk-secret-123"
    assert headers["x-team"] == "load"
    assert headers["accept"] == "text/event-stream"


def test_api_key_from_environment_and_never_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env-999")
    cfg = ClientConfig(base_url="http://127.0.0.1:9")
    assert cfg.api_key == "sk-from-env-999"
    assert "sk-from-env-999" not in repr(cfg)
    assert "sk-explicit" not in repr(ClientConfig(base_url="http://x", api_key="sk-explicit"))


def test_api_key_is_not_logged(server: ScriptedServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_for(server, api_key="sk-never-log-me")
    with gevent.Timeout(10):
        client.send({**CHAT, "scenario": "http_500"}, RequestRecord("r"))
        rec = client.send(CHAT, RequestRecord("r2"))
    assert rec.outcome is Outcome.OK
    assert "sk-never-log-me" not in caplog.text
    assert "sk-never-log-me" not in repr(rec) and "sk-never-log-me" not in str(rec.to_dict())


def test_keep_alive_reuses_connections(server: ScriptedServer) -> None:
    client = client_for(server, pool_size=8)
    with gevent.Timeout(20):
        for i in range(20):
            assert client.send({**CHAT, "n": 3}, RequestRecord(str(i))).outcome is Outcome.OK
        pool = gevent.pool.Pool(8)
        recs = [RequestRecord(f"c{i}") for i in range(40)]
        for r in recs:
            pool.spawn(client.send, {**CHAT, "n": 3, "itl": 0.002}, r)
        pool.join()
    assert all(r.outcome is Outcome.OK for r in recs)
    assert server.requests == 60
    assert server.connections <= 8  # never more connections than the pool holds
    client.close()


def test_utf8_split_across_every_byte(server: ScriptedServer) -> None:
    texts = ["ü", "é€", "中文", "🎉", " plain", "ß"]
    client = client_for(server)
    with gevent.Timeout(10):
        rec = client.send({**CHAT, "scenario": "byte_by_byte", "texts": texts}, RequestRecord("u"))
    assert rec.outcome is Outcome.OK, rec.error
    assert rec.reply_text == "".join(texts)
    assert len(rec.chunk_times) == len(texts)


def test_sse_variants_crlf_comments_multiline_data(server: ScriptedServer) -> None:
    client = client_for(server)
    with gevent.Timeout(10):
        rec = client.send({**CHAT, "scenario": "sse_variants"}, RequestRecord("v"))
    assert rec.outcome is Outcome.OK, rec.error
    assert rec.reply_text == "abc"
    assert (rec.prompt_tokens, rec.completion_tokens) == (4, 3)


def test_body_ended_without_done_but_with_finish_reason_is_ok(server: ScriptedServer) -> None:
    client = client_for(server)
    with gevent.Timeout(10):
        rec = client.send({**CHAT, "scenario": "no_done_close_delimited", "n": 4}, RequestRecord("x"))
    assert rec.outcome is Outcome.OK, rec.error
    assert rec.finish_reason == "stop" and rec.completion_tokens == 4
    assert rec.last_byte_at is not None


def test_done_without_chunked_terminator_is_ok(server: ScriptedServer) -> None:
    client = client_for(server)
    with gevent.Timeout(10):
        rec = client.send({**CHAT, "scenario": "done_then_close", "n": 3}, RequestRecord("x"))
        after = client.send(CHAT, RequestRecord("y"))
    assert rec.outcome is Outcome.OK and rec.completion_tokens == 3
    assert after.outcome is Outcome.OK  # the unfinished connection was not reused


def test_completions_endpoint(server: ScriptedServer) -> None:
    client = client_for(server, endpoint="completions")
    with gevent.Timeout(10):
        rec = client.send({"model": "m", "prompt": "Once", "n": 3}, RequestRecord("c"))
    assert rec.outcome is Outcome.OK
    assert rec.reply_text == " t0 t1 t2"
    assert server.headers and server.bodies[-1]["prompt"] == "Once"


def test_stale_keepalive_connection_is_resent_once(server: ScriptedServer) -> None:
    """A server closing an idle kept-alive connection must not turn into an error."""
    client = client_for(server, pool_size=1)
    with gevent.Timeout(10):
        assert client.send(CHAT, RequestRecord("a")).outcome is Outcome.OK
        # the next request on that connection is closed unanswered by the server
        rec = client.send({**CHAT, "scenario": "close_before_response"}, RequestRecord("b"))
    assert rec.outcome is Outcome.CONNECTION_ERROR  # resent once, closed again: a real error
    assert rec.attempts == 2
    assert server.requests == 3


def test_server_closing_after_every_stream_never_exhausts_the_pool(server: ScriptedServer) -> None:
    """Like llama.cpp: each reuse attempt finds a closed connection; after a few the client stops
    trying, and no slot or connection piles up however many requests follow."""
    client = client_for(server, pool_size=2)
    with gevent.Timeout(30):
        recs = [client.send({**CHAT, "scenario": "ok_then_close", "n": 2}, RequestRecord(str(i)))
                for i in range(40)]
        pool = gevent.pool.Pool(4)
        more = [RequestRecord(f"c{i}") for i in range(40)]
        for r in more:
            pool.spawn(client.send, {**CHAT, "scenario": "ok_then_close", "n": 2}, r)
        pool.join()
    assert all(r.outcome is Outcome.OK for r in recs + more), {r.error for r in recs + more}
    assert sum(r.attempts == 2 for r in recs) <= 10  # resends stop once reuse is given up
    assert server.connections <= 80 + 10


def test_cancelled_greenlet_records_cancelled_and_reraises(server: ScriptedServer) -> None:
    client = client_for(server, pool_size=2)
    rec = RequestRecord("k")
    g = gevent.spawn(client.send, {**CHAT, "n": 50, "itl": 0.05}, rec)
    with gevent.Timeout(10):
        while len(rec.chunk_times) < 3:
            gevent.sleep(0.005)
        g.kill(block=True)
    assert isinstance(g.value, gevent.GreenletExit) or g.successful()  # the exit propagated
    assert rec.outcome is Outcome.CANCELLED
    assert len(rec.chunk_times) >= 3 and rec.first_token_at is not None  # times kept
    with gevent.Timeout(10):  # the slot came back: the pool of 2 still serves 3 requests
        for i in range(3):
            assert client.send(CHAT, RequestRecord(str(i))).outcome is Outcome.OK


def test_bad_settings_are_named() -> None:
    with pytest.raises(ClientConfigError, match="base_url"):
        ClientConfig(base_url="localhost:8000")
    with pytest.raises(ClientConfigError, match="transport"):
        ClientConfig(base_url="http://x", transport="grpc")  # type: ignore[arg-type]
    with pytest.raises(ClientConfigError, match="idle_timeout_s"):
        ClientConfig(base_url="http://x", idle_timeout_s=0)
    with pytest.raises(ClientConfigError, match="header"):
        make_client(ClientConfig(base_url="http://x", extra_headers={"X-Bad": "a\r\nInjected: 1"}))


def test_base_url_with_v1_suffix() -> None:
    cfg = ClientConfig(base_url="http://127.0.0.1:8000/v1/")
    assert cfg.root_url == "http://127.0.0.1:8000"
    assert cfg.path == "/v1/chat/completions"


def test_record_properties_follow_definitions() -> None:
    r = RequestRecord("p", scheduled_at=10.0, sent_at=10.5, first_token_at=11.0,
                      last_byte_at=13.0, completion_tokens=5)
    r.chunk_times.extend([11.0, 11.5, 12.0, 12.5, 13.0])
    assert r.lateness == 0.5 and r.ttft == 0.5 and r.e2e == 2.5
    assert r.tpot == pytest.approx((2.5 - 0.5) / 4)
    assert r.itls == [0.5, 0.5, 0.5, 0.5]
    r.completion_tokens = 1
    assert r.tpot is None
    d = r.to_dict()
    assert d["sent_at"] == pytest.approx(10.5 + r.wall_anchor) and d["chunks"] == 5
