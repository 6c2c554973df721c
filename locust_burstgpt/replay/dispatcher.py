"""Per-process dispatch of BurstGPT conversations: the open-loop release and the turn-by-turn runner.

Why requests do not run in Locust's user greenlets: Locust stops users during ramp-downs by killing
whichever greenlets it finds first, which would abort requests in flight without a trace. Here every
conversation runs in a greenlet the dispatcher owns, and a Locust user *holds* one while it is in
progress, so the user count shows the conversations in progress. Three ways to run:

* open loop (arrival ``trace``, the default): a conversation starts at its due time whether or not
  a user is free to hold it (it never waits for one), and a free user then holds it. A turn sent
  while no user held its conversation is counted (``Ledger.unheld_sends``): the user count lagged,
  the schedule did not.
* strict curve (``--burstgpt-strict-curve``): a conversation waits for a free user, as a pool capped
  at the trace's curve would make it; the wait is recorded per request (``user_wait_s``), so
  lateness caused by it is named as such.
* saturate: users replay back to back (closed loop); there is no schedule, so no lateness.

A removed user's conversation goes on (open loop) or finishes its current turn and goes back to the
queue with its history for another user (strict, saturate). Only the end of the test cancels
requests, after a drain period, and every cancellation is recorded.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gevent
import numpy as np
from gevent.event import Event
from gevent.pool import Group
from gevent.queue import Empty, PriorityQueue

from locust_burstgpt.replay.conversation import ConversationState, class_label
from locust_burstgpt.replay.ledger import Ledger
from locust_burstgpt.replay.results import TurnMeta, TurnResult, not_sent

log = logging.getLogger("locust_burstgpt")

# A conversation is released this long before its first turn is due, so that its prompt is built
# and its user ready when the turn is due: the send then waits for nothing but the clock.
RELEASE_LEAD_S = 0.1

PrepareTurn = Callable[[ConversationState, Any], Any]
SendTurn = Callable[[ConversationState, Any, Any], Any]


@dataclass
class _Batch:
    """Conversations given to this process at once (at the start, or reassigned from a lost worker)."""

    indices: list[int]
    next: int = 0  # position of the first conversation not released yet


class Dispatcher:
    """Releases conversations at their scheduled times, runs them for Locust users, keeps the books
    of what was scheduled and what was never sent.

    ``prepare(state, turn) -> prepared`` builds a turn's request ahead of its due time, and
    ``send(state, turn, prepared) -> record`` sends it at that time and accounts for it
    (``TurnBuilder.prepare`` and ``TurnSender.send``); ``emit(result)`` takes every request that
    ends without being sent. This class only keeps time and books.
    """

    def __init__(
        self,
        workload: Any,
        indices: Sequence[int],
        epoch: float,
        *,
        arrival: str,
        prepare: PrepareTurn,
        send: SendTurn,
        emit: Callable[[TurnResult], None],
        request_id: Callable[[str, int], str],
        ledger: Ledger,
        strict: bool = False,
    ) -> None:
        self.workload = workload
        self.indices = list(indices)
        self._batches = [_Batch(self.indices)]
        self.epoch = epoch  # perf_counter time of trace offset 0
        self.arrival = arrival
        self.timed = arrival != "saturate"  # conversations have due times
        self.open_loop = self.timed and not strict  # they start on time without waiting for users
        self.prepare = prepare
        self.send = send
        self.emit = emit
        self.request_id = request_id
        self.ledger = ledger
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
            if self.timed:
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
            if self.open_loop:
                state.greenlet = self.group.spawn(self._run, state)  # on time, held or not
            self._put(state)
        if all(b.next == len(b.indices) for b in self._batches):
            self.dispatch_done.set()

    def _put(self, state: ConversationState) -> None:
        key = state.next_due if self.timed else next(self._seq)
        self.queue.put((key, next(self._seq), state))

    @property
    def in_progress(self) -> int:
        """Conversations released and not finished on this process."""
        return len(self._pending)

    # -- user side ----------------------------------------------------------------------------
    def take(self, timeout: float | None = None) -> ConversationState | None:
        """Next released conversation without a user (blocks); None on timeout."""
        while True:
            try:
                state = self.queue.get(timeout=timeout)[2]
            except Empty:
                return None
            if not state.finished:  # open loop: it may have ended before a user was free
                return state

    def run_for_user(self, state: ConversationState) -> None:
        """Hold ``state`` for the calling Locust user until it ends or the user is removed."""
        state.held_since = time.perf_counter()
        if self.open_loop:
            state.holders += 1
            try:
                state.greenlet.join()
            except gevent.GreenletExit:
                if not state.finished:
                    self._put(state)  # it goes on; another user may hold it
                raise
            finally:
                state.holders -= 1
            return
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
            try:
                prepared = self.prepare(state, turn)  # before the due time: not in the lateness
            except Exception as e:  # noqa: BLE001 - e.g. the prompt backend failed; nothing was sent
                state.next_turn += 1
                self._prompt_failed(state, turn, e)
                continue
            delay = state.next_due - time.perf_counter()
            if delay > 0 and self.timed:
                if state.released is None:
                    gevent.sleep(delay)  # open loop: the turn waits for its time only
                elif state.released.wait(delay):
                    self._put(state)  # user removed while thinking: another user takes over
                    return
            if self.stopping:
                return
            if self.open_loop:
                if not state.holders:
                    self.ledger.unheld_sends += 1
                state.user_wait_s = 0.0
            else:  # it may have waited for a user to take it after it was due
                held = state.held_since if state.held_since is not None else state.next_due
                state.user_wait_s = max(0.0, held - state.next_due) if self.timed else 0.0
            state.next_turn += 1  # before sending: a cancelled turn is sent, not "not sent"
            state.due_known = False  # the next turn's due time waits for this reply
            state.request_started = False  # send sets it (and counts the send) just before the wire
            try:
                record = self.send(state, turn, prepared)
            except gevent.GreenletExit:
                if not state.request_started:
                    state.next_turn -= 1  # killed before the wire: the turn counts as not sent
                    state.due_known = True
                raise
            except Exception as e:  # noqa: BLE001 - failed before the wire: nothing was sent
                if state.request_started:
                    raise
                state.due_known = True
                self._prompt_failed(state, turn, e)
                continue
            done = record.last_byte_at or time.perf_counter()
            think = turn.think_s if self.timed else 0.0
            state.next_due = done + think
            state.due_known = True
            if (
                state.released is not None
                and state.released.is_set()
                and state.next_turn < len(conv.turns)
            ):
                self._put(state)
                return
        state.finished = True
        self._pending.pop(state.index, None)

    def _meta(self, conv: Any, k: int, label: str) -> TurnMeta:
        return TurnMeta.of(conv, conv.turns[k], label, self.request_id(conv.id, k))

    def _prompt_failed(self, state: ConversationState, turn: Any, e: Exception) -> None:
        """The turn's request could not be built: it is not sent, and the next turn is due no
        earlier."""
        conv = state.conversation
        log.error(
            "Conversation %s turn %d not sent: %s: %s", conv.id, turn.index, type(e).__name__, e
        )
        self.ledger.count_not_sent("prompt_failed")
        self.emit(
            not_sent(
                self._meta(conv, turn.index, state.label),
                "prompt_failed",
                state.next_due - self.epoch,
                error=f"{type(e).__name__}: {e}",
            )
        )
        state.next_due = max(state.next_due, time.perf_counter())

    # -- end of test --------------------------------------------------------------------------
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
        )  # the client records CANCELLED for a request cut here
        self._count_not_sent(reason)

    def _count_not_sent(self, reason: str) -> None:
        count = 0
        for state in self._pending.values():
            conv, first = state.conversation, state.next_turn
            for k in range(first, len(conv.turns)):
                # a turn whose due time depended on a reply that never came: its trace time
                known = k == first and state.due_known
                due = state.next_due - self.epoch if known else conv.turns[k].trace_offset_s
                meta = self._meta(conv, k, state.label)
                self.emit(not_sent(meta, reason, due, nominal=not known))
            count += state.remaining()
        self._pending.clear()
        offsets = self.workload.start_offsets
        for batch in self._batches:
            rest = batch.indices[batch.next :]
            for i in rest:
                conv = self.workload.conversation(i)
                label = class_label(conv.model, conv.log_type)
                for k in range(len(conv.turns)):
                    due = float(offsets[i]) if k == 0 else conv.turns[k].trace_offset_s
                    self.emit(not_sent(self._meta(conv, k, label), reason, due, nominal=k > 0))
            count += self._turns_of(rest)
            batch.next = len(batch.indices)
        self.ledger.count_not_sent(reason, count)
        if self.ledger.in_flight:
            log.error("%d requests ended without a recorded outcome", self.ledger.in_flight)
