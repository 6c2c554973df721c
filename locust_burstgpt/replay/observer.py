"""How a replay tells the world what happened: an observer given to it at construction.

Why an object and not callbacks patched in afterwards: every consumer (the run report, a worker's
shipment to the master, Locust's statistics, a user's own hook) is named where the replay is built,
and the methods below are the whole contract.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from locust_burstgpt.replay.results import TurnResult

log = logging.getLogger("locust_burstgpt")


class ReplayObserver:
    """Override what you need. Methods run in the replay's greenlets: keep them cheap."""

    def on_result(self, result: TurnResult) -> None:
        """A scheduled request ended: sent with its one outcome, or not sent with the reason.
        Called exactly once per scheduled request."""

    def on_retry(self, result: TurnResult) -> None:
        """An attempt answered 429/503 that ``--burstgpt-retry`` sends again; ``result.record`` is
        that attempt. The request itself still ends with one ``on_result``."""


class Observers(ReplayObserver):
    """Several observers in order; one that raises is logged and the others still run (a report
    sink must not break the replay)."""

    def __init__(self, observers: Iterable[ReplayObserver]) -> None:
        self.observers = [o for o in observers if o is not None]

    def on_result(self, result: TurnResult) -> None:
        for o in self.observers:
            try:
                o.on_result(result)
            except Exception:  # noqa: BLE001 - one failing consumer must not cost the others
                log.exception("%s failed on request %s", type(o).__name__, result.meta.request_id)

    def on_retry(self, result: TurnResult) -> None:
        for o in self.observers:
            try:
                o.on_retry(result)
            except Exception:  # noqa: BLE001
                log.exception("%s failed on request %s", type(o).__name__, result.meta.request_id)
