"""A tiny raw HTTP/1.1 client for the simulator tests: it timestamps every chunk it reads, so tests
can check what the simulator put on the wire and when."""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass, field


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    t_sent: float
    t_headers: float
    chunks: list[tuple[float, bytes]] = field(default_factory=list)  # (arrival, payload)
    complete: bool = False  # chunked terminator (or full Content-Length body) received
    eof: bool = False  # server closed the connection

    @property
    def body(self) -> bytes:
        return b"".join(c for _, c in self.chunks)

    def events(self) -> list[tuple[float, bytes]]:
        """SSE ``data:`` payloads with the arrival time of the chunk that completed them."""
        out: list[tuple[float, bytes]] = []
        buf = b""
        for t, c in self.chunks:
            buf += c
            while b"\n\n" in buf:
                ev, buf = buf.split(b"\n\n", 1)
                assert ev.startswith(b"data: "), ev
                out.append((t, ev[6:]))
        assert buf == b"", buf
        return out

    def json_events(self) -> list[dict]:
        return [json.loads(e) for _, e in self.events() if e != b"[DONE]"]

    def json(self) -> dict:
        return json.loads(self.body)


class RawClient:
    """One keep-alive connection; ``request`` sends and reads one full response."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        host, port = base_url.rsplit("/", 1)[-1].split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.sock.makefile("rb")

    def close(self) -> None:
        self.f.close()
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(
        self,
        method: str,
        path: str,
        body: object = None,
        headers: dict[str, str] | None = None,
        version: str = "HTTP/1.1",
    ) -> float:
        data = (
            b""
            if body is None
            else (body if isinstance(body, bytes) else json.dumps(body).encode())
        )
        head = f"{method} {path} {version}\r\nHost: x\r\nContent-Length: {len(data)}\r\n"
        if data:
            head += "Content-Type: application/json\r\n"
        for k, v in (headers or {}).items():
            head += f"{k}: {v}\r\n"
        t = time.monotonic()
        self.sock.sendall(head.encode() + b"\r\n" + data)
        return t

    def read(self, t_sent: float) -> RawResponse:
        line = self.f.readline()
        if not line:
            return RawResponse(0, {}, t_sent, time.monotonic(), eof=True)
        status = int(line.split()[1])
        headers: dict[str, str] = {}
        while (h := self.f.readline()) not in (b"\r\n", b""):
            k, _, v = h.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        r = RawResponse(status, headers, t_sent, time.monotonic())
        if "content-length" in headers:
            n = int(headers["content-length"])
            data = self.f.read(n)
            r.chunks.append((time.monotonic(), data))
            r.complete = len(data) == n
            return r
        chunked = headers.get("transfer-encoding") == "chunked"
        while True:
            if not chunked:
                data = self.f.read1(65536)
                if not data:
                    r.eof = True
                    return r
                r.chunks.append((time.monotonic(), data))
                continue
            size_line = self.f.readline()
            if not size_line:
                r.eof = True
                return r
            size = int(size_line.strip(), 16)
            if size == 0:
                assert self.f.readline() == b"\r\n"
                r.complete = True
                return r
            data = self.f.read(size)
            t = time.monotonic()
            if len(data) < size or self.f.read(2) != b"\r\n":
                r.eof = True
                r.chunks.append((t, data))
                return r
            r.chunks.append((t, data))

    def request(
        self,
        method: str,
        path: str,
        body: object = None,
        headers: dict[str, str] | None = None,
        version: str = "HTTP/1.1",
    ) -> RawResponse:
        return self.read(self.send(method, path, body, headers, version))

    def at_eof(self) -> bool:
        """True when the server has closed the connection (reads nothing more)."""
        return self.f.read(1) == b""


def chat(
    content: str = "Hi", max_tokens: int = 8, stream: bool = True, usage: bool = True, **extra
) -> dict:
    body = {
        "model": "burstgpt-sim",
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": stream,
        **extra,
    }
    if stream and usage:
        body["stream_options"] = {"include_usage": True}
    return body


def metric(base_url: str, name: str, labels: str = "") -> float:
    with RawClient(base_url) as c:
        page = c.request("GET", "/metrics").body.decode()
    pat = re.compile(rf"^{re.escape(name)}\{{[^}}]*{re.escape(labels)}[^}}]*\}} (\S+)$", re.M)
    m = pat.search(page)
    assert m, f"{name} {labels} not in /metrics"
    return float(m.group(1))
