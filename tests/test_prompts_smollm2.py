"""The local backend with SmolLM2's real tokenizer against llama.cpp serving SmolLM2.

Two ways to give the tokenizer: the model folder (tokenizer.json and the chat template, rendered
locally) and a bare tokenizer.json (the template overhead is then measured once from the
server's usage). Either way every prompt must be exactly its target in the server's own count,
over multi-turn conversations whose history holds the server's real replies.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import gevent
import pytest

from locust_burstgpt.client import ClientConfig, Outcome, RequestRecord, make_client
from locust_burstgpt.prompts import PromptConfig, make_prompt_builder, output_controls

pytestmark = pytest.mark.llamacpp


def converse(client, builder, conversations: int, seed: int) -> list[tuple[int, int, int]]:
    """(target, expected, usage.prompt_tokens) of every turn of a few conversations."""
    rng = random.Random(seed)
    out = []
    with gevent.Timeout(300):
        for conv in range(conversations):
            history: list[dict] = []
            target = rng.randint(40, 120)
            for turn in range(4):
                built = builder.build_turn(target, history, f"smollm2-{seed}-{conv}")
                rec = client.send(
                    {
                        "model": "smollm2",
                        "messages": built.messages,
                        **output_controls(rng.randint(2, 12), "llamacpp"),
                    },
                    RequestRecord(f"{conv}-{turn}"),
                )
                assert rec.outcome is Outcome.OK, rec.error
                out.append((target, built.expected_prompt_tokens, rec.prompt_tokens))
                history = [*built.messages, {"role": "assistant", "content": rec.reply_text}]
                target += rng.randint(20, 120)
    return out


@pytest.fixture(scope="module")
def client(llama_server):
    c = make_client(ClientConfig(base_url=llama_server.base_url))
    yield c
    c.close()


def test_model_folder_renders_the_template_exactly(
    llama_server, client, smollm2_tokenizer_json: Path
) -> None:
    folder = smollm2_tokenizer_json.parent
    builder = make_prompt_builder(
        PromptConfig(backend=f"local:{folder}", base_url=llama_server.base_url), client
    )
    assert builder.sizer.template is None and builder.sizer.offset == 0  # nothing to correct
    turns = converse(client, builder, conversations=6, seed=1)
    assert all(target == expected == actual for target, expected, actual in turns), turns


def test_bare_tokenizer_json_measures_the_template(
    llama_server, client, smollm2_tokenizer_json: Path, tmp_path: Path
) -> None:
    shutil.copy(smollm2_tokenizer_json, tmp_path / "tokenizer.json")  # without the template
    builder = make_prompt_builder(
        PromptConfig(
            backend=f"local:{tmp_path / 'tokenizer.json'}", base_url=llama_server.base_url
        ),
        client,
    )
    overhead = builder.sizer.template
    assert overhead is not None and overhead.fixed > 10  # SmolLM2's default system prompt
    turns = converse(client, builder, conversations=6, seed=2)
    assert all(target == expected == actual for target, expected, actual in turns), turns
