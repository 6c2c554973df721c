"""Prompt and output sizes against real vLLM (CPU build, SmolLM2-135M).

vLLM renders its own chat template in ``/tokenize`` (``messages`` + ``add_generation_prompt``),
so the server backend must hit every target exactly, over multi-turn conversations with vLLM's
real replies as history; ``min_tokens`` + ``ignore_eos`` must give exact output lengths.
"""

from __future__ import annotations

import random

import gevent
import gevent.pool
import pytest

from locust_burstgpt.client import ClientConfig, Outcome, RequestRecord, make_client
from locust_burstgpt.prompts import PromptConfig, make_prompt_builder, output_controls

pytestmark = pytest.mark.vllm


@pytest.mark.timeout(600)
def test_vllm_tokenize_backend_and_exact_output(vllm_server) -> None:
    client = make_client(ClientConfig(base_url=vllm_server.base_url))
    builder = make_prompt_builder(PromptConfig(base_url=vllm_server.base_url), client)
    assert builder.backend_name == "server:vllm"
    results: list[tuple[int, int, int, int, int]] = []

    def conversation(conv: int) -> None:
        rng = random.Random(conv)
        history: list[dict] = []
        target = rng.randint(30, 300)
        for turn in range(4):
            out = rng.randint(1, 24)
            built = builder.build_turn(target, history, f"vllm-{conv}")
            rec = client.send(
                {"model": "smollm2", "messages": built.messages, **output_controls(out, "vllm")},
                RequestRecord(f"{conv}-{turn}"),
            )
            assert rec.outcome is Outcome.OK, rec.error
            results.append(
                (
                    target,
                    built.expected_prompt_tokens,
                    rec.prompt_tokens,
                    out,
                    rec.completion_tokens,
                )
            )
            history = [*built.messages, {"role": "assistant", "content": rec.reply_text}]
            target += rng.randint(10, 300)

    pool = gevent.pool.Pool(8)
    with gevent.Timeout(500):
        for conv in range(12):
            pool.spawn(conversation, conv)
        pool.join(raise_error=True)
    client.close()
    assert len(results) == 48
    assert all(t == e == a for t, e, a, _, _ in results), results
    assert all(asked == got for *_, asked, got in results), results
