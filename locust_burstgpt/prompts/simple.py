"""Exact counts for the embedded simulator, without asking it: it counts with ``simpletok``.

Why: the simulator's own tokenizer is the project's ``simpletok``, so counting locally gives the
same numbers as its ``/tokenize`` with no request on the send path (a round trip per turn to a
busy server adds to lateness).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from locust_burstgpt import simpletok
from locust_burstgpt.prompts.counters import Message, content_text


class SimpletokCounter:
    """``simpletok`` counts and its chat template (what the embedded simulator uses)."""

    name = "simpletok"
    has_template = True

    def __init__(self, cache_size: int = 2048) -> None:
        # History messages are counted again every turn; remember the long ones. Keyed by the text's
        # hash and length, not the text: a key costs a few dozen bytes whatever the text's size, and
        # ended conversations' texts are not kept alive (a str caches its hash, so a hit is O(1)). 2,048
        # keys (about 300 KB) hold the histories of a few hundred conversations in progress. (Two texts
        # sharing both is a 64-bit hash collision; it would show as a prompt-length miss in the report.)
        self._cache: OrderedDict[tuple[int, int], int] = OrderedDict()
        self._cache_size = cache_size

    def count_texts(self, texts: Sequence[str]) -> list[int]:
        return [self._count(t) for t in texts]

    def count_chat(self, messages: Sequence[Message]) -> int | None:
        total = simpletok.CHAT_GENERATION_PROMPT
        for m in messages:
            total += simpletok.CHAT_MESSAGE_OVERHEAD + self._count(content_text(m.get("content")))
        return total

    def _count(self, text: str) -> int:
        if len(text) < 256:
            return simpletok.count(text)
        key = (hash(text), len(text))
        n = self._cache.get(key)
        if n is None:
            n = self._cache[key] = simpletok.count(text)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return n

    def count_completion(self, prompt: str) -> int:
        return simpletok.count(prompt)
