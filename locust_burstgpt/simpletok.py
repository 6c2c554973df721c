"""The project's one deterministic tokenizer, shared by the simulator and the fallback prompt builder.

Why it exists: the embedded simulator must count prompt tokens exactly and reproducibly without
shipping a model vocabulary, and the plugin's fallback prompt builder must be able to hit a target
count exactly when it talks to the simulator. Both use this module, so their counts agree by
construction.

Rules (documented in the README, do not change without bumping ``VERSION``):

* A token is one of: a run of ASCII letters, one ASCII digit, or one other non-space character,
  each together with the whitespace directly before it; whitespace at the very end of the text is
  one token of its own. Every character belongs to exactly one token, so
  ``"".join(tokenize(t)) == t``.
* Token ids are ``crc32(token) & 0x7FFFFFFF``: stable across processes and runs, so identical
  leading text gives identical leading ids (the simulator's prefix cache relies on that).
* Chat template: every message costs ``CHAT_MESSAGE_OVERHEAD`` tokens on top of its content (a
  ChatML-like ``<|im_start|>role\\n ... <|im_end|>\\n``), and the prompt ends with
  ``CHAT_GENERATION_PROMPT`` tokens that open the assistant's reply. ``/v1/completions`` prompts
  have no template overhead.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Mapping

VERSION = 1
CHAT_MESSAGE_OVERHEAD = 4
CHAT_GENERATION_PROMPT = 3

_TOKEN_RE = re.compile(r"\s*[A-Za-z]+|\s*[0-9]|\s*[^\sA-Za-z0-9]|\s+")


def tokenize(text: str) -> list[str]:
    """Split text into token strings; their concatenation is the input."""
    return _TOKEN_RE.findall(text)


def count(text: str) -> int:
    """Number of tokens in text."""
    return sum(1 for _ in _TOKEN_RE.finditer(text))


def encode(text: str) -> list[int]:
    """Token ids (crc32 of each token string), stable across processes."""
    return [zlib.crc32(t.encode("utf-8")) & 0x7FFFFFFF for t in _TOKEN_RE.findall(text)]


def _role_id(role: str) -> int:
    return zlib.crc32(f"<|im_start|>{role}".encode()) & 0x7FFFFFFF


_IM_END = zlib.crc32(b"<|im_end|>") & 0x7FFFFFFF
_NL = zlib.crc32(b"\n") & 0x7FFFFFFF
_IM_START = zlib.crc32(b"<|im_start|>") & 0x7FFFFFFF


def chat_prompt_count(messages: Iterable[Mapping[str, object]]) -> int:
    """Prompt tokens of a chat request: contents plus the fixed template overhead."""
    total = CHAT_GENERATION_PROMPT
    for m in messages:
        total += CHAT_MESSAGE_OVERHEAD + count(_content_text(m.get("content")))
    return total


def chat_prompt_ids(messages: Iterable[Mapping[str, object]]) -> list[int]:
    """Token ids of a chat prompt, template included (length == ``chat_prompt_count``)."""
    ids: list[int] = []
    for m in messages:
        ids.append(_IM_START)
        ids.append(_role_id(str(m.get("role", ""))))
        ids.append(_NL)
        ids.extend(encode(_content_text(m.get("content"))))
        ids.append(_IM_END)
    ids.extend((_IM_START, _role_id("assistant"), _NL))
    return ids


def _content_text(content: object) -> str:
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
