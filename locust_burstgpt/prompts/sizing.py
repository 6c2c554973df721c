"""How many tokens a prompt will be: exactly (a real tokenizer) or by calibrated estimate.

The builder asks a sizer for the size of a prompt whose new user message is a single word
(``probe``), and how many tokens each further word adds (``slope``); it then appends exactly the
words that reach the target.

* ``ExactSizer`` counts with a real tokenizer (local or the server's), so ``slope`` is 1: it only
  appends words that are one token after a space in that tokenizer (``exact_word_pool``).
* ``CalibratedSizer`` (the fallback) predicts the count from features of the prompt, starting
  from ``simpletok`` and corrected by recursive least squares from each response's
  ``usage.prompt_tokens``: prompt = w . [1, messages, generated-word tokens, known reply tokens,
  other reply tokens], where a reply's "known" size is the server's own ``completion_tokens``
  for it.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from locust_burstgpt import simpletok
from locust_burstgpt.prompts.counters import (
    Message,
    TemplateOverhead,
    TokenCounter,
    content_text,
)
from locust_burstgpt.prompts.text import WordPool

log = logging.getLogger("locust_burstgpt.prompts")

_MIN_POOL = 64  # fewer one-token words than this means the vocabulary suits the tokenizer badly


class ExactSizer:
    """Counts with a real tokenizer; ``offset`` is the measured difference to the server's usage."""

    exact = True
    slope = 1.0

    def __init__(self, counter: TokenCounter, template: TemplateOverhead | None = None) -> None:
        self.counter = counter
        self.template = template
        self.name = counter.name
        self.offset = 0  # usage.prompt_tokens - our count, measured once against the server

    def chat(self, messages: Sequence[Message]) -> int:
        n = self.counter.count_chat(messages)
        if n is None:
            if self.template is None:
                raise RuntimeError(f"{self.name}: no chat template and no measured overhead")
            n = self.template.count(messages, self.counter)
        return n + self.offset

    def completion(self, prompt: str) -> int:
        return self.counter.count_completion(prompt) + self.offset

    def probe_chat(self, messages: Sequence[Message]) -> tuple[float, Any]:
        return float(self.chat(messages)), None

    def probe_completion(self, history_text: str, text: str) -> tuple[float, Any]:
        return float(self.completion(history_text + text)), None

    def finalize(self, state: Any, added_words: int) -> Any:
        return state

    def observe(self, state: Any, actual: int) -> None:
        pass

    def remember_reply(self, text: str, tokens: int) -> None:
        pass


def exact_word_pool(counter: TokenCounter, words: Sequence[str]) -> WordPool:
    """Words that are exactly one token after a space (and, to open a message, on their own)."""
    rest = _one_token_words([" " + w for w in words], counter.count_texts)
    rest = [w[1:] for w in rest]
    first: list[str] = []
    for i in range(0, len(rest), 16):  # opening words: one token without the leading space
        batch = rest[i : i + 16]
        first += [w for w, n in zip(batch, counter.count_texts(batch), strict=True) if n == 1]
        if len(first) >= 16:
            break
    if len(rest) < _MIN_POOL or not first:
        raise RuntimeError(
            f"{counter.name}: only {len(rest)} of {len(words)} vocabulary words are single "
            f"tokens ({len(first)} as an opening word); this tokenizer does not split English "
            "words as expected"
        )
    return WordPool(first, rest)


def _one_token_words(items: list[str], count: Callable[[Sequence[str]], list[int]]) -> list[str]:
    """Items that are one token each, with few count calls: count groups, split the bad ones."""
    groups = [items[i : i + 32] for i in range(0, len(items), 32)]
    keep: list[str] = []
    while groups:
        counts = count(["".join(g) for g in groups])
        split: list[list[str]] = []
        for g, n in zip(groups, counts, strict=True):
            if n == len(g):
                keep += g
            elif len(g) > 1:
                split += [g[: len(g) // 2], g[len(g) // 2 :]]
        groups = split
    order = {w: i for i, w in enumerate(items)}
    return sorted(keep, key=order.__getitem__)


class CalibratedSizer:
    """Predicts prompt tokens from simpletok-based features; learns from ``usage`` as it goes."""

    exact = False
    name = "fallback"

    def __init__(self, chat: bool, max_known_replies: int = 100_000) -> None:
        fixed = simpletok.CHAT_GENERATION_PROMPT if chat else 0
        per_message = simpletok.CHAT_MESSAGE_OVERHEAD if chat else 0
        self.w = np.array([float(fixed), float(per_message), 1.0, 1.0, 1.0])
        # prior uncertainty: template costs are unknown, token-per-word ratios are near 1
        self.P = np.diag([400.0, 100.0, 0.1, 0.1, 0.1])
        self.observed = 0
        self._known: OrderedDict[bytes, int] = OrderedDict()
        self._max_known = max_known_replies

    @property
    def slope(self) -> float:
        return max(0.05, float(self.w[2]))

    def features_chat(self, messages: Sequence[Message]) -> np.ndarray:
        generated = known = other = 0
        for m in messages:
            text = content_text(m.get("content"))
            if m.get("role") == "assistant":
                k = self._known.get(_key(text))
                if k is not None:
                    known += k
                else:
                    other += simpletok.count(text)
            else:
                generated += simpletok.count(text)
        return np.array([1.0, float(len(messages)), float(generated), float(known), float(other)])

    def features_completion(self, history_text: str, text: str) -> np.ndarray:
        return np.array(
            [1.0, 0.0, float(simpletok.count(text)), 0.0, float(simpletok.count(history_text))]
        )

    def probe_chat(self, messages: Sequence[Message]) -> tuple[float, Any]:
        x = self.features_chat(messages)
        return float(self.w @ x), x

    def probe_completion(self, history_text: str, text: str) -> tuple[float, Any]:
        x = self.features_completion(history_text, text)
        return float(self.w @ x), x

    def finalize(self, state: Any, added_words: int) -> Any:
        x = np.array(state, dtype=float)
        x[2] += added_words  # every vocabulary word is one simpletok token
        return x

    def observe(self, state: Any, actual: int) -> None:
        """Recursive least squares update with one (features, usage.prompt_tokens) pair."""
        if state is None:
            return
        x = np.asarray(state, dtype=float)
        px = self.P @ x
        gain = px / (1.0 + x @ px)
        self.w = self.w + gain * (actual - self.w @ x)
        self.P = self.P - np.outer(gain, px)
        self.observed += 1

    def remember_reply(self, text: str, tokens: int) -> None:
        """The server's completion_tokens for a reply text (used when it shows up in history)."""
        if not text:
            return
        key = _key(text)
        self._known[key] = tokens
        self._known.move_to_end(key)
        while len(self._known) > self._max_known:
            self._known.popitem(last=False)


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).digest()
