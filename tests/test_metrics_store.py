"""MetricsStore: vLLM metric definitions per class, goodput, fidelity, merging across workers."""

from __future__ import annotations

import pytest

from locust_burstgpt.client import Outcome, RequestRecord
from locust_burstgpt.metrics import ALL, MetricsStore, PerRequestSLO


def rec(
    i: int,
    *,
    sent: float,
    ttft: float,
    itl: float,
    n: int,
    outcome=Outcome.OK,
    late: float = 0.001,
    **kw,
) -> RequestRecord:
    r = RequestRecord(
        f"r{i}",
        scheduled_at=sent - late,
        sent_at=sent,
        outcome=outcome,
        completion_tokens=n,
        prompt_tokens=100,
        **kw,
    )
    if outcome is Outcome.OK:
        times = [sent + ttft + k * itl for k in range(n)]
        r.chunk_times.extend(times)
        r.first_token_at = times[0]
        r.last_byte_at = times[-1]
    return r


def test_definitions_match_vllm() -> None:
    store = MetricsStore()
    r = rec(1, sent=100.0, ttft=0.25, itl=0.02, n=11)
    store.record("GPT-4 conversation", r, recorded_elapsed_s=2)
    s = store.summary()["GPT-4 conversation"]
    assert s["ttft"]["p50"] == pytest.approx(0.25, abs=1e-4)
    assert s["e2e"]["p50"] == pytest.approx(0.25 + 10 * 0.02, abs=1e-4)
    assert s["tpot"]["p50"] == pytest.approx(0.02, abs=1e-4)  # (e2e - ttft) / (n - 1)
    assert s["itl"]["count"] == 10 and s["itl"]["p99"] == pytest.approx(0.02, abs=1e-4)
    assert s["e2e_ratio"]["p50"] == pytest.approx(0.45 / 2, abs=1e-4)
    assert s["lateness"]["p50"] == pytest.approx(0.001, abs=1e-4)
    assert s["completion_tokens"] == 11 and s["ok"] == 1


def test_failures_count_in_outcomes_and_lateness_only() -> None:
    store = MetricsStore()
    store.record("A", rec(1, sent=10.0, ttft=0.1, itl=0.01, n=5))
    store.record("A", rec(2, sent=10.0, ttft=0, itl=0, n=0, outcome=Outcome.HTTP_ERROR, late=0.2))
    store.record("A", rec(3, sent=11.0, ttft=0, itl=0, n=0, outcome=Outcome.CANCELLED))
    s = store.summary()["A"]
    assert s["requests"] == 3 and s["ok"] == 1
    assert s["outcomes"] == {"cancelled": 1, "http_error": 1, "ok": 1}
    assert s["ttft"]["count"] == 1 and s["e2e"]["count"] == 1
    assert s["lateness"]["count"] == 3 and s["lateness"]["max"] == pytest.approx(0.2)
    assert s["success_rate"] == 0.5  # cancelled requests are not counted as finished


def test_goodput_counts_requests_meeting_every_slo() -> None:
    store = MetricsStore(PerRequestSLO(ttft_s=0.5, tpot_s=0.05))
    store.record("A", rec(1, sent=0.0, ttft=0.2, itl=0.03, n=10))  # good
    store.record("A", rec(2, sent=0.0, ttft=0.9, itl=0.03, n=10))  # ttft too slow
    store.record("A", rec(3, sent=0.0, ttft=0.2, itl=0.08, n=10))  # tpot too slow
    store.record("A", rec(4, sent=0.0, ttft=0.1, itl=0.0, n=1))  # no tpot: nothing to violate
    store.record("A", rec(5, sent=0.0, ttft=0, itl=0, n=0, outcome=Outcome.STREAM_CUT))
    g = store.summary(duration_s=2.0)["A"]["goodput"]
    assert g["good"] == 2 and g["fraction"] == pytest.approx(2 / 5) and g["per_s"] == 1.0
    assert MetricsStore().summary()["All"]["goodput"] is None


def test_throughput_over_the_recorded_span() -> None:
    store = MetricsStore()
    store.record("A", rec(1, sent=0.0, ttft=0.1, itl=0.1, n=11))  # ends at 1.1
    store.record("B", rec(2, sent=0.5, ttft=0.1, itl=0.1, n=15))  # ends at 2.0
    s = store.summary()
    assert s[ALL]["duration_s"] == pytest.approx(2.0)
    assert s[ALL]["output_tokens_per_s"] == pytest.approx(26 / 2.0)
    assert s["A"]["output_tokens_per_s"] == pytest.approx(11 / 1.1)


def test_length_fidelity_from_the_record_targets() -> None:
    store = MetricsStore()
    a = rec(
        1,
        sent=0.0,
        ttft=0.1,
        itl=0.01,
        n=10,
        target_prompt_tokens=100,
        target_completion_tokens=10,
        expected_prompt_tokens=100,
    )
    b = rec(
        2,
        sent=0.0,
        ttft=0.1,
        itl=0.01,
        n=8,
        target_prompt_tokens=90,
        target_completion_tokens=10,
        expected_prompt_tokens=100,
    )
    store.record("A", a)
    store.record("A", b)
    length = store.summary()["A"]["length"]
    assert length["prompt_exact_fraction"] == 0.5  # 100 == 100, 100 != 90
    assert length["prompt_as_built_fraction"] == 1.0
    assert length["completion_exact_fraction"] == 0.5
    assert length["completion_mean_ratio"] == pytest.approx((1.0 + 0.8) / 2)


def test_length_fidelity_against_the_trace_and_against_adjusted_targets_apart() -> None:
    store = MetricsStore()
    # the trace asked 20 prompt tokens; the chat template's minimum is 31, so the target was raised
    raised = rec(1, sent=0.0, ttft=0.1, itl=0.01, n=10, target_prompt_tokens=31)
    raised.prompt_tokens = 31
    exact = rec(2, sent=0.0, ttft=0.1, itl=0.01, n=10, target_prompt_tokens=100)
    exact.prompt_tokens = 100
    store.record("A", raised, trace_prompt_tokens=20)
    store.record("A", exact, trace_prompt_tokens=100)
    length = store.summary()["A"]["length"]
    assert length["prompt_trace_fraction"] == 0.5  # only one prompt is the trace's size
    assert length["prompt_exact_fraction"] == 1.0  # both are the size asked for
    assert (length["prompt_adjusted"], length["prompt_adjusted_exact"]) == (1, 1)
    from locust_burstgpt.report.console import length_line

    line = length_line({"All": store.summary()["All"]})
    assert "the trace's for 50.0 % of 2 ok requests" in line and "1 had an adjusted target" in line
