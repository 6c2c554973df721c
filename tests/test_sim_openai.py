"""The official openai client works unchanged against the simulator (streaming and not)."""

from __future__ import annotations

import openai
import pytest

from locust_burstgpt import simpletok


@pytest.fixture(scope="module")
def client(sim_fast_thread):
    c = openai.OpenAI(
        base_url=sim_fast_thread.base_url + "/v1", api_key="unused", max_retries=0, timeout=30
    )
    yield c
    c.close()


def test_models_list(client):
    assert [m.id for m in client.models.list()] == ["burstgpt-sim"]


def test_streaming_chat_with_usage(client):
    msgs = [{"role": "user", "content": "Say something."}]
    stream = client.chat.completions.create(
        model="burstgpt-sim",
        messages=msgs,
        max_tokens=16,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    finish = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    usage = chunks[-1].usage
    assert finish == ["length"]
    assert usage is not None and usage.completion_tokens == 16 == simpletok.count(text)
    assert usage.prompt_tokens == simpletok.chat_prompt_count(msgs)
    assert usage.prompt_tokens_details.cached_tokens == 0


def test_non_streaming_chat_and_completions(client):
    r = client.chat.completions.create(
        model="burstgpt-sim",
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=9,
        extra_body={"ignore_eos": True, "min_tokens": 9},
    )
    assert r.choices[0].finish_reason == "length" and r.usage.completion_tokens == 9
    assert simpletok.count(r.choices[0].message.content) == 9
    c = client.completions.create(
        model="burstgpt-sim", prompt="Once upon", max_tokens=4, extra_body={"ignore_eos": True}
    )
    assert c.usage.prompt_tokens == 2 and simpletok.count(c.choices[0].text) == 4


def test_errors_map_to_openai_exceptions(client):
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(
            model="burstgpt-sim",
            messages=[{"role": "user", "content": "x"}],
            max_tokens=2,
            extra_headers={"x-sim-fault": "http_429"},
        )
    assert e.value.response.headers["retry-after"] == "1"
    with pytest.raises(openai.BadRequestError, match="maximum context length"):
        client.chat.completions.create(
            model="burstgpt-sim", messages=[{"role": "user", "content": "x"}], max_tokens=10_000_000
        )
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(
            model="burstgpt-sim",
            messages=[{"role": "user", "content": "x"}],
            max_tokens=2,
            extra_headers={"x-sim-fault": "http_500"},
        )
