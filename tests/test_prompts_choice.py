"""Which backend ``auto`` picks, output-length switches per server kind, simpletok counting."""

from __future__ import annotations

import logging
import socket

import pytest

from locust_burstgpt import simpletok
from locust_burstgpt.prompts import PromptConfig, make_prompt_builder, output_controls
from locust_burstgpt.prompts.simple import SimpletokCounter


def dead_url() -> str:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_auto_falls_back_when_nothing_can_count(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="locust_burstgpt.prompts")
    builder = make_prompt_builder(PromptConfig(base_url=dead_url()))
    assert builder.backend_name == "fallback" and not builder.exact
    assert "no local tokenizer and no usable /tokenize" in caplog.text
    built = builder.build_turn(300, [], "c")  # uncalibrated: simpletok's own template
    assert built.expected_prompt_tokens == 300
    assert simpletok.chat_prompt_count(built.messages) == 300


def test_server_backend_without_a_server_is_an_error() -> None:
    with pytest.raises(Exception, match="tokenize"):
        make_prompt_builder(PromptConfig(backend="server", base_url=dead_url()))
    with pytest.raises(Exception, match="base_url"):
        make_prompt_builder(PromptConfig(backend="server"))


def test_simpletok_backend_is_exact_for_simpletok() -> None:
    builder = make_prompt_builder(PromptConfig(backend="simpletok"))
    history: list[dict] = []
    for k, target in enumerate([20, 400, 380, 5000]):
        built = builder.build_turn(target, history, "s")
        assert simpletok.chat_prompt_count(built.messages) == target == built.expected_prompt_tokens
        history = [*built.messages, {"role": "assistant", "content": f"reply {k}, with 3.5 words!"}]
    long = "word " * 399 + "end"  # 400 tokens
    counter = SimpletokCounter(cache_size=2)
    assert counter.count_texts([long, long, "x"]) == [400, 400, 1]  # cached or not, the same


@pytest.mark.parametrize(
    "kind, fields",
    [
        ("vllm", {"max_tokens": 64, "ignore_eos": True, "min_tokens": 64}),
        ("sim", {"max_tokens": 64, "ignore_eos": True, "min_tokens": 64}),
        ("llamacpp", {"max_tokens": 64, "ignore_eos": True}),
        ("sglang", {"max_tokens": 64, "ignore_eos": True}),
        ("openai", {"max_tokens": 64}),
        (None, {"max_tokens": 64}),
    ],
)
def test_output_controls(kind: str | None, fields: dict) -> None:
    assert output_controls(64, kind) == fields


def test_output_controls_rejects_empty_targets() -> None:
    with pytest.raises(ValueError, match=">= 1"):
        output_controls(0, "vllm")
