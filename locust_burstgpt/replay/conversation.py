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
    history: list[dict[str, str]] = field(default_factory=list)
    released: Event | None = None  # set when the Locust user holding it was removed
    request_started: bool = False  # the current turn reached the client (counted as sent)

    def remaining(self) -> int:
        return len(self.conversation.turns) - self.next_turn
