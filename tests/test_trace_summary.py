"""Summary statistics behind ``burstgpt inspect`` (Gamma MLE, dispersion, token stats)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from locust_burstgpt.trace import load_trace, prepare
from locust_burstgpt.trace.summary import gamma_mle, interarrival_stats, summarize
from tests.conftest import BURSTGPT_1_7DAYS, BURSTGPT_3_400
from tests.trace_support import read_plain


@pytest.mark.parametrize("shape,scale", [(0.3, 50.0), (1.0, 2.0), (4.0, 0.5)])
def test_gamma_mle_agrees_with_scipy(shape, scale):
    x = np.random.default_rng(1).gamma(shape, scale, 5000)
    k, theta = gamma_mle(x)
    k_ref, _, theta_ref = stats.gamma.fit(x, floc=0)
    assert k == pytest.approx(k_ref, rel=1e-4) and theta == pytest.approx(theta_ref, rel=1e-4)


def test_interarrival_dequantizes_whole_second_timestamps():
    ts = np.array([0, 0, 1, 5, 5, 5, 9, 30], dtype=float)
    s = interarrival_stats(ts)
    assert s["dequantized"] and s["zero_gap_fraction"] == pytest.approx(3 / 7)
    assert s["mean"] == pytest.approx(30 / 7)
    assert s["gamma_shape"] > 0 and s["gamma_scale"] > 0


def test_seven_day_summary_against_independent_counts():
    plain = read_plain(BURSTGPT_1_7DAYS)
    s = summarize(prepare(load_trace(BURSTGPT_1_7DAYS), failed="send"))
    assert s["rows"] == 19_431 and s["failed_rows"] == 1_538 and s["rows_used"] == 19_431
    assert s["models"] == {"ChatGPT": 12_845, "GPT-4": 6_586}
    assert s["log_types"] == {"Conversation log": 19_120, "API log": 311}
    assert s["span_s"] == 604_758 - 5
    # published for this slice: mean inter-arrival 31 s, 2.6 % zero gaps (all rows)
    gaps = np.diff([r.ts for r in plain])
    assert s["interarrival_s"]["mean"] == pytest.approx(gaps.mean()) and round(gaps.mean()) == 31
    assert s["interarrival_s"]["zero_gap_fraction"] == pytest.approx(np.mean(gaps == 0))
    assert round(100 * s["interarrival_s"]["zero_gap_fraction"], 1) == 2.6
    assert s["interarrival_s"]["cv"] == pytest.approx(gaps.std() / gaps.mean())
    per_second = np.bincount(np.array([r.ts for r in plain], dtype=int) - 5, minlength=604_754)
    assert s["arrivals_per_s"]["mean"] == pytest.approx(per_second.mean())
    assert s["arrivals_per_s"]["max"] == per_second.max()
    assert s["index_of_dispersion_1s"] == pytest.approx(per_second.var() / per_second.mean())
    assert s["request_tokens"]["max"] == max(r.req for r in plain)
    assert s["response_tokens"]["p50"] == np.percentile([r.resp for r in plain], 50)
    assert s["conversations"] == 19_431 and s["turns_per_conversation"]["max"] == 1
    assert s["concurrency"]["estimated"] is True


def test_conversation_log_token_percentiles_match_the_published_slice_figures():
    # burstgpt-stats: first 7 days, non-failed Conversation rows: Request p50 502, Response p50 240
    wl = prepare(load_trace(BURSTGPT_1_7DAYS), log_types=["Conversation log"])
    s = summarize(wl)
    assert s["request_tokens"]["p50"] == 502 and s["response_tokens"]["p50"] == 240
    assert round(s["request_tokens"]["mean"]) == 686 and round(s["response_tokens"]["mean"]) == 268


def test_burstgpt3_session_summary():
    plain = read_plain(BURSTGPT_3_400)
    s = summarize(prepare(load_trace(BURSTGPT_3_400)))
    assert s["rows"] == 400 and s["failed_rows"] == 1 and s["rows_used"] == 399
    sizes = {}
    for r in plain:
        if r.resp > 0:
            sizes[r.sid or f"row{r.row}"] = sizes.get(r.sid or f"row{r.row}", 0) + 1
    assert s["conversations"] == len(sizes)
    assert s["turns_per_conversation"]["max"] == max(sizes.values())
    assert s["turns_per_conversation"]["mean"] == pytest.approx(399 / len(sizes))
    assert s["think_time_s"]["p50"] is not None and s["concurrency"]["estimated"] is False
