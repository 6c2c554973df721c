"""The scripted server the client tests use speaks well-formed HTTP and SSE when asked to."""

from __future__ import annotations

import json

import gevent
import gevent.socket

from tests.servers.scripted import ScriptedServer


def test_scripted_server_speaks_http_and_sse() -> None:
    """The helper itself: an ok scenario is a well-formed chunked SSE response."""
    with ScriptedServer() as srv:
        s = gevent.socket.create_connection(("127.0.0.1", srv.server.server_port))
        body = json.dumps({"n": 2}).encode()
        s.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
            % len(body)
            + body
        )
        data = b""
        with gevent.Timeout(5):
            while not data.endswith(b"0\r\n\r\n"):
                data += s.recv(65536)
        s.close()
    assert data.startswith(b"HTTP/1.1 200 OK")
    assert data.count(b"data: ") == 6  # role, 2 tokens, finish, usage, [DONE]
    assert b"data: [DONE]" in data
