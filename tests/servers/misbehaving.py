"""A hand-written HTTP/1.1 socket server that misbehaves on purpose, one conversation at a time.

Tests put it in front of the simulator: requests of conversations the plan names get the planned
misbehaviour, every other request (and ``/v1/models``, ``/tokenize``, the prompt builder's probes)
is forwarded to the simulator unchanged, so the other users see a healthy server. The plan maps a
conversation id (as in ``X-Request-Id: <run>-<conversation>-<turn>``), or ``<conversation>-<turn>``
for one turn, to a behaviour:

* ``sim:<x-sim-fault value>``: forward with the simulator's own fault header, e.g.
  ``sim:http_429; retry_after=1`` or ``sim:stall_mid_stream; after=3; seconds=6``;
* ``malformed_json``: three good SSE events, then one whose JSON is cut off;
* ``missing_done``: a complete stream (finish_reason and usage) whose body ends without ``[DONE]``;
* ``wrong_content_type``: ``200`` with ``text/html`` and an HTML page;
* ``huge_chunk``: one SSE event carrying 10 MB of content, then a normal end;
* ``slow_drip``: the whole response written one byte per second;
* ``reset_mid_stream``: the head and three events, then a TCP reset;
* ``reset_before_response``: a TCP reset right after the request arrived;
* ``down:<seconds>``: a reset, and the server stops listening (connections are refused) for that
  long, then listens again on the same port;
* ``echo_auth``: ``401`` whose error message repeats the request's ``Authorization`` header (as some
  gateways do), to check the client never writes a key it receives back.

With ``tls=(certfile, keyfile)`` it speaks HTTPS (for certificate verification tests).

``once:<behaviour>`` applies the behaviour to the first arrival of a request only (a retry of it,
``<request id>.r<n>``, is forwarded normally). Every arrival is logged in ``seen`` with its wall-clock time.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from locust_burstgpt import simpletok

HUGE_BYTES = 10 * 1024 * 1024
DRIP_LIMIT_S = 60.0  # a slow drip never outlives this, whoever is listening
_RID = re.compile(r"\A(?P<base>[0-9a-f]{8}-(?P<conv>.+)-(?P<turn>\d+))(?:\.r\d+)?\Z")


@dataclass
class Arrival:
    wall: float
    request_id: str | None
    path: str
    behaviour: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Outage:
    down_at: float
    up_at: float | None = None


@dataclass
class MisbehavingServer:
    upstream: str | None = None  # base URL of a healthy server (the simulator)
    plan: dict[str, str] = field(default_factory=dict)
    port: int = 0
    tls: tuple[str, str] | None = None  # (certificate, key) files: serve HTTPS
    seen: list[Arrival] = field(default_factory=list)
    outages: list[Outage] = field(default_factory=list)
    _listener: socket.socket | None = None
    _conns: set = field(default_factory=set)
    _arrivals: Counter = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopped: threading.Event = field(default_factory=threading.Event)

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MisbehavingServer:
        self._listen()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._close_listener()
        self._drop_connections()

    def __enter__(self) -> MisbehavingServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def arrivals_of(self, request_id: str) -> list[Arrival]:
        with self._lock:
            return [a for a in self.seen if a.request_id == request_id]

    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        sock.settimeout(0.1)
        self.port = sock.getsockname()[1]
        self._listener = sock
        threading.Thread(
            target=self._accept_loop, args=(sock,), daemon=True, name="misbehaving-accept"
        ).start()

    def _close_listener(self) -> None:
        sock, self._listener = self._listener, None
        if sock is not None:
            sock.close()

    def _drop_connections(self) -> None:
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            _reset(c)

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._listener is listener and not self._stopped.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.add(conn)
            threading.Thread(
                target=self._serve, args=(conn,), daemon=True, name="misbehaving-conn"
            ).start()

    def go_down(self, seconds: float) -> None:
        """Refuse connections for ``seconds``: close the listener and every open connection."""
        outage = Outage(time.time())
        self.outages.append(outage)
        self._close_listener()
        self._drop_connections()

        def come_back() -> None:
            if self._stopped.wait(seconds):
                return
            self._listen()
            outage.up_at = time.time()

        threading.Thread(target=come_back, daemon=True, name="misbehaving-outage").start()

    # -- one connection -----------------------------------------------------------------------
    def _serve(self, conn: socket.socket) -> None:
        raw = conn
        buf = b""
        try:
            if self.tls is not None:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(*self.tls)
                conn = ctx.wrap_socket(
                    conn, server_side=True
                )  # a client that rejects the cert fails here
            while True:
                request, buf = _read_request(conn, buf)
                if request is None:
                    return
                if not self._answer(conn, *request):
                    return
        except (OSError, ssl.SSLError):
            pass
        finally:
            with self._lock:
                self._conns.discard(raw)
            with contextlib.suppress(OSError):
                conn.close()

    def _answer(
        self,
        conn: socket.socket,
        method: str,
        path: str,
        headers: dict[str, str],
        head: bytes,
        body: bytes,
    ) -> bool:
        """Answer one request; False when the connection must end."""
        rid = headers.get("x-request-id")
        behaviour = "forward"
        if method == "POST" and path.endswith("/completions"):
            behaviour = self._behaviour(rid)
        with self._lock:
            self.seen.append(Arrival(time.time(), rid, path, behaviour, headers))
        if behaviour.startswith("down:"):
            _reset(conn)
            self.go_down(float(behaviour[len("down:") :]))
            return False
        if behaviour == "reset_before_response":
            _reset(conn)
            return False
        if behaviour == "echo_auth":
            message = f"Invalid API key: {headers.get('authorization', '')}"
            conn.sendall(
                _response(
                    401, "application/json", json.dumps({"error": {"message": message}}).encode()
                )
            )
            return True
        if behaviour in ("forward", "ok") or behaviour.startswith("sim:"):
            if self.upstream is None:
                return self._serve_locally(conn, method, path, body)
            fault = behaviour[len("sim:") :] if behaviour.startswith("sim:") else None
            _forward(conn, self.upstream, head, body, fault)
            return False
        request = _json(body)
        return _MISBEHAVIOURS[behaviour](conn, request)

    def _behaviour(self, rid: str | None) -> str:
        m = _RID.match(rid or "")
        if m is None:
            return "forward"
        conv, turn = m.group("conv"), m.group("turn")
        plan = self.plan.get(f"{conv}-{turn}") or self.plan.get(conv) or "forward"
        if plan.startswith("once:"):
            with self._lock:
                self._arrivals[m.group("base")] += 1  # a retry (".r1") is not a first arrival
                first = self._arrivals[m.group("base")] == 1
            plan = plan[len("once:") :] if first else "forward"
        return plan

    def _serve_locally(self, conn: socket.socket, method: str, path: str, body: bytes) -> bool:
        """Without an upstream: a minimal healthy OpenAI-compatible server."""
        if method == "GET" and path.startswith("/v1/models"):
            payload = {
                "object": "list",
                "data": [{"id": "misbehaving", "object": "model", "owned_by": "test"}],
            }
            conn.sendall(_response(200, "application/json", json.dumps(payload).encode()))
            return True
        if method == "POST" and path.endswith("/completions"):
            return _ok_stream(conn, _json(body))
        conn.sendall(_response(404, "application/json", b'{"error": {"message": "not found"}}'))
        return True


# -- helpers: HTTP -----------------------------------------------------------------------------
def _read_request(conn: socket.socket, buf: bytes) -> tuple[tuple | None, bytes]:
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return None, b""
        buf += data
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length") or 0)
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            return None, b""
        rest += data
    return (method, path, headers, head, rest[:length]), rest[length:]


def _response(status: int, ctype: str, body: bytes, extra: str = "") -> bytes:
    reason = {200: "OK", 401: "Unauthorized", 404: "Not Found"}.get(status, "Status")
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        f"{extra}\r\n"
    ).encode("latin-1") + body


def _json(body: bytes) -> dict:
    try:
        value = json.loads(body or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _reset(conn: socket.socket) -> None:
    """Close with RST (SO_LINGER 0) rather than FIN."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        conn.close()


def _forward(
    conn: socket.socket, upstream: str, head: bytes, body: bytes, fault: str | None
) -> None:
    """Send one request to the upstream on a fresh connection and relay its answer byte for byte.

    The relayed response says ``Connection: close`` and the client connection ends with it, so the
    response's own framing (chunked or not) never has to be parsed.
    """
    url = urlsplit(upstream)
    lines = [
        ln
        for ln in head.split(b"\r\n")
        if not ln.lower().startswith((b"connection:", b"x-sim-fault:"))
    ]
    lines.append(b"Connection: close")
    if fault:
        lines.append(b"x-sim-fault: " + fault.encode("latin-1"))
    with socket.create_connection((url.hostname, url.port), timeout=60) as up:
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = up.recv(65536)
            if not chunk:
                _reset(conn)  # the upstream cut the connection before answering
                return
            data += chunk
        rhead, _, rest = data.partition(b"\r\n\r\n")
        rlines = [ln for ln in rhead.split(b"\r\n") if not ln.lower().startswith(b"connection:")]
        conn.sendall(b"\r\n".join([*rlines, b"Connection: close"]) + b"\r\n\r\n" + rest)
        while chunk := up.recv(65536):
            conn.sendall(chunk)


# -- helpers: SSE ------------------------------------------------------------------------------
def _event(obj: object) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


_SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
)


def _stream_events(request: dict, content: list[str]) -> tuple[list[bytes], bytes]:
    """(role + content events, finish + usage events) of a chat stream with these contents."""
    chat = "messages" in request
    prompt = (
        simpletok.chat_prompt_count(request.get("messages") or [])
        if chat
        else simpletok.count(str(request.get("prompt") or ""))
    )

    def piece(text: str | None, finish: str | None = None) -> dict:
        choice: dict = {"index": 0, "finish_reason": finish}
        if chat:
            choice["delta"] = {} if text is None else {"content": text}
        else:
            choice["text"] = text or ""
        return {
            "id": "mis-1",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "model": "misbehaving",
            "choices": [choice],
        }

    events = [_event(piece(t)) for t in content]
    usage = {
        "id": "mis-1",
        "object": "chat.completion.chunk",
        "model": "misbehaving",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": len(content),
            "total_tokens": prompt + len(content),
        },
    }
    return events, _event(piece(None, "length")) + _event(usage)


def _tokens(request: dict) -> list[str]:
    n = int(request.get("max_tokens") or request.get("max_completion_tokens") or 16)
    return [f" w{i}" for i in range(max(1, n))]


def _ok_stream(conn: socket.socket, request: dict) -> bool:
    events, end = _stream_events(request, _tokens(request))
    conn.sendall(
        _SSE_HEAD
        + b"".join(_chunk(e) for e in events)
        + _chunk(end + b"data: [DONE]\n\n")
        + b"0\r\n\r\n"
    )
    return True


def _malformed_json(conn: socket.socket, request: dict) -> bool:
    events, _ = _stream_events(request, _tokens(request))
    bad = b'data: {"id":"mis-1","choices":[{"index":0,"delta":{"content":"cut\n\n'
    conn.sendall(_SSE_HEAD + b"".join(_chunk(e) for e in events[:3]) + _chunk(bad))
    time.sleep(0.5)  # let the client read the bad event before the connection closes
    return False


def _missing_done(conn: socket.socket, request: dict) -> bool:
    events, end = _stream_events(request, _tokens(request))
    conn.sendall(_SSE_HEAD + b"".join(_chunk(e) for e in events) + _chunk(end) + b"0\r\n\r\n")
    return True


def _wrong_content_type(conn: socket.socket, request: dict) -> bool:
    page = b"<html><head><title>Gateway</title></head><body>Please sign in</body></html>\n"
    conn.sendall(_response(200, "text/html; charset=utf-8", page))
    return True


def _huge_chunk(conn: socket.socket, request: dict) -> bool:
    tokens = _tokens(request)
    tokens[0] = "x" * HUGE_BYTES
    events, end = _stream_events(request, tokens)
    conn.sendall(
        _SSE_HEAD
        + b"".join(_chunk(e) for e in events)
        + _chunk(end + b"data: [DONE]\n\n")
        + b"0\r\n\r\n"
    )
    return True


def _slow_drip(conn: socket.socket, request: dict) -> bool:
    events, end = _stream_events(request, _tokens(request))
    data = (
        _SSE_HEAD
        + b"".join(_chunk(e) for e in events)
        + _chunk(end + b"data: [DONE]\n\n")
        + b"0\r\n\r\n"
    )
    started = time.monotonic()
    for i in range(len(data)):
        if time.monotonic() - started > DRIP_LIMIT_S:
            break
        conn.sendall(data[i : i + 1])  # raises once the client has given up and closed
        time.sleep(1.0)
    return False


def _reset_mid_stream(conn: socket.socket, request: dict) -> bool:
    events, _ = _stream_events(request, _tokens(request))
    conn.sendall(_SSE_HEAD + b"".join(_chunk(e) for e in events[:3]))
    time.sleep(0.2)
    _reset(conn)
    return False


_MISBEHAVIOURS = {
    "malformed_json": _malformed_json,
    "missing_done": _missing_done,
    "wrong_content_type": _wrong_content_type,
    "huge_chunk": _huge_chunk,
    "slow_drip": _slow_drip,
    "reset_mid_stream": _reset_mid_stream,
}
