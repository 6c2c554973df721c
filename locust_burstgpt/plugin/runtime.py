"""One process's replay machinery: client, prompt builder, metrics, engine, and the per-turn send.

Built once per test in ``test_start`` (never per user: creating clients blocks the gevent hub), and
torn down when the test stops.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gevent

from locust_burstgpt.client import ClientConfig, Outcome, RequestRecord, make_client
from locust_burstgpt.ledger import Ledger
from locust_burstgpt.plugin.replay import ConversationState, ReplayEngine
from locust_burstgpt.plugin.server_info import ServerInfo
from locust_burstgpt.prompts import PromptConfig, make_prompt_builder, output_controls
from locust_burstgpt.settings import ReplaySettings

log = logging.getLogger("locust_burstgpt")

RecordListener = Callable[[ConversationState, Any, RequestRecord, Any], None]

RETRY_STATUSES = (429, 503)
RETRY_WAIT_DEFAULT_S = 1.0  # when a 429/503 has no (numeric) Retry-After
RETRY_WAIT_MAX_S = 60.0


def retry_wait_s(record: RequestRecord) -> float:
    """The server's Retry-After, or 1 s without one; never more than 60 s."""
    wait = record.retry_after_s if record.retry_after_s is not None else RETRY_WAIT_DEFAULT_S
    return min(max(0.0, wait), RETRY_WAIT_MAX_S)


def attempt_summary(record: RequestRecord) -> dict[str, Any]:
    """An earlier attempt of a retried request, as listed in its entry's ``retries``."""
    d = record.to_dict()
    return {
        k: d[k]
        for k in (
            "request_id",
            "outcome",
            "http_status",
            "error",
            "scheduled_at",
            "sent_at",
            "last_byte_at",
            "retry_after_s",
        )
    }


@dataclass
class PreparedTurn:
    """A turn's request, built before it is due."""

    body: dict[str, Any]
    built: Any  # prompts.BuiltPrompt
    prompt_target: int
    output_target: int
    clipped: bool  # the trace's lengths were clipped to the model's context
    raised: bool  # the prompt target was below the chat template's own size


class ReplayRuntime:
    """Sends the turns of the conversations assigned to this process and accounts for each."""

    def __init__(
        self,
        environment: Any,
        settings: ReplaySettings,
        workload: Any,
        indices: Sequence[int],
        epoch_wall: float,
        base_url: str,
        user_class: Any = None,
    ) -> None:
        self.environment = environment
        self.settings = settings
        self.workload = workload
        self.base_url = base_url.rstrip("/")
        self.epoch_wall = epoch_wall
        self.run_id = uuid.uuid4().hex[:8]
        self.ledger = Ledger()
        self.listeners: list[RecordListener] = []
        self.request_hook: Callable[[dict], dict] | None = getattr(
            user_class, "prepare_request", None
        )
        extra_headers = dict(getattr(user_class, "extra_headers", None) or {})
        peak = int(workload.curves.in_flight.max()) if len(workload.curves.in_flight) else 1
        pool = max(64, 2 * int(peak * settings.headroom) + 16)
        self.client = make_client(
            ClientConfig(
                base_url=self.base_url,
                api_key=settings.api_key,
                transport=settings.transport,
                endpoint=settings.endpoint,
                connect_timeout_s=settings.connect_timeout_s,
                first_token_timeout_s=settings.ttft_timeout_s,
                idle_timeout_s=settings.idle_timeout_s,
                pool_size=pool,
                verify_tls=not settings.insecure,
                extra_headers=extra_headers,
            )
        )
        self.server = ServerInfo.discover(self.base_url, settings, self.client)
        self.builder = make_prompt_builder(
            PromptConfig(
                backend=settings.tokenizer,
                base_url=self.base_url,
                model=self.server.default_model,
                endpoint=settings.endpoint,
                seed=settings.seed,
                api_key=settings.api_key,
                verify_tls=not settings.insecure,
            ),
            self.client,
        )
        log.info(
            "Prompt token counting: %s backend; output length forced for server kind %s",
            self.builder.backend_name,
            self.server.kind,
        )
        # epoch: wall clock -> this process's perf_counter
        epoch = time.perf_counter() + (epoch_wall - time.time())
        self.engine = ReplayEngine(
            workload,
            indices,
            epoch,
            arrival=settings.arrival,
            send_turn=self.send_turn,
            ledger=self.ledger,
            prepare_turn=self.prepare_turn,
        )

    def start(self) -> None:
        self.engine.start()

    def describe_server(self) -> dict[str, Any]:
        """What the run was pointed at, for the summary (no secrets)."""
        return {
            "base_url": self.base_url,
            "models": self.server.models,
            "kind": self.server.kind,
            "max_model_len": self.server.max_model_len,
            "model_map": self.server.model_map,
            "tokenizer_backend": self.builder.backend_name,
            "transport": self.settings.transport,
        }

    # -- one turn -----------------------------------------------------------------------------
    def prepare_turn(self, state: ConversationState, turn: Any) -> PreparedTurn:
        """Build the turn's request body. The engine calls it before the turn is due, so building
        the prompt (token counting, maybe a server round trip) is not part of its lateness."""
        conv = state.conversation
        model = self.server.model_for(conv.model)
        asked = (max(1, turn.request_tokens), max(1, turn.response_tokens))
        prompt_target, output_target = self.server.clip(*asked)
        clipped = (prompt_target, output_target) != asked
        built = self.builder.build_turn(
            prompt_target, state.history, conv_key=f"{self.settings.seed}:{conv.id}"
        )
        raised = built.expected_prompt_tokens > prompt_target
        if raised:
            # below the chat template's own size (e.g. a default system prompt): unreachable, so the
            # smallest possible prompt is sent and counted, like prompts clipped to the context
            prompt_target = built.expected_prompt_tokens
        body: dict[str, Any] = {"model": model, **output_controls(output_target, self.server.kind)}
        if self.settings.endpoint == "chat":
            body["messages"] = built.messages
        else:
            body["prompt"] = built.prompt
        if self.request_hook is not None:
            body = self.request_hook(body)
        return PreparedTurn(
            body, built, prompt_target, output_target, clipped=clipped, raised=raised
        )

    def send_turn(
        self, state: ConversationState, turn: Any, prepared: PreparedTurn | None = None
    ) -> RequestRecord:
        """Send one turn (prepared now if the engine did not do it ahead) and account for it."""
        if prepared is None:
            prepared = self.prepare_turn(state, turn)
        conv, built = state.conversation, prepared.built
        prompt_target, output_target = prepared.prompt_target, prepared.output_target
        # counted when sent, not when prepared: a turn prepared twice (its user was removed while it
        # waited) is one turn
        if prepared.clipped:
            self.ledger.prompt_clipped += 1
        if built.dropped_turns:
            self.ledger.history_trimmed += 1
        if prepared.raised:
            self.ledger.prompt_raised += 1
        body = prepared.body
        request_id = f"{self.run_id}-{conv.id}-{turn.index}"

        def new_record(rid: str, due: float) -> RequestRecord:
            return RequestRecord(
                request_id=rid,
                scheduled_at=due,
                target_prompt_tokens=prompt_target,
                expected_prompt_tokens=built.expected_prompt_tokens,
                target_completion_tokens=output_target,
            )

        record = new_record(request_id, state.next_due)
        earlier: list[RequestRecord] = []  # attempts answered 429/503 and sent again
        state.request_started = True  # from here the turn is sent and ends with one outcome
        self.ledger.sent += 1
        self.ledger.sent_by_class[state.label] += 1
        try:
            self.client.send(body, record)
            while self._should_retry(record, len(earlier)):
                due = (record.last_byte_at or time.perf_counter()) + retry_wait_s(record)
                gevent.sleep(
                    max(0.0, due - time.perf_counter())
                )  # killed here: the last attempt stands
                earlier.append(record)
                self.ledger.retries += 1
                self._fire_locust(state.label, record)
                record = new_record(f"{request_id}.r{len(earlier)}", due)
                self.client.send(body, record)
        finally:
            if record.outcome is None:  # defensive: the client guarantees an outcome
                record.outcome = Outcome.CANCELLED
            self._account(state, turn, built, record, prompt_target, output_target, earlier)
        if record.outcome == Outcome.OK:
            self.builder.observe(built, record)
            if self.settings.endpoint == "chat":
                state.history = [
                    *built.messages,
                    {"role": "assistant", "content": record.reply_text},
                ]
            else:
                state.history = [
                    {"role": "user", "content": built.prompt},
                    {"role": "assistant", "content": record.reply_text},
                ]
        return record

    def _should_retry(self, record: RequestRecord, retried: int) -> bool:
        """429/503 before any token, retries left, and the replay not stopping."""
        return (
            retried < self.settings.retry
            and record.outcome == Outcome.HTTP_ERROR
            and record.http_status in RETRY_STATUSES
            and record.first_token_at is None
            and not self.engine.stopping
        )

    def _redact(self, record: RequestRecord) -> None:
        """A server may echo the API key in an error body ("Invalid API key: ..."): never keep it."""
        key = self.settings.api_key
        if key and record.error and key in record.error:
            record.error = record.error.replace(key, "[api key]")

    def _fire_locust(self, label: str, record: RequestRecord) -> None:
        """One request in Locust's own statistics (every attempt, so retried failures show there)."""
        self._redact(record)
        e2e_ms = (record.e2e or 0.0) * 1000.0
        exc = (
            None
            if record.outcome == Outcome.OK
            else RuntimeError(
                f"{record.outcome.value}"
                + (f" {record.http_status}" if record.http_status else "")
                + (f": {record.error}" if record.error else "")
            )
        )
        self.environment.events.request.fire(
            request_type="LLM",
            name=label,
            response_time=e2e_ms,
            response_length=record.completion_tokens or 0,
            exception=exc,
            context={},
            url=None,
            response=None,
            start_time=None,
        )

    def _account(
        self,
        state: ConversationState,
        turn: Any,
        built: Any,
        record: RequestRecord,
        prompt_target: int,
        output_target: int,
        earlier: Sequence[RequestRecord] = (),
    ) -> None:
        for r in (*earlier, record):
            self._redact(r)
        record.extra = {
            "conversation": state.conversation.id,
            "turn": turn.index,
            "row": turn.row,
            "label": state.label,
            "prompt_target": prompt_target,
            "output_target": output_target,
            "expected_prompt_tokens": built.expected_prompt_tokens,
            "dropped_turns": built.dropped_turns,
            "recorded_elapsed_s": turn.elapsed_s,
            "elapsed_estimated": turn.elapsed_estimated,
        }
        if earlier:
            record.extra["retries"] = [attempt_summary(r) for r in earlier]
        self.ledger.outcomes[record.outcome.value] += 1
        if record.outcome != Outcome.CANCELLED:
            self._fire_locust(state.label, record)
        for listener in self.listeners:
            try:
                listener(state, turn, record, built)
            except Exception:  # a report sink must not break the replay
                log.exception("record listener failed")

    # -- end ----------------------------------------------------------------------------------
    def stop(self, reason: str) -> None:
        self.engine.stop(reason, self.settings.drain_timeout_s)

    def close(self) -> None:
        gevent.spawn(self.client.close).join(timeout=5)
