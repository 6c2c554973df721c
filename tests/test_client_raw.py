"""The raw transport against a scripted socket server: what it records, reuse, parsing edge cases."""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import gevent
import gevent.pool
import gevent.ssl
import pytest

from locust_burstgpt.client import (
    ClientConfig,
    ClientConfigError,
    Outcome,
    RequestRecord,
    make_client,
)
from tests.servers.scripted import ScriptedServer

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
        rec = client.send(
            {**CHAT, "scenario": "no_done_close_delimited", "n": 4}, RequestRecord("x")
        )
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
        recs = [
            client.send({**CHAT, "scenario": "ok_then_close", "n": 2}, RequestRecord(str(i)))
            for i in range(40)
        ]
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
    reraised: list[bool] = []

    def send() -> None:
        try:
            client.send({**CHAT, "n": 50, "itl": 0.05}, rec)
        except gevent.GreenletExit:
            reraised.append(True)
            raise
        reraised.append(False)

    g = gevent.spawn(send)
    with gevent.Timeout(10):
        while len(rec.chunk_times) < 3:
            gevent.sleep(0.005)
        g.kill(block=True)
    # gevent reports a killed greenlet as successful whatever happened inside, so ask send itself
    assert reraised == [True]  # the kill reached the caller instead of being swallowed
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
    r = RequestRecord(
        "p",
        scheduled_at=10.0,
        sent_at=10.5,
        first_token_at=11.0,
        last_byte_at=13.0,
        completion_tokens=5,
    )
    r.chunk_times.extend([11.0, 11.5, 12.0, 12.5, 13.0])
    assert r.lateness == 0.5 and r.ttft == 0.5 and r.e2e == 2.5
    assert r.tpot == pytest.approx((2.5 - 0.5) / 4)
    assert r.itls == [0.5, 0.5, 0.5, 0.5]
    r.completion_tokens = 1
    assert r.tpot is None
    d = r.to_dict()
    assert d["sent_at"] == pytest.approx(10.5 + r.wall_anchor) and d["chunks"] == 5


# A self-signed certificate for 127.0.0.1 (valid until 2126), made for these tests only.
SELF_SIGNED_CERT = """-----BEGIN CERTIFICATE-----
MIIDJzCCAg+gAwIBAgIUNK/T73P5Xl9xfcJb7ySnlK4KKQwwDQYJKoZIhvcNAQEL
BQAwFDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNDA5MjAzN1oYDzIxMjYx
MDMxMDkyMDM3WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwggEiMA0GCSqGSIb3DQEB
AQUAA4IBDwAwggEKAoIBAQCgB5kQ+4YHkxKQOO/Sc01GNuJSEjydmbZ7t8r0sLXM
aiAsGE8XMXhcXWW5YF1fw2tBaVAe2WplQmsfcEaAZxLhS5/ZuYabJFeZLIlbTOJk
agSph7TAICZw20ROX2OnRNcidAYFDRRk1uZBrgXlmRtBcHnJOMYss3n44yWwQgdC
IEvrXDi9elDEd+7jsvj6d93qeKiNCPl42uOqPEg1tLa/+BQuusCe8yYaySLNF3VU
HJk3tZeO3buivq94wXkOTGoF59x7/UvAI/QqMo4fQaZWcDOoYyQBoPowwoBkwtEh
2TdHrcS/l2Yk04VcW6dWmWbc7B9zznp9Ny6D7baTMFV7AgMBAAGjbzBtMB0GA1Ud
DgQWBBQfYif+ThFdQCPL8lLi7emOCEQSGDAfBgNVHSMEGDAWgBQfYif+ThFdQCPL
8lLi7emOCEQSGDAPBgNVHRMBAf8EBTADAQH/MBoGA1UdEQQTMBGHBH8AAAGCCWxv
Y2FsaG9zdDANBgkqhkiG9w0BAQsFAAOCAQEAPe16nKWZAUZ9U/eBReekqtuAjf+j
w0Mx1JW4xQ1Js89L7tZ7G51PHaKyVJQtogRgEOJucT6tkRzpo43nwnqxickDDm/o
SGpSNW1pT2Hls/5ymyTrUnL3M89lHish9Ju8vNI2715B7k89+Zc99tjD4cUZ6sO+
A4wcuOKlQC8pHtWG9YrGIoZCtEbTNj/u2nvLPIayv8wxzSylHl9ZIrIy5MW/fnrN
p1XrGALX0SpTtzlm+2hGg4VprV5Oegkcv+duUbbt8NtwoNf/vzfsfzAr5gVBTj9v
pKmkRjayeGKQJFpxoxwpD00YjIQrCMlDSYI4cH3frGnxLmOwDd7r337c+g==
-----END CERTIFICATE-----"""
SELF_SIGNED_KEY = """-----BEGIN PRIVATE KEY-----
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCgB5kQ+4YHkxKQ
OO/Sc01GNuJSEjydmbZ7t8r0sLXMaiAsGE8XMXhcXWW5YF1fw2tBaVAe2WplQmsf
cEaAZxLhS5/ZuYabJFeZLIlbTOJkagSph7TAICZw20ROX2OnRNcidAYFDRRk1uZB
rgXlmRtBcHnJOMYss3n44yWwQgdCIEvrXDi9elDEd+7jsvj6d93qeKiNCPl42uOq
PEg1tLa/+BQuusCe8yYaySLNF3VUHJk3tZeO3buivq94wXkOTGoF59x7/UvAI/Qq
Mo4fQaZWcDOoYyQBoPowwoBkwtEh2TdHrcS/l2Yk04VcW6dWmWbc7B9zznp9Ny6D
7baTMFV7AgMBAAECggEAAfMO410AdlZx9oSFVIbnxAJrAhiCWT1tVyl78IWTa6nZ
TFcSnLiA6ce0oVCyIn+5t4uhhk2J3lYPcCdkM1Spird9MhbeRiBDbKIwnU+c9Y15
7llVgSMVaV5l3IyMyZWj4rQPRLagbwt4kL76B9d9a0tx08igxWVY4z9b/Kzm9Cl2
DMIDoTbE/jX/s35oecVsOhyS2ZHsUM8/rLnLVDq1xOgLHLi0EZMr2gh46g5Z1fkk
P97rY5ED2xu7QIr59iEqPsFztS/fOmQXiutO+FHGl7IU863xwqZcWA6/pnmSzYmG
6PpS/VY04opZGjACF0DQT+eGBxxqb+RKujuKxZBYvQKBgQDToUMomfBN0/+Zsmbg
+Hq44hQmxgP25CdURHc5TcCOeVPn8TyemCjc/jwsYPqgjOvNZpBjCfGVjsqPZ2Dm
QcNttpOF6YIr7nA0i20F/Kv6FXPyuF+ULVnB/9ujyxgjQiQwUBdoAItdPWFnszA/
PZ9EMHae5gzW6YnYM03lMORmrQKBgQDBlNBPQiAmlaJ7VJSYZZvZKcJbkrAGxDT5
Sq8fEaB3R+pShQ8F+KZrFONrefnp/3kxjalHa3Af5mo9taQ1RSdcwwv+35LhWAYt
1N+KaEt91hTZ7CFs3sCdFlN/j36FwY0TijyFB2g4w2lX9qRR9QCYrL2gUxIzUQVv
KHp7kug5xwKBgCrdLNcaZtu8pragtcm3SlQMJny7+q2VBIpC28sVfnzdAiumZtrQ
guZP8Cwk8F54bIJL1c7Zgr8CDvEAxVWd2FFue27SHvV68+sQmmJuDP84PSXaRjGj
Bd0PT5NbXWY2zVGjxznfclrORd5VIt6MQqfzEPOaMNuOrcbGjW5werJ5AoGBAIid
aEF3Lk9srMWTFGdU1h71TJfpttafo68HWP15KCDmHOVtyANzzqalkDXqWEgepr4k
9oFTvkaVCwdP6Ho7uqLJd+7Ag90KjRnNMJFyN0ywR/jfn1tA/PgfqH/OmgD1boWK
ulk7t/7PUcnlY2P/nxMgXZcG6UJT/JzNGVuaes9DAoGAPRzvSE3CIF/68bGw+r/T
TnsJkCM8QqPxjCbiC9Z/eckVP0PzapR0iEVX4CI5o04BPuCrZ38ke0kQYCYSBDcM
+6LeQu2YSlvfw7kWYJebBm27pRr7wn7U9KzB7l1rXRUoiIdPvDdmp9MWeNivHqpG
WnioDBGxraZSIoC1+lBP2KY=
-----END PRIVATE KEY-----"""


def test_tls_is_verified_by_default(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_text(SELF_SIGNED_CERT)
    (tmp_path / "key.pem").write_text(SELF_SIGNED_KEY)
    ctx = gevent.ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # gevent's: cooperative sockets
    ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    with ScriptedServer(ssl_context=ctx) as srv:
        assert srv.base_url.startswith("https://")
        with gevent.Timeout(10):
            rec = client_for(srv).send(CHAT, RequestRecord("v"))
            assert rec.outcome is Outcome.CONNECTION_ERROR
            assert "CERTIFICATE_VERIFY_FAILED" in rec.error
            ok = client_for(srv, verify_tls=False).send(CHAT, RequestRecord("i"))
        assert ok.outcome is Outcome.OK and ok.reply_text == "".join(f" t{i}" for i in range(5))
