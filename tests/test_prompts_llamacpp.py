"""Prompt and output sizes against the real llama.cpp server (SmolLM2's own tokenizer).

Targets come from the genuine bundled BurstGPT slices: single-turn requests are random rows of
BurstGPT_1, multi-turn requests are whole conversations of BurstGPT_3 replayed turn by turn with
the server's real replies as history. llama.cpp evaluates SmolLM2 prompts at only a few hundred
tokens/s on a 2-core CI machine, so sizes are reduced to keep the run short: single-turn prompt
targets are clipped to [smallest possible prompt, SINGLE_CAP]; a conversation's targets are
scaled down together (so each turn still carries the previous ones) until its largest is at
most MULTI_CAP; response targets are clipped to [1, RESPONSE_CAP]. The exactness mechanism does
not depend on the size.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import gevent
import gevent.pool
import gevent.queue
import pandas as pd
import pytest

from locust_burstgpt.client import ClientConfig, Outcome, RequestRecord, make_client
from locust_burstgpt.prompts import BuiltPrompt, PromptConfig, make_prompt_builder, output_controls
from tests.conftest import BURSTGPT_1_7DAYS, BURSTGPT_3_400

pytestmark = pytest.mark.llamacpp

SINGLE_CAP = 64
MULTI_CAP = 160
RESPONSE_CAP = 4
SINGLE = 125  # genuine single-turn targets
MULTI_TURNS = 125  # requests of whole multi-turn conversations
MODEL = "smollm2"


@dataclass
class Turn:
    prompt_target: int  # genuine Request tokens (history included), reduced as described above
    response_target: int  # genuine Response tokens


@dataclass
class Sent:
    conversation: int
    turn: int
    prompt_target: int  # what was asked (at least the smallest possible prompt)
    response_target: int
    built: BuiltPrompt
    record: RequestRecord


def genuine_conversations(n_single: int, n_multi_turns: int, seed: int = 7) -> list[list[Turn]]:
    """Random single-turn rows of BurstGPT_1 and whole multi-turn conversations of BurstGPT_3."""
    d1 = pd.read_csv(BURSTGPT_1_7DAYS)
    d1 = d1[d1["Response tokens"] > 0]  # failed rows are skipped by default in replays too
    rows = d1.sample(n=n_single, random_state=seed)
    convs = [
        [Turn(min(int(r["Request tokens"]), SINGLE_CAP), int(r["Response tokens"]))]
        for _, r in rows.iterrows()
    ]
    d3 = pd.read_csv(BURSTGPT_3_400)
    d3 = d3[d3["Session ID"].notna() & (d3["Response tokens"] > 0)].sort_values("Timestamp")
    sessions = [g for _, g in d3.groupby("Session ID", sort=False) if len(g) >= 2]
    random.Random(seed).shuffle(sessions)
    taken = 0
    for g in sessions:
        if taken >= n_multi_turns:
            break
        g = g.iloc[: n_multi_turns - taken]
        scale = min(1.0, MULTI_CAP / g["Request tokens"].max())
        turns = [
            Turn(round(int(r["Request tokens"]) * scale), int(r["Response tokens"]))
            for _, r in g.iterrows()
        ]
        convs.append(turns)
        taken += len(turns)
    assert taken == n_multi_turns, "the bundled slice has fewer multi-turn requests than asked"
    return convs


def replay(
    client, builder, conversations: list[list[Turn]], floor: int, concurrency: int = 8
) -> list[Sent]:
    """Replay conversations turn by turn (history = real replies), ``concurrency`` at a time."""
    queue: gevent.queue.Queue = gevent.queue.Queue()
    for i, conv in enumerate(conversations):
        queue.put((i, conv))
    sent: list[Sent] = []

    def worker() -> None:
        while not queue.empty():
            i, conv = queue.get()
            history: list[dict] = []
            for k, turn in enumerate(conv):
                p = max(turn.prompt_target, floor)
                c = min(max(turn.response_target, 1), RESPONSE_CAP)
                built = builder.build_turn(p, history, conv_key=f"c{i}")
                body = {
                    "model": MODEL,
                    "messages": built.messages,
                    **output_controls(c, "llamacpp"),
                    "temperature": 0.8,
                }
                rec = client.send(body, RequestRecord(f"c{i}-t{k}"))
                builder.observe(built, rec)
                sent.append(Sent(i, k, p, c, built, rec))
                if rec.outcome is not Outcome.OK:
                    break
                history = [*built.messages, {"role": "assistant", "content": rec.reply_text}]

    pool = gevent.pool.Pool(concurrency)
    for _ in range(concurrency):
        pool.spawn(worker)
    with gevent.Timeout(600):
        pool.join(raise_error=True)
    return sent


@pytest.fixture(scope="module")
def client(llama_server):
    c = make_client(ClientConfig(base_url=llama_server.base_url, pool_size=64))
    yield c
    c.close()


@pytest.mark.timeout(900)  # about a minute on an idle 2-core machine; more when it is shared
def test_server_tokenize_backend_hits_targets_exactly(llama_server, client) -> None:
    builder = make_prompt_builder(PromptConfig(base_url=llama_server.base_url, model=MODEL), client)
    assert builder.backend_name == "server:llamacpp"  # auto chose the server's /tokenize
    floor = builder.build_turn(1, [], "floor").expected_prompt_tokens
    conversations = genuine_conversations(n_single=SINGLE, n_multi_turns=MULTI_TURNS)
    n = SINGLE + MULTI_TURNS
    below_floor = sum(t.prompt_target < floor for conv in conversations for t in conv)
    sent = replay(client, builder, conversations, floor)

    assert len(sent) == n
    bad = [(s.record.outcome, s.record.error) for s in sent if s.record.outcome is not Outcome.OK]
    assert not bad
    prompt_exact = sum(s.record.prompt_tokens == s.prompt_target for s in sent)
    as_built = sum(s.record.prompt_tokens == s.built.expected_prompt_tokens for s in sent)
    completion_exact = sum(s.record.completion_tokens == s.response_target for s in sent)
    multi = [s for s in sent if s.turn > 0]
    print(
        f"\nllama.cpp /tokenize backend: prompt == target {prompt_exact}/{n}, "
        f"== expected {as_built}/{n}, completion == target {completion_exact}/{n}; "
        f"floor {floor} tokens ({below_floor} genuine targets below it), "
        f"{len(multi)} later turns, {sum(s.built.dropped_turns for s in sent)} turns dropped"
    )
    assert prompt_exact >= 0.99 * n
    assert as_built >= 0.99 * n
    assert completion_exact == n
    assert len(multi) >= 0.6 * MULTI_TURNS  # turns 2, 3, ... of the multi-turn conversations
    assert all(len(s.built.messages) >= 3 for s in multi if not s.built.dropped_turns)  # history


@pytest.mark.timeout(600)
def test_calibrated_fallback_error_below_3_percent(llama_server, client) -> None:
    """simpletok counts differ from SmolLM2's; calibration from usage must close the gap."""
    builder = make_prompt_builder(
        PromptConfig(backend="fallback", base_url=llama_server.base_url, model=MODEL), client
    )
    assert builder.backend_name == "fallback" and not builder.exact
    conversations = genuine_conversations(n_single=90, n_multi_turns=70, seed=11)
    exact = make_prompt_builder(
        PromptConfig(backend="server", base_url=llama_server.base_url, model=MODEL)
    )
    floor = exact.build_turn(1, [], "floor").expected_prompt_tokens  # smallest reachable prompt
    sent = replay(client, builder, conversations, floor)
    assert all(s.record.outcome is Outcome.OK for s in sent)
    sent.sort(key=lambda s: s.record.sent_at)
    later = sent[50:]
    errors = [abs(s.record.prompt_tokens - s.prompt_target) / s.prompt_target for s in later]
    mean_error = sum(errors) / len(errors)
    print(
        f"\nfallback: mean |usage - target| / target after 50 requests = {mean_error:.2%} "
        f"over {len(later)} requests (first 50: "
        f"{sum(abs(s.record.prompt_tokens - s.prompt_target) / s.prompt_target for s in sent[:50]) / 50:.2%})"
    )
    assert len(later) >= 100
    assert mean_error < 0.03
