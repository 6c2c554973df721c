"""Every server fault yields its one outcome, nothing escapes, and the client keeps serving."""

from __future__ import annotations

import gevent
import gevent.pool
import pytest

from locust_burstgpt.client import ClientConfig, Outcome, RequestRecord, make_client
from tests.servers.scripted import ScriptedServer

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}

# scenario -> (expected outcome, expected http_status, text the error must contain)
FAULTS = {
    "http_500": (Outcome.HTTP_ERROR, 500, "scripted 500"),
    "http_429": (Outcome.HTTP_ERROR, 429, "HTTP 429"),
    "http_503": (Outcome.HTTP_ERROR, 503, "HTTP 503"),
    "close_before_response": (Outcome.CONNECTION_ERROR, None, "no response"),
    "reset_before_response": (Outcome.CONNECTION_ERROR, None, "no response"),
    "stall_before_headers": (Outcome.TIMEOUT_BEFORE_FIRST_TOKEN, None, "first_token"),
    "stall_before_first_token": (Outcome.TIMEOUT_BEFORE_FIRST_TOKEN, 200, "first_token"),
    "stall_mid_stream": (Outcome.TIMEOUT_MID_STREAM, 200, "idle"),
    "cut_mid_stream": (Outcome.STREAM_CUT, 200, "before [DONE]"),
    "reset_mid_stream": (Outcome.STREAM_CUT, 200, ""),
    "malformed_sse": (Outcome.PROTOCOL_ERROR, 200, "not JSON"),
    "garbage_http": (Outcome.PROTOCOL_ERROR, None, "HTTPParseError"),
    "json_not_stream": (Outcome.PROTOCOL_ERROR, 200, "expected an event stream"),
    "error_in_stream": (Outcome.HTTP_ERROR, 503, "engine died"),
}


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv


def fast_client(srv: ScriptedServer, **kw):
    cfg = dict(
        base_url=srv.base_url,
        first_token_timeout_s=0.3,
        idle_timeout_s=0.3,
        timeout_check_interval_s=0.02,
        pool_size=4,
    )
    cfg.update(kw)
    return make_client(ClientConfig(**cfg))


@pytest.mark.parametrize("scenario", sorted(FAULTS))
def test_each_fault_gives_its_one_outcome(server: ScriptedServer, scenario: str) -> None:
    outcome, status, text = FAULTS[scenario]
    client = fast_client(server)
    rec = RequestRecord(scenario)
    with gevent.Timeout(10):
        client.send({**CHAT, "scenario": scenario, "n": 3, "seconds": 5}, rec)
    assert rec.outcome is outcome, (rec.outcome, rec.error)
    assert rec.http_status == status
    assert text in (rec.error or "")
    if scenario in (
        "stall_mid_stream",
        "cut_mid_stream",
        "reset_mid_stream",
        "malformed_sse",
        "error_in_stream",
    ):
        assert len(rec.chunk_times) == 3  # what arrived before the fault is kept
        assert rec.reply_text == " t0 t1 t2"
    with gevent.Timeout(10):  # and the same client serves the next request normally
        assert client.send(CHAT, RequestRecord("next")).outcome is Outcome.OK
    client.close()


def test_retry_after_is_kept(server: ScriptedServer) -> None:
    client = fast_client(server)
    with gevent.Timeout(10):
        rec = client.send({**CHAT, "scenario": "http_429"}, RequestRecord("r"))
    assert rec.retry_after_s == 3.0


def test_total_timeout_mid_stream(server: ScriptedServer) -> None:
    client = fast_client(server, idle_timeout_s=5, total_timeout_s=0.3)
    with gevent.Timeout(10):
        rec = client.send({**CHAT, "n": 100, "itl": 0.02}, RequestRecord("t"))
    assert rec.outcome is Outcome.TIMEOUT_MID_STREAM and "total" in rec.error
    assert 3 <= len(rec.chunk_times) < 100


def test_connection_refused() -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    client = make_client(ClientConfig(base_url=f"http://127.0.0.1:{port}"))
    with gevent.Timeout(10):
        rec = client.send(CHAT, RequestRecord("c"))
    assert rec.outcome is Outcome.CONNECTION_ERROR and "ECONNREFUSED" in rec.error
    assert rec.sent_at is not None and rec.first_token_at is None


def test_faults_amid_load_leave_other_requests_intact(server: ScriptedServer) -> None:
    """Faults and normal streams interleaved on one small pool: every ok request succeeds, every
    fault gets its outcome, no exception escapes, and no pool slot leaks."""
    client = fast_client(server, pool_size=6)
    jobs = []
    for round_ in range(3):
        for scenario in FAULTS:
            jobs.append((scenario, RequestRecord(f"{scenario}-{round_}")))
        for i in range(10):
            jobs.append(("ok", RequestRecord(f"ok-{round_}-{i}")))
    pool = gevent.pool.Pool(12)
    greenlets = [
        pool.spawn(client.send, {**CHAT, "scenario": s, "n": 3, "itl": 0.002, "seconds": 5}, r)
        for s, r in jobs
    ]
    with gevent.Timeout(30):
        pool.join()
    assert all(g.successful() for g in greenlets), [g.exception for g in greenlets if g.exception]
    for scenario, rec in jobs:
        expected = Outcome.OK if scenario == "ok" else FAULTS[scenario][0]
        assert rec.outcome is expected, (scenario, rec.outcome, rec.error)
    with gevent.Timeout(10):  # all 6 slots are free again
        more = [RequestRecord(f"after-{i}") for i in range(6)]
        pool = gevent.pool.Pool(6)
        for r in more:
            pool.spawn(client.send, {**CHAT, "itl": 0.05}, r)
        pool.join()
    assert all(r.outcome is Outcome.OK for r in more)
