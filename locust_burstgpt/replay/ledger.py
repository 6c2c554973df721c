"""The books of a replay: every scheduled request ends as sent (with one outcome) or not sent (with a reason).

Why: a load test that silently loses requests hides exactly the overload it should expose. The ledger
is plain counters so workers can ship cumulative snapshots to the master, which sums them.

Retries (``--burstgpt-retry``) do not change the books: a scheduled request is sent once and ends with
the outcome of its last attempt; the extra attempts are counted apart in ``retries``.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: Every reason a scheduled request can end without being sent.
NOT_SENT_REASONS = ("window_ended", "stopped", "prompt_failed", "lost_worker")


@dataclass
class Ledger:
    scheduled: int = 0
    sent: int = 0
    outcomes: Counter = field(default_factory=Counter)
    not_sent: Counter = field(default_factory=Counter)
    history_trimmed: int = 0
    prompt_raised: int = 0  # trace prompt smaller than the chat template's minimum
    prompt_clipped: int = 0  # prompt + output larger than the model's context
    conversations_scheduled: int = 0
    conversations_started: int = 0
    retries: int = 0  # extra attempts of requests answered 429/503 (not requests of their own)
    sent_by_class: Counter = field(default_factory=Counter)  # sent, per trace class
    # open loop: turns sent on time while no Locust user held their conversation (the user count
    # lagged the conversations in progress; the schedule did not)
    unheld_sends: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheduled": self.scheduled,
            "sent": self.sent,
            "outcomes": dict(self.outcomes),
            "not_sent": dict(self.not_sent),
            "history_trimmed": self.history_trimmed,
            "prompt_raised": self.prompt_raised,
            "prompt_clipped": self.prompt_clipped,
            "conversations_scheduled": self.conversations_scheduled,
            "conversations_started": self.conversations_started,
            "retries": self.retries,
            "sent_by_class": dict(self.sent_by_class),
            "unheld_sends": self.unheld_sends,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Ledger:
        return cls(
            scheduled=int(d.get("scheduled", 0)),
            sent=int(d.get("sent", 0)),
            outcomes=Counter({str(k): int(v) for k, v in d.get("outcomes", {}).items()}),
            not_sent=Counter({str(k): int(v) for k, v in d.get("not_sent", {}).items()}),
            history_trimmed=int(d.get("history_trimmed", 0)),
            prompt_raised=int(d.get("prompt_raised", 0)),
            prompt_clipped=int(d.get("prompt_clipped", 0)),
            conversations_scheduled=int(d.get("conversations_scheduled", 0)),
            conversations_started=int(d.get("conversations_started", 0)),
            retries=int(d.get("retries", 0)),
            sent_by_class=Counter({str(k): int(v) for k, v in d.get("sent_by_class", {}).items()}),
            unheld_sends=int(d.get("unheld_sends", 0)),
        )

    def add(self, other: Ledger) -> Ledger:
        return Ledger(
            scheduled=self.scheduled + other.scheduled,
            sent=self.sent + other.sent,
            outcomes=self.outcomes + other.outcomes,
            not_sent=self.not_sent + other.not_sent,
            history_trimmed=self.history_trimmed + other.history_trimmed,
            prompt_raised=self.prompt_raised + other.prompt_raised,
            prompt_clipped=self.prompt_clipped + other.prompt_clipped,
            conversations_scheduled=self.conversations_scheduled + other.conversations_scheduled,
            conversations_started=self.conversations_started + other.conversations_started,
            retries=self.retries + other.retries,
            sent_by_class=self.sent_by_class + other.sent_by_class,
            unheld_sends=self.unheld_sends + other.unheld_sends,
        )

    def count_not_sent(self, reason: str, n: int = 1) -> None:
        """Book ``n`` scheduled requests as not sent for ``reason`` (one of NOT_SENT_REASONS)."""
        if not n:
            return
        if reason not in NOT_SENT_REASONS:
            raise ValueError(
                f"unknown not-sent reason {reason!r}; expected one of {NOT_SENT_REASONS}"
            )
        if n:
            self.not_sent[reason] += n

    @property
    def in_flight(self) -> int:
        """Requests sent whose outcome is not recorded yet (0 once the run has ended)."""
        return self.sent - sum(self.outcomes.values())

    @property
    def unaccounted(self) -> int:
        """Scheduled requests neither sent nor recorded as not sent (0 once the run has ended)."""
        return self.scheduled - self.sent - sum(self.not_sent.values())

    def balances(self) -> bool:
        """scheduled = sent + not sent, and sent = sum of outcomes."""
        return self.unaccounted == 0 and self.in_flight == 0

    def format(self) -> str:
        """The reconciliation as printed at the end of a run."""
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())) or "none"
        not_sent = ", ".join(f"{k} {v}" for k, v in sorted(self.not_sent.items())) or "none"
        verdict = (
            "balances"
            if self.balances()
            else (
                f"DOES NOT BALANCE (unaccounted {self.unaccounted}, outcome missing for {self.in_flight})"
            )
        )
        retries = (
            f" Retries: {self.retries} extra attempts (each request counted once, with its last outcome)."
            if self.retries
            else ""
        )
        unheld = (
            f" {self.unheld_sends} turns were sent on time while no Locust user held their "
            "conversation (the user count lagged the conversations in progress)."
            if self.unheld_sends
            else ""
        )
        return (
            f"Reconciliation: scheduled {self.scheduled} = sent {self.sent} + not sent "
            f"{sum(self.not_sent.values())} ({not_sent}); sent {self.sent} = outcomes ({outcomes}); {verdict}."
            f"{retries} "
            f"Conversations: {self.conversations_started} of {self.conversations_scheduled} started; "
            f"history trimmed on {self.history_trimmed} turns; prompt raised to the chat template's minimum "
            f"on {self.prompt_raised} and clipped to the model's context on {self.prompt_clipped}."
            f"{unheld}"
        )
