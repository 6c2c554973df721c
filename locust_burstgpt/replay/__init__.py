"""The replay core: a process's open-loop dispatch of BurstGPT conversations, the turn-by-turn
sends, the books, and what every scheduled request became. No Locust import (gevent only), so it
can be driven and tested in-process; ``locust_burstgpt.plugin`` is the Locust adapter around it.
See docs/architecture.md for the flow from trace to report.

    replay = ProcessReplay(settings, workload, range(workload.n_conversations), epoch_wall,
                           base_url, observer=MyObserver())
    replay.start(); ...; replay.stop("stopped"); replay.ledger.balances()
"""

from __future__ import annotations

from locust_burstgpt.replay.conversation import ConversationState, class_label
from locust_burstgpt.replay.dispatcher import RELEASE_LEAD_S, Dispatcher
from locust_burstgpt.replay.ledger import NOT_SENT_REASONS, Ledger
from locust_burstgpt.replay.observer import Observers, ReplayObserver
from locust_burstgpt.replay.process import ProcessReplay, RequestHooks
from locust_burstgpt.replay.results import TurnMeta, TurnResult
from locust_burstgpt.replay.server import ServerInfo, ServerInfoError

__all__ = [
    "NOT_SENT_REASONS",
    "RELEASE_LEAD_S",
    "ConversationState",
    "Dispatcher",
    "Ledger",
    "Observers",
    "ProcessReplay",
    "ReplayObserver",
    "RequestHooks",
    "ServerInfo",
    "ServerInfoError",
    "TurnMeta",
    "TurnResult",
    "class_label",
]
