"""The local backend with SmolLM2's real tokenizer against llama.cpp serving SmolLM2.

Two ways to give the tokenizer: the model folder (tokenizer.json and the chat template, rendered
locally) and a bare tokenizer.json (the template overhead is then measured once from the
server's usage). Either way every prompt must be exactly its target in the given tokenizer, over
multi-turn conversations whose history holds the server's real replies, and the server's count
must equal it wherever the two tokenizers agree on the text.

They do not always agree: llama.cpp's own implementation of SmolLM2's tokenizer merges a run of
whitespace before a digit ("\\n\\n1" is 2 tokens there, 3 in Hugging Face ``tokenizers``, which
vLLM, SGLang and TGI use), and the model's replies sometimes hold one (6 of 1,500 replies
sampled at temperature 1). So a later turn's usage may differ from its target by exactly the
difference the server's ``/tokenize`` shows on the replies in its history, and by nothing else.
"""

from __future__ import annotations

import json
import random
import shutil
import urllib.request
from pathlib import Path

import gevent
import pytest
from tokenizers import Tokenizer

from locust_burstgpt.client import ClientConfig, Outcome, RequestRecord, make_client
from locust_burstgpt.prompts import PromptConfig, make_prompt_builder, output_controls

pytestmark = pytest.mark.llamacpp


Turn = tuple[int, int, int, list[dict]]  # target, expected, usage.prompt_tokens, messages


def converse(client, builder, conversations: int, seed: int) -> list[Turn]:
    """(target, expected, usage.prompt_tokens, messages) of every turn of a few conversations."""
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
                out.append(
                    (target, built.expected_prompt_tokens, rec.prompt_tokens, built.messages)
                )
                history = [*built.messages, {"role": "assistant", "content": rec.reply_text}]
                target += rng.randint(20, 120)
    return out


def tokenizer_divergence(base_url: str, tokenizer: Tokenizer, messages: list[dict]) -> int:
    """Server minus local token count of the replies in a prompt's history.

    Both tokenizers split the rendered prompt at its special tokens first, so each reply is
    counted as its own text segment (``assistant\\n`` + content, between ``<|im_start|>`` and
    ``<|im_end|>``), and differences of the segments add up to the difference of the prompt.
    """
    diff = 0
    for m in messages:
        if m["role"] != "assistant":
            continue
        text = "assistant\n" + m["content"]
        req = urllib.request.Request(
            base_url + "/tokenize",
            data=json.dumps({"content": text, "add_special": False}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=30) as r:
            server = len(json.load(r)["tokens"])
        diff += server - len(tokenizer.encode(text, add_special_tokens=False).ids)
    return diff


def check_turns(base_url: str, tokenizer_json: Path, turns: list[Turn]) -> None:
    """Every prompt is its target in the local tokenizer, and the server counts exactly that
    plus the two tokenizers' disagreement on the replies in its history."""
    assert all(target == expected for target, expected, _, _ in turns), turns
    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    diverging = 0
    for target, expected, actual, messages in turns:
        gap = tokenizer_divergence(base_url, tokenizer, messages)
        diverging += gap != 0
        assert actual == expected + gap, (target, expected, actual, gap, messages)
    print(f"\n{len(turns)} turns, {diverging} with replies the two tokenizers count differently")
    # the first turns hold no server text: the template is rendered exactly
    assert all(actual == expected for _, expected, actual, m in turns if len(m) <= 2)


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
    check_turns(llama_server.base_url, smollm2_tokenizer_json, turns)


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
    check_turns(llama_server.base_url, smollm2_tokenizer_json, turns)


def test_the_tokenizers_disagree_only_where_documented(
    llama_server, smollm2_tokenizer_json: Path
) -> None:
    """The disagreement the checks above allow for, pinned: whitespace runs before a digit."""
    tokenizer = Tokenizer.from_file(str(smollm2_tokenizer_json))

    def gap(content: str) -> int:
        return tokenizer_divergence(
            llama_server.base_url, tokenizer, [{"role": "assistant", "content": content}]
        )

    assert gap("Here are the steps:\n\n1. Open the file") == -1
    assert gap("one  2 and\n\n3") == -2
    assert gap("Here are the steps:\n\nOpen the file, then save it. 1, 2, 3.") == 0
