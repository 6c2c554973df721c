"""Deterministic prompt text: a seeded random sequence of vocabulary words.

The same (seed, key) always gives the same words, in any process (the generator is seeded from a
blake2b digest, not Python's salted ``hash``), and different keys give unrelated text, so two
conversations never share a prefix by accident.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence


class WordPool:
    """Words a prompt may use: ``first`` may open a message, ``rest`` follow after a space."""

    def __init__(self, first: Sequence[str], rest: Sequence[str]) -> None:
        if not first or not rest:
            raise ValueError("a word pool needs at least one opening word and one other word")
        self.first = tuple(first)
        self.rest = tuple(rest)


def stream_seed(seed: int, key: str) -> int:
    digest = hashlib.blake2b(f"{seed}\x00{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class WordStream:
    """The words of one message: an opening word, then as many others as asked for.

    ``text(n)`` is a prefix of ``text(n + k)``: asking again for a different length keeps the
    words already chosen.
    """

    def __init__(self, pool: WordPool, seed: int, key: str) -> None:
        self._rng = random.Random(stream_seed(seed, key))
        self.pool = pool
        self.first = self._rng.choice(pool.first)
        self._rest: list[str] = []

    def text(self, n_words: int) -> str:
        """The opening word followed by ``n_words - 1`` space-separated words (n_words >= 1)."""
        if n_words < 1:
            raise ValueError(f"a message needs at least one word, got {n_words}")
        missing = n_words - 1 - len(self._rest)
        if missing > 0:
            self._rest.extend(self._rng.choices(self.pool.rest, k=missing))
        if n_words == 1:
            return self.first
        return self.first + " " + " ".join(self._rest[: n_words - 1])
