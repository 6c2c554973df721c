"""The wire layer: a minimal HTTP/1.1 server connection (asyncio Protocol), built with a handler.

Why it exists: a general web framework costs far more CPU per chunk than the simulator can
afford at 20,000 chunks/s on one core, and hides when bytes actually leave. Each engine step's
tokens are written straight to the sockets (TCP_NODELAY set on every accepted socket) as
pre-formatted chunks. Supported: keep-alive, pipelined requests (served in order),
Content-Length request bodies, ``Expect: 100-continue``, chunked responses for SSE (HTTP/1.0
clients get the raw stream and a close). What a request means is the handler's business
(``routes.SimApi``); this module only parses and answers.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Protocol

from locust_burstgpt.sim import wire
from locust_burstgpt.sim.openai_api import ApiError

log = logging.getLogger("locust_burstgpt.sim")

MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024


class ActiveResponse(Protocol):
    """A response in progress (a completion stream) that must stop when the client goes away."""

    def cancel(self) -> None: ...


class RequestHandler(Protocol):
    """What a connection hands its requests to, and tells about its life."""

    def handle(
        self,
        conn: HttpConnection,
        method: str,
        path: str,
        headers: dict[str, str],
        body: bytes,
    ) -> None: ...

    def opened(self, conn: HttpConnection) -> None: ...

    def closed(self, conn: HttpConnection) -> None: ...

    def error_sent(self, status: int) -> None: ...


class HttpConnection(asyncio.Protocol):
    """One client connection: parses requests and hands them to the server one at a time."""

    def __init__(self, handler: RequestHandler) -> None:
        self.handler = handler
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.pending: tuple[str, str, bool, dict[str, str], int] | None = None
        self.busy = False
        self.closed = False
        self.keep_alive = True
        self.http11 = True
        self.active: ActiveResponse | None = None
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
        self.handler.opened(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.handler.closed(self)
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
                    self.handler.handle(self, method, path, headers, body)
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
        self.handler.error_sent(err.status)
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
