"""One process's replay: its client, what the server is, its prompt builder, books and dispatcher.

Built once per test run before load starts (never per user: building clients and probing the server
blocks the gevent hub), driven by whatever runs the process (the Locust plugin, or a test in-process),
and torn down when the run stops. Nothing here imports Locust.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gevent

from locust_burstgpt.client import ClientConfig, make_client
from locust_burstgpt.client.sidechannel import SideChannel
from locust_burstgpt.prompts import PromptConfig, make_prompt_builder
from locust_burstgpt.replay.dispatcher import Dispatcher
from locust_burstgpt.replay.ledger import Ledger
from locust_burstgpt.replay.observer import ReplayObserver
from locust_burstgpt.replay.results import TurnResult
from locust_burstgpt.replay.sender import TurnSender
from locust_burstgpt.replay.server import ServerInfo, discover
from locust_burstgpt.replay.turns import RequestHook, TurnBuilder
from locust_burstgpt.settings import ReplaySettings

log = logging.getLogger("locust_burstgpt")


@dataclass
class RequestHooks:
    """What user code may change in every request (from a ``BurstGPTUser`` subclass)."""

    extra_headers: Mapping[str, str] = field(default_factory=dict)
    prepare_request: RequestHook | None = None


class ProcessReplay:
    """Replays the conversations ``indices`` of ``workload`` against ``base_url`` on this process.

    ``epoch_wall``: wall-clock time of trace offset 0 (the same on every process of a run).
    ``observer``: told of every request's end (``ReplayObserver``); ``ledger``: the books to keep
    (a fresh one by default; a caller that reports them while the run goes on may pass its own).
    """

    def __init__(
        self,
        settings: ReplaySettings,
        workload: Any,
        indices: Sequence[int],
        epoch_wall: float,
        base_url: str,
        observer: ReplayObserver,
        hooks: RequestHooks | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        hooks = hooks or RequestHooks()
        self.settings = settings
        self.workload = workload
        self.base_url = base_url.rstrip("/")
        self.epoch_wall = epoch_wall
        self.run_id = uuid.uuid4().hex[:8]
        self.ledger = ledger if ledger is not None else Ledger()
        self.observer = observer
        peak = int(workload.curves.in_flight.max()) if len(workload.curves.in_flight) else 1
        self.client = make_client(
            ClientConfig(
                base_url=self.base_url,
                api_key=settings.api_key,
                transport=settings.transport,
                endpoint=settings.endpoint,
                connect_timeout_s=settings.connect_timeout_s,
                first_token_timeout_s=settings.ttft_timeout_s,
                idle_timeout_s=settings.idle_timeout_s,
                # open loop: a request due now must find a connection even when a server
                # slower than the trace holds many more in flight than the curve says; the
                # pool opens connections only as they are needed, so a large cap costs nothing
                pool_size=max(1024, 2 * int(peak * settings.headroom) + 16),
                verify_tls=not settings.insecure,
                extra_headers=dict(hooks.extra_headers),
            )
        )
        self.side = SideChannel(
            self.base_url,
            settings.api_key,
            verify_tls=not settings.insecure,
            timeout_s=settings.connect_timeout_s + 20,
        )
        self.server: ServerInfo = discover(self.side, settings.server_kind, settings.model_map)
        self.prompts = make_prompt_builder(
            PromptConfig(
                backend=settings.tokenizer,
                base_url=self.base_url,
                model=self.server.default_model,
                owner=self.server.owner or "",
                endpoint=settings.endpoint,
                seed=settings.seed,
                api_key=settings.api_key,
                verify_tls=not settings.insecure,
            ),
            self.client,
            side=self.side,
        )
        log.info(
            "Prompt token counting: %s backend; output length forced for server kind %s",
            self.prompts.backend_name,
            self.server.kind.value,
        )
        self.turns = TurnBuilder(
            self.server, self.prompts, settings.endpoint, settings.seed, hooks.prepare_request
        )
        self.sender = TurnSender(
            self.client,
            self.turns,
            self.prompts,
            self.ledger,
            observer,
            run_id=self.run_id,
            epoch_wall=epoch_wall,
            retry=settings.retry,
            api_key=settings.api_key,
            stopping=lambda: self.dispatcher.stopping,
            timed=settings.arrival != "saturate",
        )
        epoch = time.perf_counter() + (epoch_wall - time.time())  # wall clock -> perf_counter
        self.dispatcher = Dispatcher(
            workload,
            indices,
            epoch,
            arrival=settings.arrival,
            prepare=self.turns.prepare,
            send=self.sender.send,
            emit=self._emit,
            request_id=self.sender.request_id,
            ledger=self.ledger,
            strict=settings.strict_curve,
        )

    def _emit(self, result: TurnResult) -> None:
        self.observer.on_result(result)

    def start(self) -> None:
        self.dispatcher.start()

    def extend(self, indices: Sequence[int]) -> None:
        """Take on more conversations (a lost worker's that had not started)."""
        self.dispatcher.extend(indices)

    def stop(self, reason: str) -> None:
        """Stop releasing, drain, cancel what is left; then every scheduled request is accounted."""
        self.dispatcher.stop(reason, self.settings.drain_timeout_s)

    def close(self) -> None:
        gevent.spawn(self.client.close).join(timeout=5)
        self.side.close()

    def describe_server(self) -> dict[str, Any]:
        """What the run was pointed at, for the summary (no secrets)."""
        return {
            "base_url": self.base_url,
            "models": self.server.models,
            "kind": self.server.kind.value,
            "max_model_len": self.server.max_model_len,
            "model_map": self.server.model_map,
            "tokenizer_backend": self.prompts.backend_name,
            "transport": self.settings.transport,
        }
