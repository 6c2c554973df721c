"""Per-process replay of BurstGPT conversations: an open-loop dispatcher and the turn-by-turn runner.

Why requests do not run in Locust's user greenlets: Locust stops users during ramp-downs by killing
whichever greenlets it finds first, which would abort requests in flight without a trace. Here a
Locust user is a *slot*: it takes the next released conversation and waits while the conversation
runs in a greenlet the plugin owns. A removed user's conversation finishes its current turn and goes
back to the queue with its history, so another user continues it. Only the end of the test cancels
requests, after a drain period, and every cancellation is recorded.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gevent
import numpy as np
from gevent.event import Event
from gevent.pool import Group
from gevent.queue import Empty, PriorityQueue

from locust_burstgpt.ledger import Ledger

log = logging.getLogger("locust_burstgpt")

# A conversation is released this long before its first turn is due, so that its prompt is built
# and its user ready when the turn is due: the send then waits for nothing but the clock.
RELEASE_LEAD_S = 0.1


@dataclass
class ConversationState:
    """A conversation in progress: what was said so far and when its next turn is due."""

    index: int
    conversation: Any  # locust_burstgpt.trace.Conversation
    label: str
    next_turn: int = 0
    next_due: float = 0.0  # perf_counter time the next turn is scheduled for
    history: list[dict[str, str]] = field(default_factory=list)
    released: Event | None = None  # set when the Locust user holding it was removed
    request_started: bool = False  # the current turn reached the client (counted as sent)

    def remaining(self) -> int:
        return len(self.conversation.turns) - self.next_turn


@dataclass
class _Batch:
    """Conversations given to this process at once (at the start, or reassigned from a lost worker)."""

    indices: list[int]
    next: int = 0  # position of the first conversation not released yet


def class_label(model: str, log_type: str) -> str:
    """Stats row name for a trace class: ``GPT-4 conversation``, ``ChatGPT API``."""
    kind = {"Conversation log": "conversation", "API log": "API"}.get(log_type, log_type)
    return f"{model} {kind}"


class ReplayEngine:
    """Releases conversations at their scheduled times and replays them; keeps the ledger.

    ``send_turn(state, turn[, prepared]) -> record`` does the HTTP work and accounting for one turn
    and ``prepare_turn`` builds its request ahead of time; both are supplied by the runtime, so this
    class holds only the scheduling and bookkeeping.
    """

    def __init__(
        self,
        workload: Any,
        indices: Sequence[int],
        epoch: float,
        *,
        arrival: str,
        send_turn: Callable[..., Any],
        ledger: Ledger | None = None,
        on_not_sent: Callable[..., None] | None = None,
        prepare_turn: Callable[[ConversationState, Any], Any] | None = None,
    ) -> None:
        self.workload = workload
        self.indices = list(indices)
        self._batches = [_Batch(self.indices)]
        self.epoch = epoch  # perf_counter time of trace offset 0
        self.arrival = arrival
        self.send_turn = send_turn
        # prepare_turn(state, turn) -> prepared, called before the turn is due; then
        # send_turn(state, turn, prepared) at the due time (without it: send_turn(state, turn))
        self.prepare_turn = prepare_turn
        # on_not_sent(conversation, label, first_unsent_turn, due_of_that_turn_or_None, reason[, end][, error=])
        self.on_not_sent = on_not_sent
        self.ledger = ledger or Ledger()
        self.queue: PriorityQueue = PriorityQueue()
        self.group = Group()
        self._seq = itertools.count()
        self.stopping = False
        self.stop_reason = "stopped"
        self.dispatch_done = Event()
        self._dispatchers: list[gevent.Greenlet] = []
        self._pending: dict[int, ConversationState] = {}  # released or running, not finished
        self._turn_counts: np.ndarray | None = None
        self.ledger.scheduled = self._turns_of(self.indices)
        self.ledger.conversations_scheduled = len(self.indices)

    def _turns_of(self, indices: Sequence[int]) -> int:
        if not len(indices):
            return 0
        if self._turn_counts is None:
            self._turn_counts = self.workload.turn_counts()
        return int(self._turn_counts[np.asarray(indices, dtype=np.int64)].sum())

    # -- dispatch -----------------------------------------------------------------------------
    def start(self) -> None:
        self._dispatchers.append(gevent.spawn(self._dispatch, self._batches[0]))

    def extend(self, indices: Sequence[int]) -> None:
        """Take on more conversations (a lost worker's, not started yet) and release them on time."""
        batch = _Batch(list(indices))
        self._batches.append(batch)
        self.ledger.scheduled += self._turns_of(batch.indices)
        self.ledger.conversations_scheduled += len(batch.indices)
        if self.stopping:
            self._count_not_sent(self.stop_reason)
            return
        self._dispatchers.append(gevent.spawn(self._dispatch, batch))

    def _dispatch(self, batch: _Batch) -> None:
        offsets = self.workload.start_offsets
        for pos, i in enumerate(batch.indices):
            if pos < batch.next:
                continue
            if self.stopping:
                break
            conv = self.workload.conversation(i)
            if self.arrival == "trace":
                due = self.epoch + float(offsets[i])
                delay = due - RELEASE_LEAD_S - time.perf_counter()
                if delay > 0:
                    gevent.sleep(delay)
                if self.stopping:
                    break
            else:
                due = time.perf_counter()
            state = ConversationState(i, conv, class_label(conv.model, conv.log_type), next_due=due)
            self._pending[i] = state
            batch.next = pos + 1
            self.ledger.conversations_started += 1
            self._put(state)
        if all(b.next == len(b.indices) for b in self._batches):
            self.dispatch_done.set()

    def _put(self, state: ConversationState) -> None:
        key = state.next_due if self.arrival == "trace" else next(self._seq)
        self.queue.put((key, next(self._seq), state))

    # -- user side ----------------------------------------------------------------------------
    def take(self, timeout: float | None = None) -> ConversationState | None:
        """Next released conversation (blocks); None on timeout."""
        try:
            return self.queue.get(timeout=timeout)[2]
        except Empty:
            return None

    def run_for_user(self, state: ConversationState) -> None:
        """Run ``state`` for the calling Locust user until it ends or the user is removed."""
        state.released = Event()
        g = self.group.spawn(self._run, state)
        try:
            g.join()
        except gevent.GreenletExit:
            state.released.set()  # the conversation finishes its turn, then returns to the queue
            raise

    def _run(self, state: ConversationState) -> None:
        conv = state.conversation
        while state.next_turn < len(conv.turns):
            if self.stopping:
                return
            turn = conv.turns[state.next_turn]
            prepared = None
            if self.prepare_turn is not None:
                try:
                    prepared = self.prepare_turn(
                        state, turn
                    )  # before the due time: not in the lateness
                except Exception as e:  # noqa: BLE001 - e.g. the prompt backend failed; nothing was sent
                    state.next_turn += 1
                    self._prompt_failed(state, turn, e)
                    continue
            delay = state.next_due - time.perf_counter()
            if delay > 0 and self.arrival == "trace":
                if state.released is not None and state.released.wait(delay):
                    self._put(state)  # user removed while thinking: another user takes over
                    return
            if self.stopping:
                return
            state.next_turn += 1  # before sending: a cancelled turn is sent, not "not sent"
            state.request_started = (
                False  # send_turn sets it (and counts the send) just before the wire
            )
            try:
                if prepared is None:
                    record = self.send_turn(state, turn)
                else:
                    record = self.send_turn(state, turn, prepared)
            except gevent.GreenletExit:
                if not state.request_started:
                    state.next_turn -= 1  # killed while preparing: the turn counts as not sent
                raise
            except Exception as e:  # noqa: BLE001 - e.g. the prompt backend failed; nothing was sent
                if state.request_started:
                    raise
                self._prompt_failed(state, turn, e)
                continue
            done = record.last_byte_at or time.perf_counter()
            think = turn.think_s if self.arrival == "trace" else 0.0
            state.next_due = done + think
            if (
                state.released is not None
                and state.released.is_set()
                and state.next_turn < len(conv.turns)
            ):
                self._put(state)
                return
        self._pending.pop(state.index, None)

    def _prompt_failed(self, state: ConversationState, turn: Any, e: Exception) -> None:
        """The turn's request could not be built: it is not sent, and the next turn is due no earlier."""
        conv = state.conversation
        log.error(
            "Conversation %s turn %d not sent: %s: %s", conv.id, turn.index, type(e).__name__, e
        )
        self.ledger.not_sent["prompt_failed"] += 1
        if self.on_not_sent is not None:
            self.on_not_sent(
                conv,
                state.label,
                turn.index,
                state.next_due - self.epoch,
                "prompt_failed",
                turn.index + 1,
                error=f"{type(e).__name__}: {e}",
            )
        state.next_due = max(state.next_due, time.perf_counter())

    # -- end of test --------------------------------------------------------------------------
    def in_flight(self) -> int:
        return self.ledger.in_flight

    def stop(self, reason: str, drain_timeout_s: float) -> None:
        """Stop releasing, let requests in flight finish for up to ``drain_timeout_s``, then cancel.

        Afterwards every scheduled request is either sent with an outcome or counted as not sent.
        """
        if self.stopping:
            return
        self.stop_reason = reason
        self.stopping = True
        for dispatcher in self._dispatchers:
            dispatcher.kill(block=True)
        deadline = time.monotonic() + drain_timeout_s
        while self.ledger.in_flight > 0 and time.monotonic() < deadline:
            gevent.sleep(0.05)
        self.group.kill(
            block=True, timeout=10
        )  # the client records CANCELLED for any request cut here
        self._count_not_sent(reason)

    def _count_not_sent(self, reason: str) -> None:
        not_sent = 0
        for state in self._pending.values():
            not_sent += state.remaining()
            if self.on_not_sent is not None and state.remaining():
                self.on_not_sent(
                    state.conversation,
                    state.label,
                    state.next_turn,
                    state.next_due - self.epoch,
                    reason,
                )
        self._pending.clear()
        for batch in self._batches:
            rest = batch.indices[batch.next :]
            if self.on_not_sent is not None:
                offsets = self.workload.start_offsets
                for i in rest:
                    conv = self.workload.conversation(i)
                    self.on_not_sent(
                        conv, class_label(conv.model, conv.log_type), 0, float(offsets[i]), reason
                    )
            not_sent += self._turns_of(rest)
            batch.next = len(batch.indices)
        if not_sent:
            self.ledger.not_sent[reason] += not_sent
        if self.ledger.in_flight:
            log.error("%d requests ended without a recorded outcome", self.ledger.in_flight)
