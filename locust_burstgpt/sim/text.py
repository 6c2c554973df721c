"""Deterministic completion text: one simpletok token per generated token.

Why it exists: the client resends the server's replies as conversation history, and the next
turn's prompt must then count exactly under simpletok. So every generated token is one word of
ASCII letters (the first without, the rest with one leading space); ``simpletok.count`` of the
concatenated reply equals the number of tokens generated, and ``simpletok.encode`` of it equals
the ids the engine appended (which is what makes multi-turn prefix caching hit).

Word ``i`` of a reply with seed ``s`` is ``WORDS[(s + 7 * i) % len(WORDS)]``; the seed comes from
the prompt, so identical prompts get identical replies (like greedy decoding).
"""

from __future__ import annotations

import json

from locust_burstgpt import simpletok

WORDS: tuple[str, ...] = tuple(
    """
    the of and to in is that for it as was with be by on not he this are or his from at which but
    have an they you were her she there been one all we their has would when if so no will can more
    about said time only could new them man some these then two first may any like now my such make
    over our even most me state after also made many did must before back see through way where get
    much go well your know should down work year because come people just say each those take day
    good how long very still own find here thing give many great old right while last might high
    small large next early young little public same able other point place light world house group
    water number night sound river field paper music table window garden letter winter summer stone
    green silver quiet bright simple gentle steady rapid careful honest open clear
    """.split()
)
_STEP = 7

# Token strings, their simpletok ids and their JSON-escaped bytes, for the first word (no space)
# and the following words (one leading space). Indexed by word number.
FIRST_TEXT: tuple[str, ...] = WORDS
NEXT_TEXT: tuple[str, ...] = tuple(" " + w for w in WORDS)
FIRST_IDS: tuple[int, ...] = tuple(simpletok.encode(w)[0] for w in FIRST_TEXT)
NEXT_IDS: tuple[int, ...] = tuple(simpletok.encode(w)[0] for w in NEXT_TEXT)
FIRST_JSON: tuple[bytes, ...] = tuple(json.dumps(w)[1:-1].encode() for w in FIRST_TEXT)
NEXT_JSON: tuple[bytes, ...] = tuple(json.dumps(w)[1:-1].encode() for w in NEXT_TEXT)

assert all(len(simpletok.encode(w)) == 1 for w in FIRST_TEXT + NEXT_TEXT)


def word_index(seed: int, i: int) -> int:
    """Index into WORDS of generated token ``i`` (0-based) of a reply with this seed."""
    return (seed + _STEP * i) % len(WORDS)


def token_id(seed: int, i: int) -> int:
    """simpletok id of generated token ``i``."""
    w = word_index(seed, i)
    return FIRST_IDS[w] if i == 0 else NEXT_IDS[w]


def token_text(seed: int, i: int) -> str:
    w = word_index(seed, i)
    return FIRST_TEXT[w] if i == 0 else NEXT_TEXT[w]


def completion_text(seed: int, n: int) -> str:
    """The whole reply of ``n`` tokens."""
    return "".join(token_text(seed, i) for i in range(n))


def seed_for_prompt(prompt_ids: list[int]) -> int:
    """Reply seed derived from the prompt (stable across processes)."""
    h = 2166136261
    for t in prompt_ids[-64:]:
        h = ((h ^ t) * 16777619) & 0xFFFFFFFF
    return (h ^ len(prompt_ids)) & 0x7FFFFFFF
