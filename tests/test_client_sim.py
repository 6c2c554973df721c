"""The client and prompt builder against the embedded simulator (a separate process).

* Timing: the simulator stamps every chunk with its own send time (``emit_send_times``); the
  client's first-token and inter-token times must agree with them within 2 ms at p99.
* Faults: every simulator fault mode, forced per request with ``x-sim-fault``, gives its one
  outcome while normal requests keep succeeding on the same client.
* Prompts: the simulator's vLLM-shaped ``/tokenize`` and local ``simpletok`` as exact backends,
  and the calibrated fallback (the simulator counts with simpletok, so it is exact at once).
"""

from __future__ import annotations

import time

import gevent
import gevent.pool
import pytest

from locust_burstgpt.client import ClientConfig, Outcome, RequestRecord, make_client
from locust_burstgpt.metrics import ExactHistogram
from locust_burstgpt.prompts import PromptConfig, make_prompt_builder, output_controls
from locust_burstgpt.sim import SimulatorProcess

MODEL = "burstgpt-sim"


@pytest.fixture(scope="module")
def sim():
    config = {"emit_send_times": True, "profile_overrides": {"step_base_s": 0.004}}
    with SimulatorProcess(profile="fast", config=config) as s:
        yield s


def measure_timing(
    client, streams: int, requests: int
) -> tuple[ExactHistogram, ExactHistogram, ExactHistogram]:
    """First-token lag, per-chunk lag and |ITL client - ITL server| of streamed requests."""
    records = [
        RequestRecord(f"t{i}", wall_anchor=time.time() - time.perf_counter())
        for i in range(requests)
    ]
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "time me please"}],
        **output_controls(40, "sim"),
    }
    pool = gevent.pool.Pool(streams)
    with gevent.Timeout(60):
        for r in records:
            pool.spawn(client.send, body, r)
        pool.join()
    first_lag, chunk_lag, itl_diff = ExactHistogram(), ExactHistogram(), ExactHistogram()
    for r in records:
        assert r.outcome is Outcome.OK, r.error
        sent = r.extra["sim_sent_at"]
        assert len(sent) == len(r.chunk_times) == r.completion_tokens == 40
        arrived = [t + r.wall_anchor for t in r.chunk_times]
        # the client's TTFT vs. (server's first-token send time - the client's send time)
        first_lag.add(r.ttft - (sent[0] - (r.sent_at + r.wall_anchor)))
        chunk_lag.add_many(a - s for a, s in zip(arrived, sent, strict=True))
        server_itls = [b - a for a, b in zip(sent, sent[1:], strict=False)]
        itl_diff.add_many(abs(c - s) for c, s in zip(r.itls, server_itls, strict=True))
    return first_lag, chunk_lag, itl_diff


def test_ttft_and_itl_agree_with_server_send_times(sim) -> None:
    """Within 2 ms at p99 (each of about 1,000 chunks). On an oversubscribed machine the OS can
    leave this process or the simulator unscheduled for milliseconds, whatever the client does,
    so up to six short measurements are taken and one must pass; a client that delays chunks
    (block buffering adds 16-35 ms) fails them all."""
    client = make_client(ClientConfig(base_url=sim.base_url, chunk_fields=("sim_sent_at",)))
    results = []
    for _attempt in range(6):
        first_lag, chunk_lag, itl_diff = measure_timing(client, streams=8, requests=24)
        assert first_lag.min > -0.0005  # nothing arrives before it was sent (clock mapping slack)
        p99 = (first_lag.percentile(99), chunk_lag.percentile(99), itl_diff.percentile(99))
        results.append(p99)
        print(
            f"\nfirst-token lag p50/p99 {first_lag.percentile(50) * 1e3:.3f}/{p99[0] * 1e3:.3f} "
            f"ms; chunk lag p99 {p99[1] * 1e3:.3f} ms; |ITL client - server| p99 "
            f"{p99[2] * 1e3:.3f} ms over {itl_diff.count} gaps"
        )
        if max(p99) < 0.002:
            break
    client.close()
    assert min(max(r) for r in results) < 0.002, results


# kind -> (outcome, http status, content chunks kept)
SIM_FAULTS = {
    "http_500": (Outcome.HTTP_ERROR, 500, 0),
    "http_429": (Outcome.HTTP_ERROR, 429, 0),
    "http_503": (Outcome.HTTP_ERROR, 503, 0),
    "stall_before_first_token": (Outcome.TIMEOUT_BEFORE_FIRST_TOKEN, 200, 0),
    "stall_mid_stream": (Outcome.TIMEOUT_MID_STREAM, 200, 3),
    "cut_mid_stream": (Outcome.STREAM_CUT, 200, 3),
    "malformed_sse": (Outcome.PROTOCOL_ERROR, 200, 3),
}


def test_simulator_faults_amid_normal_traffic(sim) -> None:
    client = make_client(
        ClientConfig(
            base_url=sim.base_url, first_token_timeout_s=0.5, idle_timeout_s=0.5, pool_size=16
        )
    )
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "hi"}],
        **output_controls(20, "sim"),
    }
    jobs = []
    for round_ in range(2):
        for kind in SIM_FAULTS:
            jobs.append(
                (
                    kind,
                    RequestRecord(f"{kind}-{round_}"),
                    {"x-sim-fault": f"{kind}; after=3; seconds=5; retry_after=2"},
                )
            )
        jobs += [("ok", RequestRecord(f"ok-{round_}-{i}"), None) for i in range(8)]
    pool = gevent.pool.Pool(16)
    with gevent.Timeout(30):
        greenlets = [pool.spawn(client.send, body, rec, headers) for _, rec, headers in jobs]
        pool.join()
    assert all(g.successful() for g in greenlets)  # no exception escaped
    for kind, rec, _ in jobs:
        if kind == "ok":
            assert rec.outcome is Outcome.OK and rec.completion_tokens == 20, rec.error
            continue
        outcome, status, chunks = SIM_FAULTS[kind]
        assert rec.outcome is outcome, (kind, rec.outcome, rec.error)
        assert rec.http_status == status, kind
        assert len(rec.chunk_times) == chunks, kind
    assert next(r for k, r, _ in jobs if k == "http_429").retry_after_s == 2.0
    with gevent.Timeout(10):
        assert client.send(body, RequestRecord("after")).outcome is Outcome.OK
    client.close()


@pytest.mark.parametrize(
    "backend, name",
    [
        ("server", "server:vllm"),  # the simulator answers vLLM's /tokenize shape
        ("auto", "simpletok"),  # auto counts locally, as the simulator does: no request per turn
    ],
)
def test_exact_backends_over_multi_turn(sim, backend: str, name: str) -> None:
    client = make_client(ClientConfig(base_url=sim.base_url))
    builder = make_prompt_builder(PromptConfig(backend=backend, base_url=sim.base_url), client)
    assert builder.backend_name == name and builder.exact
    checked = 0
    with gevent.Timeout(60):
        for conv, targets in enumerate([[30, 200, 900], [1200, 1300, 4000, 4100], [15, 10]]):
            history: list[dict] = []
            for k, target in enumerate(targets):
                built = builder.build_turn(target, history, f"sim-{conv}")
                rec = client.send(
                    {"model": MODEL, "messages": built.messages, **output_controls(30 + k, "sim")},
                    RequestRecord(f"{conv}-{k}"),
                )
                assert rec.outcome is Outcome.OK, rec.error
                assert rec.prompt_tokens == built.expected_prompt_tokens
                assert rec.completion_tokens == 30 + k
                if target >= 8:  # 3 + 4 + one word: the smallest chat prompt
                    assert rec.prompt_tokens == target
                checked += 1
                history = [*built.messages, {"role": "assistant", "content": rec.reply_text}]
    assert checked == 9


def test_fallback_is_exact_when_the_server_counts_like_simpletok(sim) -> None:
    client = make_client(ClientConfig(base_url=sim.base_url))
    builder = make_prompt_builder(PromptConfig(backend="fallback", base_url=sim.base_url), client)
    assert builder.backend_name == "fallback"
    with gevent.Timeout(60):
        history: list[dict] = []
        for k, target in enumerate([50, 400, 420, 2000, 2100]):
            built = builder.build_turn(target, history, "fb")
            rec = client.send(
                {"model": MODEL, "messages": built.messages, **output_controls(25, "sim")},
                RequestRecord(f"fb-{k}"),
            )
            builder.observe(built, rec)
            assert rec.prompt_tokens == target, (k, rec.prompt_tokens, built.expected_prompt_tokens)
            history = [*built.messages, {"role": "assistant", "content": rec.reply_text}]
    assert builder.stats.matched == builder.stats.observed == 5
