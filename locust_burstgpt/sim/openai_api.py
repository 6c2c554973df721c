"""Request validation for the OpenAI-compatible endpoints, with vLLM's error semantics.

Why it exists: a client under test must see the same 400s a real vLLM server would give (bad
JSON, missing fields, context too long), each with an OpenAI-style error body naming the
problem; and the simulator needs the prompt's simpletok ids and the completion length it will
produce. Nothing here does I/O.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from locust_burstgpt import simpletok
from locust_burstgpt.sim import text


class ApiError(Exception):
    """An error response: HTTP status, OpenAI error type and message."""

    def __init__(
        self,
        status: int,
        message: str,
        err_type: str = "BadRequestError",
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.err_type = err_type
        self.param = param
        self.headers = dict(headers or {})

    def body(self) -> bytes:
        return json.dumps(
            {
                "error": {
                    "message": self.message,
                    "type": self.err_type,
                    "param": self.param,
                    "code": self.status,
                }
            }
        ).encode()


@dataclass
class CompletionRequest:
    """A validated /v1/chat/completions or /v1/completions request."""

    chat: bool
    prompt_ids: list[int]
    max_tokens: int
    target_tokens: int  # tokens that will be generated
    stream: bool
    include_usage: bool


def parse_json_body(body: bytes) -> dict[str, Any]:
    if not body:
        raise ApiError(400, "Request body is empty; expected a JSON object.")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ApiError(400, f"Request body is not valid JSON: {e}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object.")
    return data


def check_model(data: Mapping[str, Any], served: str) -> None:
    model = data.get("model")
    if model is not None and model != served:
        raise ApiError(404, f"The model `{model}` does not exist.", "NotFoundError", "model")


def parse_completion(
    data: Mapping[str, Any], chat: bool, served_model: str, max_model_len: int, natural_mean: int
) -> CompletionRequest:
    """Validate a completion request and decide its prompt ids and completion length."""
    check_model(data, served_model)
    if chat:
        messages = data.get("messages")
        if not isinstance(messages, list) or not messages:
            raise ApiError(
                400, "'messages' is required and must be a non-empty list.", param="messages"
            )
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise ApiError(
                    400, f"messages[{i}] must be an object with a string 'role'.", param="messages"
                )
            c = m.get("content")
            if c is not None and not isinstance(c, (str, list)):
                raise ApiError(
                    400,
                    f"messages[{i}].content must be a string or a list of parts.",
                    param="messages",
                )
        prompt_ids = chat_prompt_ids(messages)
    else:
        prompt = data.get("prompt")
        if not isinstance(prompt, str):
            raise ApiError(400, "'prompt' is required and must be a string.", param="prompt")
        prompt_ids = simpletok.encode(prompt)
        if not prompt_ids:
            raise ApiError(400, "'prompt' must not be empty.", param="prompt")
    n = data.get("n", 1)
    if n != 1:
        raise ApiError(400, "Only n=1 is supported by the simulator.", param="n")
    stream = _bool(data, "stream", False)
    opts = data.get("stream_options")
    include_usage = False
    if opts is not None:
        if not isinstance(opts, dict):
            raise ApiError(400, "'stream_options' must be an object.", param="stream_options")
        if not stream:
            raise ApiError(
                400,
                "Stream options can only be defined when `stream=True`.",
                param="stream_options",
            )
        include_usage = _bool(opts, "include_usage", False)
    prompt_len = len(prompt_ids)
    key = "max_completion_tokens" if data.get("max_completion_tokens") is not None else "max_tokens"
    max_tokens = data.get(key)
    if max_tokens is None:
        max_tokens = max_model_len - prompt_len
        if max_tokens < 1:
            raise ApiError(
                400,
                f"This model's maximum context length is {max_model_len} tokens. However, your "
                f"request has {prompt_len} input tokens. Please reduce the length of the input.",
                param="messages" if chat else "prompt",
            )
    elif not _is_int(max_tokens) or max_tokens < 1:
        raise ApiError(400, f"'{key}' must be an integer >= 1, got {max_tokens!r}.", param=key)
    elif prompt_len + max_tokens > max_model_len:
        raise ApiError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, you "
            f"requested {prompt_len + max_tokens} tokens ({prompt_len} in the "
            f"{'messages' if chat else 'prompt'}, {max_tokens} in the completion). Please reduce "
            f"the length of the {'messages' if chat else 'prompt'} or completion.",
            param=key,
        )
    min_tokens = data.get("min_tokens", 0)
    if not _is_int(min_tokens) or min_tokens < 0 or min_tokens > max_tokens:
        raise ApiError(
            400,
            f"'min_tokens' must be an integer in [0, {max_tokens}], got {min_tokens!r}.",
            param="min_tokens",
        )
    ignore_eos = _bool(data, "ignore_eos", False)
    if ignore_eos:
        target = max_tokens
    else:
        target = min(max_tokens, max(min_tokens, natural_length(prompt_ids, natural_mean)))
    return CompletionRequest(chat, prompt_ids, max_tokens, target, stream, include_usage)


def natural_length(prompt_ids: list[int], mean: int) -> int:
    """Where the simulated model would emit EOS: uniform on [1, 2*mean - 1], fixed per prompt."""
    h = (text.seed_for_prompt(prompt_ids) * 2654435761 >> 7) & 0xFFFFFFFF
    return 1 + h % (2 * mean - 1) if mean > 1 else 1


def parse_tokenize(data: Mapping[str, Any], served_model: str) -> tuple[list[int], int]:
    """/tokenize (vLLM shape): ``prompt`` or ``messages`` -> (ids, count)."""
    check_model(data, served_model)
    if "messages" in data:
        messages = data["messages"]
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ApiError(400, "'messages' must be a list of message objects.", param="messages")
        ids = chat_prompt_ids(messages)
        if not _bool(data, "add_generation_prompt", True):
            ids = ids[: len(ids) - simpletok.CHAT_GENERATION_PROMPT]
        return ids, len(ids)
    prompt = data.get("prompt")
    if not isinstance(prompt, str):
        raise ApiError(400, "Either 'prompt' (a string) or 'messages' is required.", param="prompt")
    ids = simpletok.encode(prompt)
    return ids, len(ids)


_GEN = simpletok.CHAT_GENERATION_PROMPT


@lru_cache(maxsize=1024)
def _message_ids(role: str, content: str) -> tuple[int, ...]:
    return tuple(simpletok.chat_prompt_ids([{"role": role, "content": content}])[:-_GEN])


def chat_prompt_ids(messages: list[Any]) -> list[int]:
    """``simpletok.chat_prompt_ids``, with each (role, text) message's ids cached.

    Multi-turn clients resend the whole history every turn; tokenizing it again would block the
    event loop for about a microsecond per token. Composing per-message ids is exact because
    simpletok's template is a per-message frame followed by the generation prompt.
    """
    ids: list[int] = []
    for m in messages:
        content = m.get("content")
        if content is None or isinstance(content, str):
            ids.extend(_message_ids(str(m.get("role", "")), content or ""))
        else:
            ids.extend(simpletok.chat_prompt_ids([m])[:-_GEN])
    ids.extend(simpletok.chat_prompt_ids([]))
    return ids


def _bool(d: Mapping[str, Any], key: str, default: bool) -> bool:
    v = d.get(key, default)
    if v is None:
        return default
    if not isinstance(v, bool):
        raise ApiError(400, f"'{key}' must be true or false, got {v!r}.", param=key)
    return v


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
