"""The side channel (models, props, tokenize, metrics queries) against servers that misbehave.

uvicorn (vLLM, SGLang) closes a keep-alive connection idle for 5 s; a query sent on it at that
moment meets a closed socket. Such a query is sent again on a fresh connection; a server that never
answers still gives one clear error naming the request. A redirect to another origin is never
followed (the API key stays with the server it was given for), a same-origin one is; a URL's
user:password part is never printed; a ``/v1`` suffix of the server URL is accepted."""

from __future__ import annotations

import json
import socket
import threading

import pytest

from locust_burstgpt.client.sidechannel import SideChannel, SideChannelError, redact_url


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
    http = SideChannel(f"http://127.0.0.1:{server.port}", timeout_s=10)
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
    http = SideChannel(f"http://127.0.0.1:{server.port}", timeout_s=10)
    try:
        with pytest.raises(
            SideChannelError, match=r"POST http://127\.0\.0\.1:\d+/tokenize: HTTPConnectionClosed"
        ):
            http.post("/tokenize", {"content": "hello"})
    finally:
        http.close()
        server.close()
    assert server.connections == SideChannel.STALE_RETRIES + 1


class RedirectingServer:
    """Answers every request with what ``answer(path)`` returns: (status, extra header lines, body);
    records every request's path and Authorization header."""

    def __init__(self, answer) -> None:  # noqa: ANN001
        self.answer = answer
        self.seen: list[tuple[str, str | None]] = []
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(conn,), daemon=True).start()

    def _connection(self, conn: socket.socket) -> None:
        with conn:
            buf = b""
            while True:
                while b"\r\n\r\n" not in buf:
                    chunk = conn.recv(65536)
                    if not chunk:
                        return
                    buf += chunk
                head, _, buf = buf.partition(b"\r\n\r\n")
                lines = head.decode().split("\r\n")
                path = lines[0].split()[1]
                headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
                auth = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
                self.seen.append((path, auth))
                status, extra, body = self.answer(path)
                conn.sendall(
                    f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
                    + body
                )

    def close(self) -> None:
        self.sock.close()


def test_redirect_to_another_origin_is_not_followed_and_the_key_stays_home() -> None:
    elsewhere = RedirectingServer(lambda path: (200, "", b'{"data": []}'))
    home = RedirectingServer(lambda path: (302, f"Location: {elsewhere.url}/v1/models\r\n", b""))
    side = SideChannel(home.url, api_key="sk-secret-123", timeout_s=5)
    try:
        with pytest.raises(SideChannelError, match="another origin") as e:
            side.get_json("/v1/models")
    finally:
        side.close()
        home.close()
        elsewhere.close()
    assert elsewhere.seen == []  # not a single request reached the other origin
    assert home.seen == [("/v1/models", "Bearer sk-secret-123")]
    assert "sk-secret" not in str(e.value)


def test_redirect_within_the_origin_is_followed_with_the_key() -> None:
    def answer(path: str):  # noqa: ANN202
        if path == "/v1/models":
            return 307, "Location: /v2/models\r\n", b""
        return 200, "", b'{"data": [{"id": "m"}]}'

    home = RedirectingServer(answer)
    side = SideChannel(home.url + "/v1", api_key="sk-k", timeout_s=5)  # a /v1 suffix is the root
    try:
        assert side.get_json("/v1/models") == (200, {"data": [{"id": "m"}]})
    finally:
        side.close()
        home.close()
    assert home.seen == [("/v1/models", "Bearer sk-k"), ("/v2/models", "Bearer sk-k")]


def test_user_and_password_in_the_url_are_never_printed() -> None:
    assert redact_url("http://bob:hunter2@h:8000/v1") == "http://h:8000/v1"
    side = SideChannel("http://bob:hunter2@127.0.0.1:9/v1", timeout_s=2)  # nothing listens
    try:
        with pytest.raises(SideChannelError) as e:
            side.get_json("/v1/models")
    finally:
        side.close()
    assert "hunter2" not in str(e.value) and "bob" not in str(e.value)
    assert "http://127.0.0.1:9/v1/models" in str(e.value)
