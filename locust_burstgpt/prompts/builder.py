"""Turn prompts sized to the trace's Request tokens, history included, in the server's tokenizer.

Per turn: keep the conversation so far (the server's real replies), drop its oldest turns if
they alone exceed the target, then add a new user message of seeded words sized so that the
whole prompt (chat template included) is the target. ``/v1/completions`` prompts are the
previous prompt and reply as plain text followed by the new words.

With an exact backend the size is exact by construction: one count of the prompt with a
one-word message, then one token per added word. A target below the smallest possible prompt
(the template plus one word) cannot be met; the builder then sends that smallest prompt and
says so in ``expected_prompt_tokens``.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from locust_burstgpt.client.records import RequestRecord
from locust_burstgpt.prompts.counters import content_text
from locust_burstgpt.prompts.text import WordPool, WordStream

log = logging.getLogger("locust_burstgpt.prompts")

COMPLETION_SEPARATOR = "\n\n"  # between the previous prompt+reply and the new words
_ROLES = ("system", "user", "assistant", "developer", "tool")


class PromptInputError(ValueError):
    """A history or target the builder cannot use (says which message or value)."""


@dataclass
class BuiltPrompt:
    """One turn's prompt and what the builder knows about its size."""

    messages: list[dict[str, Any]] | None  # chat endpoint
    prompt: str | None  # completions endpoint
    expected_prompt_tokens: int  # the size the backend predicts (== target when reachable)
    dropped_turns: int  # oldest turns removed because history alone was too large
    history_tokens: int  # expected size without the new message's words (template included)
    target_prompt_tokens: int = 0
    new_words: int = 0
    exact: bool = False  # True when the backend counts with the server's real tokenizer
    calibration: Any = field(default=None, repr=False, compare=False)


@dataclass
class BuilderStats:
    """How the sent prompts compared with the server's ``usage.prompt_tokens``."""

    observed: int = 0
    matched: int = 0  # usage == expected
    abs_error_sum: int = 0
    rel_error_sum: float = 0.0

    @property
    def mean_abs_error(self) -> float | None:
        return self.abs_error_sum / self.observed if self.observed else None

    @property
    def mean_rel_error(self) -> float | None:
        return self.rel_error_sum / self.observed if self.observed else None


class PromptBuilder:
    """Builds turn prompts with one sizer (exact or calibrated) and a pool of words."""

    def __init__(
        self, sizer: Any, pool: WordPool, endpoint: str, seed: int, max_pending: int = 100_000
    ) -> None:
        if endpoint not in ("chat", "completions"):
            raise PromptInputError(f"endpoint must be 'chat' or 'completions', got {endpoint!r}")
        self.sizer = sizer
        self.pool = pool
        self.endpoint = endpoint
        self.seed = seed
        self.stats = BuilderStats()
        self._solo_probe: dict[str, tuple[float, Any]] = {}  # opening word -> probe, no history
        self._pending: dict[int, deque] = {}  # expected -> calibration states awaiting usage
        self._pending_n = 0
        self._pending_order: deque[int] = deque()
        self._max_pending = max_pending

    @property
    def backend_name(self) -> str:
        return self.sizer.name

    @property
    def exact(self) -> bool:
        return self.sizer.exact

    # -- building ------------------------------------------------------------------------------
    def build_turn(
        self, target_prompt_tokens: int, history: Sequence[Mapping[str, Any]], conv_key: str
    ) -> BuiltPrompt:
        """The prompt of the next turn of conversation ``conv_key`` (history: earlier messages)."""
        target = int(target_prompt_tokens)
        if target < 1:
            raise PromptInputError(
                f"conversation {conv_key}: target prompt tokens must be >= 1, "
                f"got {target_prompt_tokens!r}"
            )
        hist = _check_history(history, conv_key)
        turn = sum(1 for m in hist if m["role"] == "user")
        words = WordStream(self.pool, self.seed, f"{conv_key}\x00{turn}")
        if self.endpoint == "chat":
            return self._build_chat(target, hist, words)
        return self._build_completion(target, hist, words)

    def _build_chat(
        self, target: int, hist: list[dict[str, Any]], words: WordStream
    ) -> BuiltPrompt:
        dropped = 0
        while True:
            opening = [*hist, {"role": "user", "content": words.first}]
            p1, state = self._probe_chat(opening, bool(hist))
            if p1 <= target or not _has_turn(hist):
                break
            hist = _drop_oldest_turn(hist)
            dropped += 1
        n, expected = self._words_for(target, p1)
        messages = [*hist, {"role": "user", "content": words.text(n)}]
        return self._built(messages, None, target, expected, n, dropped, state)

    def _build_completion(
        self, target: int, hist: list[dict[str, Any]], words: WordStream
    ) -> BuiltPrompt:
        history_text = "".join(content_text(m.get("content")) for m in hist)
        dropped = 0
        prefix = history_text + COMPLETION_SEPARATOR if history_text else ""
        p1, state = self.sizer.probe_completion(prefix, words.first)
        if p1 > target and prefix:
            dropped = sum(1 for m in hist if m["role"] == "user") or 1
            prefix = ""
            p1, state = self.sizer.probe_completion("", words.first)
        n, expected = self._words_for(target, p1)
        return self._built(None, prefix + words.text(n), target, expected, n, dropped, state)

    def _probe_chat(self, messages: list[dict[str, Any]], has_history: bool) -> tuple[float, Any]:
        if has_history or not self.sizer.exact:
            return self.sizer.probe_chat(messages)
        first = messages[-1]["content"]
        cached = self._solo_probe.get(first)
        if cached is None:
            cached = self._solo_probe[first] = self.sizer.probe_chat(messages)
        return cached

    def _words_for(self, target: int, p1: float) -> tuple[int, int]:
        slope = self.sizer.slope
        n = max(1, 1 + round((target - p1) / slope))
        return n, round(p1 + (n - 1) * slope)

    def _built(
        self,
        messages: list[dict[str, Any]] | None,
        prompt: str | None,
        target: int,
        expected: int,
        n: int,
        dropped: int,
        state: Any,
    ) -> BuiltPrompt:
        state = self.sizer.finalize(state, n - 1)
        built = BuiltPrompt(
            messages=messages,
            prompt=prompt,
            expected_prompt_tokens=expected,
            dropped_turns=dropped,
            history_tokens=round(expected - n * self.sizer.slope),
            target_prompt_tokens=target,
            new_words=n,
            exact=self.sizer.exact,
            calibration=state,
        )
        if state is not None:
            self._remember_pending(expected, state)
        return built

    # -- learning from responses ---------------------------------------------------------------
    def observe(self, built: BuiltPrompt | int, record: RequestRecord) -> None:
        """Feed the server's ``usage`` for a sent prompt back (statistics and calibration).

        Pass the ``BuiltPrompt`` when you can; with only its ``expected_prompt_tokens`` the
        calibration uses the oldest pending prompt of that expected size.
        """
        actual = record.prompt_tokens
        if record.reply_text and record.completion_tokens:
            self.sizer.remember_reply(record.reply_text, record.completion_tokens)
        if actual is None:
            return
        if isinstance(built, BuiltPrompt):
            expected, state = built.expected_prompt_tokens, built.calibration
            self._forget_pending(expected, state)
        else:
            expected, state = int(built), self._take_pending(int(built))
        s = self.stats
        s.observed += 1
        s.matched += int(actual == expected)
        s.abs_error_sum += abs(actual - expected)
        s.rel_error_sum += abs(actual - expected) / max(1, actual)
        self.sizer.observe(state, actual)

    def _remember_pending(self, expected: int, state: Any) -> None:
        self._pending.setdefault(expected, deque()).append(state)
        self._pending_order.append(expected)
        self._pending_n += 1
        while self._pending_n > self._max_pending:  # unanswered prompts (failed requests)
            self._take_pending(self._pending_order.popleft())

    def _take_pending(self, expected: int) -> Any:
        q = self._pending.get(expected)
        if not q:
            return None
        state = q.popleft()
        if not q:
            del self._pending[expected]
        self._pending_n -= 1
        return state

    def _forget_pending(self, expected: int, state: Any) -> None:
        q = self._pending.get(expected)
        if not q:
            return
        for i, s in enumerate(q):
            if s is state:
                del q[i]
                self._pending_n -= 1
                break
        if not q:
            del self._pending[expected]


def _check_history(history: Sequence[Mapping[str, Any]], conv_key: str) -> list[dict[str, Any]]:
    if history is None:
        return []
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise PromptInputError(
            f"conversation {conv_key}: history must be a list of messages, "
            f"got {type(history).__name__}"
        )
    out = []
    for i, m in enumerate(history):
        if not isinstance(m, Mapping) or m.get("role") not in _ROLES:
            raise PromptInputError(
                f"conversation {conv_key}: history message {i} must be a dict with a role in "
                f"{_ROLES}, got {m!r:.120}"
            )
        out.append({**m, "content": content_text(m.get("content"))})
    return out


def _has_turn(hist: list[dict[str, Any]]) -> bool:
    return any(m["role"] != "system" for m in hist)


def _drop_oldest_turn(hist: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Remove the first non-system message and what follows up to the next user message."""
    head = [m for m in hist if m["role"] == "system"]
    body = [m for m in hist if m["role"] != "system"]
    i = 1
    while i < len(body) and body[i]["role"] != "user":
        i += 1
    return head + body[i:]
