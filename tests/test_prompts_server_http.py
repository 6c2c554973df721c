"""The prompt builder's HTTP helper against servers that close keep-alive connections.

uvicorn (vLLM, SGLang) closes a keep-alive connection idle for 5 s; a query sent on it at that
moment meets a closed socket. Such a query is sent again on a fresh connection; a server that never
answers still gives one clear error naming the request."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from locust_burstgpt.prompts.counters import PromptBackendError
from locust_burstgpt.prompts.server import JsonHttp


class ClosingServer:
    """Answers ``answered`` requests per connection (keep-alive headers), then reads the next one
    and closes the connection without a word: the race a keep-alive timeout opens."""

    def __init__(self, answered: int = 1) -> None:
        self.answered = answered
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.answers = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            for served in range(self.answered + 1):
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                while len(buf) < length:
                    buf += conn.recv(65536)
                buf = buf[length:]
                if served == self.answered:
                    return  # the request arrived; the connection closes unanswered
                self.answers += 1
                body = json.dumps({"count": 3, "tokens": [1, 2, 3]}).encode()
                conn.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                    + str(len(body)).encode()
                    + b"\r\nConnection: keep-alive\r\n\r\n"
                    + body
                )

    def close(self) -> None:
        self.sock.close()


def test_query_the_server_dropped_on_a_kept_alive_connection_is_sent_again() -> None:
    server = ClosingServer(answered=1)
    http = JsonHttp(f"http://127.0.0.1:{server.port}", timeout_s=10)
    try:
        for _ in range(3):
            assert http.post("/tokenize", {"content": "hello"}) == (
                200,
                {"count": 3, "tokens": [1, 2, 3]},
            )
    finally:
        http.close()
        server.close()
    # the 2nd and 3rd queries each went out on a connection that closed unanswered, then on a fresh one
    assert (server.answers, server.connections) == (3, 3)


def test_server_that_never_answers_gives_one_clear_error() -> None:
    server = ClosingServer(answered=0)
    http = JsonHttp(f"http://127.0.0.1:{server.port}", timeout_s=10)
    try:
        with pytest.raises(
            PromptBackendError, match=r"POST http://127\.0\.0\.1:\d+/tokenize: HTTPConnectionClosed"
        ):
            http.post("/tokenize", {"content": "hello"})
    finally:
        http.close()
        server.close()
    assert server.connections == JsonHttp.STALE_RETRIES + 1
