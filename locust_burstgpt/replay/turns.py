"""A turn's request, built before it is due: model, exact-length fields, and the sized prompt."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from locust_burstgpt.prompts import BuiltPrompt, PromptBuilder, output_controls
from locust_burstgpt.replay.conversation import ConversationState
from locust_burstgpt.replay.server import ServerInfo

RequestHook = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class PreparedTurn:
    """A turn's request body and what it was sized to."""

    body: dict[str, Any]
    built: BuiltPrompt
    prompt_target: int  # what the prompt was built to (after clipping and raising)
    output_target: int
    clipped: bool  # the trace's lengths were clipped to the model's context
    raised: bool  # the prompt target was below the chat template's own size


class TurnBuilder:
    """Builds the request of a conversation's next turn (the dispatcher calls it ahead of time, so
    building the prompt, token counting included, is not part of the turn's lateness)."""

    def __init__(
        self,
        server: ServerInfo,
        builder: PromptBuilder,
        endpoint: str,
        seed: int,
        request_hook: RequestHook | None = None,
    ) -> None:
        self.server = server
        self.builder = builder
        self.chat = endpoint == "chat"
        self.seed = seed
        self.request_hook = request_hook

    def prepare(self, state: ConversationState, turn: Any) -> PreparedTurn:
        conv = state.conversation
        asked = (max(1, turn.request_tokens), max(1, turn.response_tokens))
        prompt_target, output_target = self.server.clip(*asked)
        clipped = (prompt_target, output_target) != asked
        built = self.builder.build_turn(
            prompt_target, state.history, conv_key=f"{self.seed}:{conv.id}"
        )
        raised = built.expected_prompt_tokens > prompt_target
        if raised:
            # below the chat template's own size (e.g. a default system prompt): unreachable, so the
            # smallest possible prompt is sent and counted, like prompts clipped to the context
            prompt_target = built.expected_prompt_tokens
        body: dict[str, Any] = {
            "model": self.server.model_for(conv.model),
            **output_controls(output_target, self.server.kind),
        }
        if self.chat:
            body["messages"] = built.messages
        else:
            body["prompt"] = built.prompt
        if self.request_hook is not None:
            body = self.request_hook(body)
        return PreparedTurn(body, built, prompt_target, output_target, clipped, raised)

    def next_history(self, prepared: PreparedTurn, reply: str) -> list[dict[str, str]]:
        """The history the conversation's next turn builds on: this prompt and the server's reply."""
        built = prepared.built
        if self.chat:
            return [*built.messages, {"role": "assistant", "content": reply}]
        return [{"role": "user", "content": built.prompt}, {"role": "assistant", "content": reply}]
