"""The simulator's scheduling model against arithmetic, in virtual time (no sockets, no clock)."""

from __future__ import annotations

import csv

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locust_burstgpt import simpletok
from locust_burstgpt.sim import text
from locust_burstgpt.sim.engine import Engine, SeqRequest, SeqStatus
from locust_burstgpt.sim.profiles import DEMO_PROFILE, PROFILES, load_profile
from locust_burstgpt.sim.virtual import replay
from tests.conftest import BURSTGPT_3_400

BASE = 0.010
PREFILL = 0.0001
DECODE = 0.0005
CTX = 0.000002


def profile(**over):
    coef = dict(
        step_base_s=BASE,
        prefill_token_s=PREFILL,
        decode_seq_s=DECODE,
        context_token_s=CTX,
        max_num_seqs=8,
        max_num_batched_tokens=4096,
        kv_cache_tokens=200_000,
        max_model_len=100_000,
        block_size=16,
    )
    coef.update(over)
    return load_profile("fast", coef)


def prompt(n: int, salt: int = 0) -> list[int]:
    return [salt * 1_000_003 + i for i in range(n)]


def req(n_prompt: int, n_out: int, at: float = 0.0, salt: int = 0, **kw) -> SeqRequest:
    return SeqRequest(prompt(n_prompt, salt), n_out, n_out, arrival=at, **kw)


def test_single_sequence_ttft_and_itl_follow_the_step_formula():
    P, N = 300, 20
    r = replay(profile(), [req(P, N)]).timings[0]
    assert r.ttft == pytest.approx(BASE + PREFILL * P, abs=1e-12)
    assert len(r.token_times) == N
    # Decode step k attends to the prompt, the k tokens already generated... context = P + k.
    for k, itl in enumerate(r.itls, start=1):
        assert itl == pytest.approx(BASE + DECODE + CTX * (P + k), abs=1e-12)
    assert r.finish_reason == "length"


def test_requests_beyond_the_running_cap_wait_whole_steps():
    prof = profile(max_num_seqs=2, prefill_token_s=0.0, context_token_s=0.0, decode_seq_s=0.0)
    N = 5
    out = replay(prof, [req(32, N, salt=i) for i in range(4)], keep_steps=True)
    ttfts = [t.ttft for t in out.timings]
    # Two fit at once; with all costs but the base zero, every step takes exactly BASE.
    assert ttfts[0] == ttfts[1] == pytest.approx(BASE)
    # The others wait until the first two finish (N steps), then prefill in one step.
    assert ttfts[2] == ttfts[3] == pytest.approx((N + 1) * BASE)
    assert out.max_waiting == 2 and out.max_running == 2
    assert all(s.duration == pytest.approx(BASE) for s in out.steps)


def test_token_budget_chunks_a_long_prefill_across_steps():
    prof = profile(max_num_batched_tokens=64, decode_seq_s=0.0, context_token_s=0.0)
    P = 200  # 64 + 64 + 64 + 8
    out = replay(prof, [req(P, 3)], keep_steps=True)
    assert [s.prefill_tokens for s in out.steps[:4]] == [64, 64, 64, 8]
    expected = 4 * BASE + PREFILL * P
    assert out.timings[0].ttft == pytest.approx(expected)


def test_decode_steps_of_a_batch_cost_more_per_sequence():
    prof = profile(context_token_s=0.0)
    out = replay(prof, [req(16, 10, salt=i) for i in range(4)])
    for t in out.timings:
        assert t.itls[0] == pytest.approx(BASE + 4 * DECODE)


def test_kv_exhaustion_queues_then_every_request_completes_exactly():
    # 10 blocks of 16 tokens; each request needs 48 prompt + 40 output = 88 tokens = 6 blocks.
    prof = profile(kv_cache_tokens=160, max_model_len=140, block_size=16)
    reqs = [req(48, 40, salt=i) for i in range(5)]
    out = replay(prof, reqs)
    assert out.max_waiting >= 3  # only one fits with its prompt, more queue
    assert [len(t.token_times) for t in out.timings] == [40] * 5
    eng = out.engine
    assert eng is not None and eng.kv.used == 0 and eng.num_running == 0 and eng.num_waiting == 0
    # Two prompts fit (2 x 4 blocks), their growth then needs more than 10 blocks: preemption.
    assert eng.stats.preemptions >= 1
    assert sum(t.num_preemptions for t in out.timings) == eng.stats.preemptions


def test_preempted_sequence_resumes_without_losing_or_repeating_tokens():
    prof = profile(
        kv_cache_tokens=160, max_model_len=140, block_size=16, enable_prefix_caching=False
    )
    eng = Engine(prof)
    seqs = [eng.add(req(48, 40, salt=i)) for i in range(2)]
    got: dict[int, list[int]] = {s.seq_id: [] for s in seqs}
    now = 0.0
    while eng.has_work(now):
        step = eng.step(now)
        assert step is not None
        for s in step.tokens:
            got[s.seq_id].append(s.num_generated)
        now = step.end
    assert eng.stats.preemptions >= 1
    for s in seqs:
        assert got[s.seq_id] == list(range(1, 41))  # every token once, in order
        assert s.token_ids[48:] == [text.token_id(s.word_seed, i) for i in range(40)]


def test_prefix_cache_reuses_a_repeated_prompt_and_cuts_prefill():
    P = 1000
    out = replay(profile(), [req(P, 5, at=0.0), req(P, 5, at=10.0)])
    first, second = out.timings
    assert first.cached_tokens == 0
    assert second.cached_tokens == (P - 1) // 16 * 16  # whole blocks, one token left to compute
    saved = PREFILL * second.cached_tokens
    assert first.ttft - second.ttft == pytest.approx(saved)
    eng = out.engine
    assert eng is not None
    assert eng.stats.prefix_hits == second.cached_tokens
    assert eng.stats.prefix_queries == 2 * P


def test_prefix_cache_hits_the_previous_turn_including_the_reply():
    eng_prof = profile()
    turn1 = [{"role": "user", "content": "hello there " * 40}]
    ids1 = simpletok.chat_prompt_ids(turn1)
    out1 = replay(eng_prof, [SeqRequest(ids1, 64, 64)])
    seed = text.seed_for_prompt(ids1)
    reply = text.completion_text(seed, 64)
    assert simpletok.count(reply) == 64
    turn2 = turn1 + [{"role": "assistant", "content": reply}, {"role": "user", "content": "more"}]
    ids2 = simpletok.chat_prompt_ids(turn2)
    # Same engine: replay turn 2 after turn 1 on one engine.
    eng = out1.engine
    assert eng is not None
    s2 = eng.add(SeqRequest(ids2, 4, 4))
    eng.step(100.0)
    # Everything up to the reply's last full block is cached (prompt 1 + 64 reply tokens).
    reused = (len(ids1) + 64) // 16 * 16
    assert s2.cached_tokens == reused
    assert reused > len(ids1)


def test_prefix_caching_disabled_reports_no_hits():
    out = replay(profile(enable_prefix_caching=False), [req(500, 2, at=0), req(500, 2, at=5)])
    assert [t.cached_tokens for t in out.timings] == [0, 0]


def test_stall_mid_stream_holds_a_sequence_after_k_tokens():
    prof = profile(context_token_s=0.0, prefill_token_s=0.0)
    r = replay(prof, [req(16, 8, stall_after=3, stall_s=2.0)]).timings[0]
    itl = BASE + DECODE
    assert r.itls[:2] == pytest.approx([itl, itl])
    assert r.itls[2] == pytest.approx(2.0 + itl)  # token 4 is due one step after the stall ends
    assert r.itls[3:] == pytest.approx([itl] * 4)


def test_a_stalled_sequence_preempted_under_kv_pressure_still_stalls_exactly():
    # Tight KV: the stalled (most recent) sequence is preempted while it is held.
    # 9 blocks: the first sequence grows to 7 while the stalled one holds 3.
    prof = profile(
        kv_cache_tokens=144,
        max_model_len=128,
        block_size=16,
        context_token_s=0.0,
        prefill_token_s=0.0,
    )
    reqs = [req(40, 60, salt=1), req(40, 60, salt=2, stall_after=5, stall_s=1.0)]
    out = replay(prof, reqs)
    a, b = out.timings
    assert len(a.token_times) == len(b.token_times) == 60
    assert b.itls[4] >= 1.0  # no token between token 5 and the end of the stall
    assert max(b.itls[:4]) < 0.1
    eng = out.engine
    assert eng is not None and eng.stats.preemptions >= 1 and eng.kv.used == 0


def test_abort_frees_blocks_and_leaves_the_others_running():
    eng = Engine(profile())
    a = eng.add(req(100, 50, salt=1))
    b = eng.add(req(100, 50, salt=2))
    step = eng.step(0.0)
    assert step is not None and eng.kv.used > 0
    used_two = eng.kv.used
    eng.abort(a)
    assert a.status is SeqStatus.ABORTED and eng.num_running == 1
    assert eng.kv.used == used_two // 2
    eng.abort(b)
    assert eng.kv.used == 0 and eng.stats.finished["abort"] == 2


def test_a_request_is_not_admitted_into_a_step_that_started_before_it_arrived():
    eng = Engine(profile())
    running = eng.add(req(16, 10, salt=1, at=0.0))
    first = eng.step(0.0)
    assert first is not None and first.admitted == [running]
    late = eng.add(req(16, 10, salt=2, at=first.end + 0.001))  # arrived while step 2 ran
    second = eng.step(first.end)
    assert second is not None and second.admitted == [] and second.tokens == [running]
    third = eng.step(second.end)
    assert third is not None and third.admitted == [late]


def test_engine_rejects_requests_longer_than_the_model_allows():
    eng = Engine(profile(max_model_len=100, kv_cache_tokens=1000))
    with pytest.raises(ValueError, match="max_model_len"):
        eng.add(req(90, 20))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 2),
            st.integers(1, 300),
            st.integers(1, 60),
            st.integers(0, 3),
            st.one_of(st.none(), st.integers(1, 8)),
        ),
        min_size=1,
        max_size=25,
    ),
    st.integers(1, 6),
    st.sampled_from([64, 256, 4096]),
)
def test_every_request_finishes_with_exact_length_and_kv_returns_to_empty(reqs, max_seqs, budget):
    prof = profile(
        kv_cache_tokens=512, max_model_len=400, max_num_seqs=max_seqs, max_num_batched_tokens=budget
    )
    requests = [
        SeqRequest(prompt(p, salt), n, n, arrival=at, stall_after=stall, stall_s=0.05)
        for at, p, n, salt, stall in reqs
    ]
    out = replay(prof, requests)
    for t, (_, _, n, _, _) in zip(out.timings, reqs, strict=True):
        assert len(t.token_times) == n
        assert t.token_times == sorted(t.token_times)
        assert t.ttft > 0
    eng = out.engine
    assert eng is not None
    assert eng.kv.used == 0 and eng.kv.available == eng.kv.num_blocks
    assert out.max_running <= max_seqs


def _burstgpt3_requests(speedup: float) -> list[SeqRequest]:
    with open(BURSTGPT_3_400, newline="") as f:
        rows = list(csv.DictReader(f))
    t0 = float(rows[0]["Timestamp"])
    out = []
    for i, row in enumerate(rows):
        p, n = int(row["Request tokens"]), int(row["Response tokens"])
        if n == 0:
            continue
        p = min(p, 30_000)
        out.append(
            SeqRequest(prompt(p, salt=i), n, n, arrival=(float(row["Timestamp"]) - t0) / speedup)
        )
    return out


def test_demo_profile_shows_queueing_and_ttft_spikes_on_the_bundled_trace():
    """The bundled BurstGPT_3 slice at a demo speedup queues on the demo profile (open-loop arrivals)."""
    out = replay(PROFILES[DEMO_PROFILE], _burstgpt3_requests(speedup=100.0))
    ttfts = sorted(t.ttft for t in out.timings)
    p50 = ttfts[len(ttfts) // 2]
    p99 = ttfts[int(len(ttfts) * 0.99)]
    assert out.max_waiting >= 10  # bursts queue ...
    assert p50 < 1.0  # ... while a typical request is served promptly ...
    assert p99 > 10 * p50  # ... so bursts show as TTFT spikes
