"""What a token-count backend offers the prompt builder, and the measured chat-template model.

A counter counts plain text (no special tokens added) and, when it can, a whole chat prompt the
way the server will (template and special tokens included). When a counter cannot render the
chat template itself, ``TemplateOverhead`` supplies it: the fixed and per-role template cost
measured once from the server's own ``usage.prompt_tokens`` with tiny probe requests.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from locust_burstgpt.client.records import Outcome, RequestRecord

log = logging.getLogger("locust_burstgpt.prompts")

Message = Mapping[str, Any]


class PromptBackendError(RuntimeError):
    """A token-count backend cannot be used (names the file, URL or setting at fault)."""


class TokenCounter(Protocol):
    name: str

    def count_texts(self, texts: Sequence[str]) -> list[int]:
        """Tokens of each text, no special tokens added."""
        ...

    def count_chat(self, messages: Sequence[Message]) -> int | None:
        """Tokens of a chat prompt as the server counts it, or None if this counter can't render it."""
        ...

    def count_completion(self, prompt: str) -> int:
        """Tokens of a ``/v1/completions`` prompt as the server counts it (BOS included)."""
        ...


def content_text(content: Any) -> str:
    """Message content as text: a string, or the text parts of an OpenAI content list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, Mapping) and p.get("type") == "text"
        )
    return str(content)


@dataclass(frozen=True)
class TemplateOverhead:
    """Chat prompt = ``fixed`` + a cost per message by role + the tokens of every content.

    Measured from alternating conversations ending with a user message (the only shape the
    builder sends), which fix ``fixed + user`` and ``user + assistant`` but not how the latter
    splits; any split gives the same total for that shape.
    """

    fixed: int
    user: int
    assistant: int

    def count(self, messages: Sequence[Message], counter: TokenCounter) -> int:
        texts = [content_text(m.get("content")) for m in messages]
        roles = sum(self.assistant if m.get("role") == "assistant" else self.user for m in messages)
        return self.fixed + roles + sum(counter.count_texts(texts))


def probe_usage(client: Any, model: str | None, body: dict[str, Any], what: str) -> int:
    """Send one tiny real request and return the server's ``usage.prompt_tokens``."""
    full = {**body, "max_tokens": 1}
    if model:
        full["model"] = model
    rec = client.send(full, RequestRecord(request_id=f"prompt-probe-{what}"))
    if rec.outcome is not Outcome.OK or rec.prompt_tokens is None:
        raise PromptBackendError(
            f"probe request ({what}) to measure prompt tokens failed: outcome "
            f"{rec.outcome.value if rec.outcome else None}, usage.prompt_tokens "
            f"{rec.prompt_tokens}, error {rec.error}"
        )
    return rec.prompt_tokens


def measure_template(client: Any, model: str | None, counter: TokenCounter) -> TemplateOverhead:
    """The chat-template cost, from two probe requests' usage."""
    a, b, c = "hello there", "fine thanks", "good to hear"
    one = [{"role": "user", "content": a}]
    three = [
        {"role": "user", "content": a},
        {"role": "assistant", "content": b},
        {"role": "user", "content": c},
    ]
    y1 = probe_usage(client, model, {"messages": one}, "template-1")
    y3 = probe_usage(client, model, {"messages": three}, "template-3")
    ca, cb, cc = counter.count_texts([a, b, c])
    turn = y3 - y1 - cb - cc  # one more user message and one assistant message
    user = turn // 2
    overhead = TemplateOverhead(fixed=y1 - ca - user, user=user, assistant=turn - user)
    log.info(
        "measured chat template overhead: %d fixed, %d per user message, %d per assistant message",
        overhead.fixed,
        overhead.user,
        overhead.assistant,
    )
    return overhead
