"""The simulator's HTTP API: routes each request to a completion stream or a small JSON answer.

Why it is apart from the wire: the connection (``http_server``) parses and answers bytes; this
decides what a request means (OpenAI completions, ``/health``, ``/v1/models``, ``/metrics``,
``/tokenize``), applies the fault plan and the admission limit, and counts what it answered.
"""

from __future__ import annotations

import json
import time
from typing import Protocol

from locust_burstgpt.sim.engine import Engine
from locust_burstgpt.sim.faults import Fault, FaultError, FaultPlan
from locust_burstgpt.sim.http_server import HttpConnection
from locust_burstgpt.sim.openai_api import (
    ApiError,
    parse_completion,
    parse_json_body,
    parse_tokenize,
)
from locust_burstgpt.sim.streaming import Completion, StreamBackend

_ERROR_FAULTS = {"http_500": 500, "http_429": 429, "http_503": 503}


class ApiBackend(StreamBackend, Protocol):
    """The running simulator as the API sees it."""

    engine: Engine
    faults: FaultPlan
    connections: set[HttpConnection]
    started_at: float  # monotonic
    started_wall: float

    def render_metrics(self) -> str: ...


class SimApi:
    """The request handler every connection of one simulator is built with."""

    def __init__(self, backend: ApiBackend) -> None:
        self.backend = backend

    def opened(self, conn: HttpConnection) -> None:
        self.backend.connections.add(conn)

    def closed(self, conn: HttpConnection) -> None:
        self.backend.connections.discard(conn)

    def error_sent(self, status: int) -> None:
        errors = self.backend.wire_metrics.http_errors
        errors[status] = errors.get(status, 0) + 1

    def handle(
        self,
        conn: HttpConnection,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        """Route one request."""
        if path in ("/v1/chat/completions", "/v1/completions"):
            if method != "POST":
                conn.send_error(ApiError(405, f"Method {method} not allowed on {path}; use POST."))
            else:
                self._completion(conn, path == "/v1/chat/completions", headers, body)
        elif path == "/health" and method in ("GET", "HEAD"):
            conn.send(200, b"", "text/plain")
        elif path == "/v1/models" and method == "GET":
            conn.send(200, self._models())
        elif path == "/metrics" and method == "GET":
            metrics = self.backend.render_metrics().encode()
            conn.send(200, metrics, "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/tokenize" and method == "POST":
            self._tokenize(conn, body)
        elif path in ("/health", "/v1/models", "/metrics", "/tokenize"):
            conn.send_error(ApiError(405, f"Method {method} not allowed on {path}."))
        else:
            conn.send_error(ApiError(404, f"Not found: {method} {path}", "NotFoundError"))

    def _completion(
        self, conn: HttpConnection, chat: bool, headers: dict[str, str], body: bytes
    ) -> None:
        """Parse, apply the fault plan and the admission limit, then start the stream."""
        srv = self.backend
        cfg = srv.config
        try:
            req = parse_completion(
                parse_json_body(body),
                chat,
                cfg.model,
                cfg.profile.max_model_len,
                cfg.natural_tokens_mean,
            )
            fault = srv.faults.choose(headers.get("x-sim-fault"), time.monotonic() - srv.started_at)
        except ApiError as e:
            conn.send_error(e)
            return
        except FaultError as e:
            conn.send_error(ApiError(400, str(e), param="x-sim-fault"))
            return
        wm = srv.wire_metrics
        if fault is not None:
            wm.faults[fault.kind] = wm.faults.get(fault.kind, 0) + 1
            status = _ERROR_FAULTS.get(fault.kind)
            if status is not None:
                conn.send_error(_fault_error(fault, status))
                return
        if cfg.max_waiting is not None and srv.engine.num_waiting >= cfg.max_waiting:
            wm.faults["http_503"] = wm.faults.get("http_503", 0) + 1
            conn.send_error(
                ApiError(
                    503,
                    f"The server is overloaded: {srv.engine.num_waiting} requests are waiting "
                    f"(max_waiting {cfg.max_waiting}).",
                    "ServiceUnavailableError",
                )
            )
            return
        Completion(conn, srv, req, fault).start()

    def _models(self) -> bytes:
        cfg = self.backend.config
        model = {
            "id": cfg.model,
            "object": "model",
            "created": int(self.backend.started_wall),
            "owned_by": "burstgpt-sim",
            "root": cfg.model,
            "parent": None,
            "max_model_len": cfg.profile.max_model_len,
        }
        return json.dumps({"object": "list", "data": [model]}).encode()

    def _tokenize(self, conn: HttpConnection, body: bytes) -> None:
        cfg = self.backend.config
        try:
            ids, count = parse_tokenize(parse_json_body(body), cfg.model)
        except ApiError as e:
            conn.send_error(e)
            return
        answer = {
            "count": count,
            "max_model_len": cfg.profile.max_model_len,
            "tokens": ids,
            "token_strs": None,
        }
        conn.send(200, json.dumps(answer).encode())


def _fault_error(fault: Fault, status: int) -> ApiError:
    if status == 429:
        return ApiError(
            429,
            "Rate limit exceeded (simulated fault).",
            "RateLimitError",
            headers={"retry-after": str(fault.retry_after)},
        )
    if status == 503:
        return ApiError(503, "Service unavailable (simulated fault).", "ServiceUnavailableError")
    return ApiError(500, "Internal server error (simulated fault).", "InternalServerError")
