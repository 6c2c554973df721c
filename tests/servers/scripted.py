"""A raw-socket HTTP/SSE server whose every response misbehaves exactly as the request asks.

Used by the client tests; it runs on gevent in the test process, bound to
127.0.0.1, and writes bytes by hand so each fault is precise: the request body's ``scenario``
field picks the behaviour, ``n`` the number of content tokens, ``itl`` the gap between them.
Every chunk carries ``srv_t`` (the server's ``perf_counter`` at the write), so tests can
compare the client's arrival times with the server's send times.
"""

from __future__ import annotations

import json
import socket
import struct
import time
from typing import Any

import gevent
import gevent.socket
from gevent.server import StreamServer

HEAD_OK = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n" % len(data) + data + b"\r\n"


def event(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def token_chunk(text: str, chat: bool = True, finish: str | None = None) -> dict:
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    if chat:
        choice["delta"] = {"content": text} if text else {}
    else:
        choice["text"] = text
    return {"choices": [choice], "srv_t": time.perf_counter()}


def usage_chunk(prompt: int, completion: int, cached: int = 0) -> dict:
    return {
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "prompt_tokens_details": {"cached_tokens": cached},
        },
    }


class ScriptedServer:
    """``with ScriptedServer() as srv: srv.base_url``; counts connections and requests."""

    def __init__(self, ssl_context: Any = None) -> None:
        self.server = StreamServer(("127.0.0.1", 0), self._handle)
        self.ssl_context = ssl_context
        self.scheme = "https" if ssl_context is not None else "http"
        self.connections = 0
        self.requests = 0
        self.bodies: list[dict] = []
        self.headers: list[dict[str, str]] = []

    def __enter__(self) -> ScriptedServer:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(timeout=1)

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_port}"

    # -- connection handling -----------------------------------------------------------------
    def _handle(self, sock: socket.socket, addr: Any) -> None:
        self.connections += 1
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            try:  # a client refusing our certificate ends the handshake: expected, not an error
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
            except OSError:
                sock.close()
                return
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                lines = head.decode("latin-1").split("\r\n")
                headers = {
                    k.strip().lower(): v.strip()
                    for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)
                }
                length = int(headers.get("content-length", "0"))
                while len(buf) < length:
                    data = sock.recv(65536)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:length], buf[length:]
                self.requests += 1
                self.headers.append(headers)
                req = json.loads(body) if body else {}
                self.bodies.append(req)
                keep = self._respond(sock, req, lines[0])
                if not keep:
                    return
        except OSError:
            return
        finally:
            try:
                sock.close()
            except OSError:
                pass

    def _respond(self, sock: socket.socket, req: dict, request_line: str) -> bool:
        """Write the scenario's response; False when the connection must be closed."""
        scenario = req.get("scenario", "ok")
        n = int(req.get("n", 5))
        itl = float(req.get("itl", 0.0))
        chat = "/chat/" in request_line
        send = sock.sendall

        def tokens(count: int, start: int = 0) -> None:
            for i in range(start, start + count):
                if itl and i:
                    gevent.sleep(itl)
                send(chunk(event(token_chunk(f" t{i}", chat))))

        def finish(completion: int) -> None:
            send(chunk(event(token_chunk("", chat, "length"))))
            send(chunk(event(usage_chunk(int(req.get("prompt_tokens", 7)), completion))))
            send(chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")

        if scenario == "ok":
            send(HEAD_OK)
            send(chunk(event({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})))
            tokens(n)
            finish(n)
            return True
        if scenario == "stats":
            # the server's counters as the reply text (for a server in another process)
            send(HEAD_OK)
            stats = json.dumps({"connections": self.connections, "requests": self.requests})
            send(chunk(event(token_chunk(stats, chat))))
            finish(1)
            return True
        if scenario == "ok_then_close":
            # a complete keep-alive response, then the server closes anyway (llama.cpp does)
            send(HEAD_OK)
            tokens(n)
            finish(n)
            return False
        if scenario in ("http_500", "http_429", "http_503"):
            code = int(scenario[5:])
            msg = json.dumps({"error": {"message": f"scripted {code}", "code": code}}).encode()
            extra = b"Retry-After: 3\r\n" if code == 429 else b""
            send(
                b"HTTP/1.1 %d Error\r\nContent-Type: application/json\r\n%sContent-Length: %d\r\n\r\n"
                % (code, extra, len(msg))
                + msg
            )
            return True
        if scenario == "close_before_response":
            return False
        if scenario == "reset_before_response":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if scenario == "stall_before_first_token":
            send(HEAD_OK)
            send(chunk(event({"choices": [{"index": 0, "delta": {"role": "assistant"}}]})))
            gevent.sleep(float(req.get("seconds", 10)))
            return False
        if scenario == "stall_before_headers":
            gevent.sleep(float(req.get("seconds", 10)))
            return False
        if scenario == "stall_mid_stream":
            send(HEAD_OK)
            tokens(n)
            gevent.sleep(float(req.get("seconds", 10)))
            return False
        if scenario == "cut_mid_stream":
            send(HEAD_OK)
            tokens(n)
            return False
        if scenario == "reset_mid_stream":
            send(HEAD_OK)
            tokens(n)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if scenario == "malformed_sse":
            send(HEAD_OK)
            tokens(n)
            send(chunk(b'data: {"choices": [ this is not json\n\n'))
            gevent.sleep(float(req.get("seconds", 0)))
            return False
        if scenario == "garbage_http":
            send(b"HELLO THIS IS NOT HTTP\r\n\r\n")
            return False
        if scenario == "json_not_stream":
            msg = json.dumps({"choices": [{"message": {"content": "hi"}}]}).encode()
            send(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % len(msg)
                + msg
            )
            return True
        if scenario == "error_in_stream":
            send(HEAD_OK)
            tokens(n)
            send(chunk(event({"error": {"message": "engine died", "code": 503}})))
            send(chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
            return True
        if scenario == "no_done_close_delimited":
            # HTTP/1.0-style body ended by closing the connection, finish_reason but no [DONE]
            send(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n")
            for i in range(n):
                send(event(token_chunk(f" t{i}", chat)))
            send(event(token_chunk("", chat, "stop")))
            send(event(usage_chunk(3, n)))
            return False
        if scenario == "done_then_close":
            # [DONE] arrives but the chunked body is never terminated
            send(HEAD_OK)
            tokens(n)
            send(chunk(event(usage_chunk(3, n))))
            send(chunk(b"data: [DONE]\n\n"))
            return False
        if scenario == "byte_by_byte":
            # every byte of the body in its own write: lines and UTF-8 characters arrive split
            send(HEAD_OK)
            body = b"".join(event(token_chunk(t, chat)) for t in req["texts"])
            body += event(usage_chunk(3, len(req["texts"]))) + b"data: [DONE]\n\n"
            for i in range(len(body)):
                send(chunk(body[i : i + 1]))
                if i % 7 == 0:
                    gevent.sleep(0)
            send(b"0\r\n\r\n")
            return True
        if scenario == "sse_variants":
            # CRLF line ends, comments, event/id fields, a data field split over two lines
            send(HEAD_OK)
            send(chunk(b": keep-alive comment\r\n\r\n"))
            send(
                chunk(b"event: message\r\nid: 1\r\n" + event(token_chunk("a", chat))[:-1] + b"\r\n")
            )
            obj = json.dumps(token_chunk("b", chat))
            half = obj.index(", ") + 1  # split where a newline is JSON whitespace
            send(chunk(b"data:" + obj[:half].encode() + b"\ndata:" + obj[half:].encode() + b"\n\n"))
            send(chunk(event(token_chunk("c", chat, "length"))))
            send(chunk(event(usage_chunk(4, 3))))
            send(chunk(b"data: [DONE]\r\n\r\n") + b"0\r\n\r\n")
            return True
        raise ValueError(f"unknown scenario {scenario!r}")


class ScriptedServerProcess:
    """The same server in a child process (for clients that block the calling thread).

    It prints its port, serves until its stdin closes, and exits by itself after ``limit_s``.
    """

    def __init__(self, limit_s: float = 300.0) -> None:
        self.limit_s = limit_s
        self.proc: Any = None
        self.port = 0

    def __enter__(self) -> ScriptedServerProcess:
        import subprocess
        import sys
        from pathlib import Path

        root = Path(__file__).resolve().parents[2]
        code = f"import sys; from tests.servers.scripted import _serve; _serve({self.limit_s!r})"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.proc.kill()
            raise RuntimeError(f"scripted server did not start: {line!r}")
        self.port = int(line)
        return self

    def __exit__(self, *exc: object) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except Exception:  # noqa: BLE001
            self.proc.kill()
            self.proc.wait(timeout=10)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _serve(limit_s: float) -> None:
    import sys

    with ScriptedServer() as srv:
        print(srv.server.server_port, flush=True)
        waiter = gevent.spawn(lambda: gevent.get_hub().threadpool.apply(sys.stdin.read))
        waiter.join(timeout=limit_s)
