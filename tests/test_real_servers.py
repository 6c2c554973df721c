"""Headless replays of genuine BurstGPT windows against real servers: llama.cpp and vLLM (CPU).

For each server, three replays through a recording proxy (``tests/real_replay.py``):

* a window of the BurstGPT_3 slice (multi-turn conversations), raw transport;
* the busiest 10 minutes of the 7-day BurstGPT_1 slice (a burst of API calls), raw transport;
* the BurstGPT_3 replay again through the ``openai`` transport (the official SDK).

Each is time-scaled to what SmolLM2-135M serves on a 2-core machine (``PLANS``) and checked from
three sides: the plugin's books and report files, the request bodies the server received, and the
server's own counters (``usage`` per request and Prometheus ``/metrics`` in ``timeline.csv``).
See docs/real-servers.md for what each asserts and how long each takes.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import BURSTGPT_1_7DAYS, BURSTGPT_3_400
from tests.real_replay import ReplayCase, ReplayResult, run_replay

SERVER_COLUMNS = (
    "server_running",
    "server_waiting",
    "server_generation_tokens",
    "server_prompt_tokens",
    "server_prefix_cache_hits",
    "server_prefix_cache_queries",
)
PROBE_PREFIX = "prompt-probe-"  # request ids of the prompt builder's calibration requests
TRANSPORT_AGENTS = {"raw": "locust-burstgpt", "openai": "OpenAI"}  # User-Agent up to the first "/"


@dataclass(frozen=True)
class ServerPlan:
    """How one server is exercised: its fixture, its replays, the switches it must be sent."""

    fixture: str
    kind: str  # the server kind the plugin must detect
    multi_turn: ReplayCase
    api_bursts: ReplayCase
    openai_seed: int  # the SDK replay: same window and scaling, prompts new to the server's cache
    min_tokens: bool  # honoured by the server, so sent along with ignore_eos (llama.cpp ignores it)
    extra_columns: tuple[str, ...] = ()

    @property
    def openai_replay(self) -> ReplayCase:
        return replace(self.multi_turn, transport="openai", seed=self.openai_seed)


# Later turns that a slow server pushed past the window's end are sent for this long after it,
# then counted as window_ended: the plugin's default (the window's length, at least 60 s) would
# double these replays for a few extra turns that test nothing new.
OVERRUN_S = 15.0

# Windows and scaling (see docs/real-servers.md for the offered load of each). BurstGPT_1's
# service times are estimated from ChatGPT's and its API prompts (~540 tokens) cost these CPU
# servers far more than they cost the trace's, so users get a larger headroom there.
PLANS = {
    # llama.cpp, -np 8 -t 1: ~100-200 output tok/s and ~200-450 prompt tok/s (one thread does both).
    "llamacpp": ServerPlan(
        fixture="llama_server",
        kind="llamacpp",
        multi_turn=ReplayCase(
            BURSTGPT_3_400,
            "busiest:1h",
            speedup=60,
            rate_scale=0.25,
            headroom=3,
            seed=5,
            overrun_s=OVERRUN_S,
        ),
        api_bursts=ReplayCase(
            BURSTGPT_1_7DAYS, "busiest:10m", speedup=20, rate_scale=0.05, headroom=4
        ),
        openai_seed=6,
        min_tokens=False,
    ),
    # vLLM CPU, eager: ~300 output tok/s at 16 streams, ~1,000 prompt tok/s.
    "vllm": ServerPlan(
        fixture="vllm_server",
        kind="vllm",
        multi_turn=ReplayCase(
            BURSTGPT_3_400,
            "busiest:1h",
            speedup=120,
            rate_scale=0.3,
            headroom=3,
            seed=7,
            overrun_s=OVERRUN_S,
        ),
        api_bursts=ReplayCase(
            BURSTGPT_1_7DAYS, "busiest:10m", speedup=20, rate_scale=0.2, headroom=4
        ),
        openai_seed=5,
        min_tokens=True,
        extra_columns=("server_kv_cache_usage",),
    ),
}

SERVERS = [
    pytest.param("llamacpp", marks=pytest.mark.llamacpp, id="llamacpp"),
    pytest.param("vllm", marks=pytest.mark.vllm, id="vllm"),
]


def replay(
    request: pytest.FixtureRequest, server: str, case: ReplayCase, tmp_path: Path
) -> ReplayResult:
    base_url = request.getfixturevalue(PLANS[server].fixture).base_url
    artifacts = request.getfixturevalue("artifacts_dir")
    report_dir = artifacts / "real-servers" / request.node.name.replace("[", "-").rstrip("]")
    result = run_replay(base_url, case, tmp_path, report_dir)
    print(
        f"\n{server} {case.trace.name} {case.window} x{case.speedup:g} rate-scale {case.rate_scale:g} "
        f"seed {case.seed} {case.transport}: offered {result.offered.describe()}; run {result.wall_s:.0f} s, "
        f"books {result.ledger}; report in {report_dir}"
    )
    return result


# -- the replays -------------------------------------------------------------------------------
@pytest.mark.timeout(600)
@pytest.mark.parametrize("server", SERVERS)
def test_multi_turn_burstgpt3_window(request, server, tmp_path):
    result = replay(request, server, PLANS[server].multi_turn, tmp_path)
    check_replay(result, PLANS[server])
    check_prefix_reuse(result)
    check_server_metrics(result, PLANS[server])


@pytest.mark.timeout(600)
@pytest.mark.parametrize("server", SERVERS)
def test_api_bursts_burstgpt1_window(request, server, tmp_path):
    result = replay(request, server, PLANS[server].api_bursts, tmp_path)
    check_replay(result, PLANS[server])
    assert {e["trace_log_type"] for e in result.ok} >= {"API log"}, "the API burst was not replayed"
    check_server_metrics(result, PLANS[server])


@pytest.mark.timeout(600)
@pytest.mark.parametrize("server", SERVERS)
def test_multi_turn_window_through_the_openai_sdk(request, server, tmp_path):
    result = replay(request, server, PLANS[server].openai_replay, tmp_path)
    check_replay(result, PLANS[server])
    check_prefix_reuse(result)
    check_server_metrics(result, PLANS[server])


# -- what every replay must show -------------------------------------------------------------------
def check_replay(result: ReplayResult, plan: ServerPlan) -> None:
    assert result.run.returncode == 0, result.log_tail()
    check_books(result)
    check_exact_lengths(result)
    check_wire(result, plan)
    check_server_tokenizer(result)


def check_books(result: ReplayResult) -> None:
    """Every request of the window is accounted once: sent with an outcome, or not sent with a reason."""
    ledger = result.ledger
    assert ledger["scheduled"] == ledger["sent"] + sum(ledger["not_sent"].values()), ledger
    assert ledger["sent"] == sum(ledger["outcomes"].values()), ledger
    # a real server on 127.0.0.1 answers everything; turns pushed past the window's end are sent
    # until --burstgpt-overrun runs out (OVERRUN_S), then counted as window_ended
    assert set(ledger["outcomes"]) == {"ok"}, (ledger, result.log_tail())
    assert set(ledger["not_sent"]) <= {"window_ended"}, ledger
    # the report holds one entry per scheduled request, and they are exactly the window's trace rows
    assert len(result.entries) == ledger["scheduled"]
    assert result.summary["reconciliation"]["balances"] is True
    rows = Counter(e["trace_row"] for e in result.entries)
    expected = Counter(t.row for c in result.workload.conversations() for t in c.turns)
    assert rows == expected
    assert Counter(e["outcome"] for e in result.entries) == {
        **ledger["outcomes"],
        **({"not_sent": sum(ledger["not_sent"].values())} if ledger["not_sent"] else {}),
    }
    # the server saw each sent request exactly once (request ids on the wire), and no other request
    wire_ids = Counter(r.headers.get("x-request-id") for r in result.completions_on_wire())
    replay_ids = {k: v for k, v in wire_ids.items() if not str(k).startswith(PROBE_PREFIX)}
    assert replay_ids == {e["request_id"]: 1 for e in result.sent}
    # enough of the window was served to mean something
    assert len(result.ok) >= 8, ledger


def check_exact_lengths(result: ReplayResult) -> None:
    """Prompt tokens as targeted (>= 99 %) and completion tokens exactly as targeted (100 %), per usage."""
    ok = result.ok
    exact_prompt = [e for e in ok if e["prompt_tokens"] == e["target_prompt_tokens"]]
    assert len(exact_prompt) >= 0.99 * len(ok), [
        (e["request_id"], e["prompt_tokens"], e["target_prompt_tokens"])
        for e in ok
        if e not in exact_prompt
    ]
    wrong = [
        (e["request_id"], e["completion_tokens"], e["target_completion_tokens"])
        for e in ok
        if e["completion_tokens"] != e["target_completion_tokens"] or e["finish_reason"] != "length"
    ]
    assert not wrong
    # the targets are the trace's own lengths: every turn of these windows fits the model's context
    assert all(e["target_completion_tokens"] == e["trace_response_tokens"] for e in ok)


def check_wire(result: ReplayResult, plan: ServerPlan) -> None:
    """Each request body asked for its exact output length with the server's own switches."""
    targets = {e["request_id"]: e["target_completion_tokens"] for e in result.sent}
    seen = [r for r in result.completions_on_wire() if r.headers.get("x-request-id") in targets]
    assert len(seen) == len(targets)
    for r in seen:
        body, n = r.body, targets[r.headers["x-request-id"]]
        assert body["model"] == "smollm2" and body["stream"] is True, body.keys()
        assert body["stream_options"] == {"include_usage": True}
        assert body["max_tokens"] == n
        assert body.get("ignore_eos") is True
        assert body.get("min_tokens") == (n if plan.min_tokens else None)
    assert result.summary["server"]["kind"] == plan.kind
    # sent by the transport asked for (the SDK says "OpenAI/Python <version>")
    agents = {r.headers.get("user-agent", "").split("/")[0] for r in result.completions_on_wire()}
    assert agents == {TRANSPORT_AGENTS[result.case.transport]}, agents


def check_server_metrics(result: ReplayResult, plan: ServerPlan) -> None:
    """The server's own Prometheus counters are in timeline.csv and agree with the requests' usage."""
    header = set(result.timeline[0])
    assert header >= set(SERVER_COLUMNS) | set(plan.extra_columns), sorted(header)
    assert max(result.column("server_running")) >= 1
    sent_out = sum(e["completion_tokens"] or 0 for e in result.sent)
    sent_prompt = sum(e["prompt_tokens"] or 0 for e in result.sent)
    probes = sum(
        1
        for r in result.completions_on_wire()
        if str(r.headers.get("x-request-id")).startswith(PROBE_PREFIX)
    )
    # probes (1 output token each) may fall after the first scrape
    # counters are floats in Prometheus text (vLLM writes 2640.0): their deltas' sum may carry
    # float error (2641.0000000000005), which says nothing about tokens
    generated = round(sum(result.column("server_generation_tokens")), 6)
    assert sent_out <= generated <= sent_out + probes, (
        f"the server generated {generated:g} tokens by its counters, the requests' usage says {sent_out}: "
        "counter deltas missing from timeline.csv (see test_server_metrics.py::"
        "test_the_final_scrape_does_not_erase_the_last_second_of_counter_deltas)"
    )
    assert sent_prompt <= sum(result.column("server_prompt_tokens"))
    # and second by second: the tokens the client received in each second are the tokens the
    # server generated in it (llama.cpp's own counter grows only at a request's end; /slots says
    # what its busy slots decoded so far)
    ours = [float(r["output_tokens"] or 0) for r in result.timeline]
    server = [float(r["server_generation_tokens"] or 0) for r in result.timeline]
    r = float(np.corrcoef(ours, server)[0, 1])
    print(f"per-second output tokens: ours {sum(ours):.0f}, server {sum(server):.0f}, r = {r:.3f}")
    assert r >= 0.95, list(zip(ours, server, strict=True))


def check_server_tokenizer(result: ReplayResult) -> None:
    """Prompts were sized with the server's own tokenizer, through its /tokenize endpoint."""
    assert "Prompt token counting: server" in result.run.output
    assert result.summary["server"]["tokenizer_backend"].startswith("server")
    assert any(r.method == "POST" and r.path == "/tokenize" for r in result.wire)


def check_prefix_reuse(result: ReplayResult) -> None:
    """Later turns resend the conversation so far; the server finds that prefix in its cache.

    Seen twice: ``cached_tokens`` in each later turn's usage (llama.cpp always sends it; vLLM with
    --enable-prompt-tokens-details), and the prefix-cache hit counters in timeline.csv.
    """
    later = [e for e in result.ok if e["turn"] > 0]
    first = [e for e in result.ok if e["turn"] == 0]
    assert len(later) >= 3, "too few later turns to see prefix reuse"
    assert all(e["cached_tokens"] is not None for e in result.ok)

    def cached_share(entries: list[dict]) -> float:
        return sum(e["cached_tokens"] for e in entries) / max(
            1, sum(e["prompt_tokens"] for e in entries)
        )

    # vLLM caches whole 128-token blocks and a turn whose history was trimmed starts afresh, so not
    # every later turn hits; first turns share only the chat template's system prompt
    detail = [(e["turn"], e["cached_tokens"], e["prompt_tokens"]) for e in result.ok]
    assert cached_share(later) >= 0.3, detail
    assert cached_share(later) > 3 * cached_share(first), detail
    assert sum(e["cached_tokens"] > 0 for e in later) >= len(later) / 2, detail
    hits = sum(result.column("server_prefix_cache_hits"))
    queries = sum(result.column("server_prefix_cache_queries"))
    assert hits >= sum(e["cached_tokens"] for e in result.sent) > 0
    assert 0 < hits < queries
