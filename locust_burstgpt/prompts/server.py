"""Token counts from the target server's own ``/tokenize`` (llama.cpp and vLLM shapes).

* llama.cpp: ``POST /tokenize {"content", "add_special", "parse_special"} -> {"tokens": [...]}``;
  chat prompts are rendered first with ``POST /apply-template {"messages"} -> {"prompt"}``.
* vLLM (and servers copying its API): ``POST /tokenize {"model", "prompt",
  "add_special_tokens"}`` or ``{"model", "messages", "add_generation_prompt": true}``
  ``-> {"count", "tokens", ...}``: the server renders its own chat template.

The calls go over the side channel (``client.sidechannel``): a small cooperative keep-alive pool
of its own, so counting never competes with the load's connection pool.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from locust_burstgpt.client.sidechannel import SideChannel, SideChannelError
from locust_burstgpt.prompts.counters import Message, PromptBackendError, content_text

log = logging.getLogger("locust_burstgpt.prompts")


class LlamaCppCounter:
    """llama.cpp ``/tokenize`` + ``/apply-template``."""

    shape = "llamacpp"

    def __init__(self, http: SideChannel, has_template: bool) -> None:
        self.http = http
        self.has_template = has_template
        self.name = "server:llamacpp"

    def _tokens(self, text: str, add_special: bool, parse_special: bool) -> int:
        status, data = self.http.post(
            "/tokenize",
            {"content": text, "add_special": add_special, "parse_special": parse_special},
        )
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise PromptBackendError(
                f"POST {self.http.root}/tokenize answered {status}: {data!r:.200}"
            )
        return len(data["tokens"])

    def count_texts(self, texts: Sequence[str]) -> list[int]:
        return [self._tokens(t, False, False) for t in texts]

    def count_chat(self, messages: Sequence[Message]) -> int | None:
        if not self.has_template:
            return None
        msgs = [
            {"role": m.get("role"), "content": content_text(m.get("content"))} for m in messages
        ]
        status, data = self.http.post("/apply-template", {"messages": msgs})
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
            raise PromptBackendError(
                f"POST {self.http.root}/apply-template answered {status}: {data!r:.200}"
            )
        return self._tokens(data["prompt"], True, True)

    def count_completion(self, prompt: str) -> int:
        return self._tokens(prompt, True, True)


class VllmCounter:
    """vLLM-style ``/tokenize`` (the server applies its own chat template)."""

    shape = "vllm"

    def __init__(self, http: SideChannel, model: str) -> None:
        self.http = http
        self.model = model
        self.has_template = True
        self.name = "server:vllm"

    def _count(self, body: dict[str, Any]) -> int:
        status, data = self.http.post("/tokenize", {"model": self.model, **body})
        if status != 200 or not isinstance(data, dict):
            raise PromptBackendError(
                f"POST {self.http.root}/tokenize answered {status}: {data!r:.200}"
            )
        if isinstance(data.get("count"), int):
            return data["count"]
        if isinstance(data.get("tokens"), list):
            return len(data["tokens"])
        raise PromptBackendError(f"POST {self.http.root}/tokenize: no count in {data!r:.200}")

    def count_texts(self, texts: Sequence[str]) -> list[int]:
        return [self._count({"prompt": t, "add_special_tokens": False}) for t in texts]

    def count_chat(self, messages: Sequence[Message]) -> int | None:
        msgs = [
            {"role": m.get("role"), "content": content_text(m.get("content"))} for m in messages
        ]
        return self._count({"messages": msgs, "add_generation_prompt": True})

    def count_completion(self, prompt: str) -> int:
        return self._count({"prompt": prompt, "add_special_tokens": True})


def detect_server_counter(
    http: SideChannel, model: str | None
) -> LlamaCppCounter | VllmCounter | None:
    """Which ``/tokenize`` shape the server answers, or None when it has none that works."""
    try:
        status, data = http.post("/tokenize", {"content": "hello world", "add_special": False})
        if status == 200 and isinstance(data, dict) and isinstance(data.get("tokens"), list):
            st, tpl = http.post(
                "/apply-template", {"messages": [{"role": "user", "content": "hi"}]}
            )
            has_template = (
                st == 200 and isinstance(tpl, dict) and isinstance(tpl.get("prompt"), str)
            )
            return LlamaCppCounter(http, has_template)
        model = model or first_model(http)
        if model:
            status, data = http.post(
                "/tokenize", {"model": model, "prompt": "hello world", "add_special_tokens": False}
            )
            if (
                status == 200
                and isinstance(data, dict)
                and (isinstance(data.get("count"), int) or isinstance(data.get("tokens"), list))
            ):
                return VllmCounter(http, model)
    except (PromptBackendError, SideChannelError) as e:
        log.info("server /tokenize not usable: %s", e)
    return None


def first_model(http: SideChannel) -> str | None:
    """The first model id ``/v1/models`` lists, if any."""
    return served_model(http)[0]


def served_model(http: SideChannel) -> tuple[str | None, str | None]:
    """(id, owned_by) of the first model ``/v1/models`` lists; (None, None) if it lists none."""
    try:
        status, data = http.request("GET", "/v1/models")
    except SideChannelError:
        return None, None
    if status == 200 and isinstance(data, dict):
        for m in data.get("data") or []:
            if isinstance(m, dict) and m.get("id"):
                owner = m.get("owned_by")
                return str(m["id"]), str(owner) if owner is not None else None
    return None, None
