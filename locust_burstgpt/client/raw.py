"""The default transport: raw SSE over geventhttpclient's C HTTP parser and gevent sockets.

Why: it is cooperative without monkey patching, reuses keep-alive connections, and reads each
chunk the moment its bytes arrive (no block buffering, no per-chunk model objects). The request
is written in one ``sendall`` on a ``TCP_NODELAY`` socket; the response bytes go through llhttp
(chunked decoding) straight into the SSE reader.
"""

from __future__ import annotations

import errno
import json
import logging
import re
import socket
from time import perf_counter
from typing import Any
from urllib.parse import urlsplit

import gevent
import gevent.queue
import gevent.socket
import orjson
from geventhttpclient.connectionpool import ConnectionPool, SSLConnectionPool
from geventhttpclient.response import HTTPParseError, HTTPResponse

from locust_burstgpt.client.config import ClientConfig, ClientConfigError
from locust_burstgpt.client.deadlines import FIRST_TOKEN, IDLE, Deadline, DeadlineExceeded, Watchdog
from locust_burstgpt.client.records import Outcome, RequestRecord
from locust_burstgpt.client.sse import SSEProtocolError, SSEServerError, StreamReader

log = logging.getLogger("locust_burstgpt.client")

_BLOCK = 65536
_HEADER_NAME = re.compile(r"\A[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_REQUEST_ID = re.compile(r"\A[\x21-\x7e]{1,200}\Z")
_HEADER_VALUE = re.compile(r"\A[\t\x20-\x7e\x80-\xff]*\Z")
_RETRYABLE_SEND = (errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED)
_DRAIN_S = 0.2  # how long to wait for the end of a body after [DONE] before giving up reuse


class _StaleConnection(Exception):
    """A reused keep-alive connection was closed by the server before it answered."""


class _NoResponse(Exception):
    """The connection failed after the request was written and before any response byte."""


class _PoolMixin:
    """Pool slot accounting separated from connecting, and TCP_NODELAY on every socket."""

    _semaphore: Any
    _socket_queue: Any
    _closed: bool

    def after_connect(self, sock: Any) -> None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def acquire_slot(self) -> None:
        """Wait for a free slot; waiting here means the pool is too small (shows as lateness)."""
        self._semaphore.acquire()

    def release_slot(self) -> None:
        self._semaphore.release()

    def connect_or_reuse(self, fresh: bool = False) -> tuple[Any, bool]:
        """A live idle connection (reused=True), else a new one. The slot is already held."""
        if self._closed:
            raise OSError("connection pool closed")
        while not fresh and not self._socket_queue.empty():
            sock = self._socket_queue.get(block=False)
            if self._is_socket_alive(sock):  # type: ignore[attr-defined]
                return sock, True
            sock.close()
        return self._create_socket(), False  # type: ignore[attr-defined]

    def discard(self, sock: Any) -> None:
        """Close a connection but keep its slot (for a resend on a fresh connection)."""
        try:
            sock.close()
        except OSError:
            pass

    def give_back(self, sock: Any, reusable: bool) -> None:
        """Free the slot; keep the connection for reuse if it can be, else close it. Never blocks."""
        try:
            if reusable and not self._closed:
                try:
                    self._socket_queue.put_nowait(sock)
                    sock = None
                except gevent.queue.Full:
                    pass
            if sock is not None:
                self.discard(sock)
        finally:
            self._semaphore.release()


class _Pool(_PoolMixin, ConnectionPool):
    pass


class _TLSPool(_PoolMixin, SSLConnectionPool):
    pass


class RawTransport:
    """Streams completions over pooled keep-alive connections; one instance per process."""

    name = "raw"

    def __init__(self, cfg: ClientConfig) -> None:
        self.cfg = cfg
        url = urlsplit(cfg.root_url)
        tls = url.scheme == "https"
        host = url.hostname or ""
        port = url.port or (443 if tls else 80)
        common = dict(
            size=cfg.pool_size, connection_timeout=cfg.connect_timeout_s, network_timeout=None
        )
        if tls:
            self._pool: _PoolMixin = _TLSPool(
                host,
                port,
                host,
                port,
                insecure=not cfg.verify_tls,
                ssl_context_factory=tls_context_factory(cfg.verify_tls),
                **common,
            )
        else:
            self._pool = _Pool(host, port, host, port, **common)
        self._chat = cfg.endpoint == "chat"
        # servers that close every connection after a stream (llama.cpp does) make each reuse
        # attempt fail and resend; after a few such failures and no success, stop reusing
        self._reuse = True
        self._reused_ok = 0
        self._stale = 0
        self._watchdog = Watchdog(cfg.timeout_check_interval_s)
        host_header = host if ":" not in host else f"[{host}]"
        if url.port:
            host_header += f":{url.port}"
        head = [
            f"POST {url.path.rstrip('/')}{cfg.path} HTTP/1.1",
            f"Host: {host_header}",
            "User-Agent: locust-burstgpt",
            "Accept: text/event-stream",
            "Content-Type: application/json",
        ]
        for name, value in cfg.auth_headers().items():
            if not _HEADER_NAME.match(name) or not _HEADER_VALUE.match(str(value)):
                raise ClientConfigError(f"invalid HTTP header {name!r} (name or value not allowed)")
            head.append(f"{name}: {value}")
        self._head_base = ("\r\n".join(head) + "\r\n").encode("latin-1")

    # -- public --------------------------------------------------------------------------------
    def send(
        self, body: dict[str, Any], record: RequestRecord, headers: dict[str, str] | None = None
    ) -> RequestRecord:
        payload = encode_body(body)
        request = (
            self._head_base
            + _request_id_header(record.request_id)
            + (encode_headers(headers) if headers else b"")
            + b"Content-Length: %d\r\n\r\n" % len(payload)
            + payload
        )
        pool = self._pool
        try:
            pool.acquire_slot()
        except BaseException as e:
            _cancel(record, e)
            raise
        start = perf_counter()
        record.sent_at = start
        cfg = self.cfg
        dl = Deadline(start, cfg.first_token_timeout_s, cfg.idle_timeout_s, cfg.total_timeout_s)
        self._watchdog.watch(dl)
        reader = StreamReader(record, self._chat, cfg.chunk_fields)
        state = _Exchange()
        try:
            self._exchange(request, record, dl, reader, state)
        except DeadlineExceeded as e:
            if e.kind == FIRST_TOKEN or (e.kind != IDLE and record.first_token_at is None):
                _fail(record, Outcome.TIMEOUT_BEFORE_FIRST_TOKEN, str(e))
            else:
                _fail(record, Outcome.TIMEOUT_MID_STREAM, str(e))
        except _NoResponse as e:
            _fail(record, Outcome.CONNECTION_ERROR, f"no response: {e}")
        except SSEServerError as e:
            if e.code is not None:
                record.http_status = e.code
            _fail(record, Outcome.HTTP_ERROR, str(e))
        except (SSEProtocolError, HTTPParseError) as e:
            _fail(record, Outcome.PROTOCOL_ERROR, f"{type(e).__name__}: {e}")
        except OSError as e:
            if state.phase == "connect":
                _fail(record, Outcome.CONNECTION_ERROR, f"connect: {_describe(e)}")
            elif state.phase == "body":
                _fail(record, Outcome.STREAM_CUT, f"connection lost mid-stream: {_describe(e)}")
            else:
                _fail(record, Outcome.CONNECTION_ERROR, f"{state.phase}: {_describe(e)}")
        except Exception as e:  # noqa: BLE001 - a server fault must never escape as an exception
            _fail(record, Outcome.PROTOCOL_ERROR, f"unexpected {type(e).__name__}: {e}")
        except BaseException as e:  # GreenletExit, the caller's own Timeout, KeyboardInterrupt
            state.reusable = False
            _cancel(record, e)
            raise
        finally:
            self._watchdog.unwatch(dl)
            try:
                reader.finish()
            except Exception:  # noqa: BLE001 - a half event at the end must not mask the outcome
                pass
            if state.last_rx and record.last_byte_at is None:
                record.last_byte_at = state.last_rx
            if state.sock is not None:
                pool.give_back(state.sock, state.reusable and self._reuse)
            else:
                pool.release_slot()
        return record

    def close(self) -> None:
        self._watchdog.close()
        self._pool.close()  # type: ignore[attr-defined]

    # -- one exchange ------------------------------------------------------------------------
    def _exchange(
        self,
        request: bytes,
        record: RequestRecord,
        dl: Deadline,
        reader: StreamReader,
        st: _Exchange,
    ) -> None:
        resp, now = self._request(request, record, st)
        dl.last = now
        status = resp.status_code
        record.http_status = status
        sock = st.sock
        if not 200 <= status < 300:
            self._read_error(resp, record, dl, st)
            return
        ctype = resp.get("content-type")
        if isinstance(ctype, str) and ctype and not ctype.lower().startswith("text/event-stream"):
            # not a stream: the server ignored "stream": true (JSON), or a gateway answered (HTML)
            self._read_error(resp, record, dl, st)
            record.outcome = Outcome.PROTOCOL_ERROR
            record.error = f"expected an event stream, got {ctype}: {record.error}"
            return
        st.phase = "body"
        buf = resp._body_buffer
        if not ((buf and reader.consume(buf, now)) or resp.message_complete):
            if record.first_token_at is not None:
                dl.streaming = True
            if type(sock) is gevent.socket.socket:
                now = _BodyPump(sock, resp, reader, dl, st).run()
            else:
                now = _read_body(sock, resp, reader, dl, st)
        if reader.done:
            record.last_byte_at = now
            record.outcome = Outcome.OK
            self._watchdog.unwatch(dl)  # the record is final; only connection reuse is left
            st.reusable = self._drain(resp, sock)
            return
        reader.finish()
        if resp.message_complete and reader.saw_finish:
            record.last_byte_at = now  # a server that ends the body without [DONE]
            record.outcome = Outcome.OK
            st.reusable = not resp.should_close()
            return
        _fail(
            record,
            Outcome.STREAM_CUT,
            "stream ended before [DONE]"
            + ("" if resp.message_complete else " (connection closed)"),
        )

    def _request(
        self, request: bytes, record: RequestRecord, st: _Exchange
    ) -> tuple[HTTPResponse, float]:
        """Write the request and read the response head; one resend if a reused socket was stale."""
        pool = self._pool
        for attempt in (1, 2):
            record.attempts = attempt
            st.phase = "connect"
            st.sock, reused = pool.connect_or_reuse(fresh=attempt > 1 or not self._reuse)
            st.phase = "send"
            try:
                head = self._send_and_read_head(st.sock, request, reused)
                if reused:
                    self._reused_ok += 1
                return head
            except _StaleConnection as e:
                pool.discard(st.sock)
                st.sock = None
                self._stale += 1
                if self._reuse and self._stale >= 8 and not self._reused_ok:
                    self._reuse = False
                    log.info(
                        "%s closes connections after each response; connecting afresh "
                        "for every request",
                        self.cfg.root_url,
                    )
                if attempt == 2:
                    raise _NoResponse(str(e)) from None
        raise AssertionError("unreachable")

    def _send_and_read_head(
        self, sock: Any, request: bytes, reused: bool
    ) -> tuple[HTTPResponse, float]:
        try:
            sock.sendall(request)
        except OSError as e:
            if reused and e.errno in _RETRYABLE_SEND:
                raise _StaleConnection(_describe(e)) from None
            raise _NoResponse(f"send failed: {_describe(e)}") from None
        resp = HTTPResponse(method="POST")
        received = False
        while not resp.headers_complete:
            try:
                data = sock.recv(_BLOCK)
            except OSError as e:
                if reused and not received and e.errno in _RETRYABLE_SEND:
                    raise _StaleConnection(_describe(e)) from None
                raise _NoResponse(_describe(e)) from None
            if not data:
                if reused and not received:
                    raise _StaleConnection("closed by the server before responding")
                raise _NoResponse("connection closed before the response head was complete")
            received = True
            resp.feed(data)
        return resp, perf_counter()

    def _read_error(
        self, resp: HTTPResponse, record: RequestRecord, dl: Deadline, st: _Exchange
    ) -> None:
        """Keep the start of a non-200 body as the error text; the outcome is HTTP_ERROR."""
        st.phase = "error-body"
        limit = self.cfg.max_error_body_bytes
        buf = resp._body_buffer
        sock = st.sock
        now = dl.last
        complete = resp.message_complete
        try:
            while not complete and len(buf) < limit:
                data = sock.recv(_BLOCK)
                now = perf_counter()
                dl.last = now
                if not data:
                    _feed_eof(resp)
                    break
                resp.feed(data)
                complete = resp.message_complete
        except (OSError, HTTPParseError):
            complete = False
        record.last_byte_at = now
        retry_after = resp.get("retry-after")
        if isinstance(retry_after, str):
            try:
                record.retry_after_s = float(retry_after)
            except ValueError:
                pass
        text = bytes(buf[:limit]).decode("utf-8", "replace").strip()
        record.outcome = Outcome.HTTP_ERROR
        record.error = f"HTTP {resp.status_code}" + (f": {text[:300]}" if text else "")
        st.reusable = complete and not resp.should_close()

    @staticmethod
    def _drain(resp: HTTPResponse, sock: Any) -> bool:
        """After [DONE], read the rest of the body briefly so the connection can be reused."""
        if resp.message_complete:
            return not resp.should_close()
        try:
            sock.settimeout(_DRAIN_S)
            while not resp.message_complete:
                data = sock.recv(_BLOCK)
                if not data:
                    return False
                resp.feed(data)
            return not resp.should_close()
        except (OSError, HTTPParseError):
            return False
        finally:
            try:
                sock.settimeout(None)
            except OSError:
                pass


def _read_body(
    sock: Any, resp: HTTPResponse, reader: StreamReader, dl: Deadline, st: _Exchange
) -> float:
    """Read the rest of a body with the socket's own ``recv`` (TLS); returns the last arrival time."""
    buf, consume, feed, record = resp._body_buffer, reader.consume, resp.feed, reader.record
    while True:
        data = sock.recv(_BLOCK)
        now = perf_counter()
        st.last_rx = dl.last = now
        if not data:
            _feed_eof(resp)
            consume(buf, now)
            return now
        feed(data)
        if (buf and consume(buf, now)) or resp.message_complete:
            return now
        if not dl.streaming and record.first_token_at is not None:
            dl.streaming = True


class _BodyPump:
    """Reads a stream's body inside the event loop's read callback, then resumes the request.

    Why: between two tokens nothing has arrived, so a greenlet that reads in a loop switches to the
    event loop and back for every chunk, and gevent's ``recv`` builds a waiter and starts and stops
    a watcher each time. Here one read watcher stays started for the whole body and its callback
    reads, parses and times each chunk where the event loop already is; the request's greenlet
    sleeps until the body ends (or fails) and is woken once. A deadline or a kill thrown into that
    greenlet stops the watcher on its way out (``finally``). Plain sockets only: TLS bytes must go
    through the SSL object's own ``recv``.
    """

    __slots__ = (
        "_raw",
        "_watcher",
        "_greenlet",
        "_buf",
        "_consume",
        "_feed",
        "_resp",
        "_dl",
        "_st",
        "_record",
    )

    def __init__(
        self, sock: Any, resp: HTTPResponse, reader: StreamReader, dl: Deadline, st: _Exchange
    ) -> None:
        self._raw = sock._sock.recv
        self._watcher = gevent.get_hub().loop.io(sock.fileno(), 1)
        self._greenlet: Any = None
        self._buf = resp._body_buffer
        self._consume = reader.consume
        self._feed = resp.feed
        self._resp = resp
        self._dl = dl
        self._st = st
        self._record = reader.record

    def run(self) -> float:
        """Wait until the body ended; returns the arrival time of its last bytes, or raises what
        reading or parsing it raised."""
        self._greenlet = gevent.getcurrent()
        watcher = self._watcher
        watcher.start(self._on_readable)
        try:
            while True:
                result = gevent.get_hub().switch()
                if type(result) is tuple:  # from _end; anything else woke it by mistake
                    break
        finally:
            watcher.stop()
            watcher.close()
        exc, now = result
        if exc is not None:
            raise exc
        return now

    def _on_readable(self) -> None:
        # runs in the event loop: must not block, and every exception goes to the request
        try:
            data = self._raw(_BLOCK)
        except BlockingIOError:  # woken without data (rare): wait for the next event
            return
        except BaseException as e:  # noqa: BLE001 - e.g. ECONNRESET: the request classifies it
            self._end(e, 0.0)
            return
        now = perf_counter()
        dl = self._dl
        self._st.last_rx = dl.last = now
        exc = None
        try:
            if data:
                self._feed(data)
                buf = self._buf
                if not ((buf and self._consume(buf, now)) or self._resp.message_complete):
                    if not dl.streaming and self._record.first_token_at is not None:
                        dl.streaming = True
                    return
            else:
                _feed_eof(self._resp)
                self._consume(self._buf, now)
        except BaseException as e:  # noqa: BLE001 - a parse error ends the body like a read error
            exc = e
        self._end(exc, now)

    def _end(self, exc: BaseException | None, now: float) -> None:
        self._watcher.stop()
        self._greenlet.switch((exc, now))  # the event loop goes on when the request next waits


class _Exchange:
    """Mutable state of one send, visible to the error handlers."""

    __slots__ = ("phase", "sock", "reusable", "last_rx")

    def __init__(self) -> None:
        self.phase = "connect"
        self.sock: Any = None
        self.reusable = False
        self.last_rx = 0.0


def _request_id_header(request_id: str) -> bytes:
    """``X-Request-Id`` so server logs (vLLM adopts it as its request id) match our records."""
    if request_id and _REQUEST_ID.match(request_id):
        return b"X-Request-Id: " + request_id.encode("ascii") + b"\r\n"
    return b""


def tls_context_factory(verify: bool) -> Any:
    """gevent's own SSLContext (cooperative handshakes and reads even without monkey patching);
    certificates and host names verified unless ``verify`` is False."""

    def factory(cafile: str | None = None) -> Any:
        import ssl

        import gevent.ssl

        ctx = gevent.ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if verify:
            if cafile:
                ctx.load_verify_locations(cafile=cafile)
            else:
                ctx.load_default_certs()
        else:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx

    return factory


def encode_headers(headers: dict[str, str]) -> bytes:
    """Per-request header lines; a name or value that could break the request is refused."""
    lines = []
    for name, value in headers.items():
        value = str(value)
        if not _HEADER_NAME.match(name) or not _HEADER_VALUE.match(value):
            raise ValueError(f"invalid HTTP header {name!r} (name or value not allowed)")
        lines.append(f"{name}: {value}\r\n")
    return "".join(lines).encode("latin-1")


def encode_body(body: dict[str, Any]) -> bytes:
    """The request JSON with streaming and usage switched on (the caller's body is not changed)."""
    if not isinstance(body, dict):
        raise TypeError(f"request body must be a dict, got {type(body).__name__}")
    full = dict(body)
    full["stream"] = True
    options = dict(full.get("stream_options") or {})
    options["include_usage"] = True
    full["stream_options"] = options
    try:
        return orjson.dumps(full)  # compact UTF-8, as below, several times faster
    except TypeError:  # what orjson refuses (an int beyond 64 bits, say) json may still write
        return json.dumps(full, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _feed_eof(resp: HTTPResponse) -> None:
    """Tell the parser the peer closed; a close-delimited body is complete, a chunked one is not."""
    try:
        resp.feed(b"")
    except HTTPParseError:
        pass


def _fail(record: RequestRecord, outcome: Outcome, error: str) -> None:
    record.outcome = outcome
    record.error = error


def _cancel(record: RequestRecord, e: BaseException) -> None:
    record.outcome = Outcome.CANCELLED
    record.error = f"cancelled by {type(e).__name__}"


def _describe(e: BaseException) -> str:
    name = errno.errorcode.get(getattr(e, "errno", None) or 0)
    return f"{type(e).__name__}{f' {name}' if name else ''}: {e}"
