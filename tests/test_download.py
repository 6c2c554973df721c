"""``burstgpt download`` against a local HTTP server: resume, dropped connections, corrupt files."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from locust_burstgpt.cli.main import main
from locust_burstgpt.provision.download import (
    DEFAULT_BASE_URL,
    RELEASE_FILES,
    DownloadError,
    Pin,
    download,
    file_url,
    release_file,
)

NAME = "BurstGPT_1.csv"
CONTENT = os.urandom(300_000)
PIN = Pin(hashlib.sha256(CONTENT).hexdigest(), len(CONTENT))


@dataclass
class Behaviour:
    """What the test server does; ``requests`` records each request's Range header."""

    body: bytes = CONTENT
    drop_after: int | None = None  # first full response: send this many bytes, then cut
    ignore_range: bool = False
    status: int = 200
    requests: list[str | None] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    behaviour: Behaviour

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        b = self.server.behaviour  # type: ignore[attr-defined]
        rng = self.headers.get("Range")
        b.requests.append(rng)
        if self.path != f"/files/{NAME}":
            self.send_error(404, "Not Found")
            return
        if b.status != 200:
            self.send_error(b.status)
            return
        start = 0
        if rng and not b.ignore_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(b.body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(b.body)}")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(b.body) - 1}/{len(b.body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(b.body) - start))
        self.end_headers()
        if b.drop_after is not None and start == 0:
            cut, b.drop_after = b.drop_after, None
            self.wfile.write(b.body[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(b.body[start:])


@pytest.fixture()
def server() -> Iterator[tuple[str, Behaviour]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.behaviour = Behaviour()  # type: ignore[attr-defined]
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/files/{{name}}", httpd.behaviour  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def fetch(url: str, tmp_path, **kw: object):
    kw.setdefault("pin", PIN)
    kw.setdefault("backoff_s", 0.0)
    kw.setdefault("timeout_s", 10.0)
    kw.setdefault("progress", io.StringIO())
    return download("BurstGPT_1", tmp_path, base_url=url, **kw)


def test_downloads_and_verifies(server, tmp_path):
    url, b = server
    out = io.StringIO()
    path = fetch(url, tmp_path, progress=out)
    assert path == tmp_path / NAME
    assert path.read_bytes() == CONTENT
    assert not (tmp_path / (NAME + ".part")).exists()
    assert b.requests == [None]
    log = out.getvalue()
    assert "100%" in log and "verified sha256" in log  # periodic lines when not a terminal


def test_dropped_connection_resumes_with_a_range_request(server, tmp_path):
    url, b = server
    b.drop_after = 120_000
    path = fetch(url, tmp_path)
    assert path.read_bytes() == CONTENT
    assert b.requests == [None, "bytes=120000-"]


def test_an_interrupted_earlier_run_is_resumed(server, tmp_path):
    url, b = server
    (tmp_path / (NAME + ".part")).write_bytes(CONTENT[:1000])
    assert fetch(url, tmp_path).read_bytes() == CONTENT
    assert b.requests == ["bytes=1000-"]


def test_a_server_without_range_support_restarts_cleanly(server, tmp_path):
    url, b = server
    b.ignore_range = True
    (tmp_path / (NAME + ".part")).write_bytes(CONTENT[:5000])
    assert fetch(url, tmp_path).read_bytes() == CONTENT


def test_corrupted_file_is_an_error_and_leaves_nothing(server, tmp_path):
    url, b = server
    body = bytearray(CONTENT)
    body[150_000] ^= 0xFF
    b.body = bytes(body)
    with pytest.raises(DownloadError, match="sha256 mismatch") as err:
        fetch(url, tmp_path)
    assert PIN.sha256 in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_wrong_size_is_refused_before_downloading(server, tmp_path):
    url, b = server
    b.body = CONTENT[:-1]
    with pytest.raises(DownloadError, match="pin says"):
        fetch(url, tmp_path)
    assert not (tmp_path / NAME).exists()


def test_http_errors_and_retries(server, tmp_path):
    url, b = server
    with pytest.raises(DownloadError, match="HTTP 404"):
        fetch(url.replace("/files/", "/elsewhere/"), tmp_path)
    b.status = 503
    with pytest.raises(DownloadError, match="gave up after 2 retries"):
        fetch(url, tmp_path, retries=2)
    assert len(b.requests) == 1 + 3
    assert not (tmp_path / NAME).exists()


def test_existing_files(server, tmp_path):
    url, b = server
    (tmp_path / NAME).write_bytes(CONTENT)
    assert fetch(url, tmp_path).read_bytes() == CONTENT
    assert b.requests == []  # verified, not fetched again
    (tmp_path / NAME).write_bytes(b"something else")
    with pytest.raises(DownloadError, match="move it away"):
        fetch(url, tmp_path)
    assert (tmp_path / NAME).read_bytes() == b"something else"


def test_release_names_pins_and_urls():
    assert release_file("burstgpt_3").name == "BurstGPT_3.csv"
    assert release_file("BurstGPT_without_fails_2.csv").pin.size == 142_376_815
    assert len(RELEASE_FILES) == 6
    assert all(len(f.pin.sha256) == 64 for f in RELEASE_FILES.values())
    with pytest.raises(DownloadError, match="BurstGPT_without_fails_3"):
        release_file("BurstGPT_4")
    assert (
        file_url(DEFAULT_BASE_URL, "BurstGPT_1.csv")
        == "https://github.com/HPMLL/BurstGPT/releases/download/v2.0/BurstGPT_1.csv"
    )
    assert file_url("http://mirror/data/", "BurstGPT_1.csv") == "http://mirror/data/BurstGPT_1.csv"


def test_cli_download(server, tmp_path, capsys):
    url, b = server
    b.drop_after = 50_000
    args = [
        "download",
        "BurstGPT_1",
        "--dir",
        str(tmp_path),
        "--base-url",
        url,
        "--sha256",
        PIN.sha256,
    ]
    assert main(args) == 0
    assert (tmp_path / NAME).read_bytes() == CONTENT
    captured = capsys.readouterr()
    assert str(tmp_path / NAME) in captured.out and "resuming at byte 50,000" in captured.err
    (tmp_path / NAME).unlink()
    assert main([*args[:-1], "0" * 64]) == 1
    assert "sha256 mismatch" in capsys.readouterr().err
    assert not (tmp_path / NAME).exists()
    assert main([*args[:-1], "xyz"]) == 2
    assert main(["download", "BurstGPT_4", "--dir", str(tmp_path)]) == 2
    assert "BurstGPT_without_fails_3" in capsys.readouterr().err
    assert main(["download", "--list"]) == 0
    assert "BurstGPT_without_fails_3" in capsys.readouterr().out
