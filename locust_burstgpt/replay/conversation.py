"""A conversation being replayed: what was said so far and when its next turn is due."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gevent.event import Event


def class_label(model: str, log_type: str) -> str:
    """The name a trace class is reported under: ``GPT-4 conversation``, ``ChatGPT API``."""
    kind = {"Conversation log": "conversation", "API log": "API"}.get(log_type, log_type)
    return f"{model} {kind}"


@dataclass
class ConversationState:
    """A conversation in progress on this process."""

    index: int  # position in the workload (start order)
    conversation: Any  # trace.Conversation
    label: str
    next_turn: int = 0
    next_due: float = 0.0  # perf_counter time the next turn is scheduled for
    due_known: bool = (
        True  # False while the turn before it is in flight (its due time depends on it)
    )
    history: list[dict[str, str]] = field(default_factory=list)
    released: Event | None = None  # set when the Locust user holding it was removed
    request_started: bool = False  # the current turn reached the client (counted as sent)
    greenlet: Any = None  # open loop: the greenlet it runs in, from its release
    holders: int = 0  # Locust users holding it now (open loop)
    held_since: float | None = None  # when a user last took it
    user_wait_s: float = 0.0  # how long its current turn waited for a user after it was due
    finished: bool = False

    def remaining(self) -> int:
        return len(self.conversation.turns) - self.next_turn
