"""The local-tokenizer backend with a real (small) BPE tokenizer trained in the test.

The tokenizer is a GPT-2-style byte-level BPE trained with ``tokenizers`` on the vocabulary
words, with a vocabulary small enough that about half of the words stay multi-token (so the
word filtering matters). The folder also carries a ChatML chat template, like a Hugging Face
model folder. Sizes are checked against an independent count: the ChatML text written out by
hand and encoded with ``tokenizers`` directly.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path

import pytest

from locust_burstgpt.client import RequestRecord
from locust_burstgpt.prompts import (
    BuiltPrompt,
    PromptBackendError,
    PromptConfig,
    PromptInputError,
    make_prompt_builder,
)
from locust_burstgpt.prompts.words import unique_words

CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    words = unique_words()
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1150,
        show_progress=False,
        special_tokens=["<s>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = [" ".join(words[i:] + words[:i]) for i in range(0, 600, 50)]
    corpus += ["user assistant system hello there fine thanks good to hear"] * 20
    tok.train_from_iterator(corpus, trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tok.token_to_id("<s>"))]
    )
    folder = tmp_path_factory.mktemp("tiny-model")
    tok.save(str(folder / "tokenizer.json"))
    (folder / "tokenizer_config.json").write_text(
        json.dumps(
            {"chat_template": CHATML, "bos_token": "<s>", "eos_token": {"content": "<|im_end|>"}}
        )
    )
    return folder


@pytest.fixture(scope="module")
def tokenizer(model_dir: Path):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(model_dir / "tokenizer.json"))


def chatml_count(tokenizer, messages: list[dict]) -> int:
    """Independent count: the ChatML prompt written by hand, encoded without added specials."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return len(tokenizer.encode(text + "<|im_start|>assistant\n", add_special_tokens=False).ids)


def reply_text(rng: random.Random, n: int) -> str:
    """Model-like reply text: words, punctuation, digits, newlines, non-ASCII."""
    pieces = [
        "The",
        " answer",
        " is",
        " 42",
        ".",
        "\n\n",
        " Ü",
        "ber",
        " straße",
        ",",
        " 3.14",
        " (see",
        " below)",
        ":",
        " •",
        " item",
        " 🙂",
        "\n",
        "-",
        " done",
    ]
    return "".join(rng.choice(pieces) for _ in range(n))


def test_local_folder_hits_every_target_exactly(model_dir: Path, tokenizer) -> None:
    builder = make_prompt_builder(PromptConfig(backend=f"local:{model_dir}", seed=3))
    assert builder.backend_name == f"local:{model_dir}" and builder.exact
    assert 64 <= len(builder.pool.rest) < len(unique_words())  # multi-token words were filtered
    floor = chatml_count(tokenizer, [{"role": "user", "content": builder.pool.first[0]}])
    rng = random.Random(1)
    for conv in range(40):
        history: list[dict] = []
        for _turn in range(rng.randint(1, 5)):
            target = rng.randint(1, 900)
            built = builder.build_turn(target, history, conv_key=f"conv-{conv}")
            actual = chatml_count(tokenizer, built.messages)
            assert built.expected_prompt_tokens == actual
            if target >= floor and not built.dropped_turns:
                assert actual == target
            history = [
                *built.messages,
                {"role": "assistant", "content": reply_text(rng, rng.randint(1, 60))},
            ]


def test_history_larger_than_target_drops_oldest_turns(model_dir: Path, tokenizer) -> None:
    builder = make_prompt_builder(PromptConfig(backend=f"local:{model_dir}"))
    history: list[dict] = []
    for k in range(4):
        history += [
            {"role": "user", "content": f"question {k} " + "word " * 30},
            {"role": "assistant", "content": f"answer {k} " + "reply " * 30},
        ]
    # room for the last two turns and a 20-token message, not for three turns
    target = chatml_count(tokenizer, [*history[4:], {"role": "user", "content": "x"}]) + 20
    built = builder.build_turn(target, history, conv_key="long")
    assert built.dropped_turns == 2
    assert built.messages[0]["content"].startswith("question 2 ")
    assert chatml_count(tokenizer, built.messages) == target == built.expected_prompt_tokens
    assert built.history_tokens < target
    tiny = builder.build_turn(2, history, conv_key="long")  # below even one word: sent minimal
    assert len(tiny.messages) == 1 and tiny.new_words == 1 and tiny.dropped_turns == 4
    assert tiny.expected_prompt_tokens == chatml_count(tokenizer, tiny.messages) > 2


def test_completions_prompt_includes_bos_and_history(model_dir: Path, tokenizer) -> None:
    builder = make_prompt_builder(
        PromptConfig(backend=f"local:{model_dir}", endpoint="completions")
    )
    history: list[dict] = []
    for target in (40, 120, 250):
        built = builder.build_turn(target, history, conv_key="c")
        assert built.messages is None
        assert len(tokenizer.encode(built.prompt).ids) == target == built.expected_prompt_tokens
        history = [
            {"role": "user", "content": built.prompt},
            {"role": "assistant", "content": " and then it ended."},
        ]
    assert built.prompt.startswith(history[0]["content"][:20])


def test_text_is_deterministic_varied_and_seeded(model_dir: Path) -> None:
    a = make_prompt_builder(PromptConfig(backend=f"local:{model_dir}", seed=5))
    b = make_prompt_builder(PromptConfig(backend=f"local:{model_dir}", seed=5))
    c = make_prompt_builder(PromptConfig(backend=f"local:{model_dir}", seed=6))
    x = a.build_turn(400, [], "k1").messages[0]["content"]
    assert x == b.build_turn(400, [], "k1").messages[0]["content"]
    assert x != c.build_turn(400, [], "k1").messages[0]["content"]
    assert x != a.build_turn(400, [], "k2").messages[0]["content"]
    words = x.split()
    assert len(set(words)) > 100  # not one repeated token
    assert max(words.count(w) for w in set(words)) < len(words) / 10


def test_tokenizer_json_without_template_needs_a_measurement(
    tmp_path: Path, model_dir: Path
) -> None:
    only = tmp_path / "tokenizer.json"
    only.write_bytes((model_dir / "tokenizer.json").read_bytes())
    with pytest.raises(PromptBackendError, match="template overhead"):
        make_prompt_builder(PromptConfig(backend=f"local:{only}"))
    # completions prompts need no template
    built = make_prompt_builder(
        PromptConfig(backend=f"local:{only}", endpoint="completions")
    ).build_turn(50, [], "x")
    assert built.expected_prompt_tokens == 50


def test_auto_prefers_a_given_local_tokenizer(
    model_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="locust_burstgpt.prompts")
    builder = make_prompt_builder(
        PromptConfig(backend="auto", tokenizer=str(model_dir), base_url="http://127.0.0.1:9")
    )
    assert builder.backend_name.startswith("local:")
    assert "a local tokenizer was given" in caplog.text


def test_bad_inputs_are_named(model_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(PromptBackendError, match="no tokenizer.json"):
        make_prompt_builder(PromptConfig(backend=f"local:{tmp_path}"))
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(PromptBackendError, match="cannot be loaded"):
        make_prompt_builder(PromptConfig(backend=f"local:{tmp_path}"))
    with pytest.raises(PromptBackendError, match="unknown prompt backend"):
        make_prompt_builder(PromptConfig(backend="tiktoken"))
    builder = make_prompt_builder(PromptConfig(backend=f"local:{model_dir}"))
    with pytest.raises(PromptInputError, match="conv-9.*>= 1"):
        builder.build_turn(0, [], "conv-9")
    with pytest.raises(PromptInputError, match="conv-9.*message 1"):
        builder.build_turn(10, [{"role": "user", "content": "a"}, {"content": "b"}], "conv-9")


def test_observe_keeps_statistics(model_dir: Path) -> None:
    builder = make_prompt_builder(PromptConfig(backend=f"local:{model_dir}"))
    built = builder.build_turn(100, [], "s")
    assert isinstance(built, BuiltPrompt)
    builder.observe(built, RequestRecord("a", prompt_tokens=100))
    builder.observe(built.expected_prompt_tokens, RequestRecord("b", prompt_tokens=104))
    builder.observe(built, RequestRecord("c"))  # no usage: ignored
    s = builder.stats
    assert (s.observed, s.matched, s.abs_error_sum) == (2, 1, 4)
    assert s.mean_rel_error == pytest.approx((0 + 4 / 104) / 2)
