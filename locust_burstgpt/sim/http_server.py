"""The wire layer: a minimal HTTP/1.1 server (asyncio Protocol) and per-request stream writers.

Why it exists: a general web framework costs far more CPU per chunk than the simulator can
afford at 20,000 chunks/s on one core, and hides when bytes actually leave. Here each engine
step's tokens are written straight to the sockets (TCP_NODELAY set on every accepted socket) as
pre-formatted chunks. Supported: keep-alive, pipelined requests (served in order),
Content-Length request bodies, ``Expect: 100-continue``, chunked responses for SSE (HTTP/1.0
clients get the raw stream and a close).
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import time
import uuid
from typing import TYPE_CHECKING

from locust_burstgpt.sim import text, wire
from locust_burstgpt.sim.engine import SeqRequest, SeqStatus, Sequence
from locust_burstgpt.sim.faults import Fault, FaultError
from locust_burstgpt.sim.openai_api import (
    ApiError,
    CompletionRequest,
    parse_completion,
    parse_json_body,
    parse_tokenize,
)

if TYPE_CHECKING:
    from locust_burstgpt.sim.runtime import SimServer

log = logging.getLogger("locust_burstgpt.sim")

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
_ERROR_FAULTS = {"http_500": 500, "http_429": 429, "http_503": 503}


class HttpConnection(asyncio.Protocol):
    """One client connection: parses requests and hands them to the server one at a time."""

    def __init__(self, srv: SimServer) -> None:
        self.srv = srv
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: tuple[str, str, bool, dict[str, str], int] | None = None
        self.busy = False
        self.closed = False
        self.keep_alive = True
        self.http11 = True
        self.active: Completion | None = None
        self._processing = False

    # ---- asyncio callbacks ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.srv.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.srv.connections.discard(self)
        if self.active is not None:
            self.active.cancel()
            self.active = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        if not self.busy:
            self.process()

    # ---- request parsing --------------------------------------------------------------------

    def process(self) -> None:
        if self._processing:
            return
        self._processing = True
        try:
            while not self.busy and not self.closed:
                if self.pending is None:
                    i = self.buf.find(b"\r\n\r\n")
                    if i < 0:
                        if len(self.buf) > MAX_HEAD_BYTES:
                            self.fail(ApiError(431, "Request headers too large."))
                        return
                    head = bytes(self.buf[:i])
                    del self.buf[: i + 4]
                    if not self._parse_head(head):
                        return
                assert self.pending is not None
                method, path, http11, headers, length = self.pending
                if len(self.buf) < length:
                    return
                body = bytes(self.buf[:length])
                del self.buf[:length]
                self.pending = None
                self.http11 = http11
                conn_hdr = headers.get("connection", "").lower()
                self.keep_alive = (
                    ("close" not in conn_hdr) if http11 else ("keep-alive" in conn_hdr)
                )
                self.busy = True
                try:
                    self.srv.handle(self, method, path, headers, body)
                except Exception as e:  # a bug must not take the server down
                    log.exception("internal error handling %s %s", method, path)
                    if self.active is None and self.busy:
                        self.send_error(
                            ApiError(500, f"Internal simulator error: {e}", "InternalServerError")
                        )
        finally:
            self._processing = False

    def _parse_head(self, head: bytes) -> bool:
        try:
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ")
            if not version.startswith("HTTP/1."):
                raise ValueError(version)
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        except ValueError:
            self.keep_alive = False
            self.fail(ApiError(400, "Malformed HTTP request line or headers."))
            return False
        if "transfer-encoding" in headers:
            self.fail(
                ApiError(411, "Chunked request bodies are not supported; send Content-Length.")
            )
            return False
        try:
            length = int(headers.get("content-length", "0"))
            if length < 0:
                raise ValueError
        except ValueError:
            self.fail(ApiError(400, "Invalid Content-Length header."))
            return False
        if length > MAX_BODY_BYTES:
            self.fail(ApiError(413, f"Request body larger than {MAX_BODY_BYTES} bytes."))
            return False
        path = target.split("?", 1)[0]
        self.pending = (method, path, version == "HTTP/1.1", headers, length)
        if headers.get("expect", "").lower() == "100-continue" and len(self.buf) < length:
            self.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return True

    # ---- responses --------------------------------------------------------------------------

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        extra: dict[str, str] | None = None,
    ) -> None:
        """A complete Content-Length response; ends the request."""
        self.write(
            wire.response_head(status, content_type, len(body), not self.keep_alive, extra) + body
        )
        self.done()

    def send_error(self, err: ApiError) -> None:
        self.srv.wire_metrics.http_errors[err.status] = (
            self.srv.wire_metrics.http_errors.get(err.status, 0) + 1
        )
        self.send(err.status, err.body(), extra=err.headers)

    def fail(self, err: ApiError) -> None:
        """Answer a request that cannot be parsed, then close (the stream is out of sync)."""
        self.keep_alive = False
        self.busy = True
        self.send_error(err)

    def done(self) -> None:
        """The current response is complete: close or serve the next pipelined request."""
        self.active = None
        self.busy = False
        if not self.keep_alive:
            self.close()
        elif self.buf and not self._processing:
            self.process()

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()


class Completion:
    """Streams (or collects) one completion request's tokens as the engine produces them."""

    __slots__ = (
        "conn",
        "srv",
        "req",
        "fault",
        "arrival",
        "seq",
        "tpl",
        "rid",
        "created",
        "last_write",
        "cancelled",
        "timer",
        "chunked",
    )

    def __init__(
        self, conn: HttpConnection, srv: SimServer, req: CompletionRequest, fault: Fault | None
    ) -> None:
        self.conn = conn
        self.srv = srv
        self.req = req
        self.fault = fault
        self.arrival = time.monotonic()
        self.seq: Sequence | None = None
        self.rid = ("chatcmpl-" if req.chat else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())
        self.tpl = wire.ChunkTemplates(
            req.chat, self.rid, self.created, srv.config.model, srv.config.emit_send_times
        )
        self.last_write = 0.0
        self.cancelled = False
        self.timer: asyncio.TimerHandle | None = None
        self.chunked = conn.http11

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        conn, fault = self.conn, self.fault
        conn.active = self
        if self.req.stream:
            if not self.chunked:
                conn.keep_alive = False
            conn.write(wire.sse_head(self.chunked, close=not conn.keep_alive))
        if fault is not None and fault.kind == "cut_mid_stream" and fault.after == 0:
            self._cut()
            return
        stall_after = None
        stall_s = 0.0
        if fault is not None and fault.kind == "stall_mid_stream":
            stall_after, stall_s = fault.after, fault.seconds
        sreq = SeqRequest(
            self.req.prompt_ids,
            self.req.max_tokens,
            self.req.target_tokens,
            arrival=self.arrival,
            stall_after=stall_after,
            stall_s=stall_s,
        )
        if fault is not None and fault.kind == "stall_before_first_token":
            self.timer = asyncio.get_running_loop().call_later(fault.seconds, self._submit, sreq)
        else:
            self._submit(sreq)

    def _submit(self, sreq: SeqRequest) -> None:
        self.timer = None
        if not self.cancelled:
            self.seq = self.srv.submit(sreq, self)

    def cancel(self) -> None:
        """The client went away: stop generating."""
        self.cancelled = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.seq is not None and self.seq.status in (SeqStatus.WAITING, SeqStatus.RUNNING):
            self.srv.abort(self.seq)

    def _cut(self) -> None:
        """cut_mid_stream: close the socket with no terminator."""
        self.cancel()
        self.conn.active = None
        self.conn.close()

    # ---- called by the engine loop ----------------------------------------------------------

    def on_token(self, seq: Sequence, due: float) -> None:
        if self.cancelled:
            return
        n = seq.num_generated  # this token is number n (1-based)
        now = time.monotonic()
        wm = self.srv.wire_metrics
        wm.send_delay.observe(now - due if now > due else 0.0)
        if n == 1:
            wm.ttft.observe(now - self.arrival)
        else:
            wm.itl.observe(now - self.last_write)
        self.last_write = now
        finished = seq.status is SeqStatus.FINISHED
        fault = self.fault
        if not self.req.stream:
            if (
                fault is not None
                and fault.kind == "cut_mid_stream"
                and (n >= fault.after or finished)
            ):
                self._cut()
            elif finished:
                self._finish_plain(seq)
            return
        wm.streamed_chunks += 1
        w = text.word_index(seq.word_seed, n - 1)
        frag = text.FIRST_JSON[w] if n == 1 else text.NEXT_JSON[w]
        tpl = self.tpl
        if fault is None and n > 1 and not finished:
            self.conn.write(tpl.token(frag, self.chunked))
            return
        parts: list[bytes] = []
        fr = self._frame
        if n == 1:
            if fault is not None and fault.kind == "malformed_sse" and fault.after == 0:
                parts.append(fr(tpl.malformed()))
            if self.req.chat:
                parts.append(fr(tpl.role()))
        parts.append(tpl.token(frag, self.chunked))
        if fault is not None:
            if (
                fault.kind == "malformed_sse"
                and fault.after > 0
                and (n == fault.after or (finished and n < fault.after))
            ):
                parts.append(fr(tpl.malformed()))
            elif fault.kind == "cut_mid_stream" and (n >= fault.after or finished):
                self.conn.write(b"".join(parts))
                self._cut()
                return
        if finished:
            parts.append(fr(tpl.final(seq.finish_reason)))
            if self.req.include_usage:
                parts.append(
                    fr(tpl.usage(seq.prompt_len, seq.num_generated, seq.cached_tokens or 0))
                )
            parts.append(fr(wire.DONE))
            if self.chunked:
                parts.append(wire.CHUNKED_END)
        self.conn.write(b"".join(parts))
        if finished:
            self._complete()

    def _frame(self, event: bytes) -> bytes:
        return wire.frame(event) if self.chunked else event

    def _finish_plain(self, seq: Sequence) -> None:
        body = wire.full_response(
            self.req.chat,
            self.rid,
            self.created,
            self.srv.config.model,
            text.completion_text(seq.word_seed, seq.num_generated),
            seq.finish_reason,
            seq.prompt_len,
            seq.num_generated,
            seq.cached_tokens or 0,
        )
        if self.fault is not None and self.fault.kind == "malformed_sse":
            body = body[: len(body) // 2]
        self.conn.send(200, body)
        self._complete(sent=True)

    def _complete(self, sent: bool = False) -> None:
        self.srv.wire_metrics.e2e.observe(time.monotonic() - self.arrival)
        if not self.req.stream and sent:
            return  # conn.send() already ended the request
        if not self.chunked:
            self.conn.keep_alive = False
        self.conn.done()


def handle_request(
    srv: SimServer,
    conn: HttpConnection,
    method: str,
    path: str,
    headers: dict[str, str],
    body: bytes,
) -> None:
    """Route one request."""
    cfg = srv.config
    if path in ("/v1/chat/completions", "/v1/completions"):
        if method != "POST":
            conn.send_error(ApiError(405, f"Method {method} not allowed on {path}; use POST."))
            return
        try:
            data = parse_json_body(body)
            req = parse_completion(
                data,
                path == "/v1/chat/completions",
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
        return
    if path == "/health" and method in ("GET", "HEAD"):
        conn.send(200, b"", "text/plain")
    elif path == "/v1/models" and method == "GET":
        conn.send(
            200,
            json.dumps(
                {
                    "object": "list",
                    "data": [
                        {
                            "id": cfg.model,
                            "object": "model",
                            "created": int(srv.started_wall),
                            "owned_by": "burstgpt-sim",
                            "root": cfg.model,
                            "parent": None,
                            "max_model_len": cfg.profile.max_model_len,
                        }
                    ],
                }
            ).encode(),
        )
    elif path == "/metrics" and method == "GET":
        conn.send(200, srv.render_metrics().encode(), "text/plain; version=0.0.4; charset=utf-8")
    elif path == "/tokenize" and method == "POST":
        try:
            ids, count = parse_tokenize(parse_json_body(body), cfg.model)
        except ApiError as e:
            conn.send_error(e)
            return
        conn.send(
            200,
            json.dumps(
                {
                    "count": count,
                    "max_model_len": cfg.profile.max_model_len,
                    "tokens": ids,
                    "token_strs": None,
                }
            ).encode(),
        )
    elif path in ("/health", "/v1/models", "/metrics", "/tokenize"):
        conn.send_error(ApiError(405, f"Method {method} not allowed on {path}."))
    else:
        conn.send_error(ApiError(404, f"Not found: {method} {path}", "NotFoundError"))


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
