"""Master side of a distributed replay: notice a lost worker, count what it took with it, and
optionally hand its conversations that had not started to the surviving workers.

Why here and not in Locust: Locust marks a worker "missing" only after about five silent heartbeat
seconds and then simply redistributes users; the conversations the worker was assigned would vanish
from the books. Workers ship their request entries every second, so a worker silent for
``LOST_SILENCE_S`` (or marked missing by Locust) is declared lost. Its books are rebuilt from the
entries it shipped: every assigned turn without an entry (in flight, or never sent) becomes "not sent:
lost_worker", with an entry in the report. With ``--burstgpt-reassign-lost`` the conversations of the
lost worker that were due to start at least ``REASSIGN_MARGIN_S`` after the loss was noticed (so the
worker cannot have released them) are replayed by the survivors instead; nothing is sent twice.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import gevent
import numpy as np

from locust_burstgpt.replay import Ledger, TurnMeta, TurnResult, class_label
from locust_burstgpt.replay.messages import AssignMore, StopRequest
from locust_burstgpt.replay.results import not_sent

log = logging.getLogger("locust_burstgpt")

LOST_SILENCE_S = 3.0  # workers ship every second: three silent seconds mean it is gone
POLL_S = 0.25
REASSIGN_MARGIN_S = 1.0
LOST_REASON = "lost_worker"


@dataclass
class WorkerBooks:
    """What the master knows of one worker: its assignment and the entries it shipped."""

    indices: list[int]
    last_heard: float | None = None  # wall clock of its last message; None before the first
    sent: int = 0
    sent_by_class: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    not_sent: Counter = field(default_factory=Counter)
    seen: Counter = field(
        default_factory=Counter
    )  # conversation id -> entries shipped (turns, in order)


class WorkerWatch:
    """Tracks every worker's assignment and shipments; declares and accounts lost workers."""

    def __init__(self, master: Any) -> None:
        self.master = master  # _master.MasterRole: what it knows of the workers
        self.environment = master.environment
        self.books: dict[str, WorkerBooks] = {}
        self.ignored: Counter = Counter()  # messages received from workers already declared lost
        self._greenlet: gevent.Greenlet | None = None

    # -- feeding ------------------------------------------------------------------------------
    def assign(self, client_id: str, indices: list[int]) -> None:
        books = self.books.setdefault(client_id, WorkerBooks([]))
        books.indices.extend(indices)
        self.master.assigned[client_id] = len(books.indices)

    def accept(self, client_id: str) -> bool:
        """Note a message from a worker; False when it was declared lost (ignore the message)."""
        if client_id in self.master.lost_workers:
            if not self.ignored[client_id]:
                log.error(
                    "Worker %s answered after it was declared lost; its later results are ignored",
                    client_id,
                )
                self.master.revived_workers.add(client_id)
            self.ignored[client_id] += 1
            return False
        books = self.books.get(client_id)
        if books is not None:
            books.last_heard = time.time()
        return True

    def count(self, client_id: str, result: TurnResult) -> None:
        books = self.books.get(client_id)
        if books is None:
            return
        books.seen[result.meta.conversation] += 1
        if result.record is None:
            books.not_sent[result.not_sent_reason or "unknown"] += 1
        else:
            books.sent += 1
            books.sent_by_class[result.label] += 1
            books.outcomes[result.outcome] += 1

    # -- watching -----------------------------------------------------------------------------
    def start(self) -> None:
        self._greenlet = gevent.spawn(self._loop)

    def stop(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _loop(self) -> None:
        while True:
            gevent.sleep(POLL_S)
            try:
                self.check()
            except Exception:  # noqa: BLE001 - the watch must outlive a bad message
                log.exception("lost-worker check failed")

    def check(self) -> None:
        now = time.time()
        clients = self.environment.runner.clients
        for client_id, books in list(self.books.items()):
            if client_id in self.master.lost_workers or client_id in self.master.worker_ledgers:
                continue
            client = clients.get(client_id)
            if client is None or client.state == "missing":
                self.lose(client_id, "Locust marked it missing (no heartbeat)")
            elif books.last_heard is not None and now - books.last_heard > LOST_SILENCE_S:
                self.lose(client_id, f"no message for {now - books.last_heard:.1f} s")

    # -- a loss -------------------------------------------------------------------------------
    def lose(self, client_id: str, why: str) -> None:
        master = self.master
        detected = time.time()
        books = self.books[client_id]
        master.lost_workers[client_id] = Ledger()  # from now on it is no survivor; real books below
        workload = master.workload
        reassign = self._reassignable(books, detected) if master.settings.reassign_lost else []
        moved = set(reassign)
        kept = [i for i in books.indices if i not in moved]
        turn_counts = workload.turn_counts()
        scheduled = int(turn_counts[np.asarray(kept, dtype=np.int64)].sum()) if kept else 0
        lost = 0
        offsets = workload.start_offsets
        for i in kept:
            conv = workload.conversation(i)
            first = books.seen.get(conv.id, 0)
            label = class_label(conv.model, conv.log_type)
            for k in range(first, len(conv.turns)):
                lost += 1
                if master.report is not None:
                    meta = TurnMeta.of(
                        conv, conv.turns[k], label, f"lost-{client_id[-8:]}-{conv.id}-{k}"
                    )
                    due = float(offsets[i]) if k == 0 else conv.turns[k].trace_offset_s
                    master.report.add(not_sent(meta, LOST_REASON, due, nominal=k > 0))
        last = master.live_worker_ledgers.get(client_id) or Ledger()
        ledger = Ledger(
            scheduled=scheduled,
            sent=books.sent,
            outcomes=Counter(books.outcomes),
            not_sent=Counter(books.not_sent) + Counter({LOST_REASON: lost} if lost else {}),
            history_trimmed=last.history_trimmed,
            prompt_raised=last.prompt_raised,
            prompt_clipped=last.prompt_clipped,
            conversations_scheduled=len(kept),
            conversations_started=min(len(kept), last.conversations_started),
            retries=last.retries,
            sent_by_class=Counter(books.sent_by_class),
            unheld_sends=last.unheld_sends,
        )
        master.lost_workers[client_id] = ledger
        books.indices = kept
        master.assigned[client_id] = len(kept)
        heard = books.last_heard
        master.lost_info[client_id] = {
            "why": why,
            "detected_at": detected,
            "last_heard_at": heard,
            "lost_requests": lost,
            "reassigned_conversations": len(reassign),
        }
        log.error(
            "Worker %s lost (%s; last heard %s): %d of its requests counted as not sent (%s)%s",
            client_id,
            why,
            f"{detected - heard:.1f} s ago" if heard else "never",
            lost,
            LOST_REASON,
            f"; {len(reassign)} conversations that had not started reassigned to the other workers"
            if reassign
            else "",
        )
        runner = self.environment.runner
        try:  # if it is only partitioned, not dead, it must stop releasing what others now replay
            runner.send_message(
                StopRequest.TYPE, StopRequest(LOST_REASON).to_data(), client_id=client_id
            )
        except Exception:  # noqa: BLE001 - a dead worker's socket may refuse; nothing to do
            log.debug("could not tell lost worker %s to stop", client_id, exc_info=True)
        if reassign:
            self._reassign(reassign)

    def _reassignable(self, books: WorkerBooks, detected: float) -> list[int]:
        """Conversations the lost worker cannot have released: none shipped, due well after now."""
        master = self.master
        if master.settings.arrival == "saturate":
            log.warning(
                "--burstgpt-reassign-lost: with --burstgpt-arrival %s every conversation is released "
                "at once, so none can be reassigned safely",
                master.settings.arrival,
            )
            return []
        if not self._survivors():
            return []
        offsets = master.workload.start_offsets
        horizon = detected + REASSIGN_MARGIN_S - master.epoch_wall
        return [
            i
            for i in books.indices
            if float(offsets[i]) > horizon
            and books.seen.get(master.workload.conversation(i).id, 0) == 0
        ]

    def _survivors(self) -> list[str]:
        master = self.master
        clients = self.environment.runner.clients
        return sorted(
            c
            for c in self.books
            if c not in master.lost_workers
            and c not in master.worker_ledgers
            and clients.get(c) is not None
            and clients.get(c).state != "missing"
        )

    def _reassign(self, indices: list[int]) -> None:
        survivors = self._survivors()
        order = np.asarray(sorted(indices), dtype=np.int64)
        for k, client_id in enumerate(survivors):
            share = order[k :: len(survivors)]
            if not len(share):
                continue
            self.assign(client_id, share.tolist())
            self.environment.runner.send_message(
                AssignMore.TYPE, AssignMore(share.tolist()).to_data(), client_id=client_id
            )
        log.info(
            "Reassigned %d conversations to %d surviving workers", len(indices), len(survivors)
        )
