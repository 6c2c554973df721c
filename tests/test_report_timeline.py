"""The per-second timeline: its figures equal numpy's on the raw values, however late entries arrive,
and what it keeps grows with the run's seconds, not with its requests."""

from __future__ import annotations

import random

import numpy as np
import pytest

from locust_burstgpt.report import timeline as tl
from locust_burstgpt.report.timeline import HORIZON_S, Timeline, _Tail, overlap_weights
from tests.support import result_of

EPOCH = 1_000_000.0


def _entry(rng: random.Random, sent: float, e2e: float, outcome: str = "ok") -> dict:
    ttft = rng.uniform(0.0, e2e)
    e = {
        "scheduled_offset_s": sent - 0.001,
        "sent_at": EPOCH + sent,
        "last_byte_at": EPOCH + sent + e2e,
        "outcome": outcome,
        "lateness": rng.expovariate(1 / 0.002),
        "ttft": ttft,
        "completion_tokens": rng.randint(1, 500),
    }
    # the values as the timeline will see them (derived from the instants, in wall-clock floats)
    result = e["result"] = result_of(e)
    e.update(ttft=result.record.ttft, tpot=result.record.tpot, lateness=result.record.lateness)
    return e


def _expected(entries: list[dict], second: int) -> dict:
    """Numpy on the raw values of one second, as the timeline defines them."""

    def pct(values: list[float], q: float) -> float | None:
        return float(np.percentile(values, q, method="inverted_cdf")) if values else None

    ended = [
        e for e in entries if int(e["last_byte_at"] - EPOCH) == second and e["outcome"] == "ok"
    ]
    sent = [e for e in entries if int(e["sent_at"] - EPOCH) == second]
    return {
        "ttft_p50_s": pct([e["ttft"] for e in ended], 50),
        "ttft_p99_s": pct([e["ttft"] for e in ended], 99),
        "tpot_p50_s": pct([e["tpot"] for e in ended if e["tpot"] is not None], 50),
        "tpot_p99_s": pct([e["tpot"] for e in ended if e["tpot"] is not None], 99),
        "lateness_p99_s": pct([e["lateness"] for e in sent], 99),
        "sent": len(sent),
    }


def _run(entries: list[dict]) -> Timeline:
    t = Timeline(EPOCH)
    for e in sorted(
        entries, key=lambda e: e["last_byte_at"]
    ):  # entries reach the report as requests end
        t.add(e["result"])
    return t


@pytest.mark.parametrize("seed", range(5))
def test_figures_equal_numpy_with_long_requests_ending_after_their_second_is_final(seed):
    rng = random.Random(seed)
    entries = []
    for i in range(6000):  # 40 req/s for 150 s; one request in ten runs 40-120 s, past the horizon
        sent = i / 40 + rng.uniform(0, 0.02)
        e2e = rng.uniform(40, 120) if rng.random() < 0.1 else rng.uniform(0.1, 5)
        entries.append(_entry(rng, sent, e2e, "ok" if rng.random() < 0.95 else "http_error"))
    t = _run(entries)
    rows = {r["second"]: r for r in t.rows()}
    assert t.stale_values == 0
    assert len(rows) > 200
    for second in rows:
        want = _expected(entries, second)
        got = rows[second]
        for key, value in want.items():
            assert got[key] == value, (second, key, got[key], value)


def test_what_it_keeps_grows_with_seconds_not_with_requests():
    rng = random.Random(1)

    def kept(rate: int) -> int:
        t = Timeline(EPOCH)
        for i in range(600 * rate):  # ten minutes
            sent = i / rate
            t.add(_entry(rng, sent, rng.uniform(0.1, 3))["result"])
        seconds = list(t._s.values())
        lists = sum(len(s.ttft) + len(s.tpot) for s in seconds)
        tails = sum(
            len(s.lateness.top) if isinstance(s.lateness, _Tail) else len(s.lateness)
            for s in seconds
        )
        return lists + tails

    low, high = kept(10), kept(100)
    # lists only for the last HORIZON_S seconds; at most ~2 % of each older second's lateness values
    assert low <= 3 * 10 * (HORIZON_S + 5) + 600 * tl.TAIL_SPARE
    assert high <= 3 * 100 * (HORIZON_S + 5) + 600 * (tl.TAIL_SPARE + 2)
    assert high < 3 * low, (low, high)  # 10x the requests, far less than 10x the values kept


def test_tail_gives_the_exact_p99_as_values_keep_arriving():
    rng = random.Random(7)
    values = [rng.lognormvariate(0, 1) for _ in range(300)]
    tail = _Tail(values[:150])
    for i in range(150, 300):
        tail.add(values[i])
        assert tail.p99() == float(np.percentile(values[: i + 1], 99, method="inverted_cdf"))
    assert len(tail.top) <= 2 * 3 + tl.TAIL_SPARE


def test_a_ttft_arriving_after_its_second_was_final_is_counted_as_stale():
    rng = random.Random(3)
    t = Timeline(EPOCH)
    t.add(_entry(rng, 1.0, 0.5)["result"])
    t.add(_entry(rng, HORIZON_S + 10.0, 0.5)["result"])  # second 1 is now final
    late = _entry(rng, 1.2, 0.3)  # ended in second 1, reached the report too late
    t.add(late["result"])
    assert t.stale_values == 2  # its TTFT and its TPOT
    row = t.rows()[1]
    assert row["completed"] == 2 and row["sent"] == 2  # counts still exact


def test_server_values_add_counter_deltas_and_keep_newer_gauges():
    t = Timeline(EPOCH)
    t.note_server(3, {"prompt_tokens": 100.0, "running": 4.0})
    t.note_server(3, {"prompt_tokens": 20.0, "running": 2.0, "waiting": 1.0})
    t.note_server(4, {"waiting": 0.0})
    rows = t.rows()
    assert rows[3]["server_prompt_tokens"] == 120.0 and rows[3]["server_running"] == 2.0
    assert rows[3]["server_waiting"] == 1.0 and rows[4]["server_waiting"] == 0.0
    assert rows[4]["server_prompt_tokens"] is None


def test_output_tokens_are_booked_in_the_seconds_their_chunks_arrived():
    # one request streaming 10 tokens over seconds 2, 3 and 4 (chunk times in ms after the send)
    sent = EPOCH + 2.5
    chunk_ms = [100, 200, 300, 400, 600, 800, 1100, 1300, 1600, 1700]  # 2.6..4.2 s
    result = result_of(
        {
            "sent_at": sent,
            "lateness": 0.0,
            "ttft": 0.1,
            "last_byte_at": sent + 1.7,
            "chunk_ms": chunk_ms,
            "completion_tokens": 10,
            "scheduled_offset_s": 2.5,
        }
    )
    t = Timeline(EPOCH)
    t.add(result)
    tokens = {r["second"]: r["output_tokens"] for r in t.rows()}
    assert (tokens[2], tokens[3], tokens[4]) == (4, 4, 2)
    # usage counts more tokens than chunks (a server that coalesces): spread over the chunks
    coalesced = result_of(
        {
            "sent_at": sent,
            "ttft": 0.1,
            "last_byte_at": sent + 1.7,
            "chunk_ms": chunk_ms,
            "completion_tokens": 25,
            "scheduled_offset_s": 2.5,
        }
    )
    t = Timeline(EPOCH)
    t.add(coalesced)
    tokens = {r["second"]: r["output_tokens"] for r in t.rows()}
    assert (tokens[2], tokens[3], tokens[4]) == (12, 9, 4)  # 3 tokens in the first 5 chunks


def test_final_scrape_spreads_its_counter_deltas_over_the_seconds_it_covers():
    # the run ended 0.01 s into second 5; the loop's last scrape was at 4.02 (it booked second 3):
    # the final delta is nearly all second 4's, and gauges describe the end
    t = Timeline(EPOCH)
    t.note_server_spread(4.02, 5.01, {"generation_tokens": 99.0, "running": 3.0})
    assert t.server_values(4) == {"generation_tokens": pytest.approx(98.0)}
    assert t.server_values(5) == {"generation_tokens": pytest.approx(1.0), "running": 3.0}
    assert overlap_weights(5.02, 5.40) == [(5, 1.0)]
    assert overlap_weights(3.5, 3.5) == [(3, 1.0)]
