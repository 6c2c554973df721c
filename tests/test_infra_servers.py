"""The test infrastructure itself: real servers answer as the other tests assume, chromium renders.

Each test talks to the servers over plain HTTP (no project code) so that a failure here points at the
environment, not at the plugin.
"""

from __future__ import annotations

import http.server
import json
import os
import struct
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
from PIL import Image

from tests.servers import browser as browser_mod
from tests.servers.browser import launch_chromium
from tests.servers.managed import BELOW_GENERATOR, ManagedServer, free_port

# The model answers this in a couple of tokens and then stops by itself (EOS) on both servers.
PROMPT = [{"role": "user", "content": "Reply with one word: yes or no. Is the sky blue?"}]
TOKENIZE_SAMPLES = [
    "Hello, world! tiktoken offline works.",
    "  leading spaces, trailing tabs\t\t\nand a new line",
    "Numbers 1234567890 and 3.14159, dates 2023-11-24T08:00:00Z",
    "Ünïcödé: café, naïve, 東京, Привет, 🙂🚀",
    "def f(x):\n    return {'a': [x ** 2 for x in range(10)]}",
]


@dataclass
class StreamResult:
    """What one streamed chat completion returned."""

    content_chunks: int = 0
    text: str = ""
    finish_reason: str | None = None
    usage: dict = field(default_factory=dict)
    done: bool = False


def post_json(url: str, body: dict, timeout: float = 120) -> dict:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def stream_chat(base_url: str, timeout: float = 120, **params: object) -> StreamResult:
    """POST a streamed /v1/chat/completions and tally the SSE chunks."""
    body = {
        "model": "smollm2",
        "messages": PROMPT,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
        **params,
    }
    req = urllib.request.Request(
        base_url + "/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    out = StreamResult()
    with urllib.request.urlopen(req, timeout=timeout) as r:
        for raw in r:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line[len("data:") :].strip()
            if data == "[DONE]":
                out.done = True
                break
            chunk = json.loads(data)
            if chunk.get("usage"):
                out.usage = chunk["usage"]
            for choice in chunk.get("choices", []):
                if choice["delta"].get("content"):
                    out.content_chunks += 1
                    out.text += choice["delta"]["content"]
                if choice.get("finish_reason"):
                    out.finish_reason = choice["finish_reason"]
    return out


# --- process management -------------------------------------------------------------------------

# A server that forks a child into its own process group, like vLLM's engine core, then serves /health.
_FORKING_SERVER = """
import http.server, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
print("child", child.pid, flush=True)
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_managed_server_stops_whole_process_group(tmp_path: Path) -> None:
    port = free_port()
    server = ManagedServer(
        "forking",
        [sys.executable, "-c", _FORKING_SERVER, str(port)],
        port,
        tmp_path / "forking.log",
    )
    server.start(timeout_s=30)
    assert server.startup_s is not None and server.startup_s > 0
    child = int(server.log_path.read_text().split()[1])
    assert _pid_alive(child)
    server.stop()
    assert not _pid_alive(server.proc.pid)
    assert not _pid_alive(child)


# A server that keeps core 0 busy (as vLLM's engine core does) and answers /health.
_BUSY_SERVER = """
import http.server, os, sys, threading
os.sched_setaffinity(0, {0})
def spin():
    while True:
        pass
threading.Thread(target=spin, daemon=True).start()
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"""

# A generator on the same core: the share of a CPU it gets over 1.5 s of wanting all of it.
_GENERATOR = """
import os, time
os.sched_setaffinity(0, {0})
t, c = time.monotonic(), time.process_time()
while time.monotonic() - t < 1.5:
    pass
print((time.process_time() - c) / (time.monotonic() - t))
"""


def test_managed_server_yields_the_cpu_to_the_generator(tmp_path: Path) -> None:
    """Servers run below the generator's priority, and that holds across the kernel's autogroups:
    a server in a session of its own would take half of a shared core whatever its nice value."""
    port = free_port()
    server = ManagedServer(
        "busy",
        [*BELOW_GENERATOR, sys.executable, "-c", _BUSY_SERVER, str(port)],
        port,
        tmp_path / "busy.log",
    )
    server.start(timeout_s=30)
    try:
        pid = server.proc.pid
        assert os.getpgid(pid) == pid  # its own group: stopped as a whole
        assert os.getsid(pid) == os.getsid(0)  # the caller's session: its nice value counts
        assert os.getpriority(os.PRIO_PROCESS, pid) == os.getpriority(os.PRIO_PROCESS, 0) + 10
        share = float(
            subprocess.run(
                [sys.executable, "-c", _GENERATOR],
                capture_output=True,
                text=True,
                check=True,
                timeout=30,
            ).stdout
        )
    finally:
        server.stop()
    assert share > 0.7, f"the generator got {share:.0%} of a core it shares with a busy server"


def test_managed_server_start_failure_names_log_and_leaves_nothing(tmp_path: Path) -> None:
    port = free_port()
    server = ManagedServer(
        "broken", [sys.executable, "-c", "import sys; sys.exit(3)"], port, tmp_path / "broken.log"
    )
    with pytest.raises(RuntimeError, match=r"broken exited with 3; log: .*broken\.log"):
        server.start(timeout_s=30)
    assert not _pid_alive(server.proc.pid)


def test_managed_server_start_timeout_stops_the_group(tmp_path: Path) -> None:
    port = free_port()  # nothing ever listens there: the server never becomes healthy
    server = ManagedServer(
        "silent",
        [sys.executable, "-c", "import time; time.sleep(600)"],
        port,
        tmp_path / "silent.log",
    )
    with pytest.raises(RuntimeError, match=r"silent not healthy after 1\.0s"):
        server.start(timeout_s=1.0)
    assert not _pid_alive(server.proc.pid)


# --- llama.cpp ----------------------------------------------------------------------------------


@pytest.mark.llamacpp
def test_llamacpp_streams_exact_length_with_ignore_eos(llama_server: ManagedServer) -> None:
    # Control: without ignore_eos the model stops by itself long before max_tokens.
    natural = stream_chat(llama_server.base_url, max_tokens=80)
    assert natural.finish_reason == "stop" and natural.usage["completion_tokens"] < 16

    forced = stream_chat(llama_server.base_url, max_tokens=80, ignore_eos=True)
    assert forced.done
    assert forced.finish_reason == "length"
    assert forced.usage["completion_tokens"] == 80
    assert forced.content_chunks == 80  # llama.cpp sends one SSE chunk per token
    assert forced.text.startswith(natural.text)  # same greedy path until the EOS it ignored


# --- vLLM ---------------------------------------------------------------------------------------


@pytest.mark.vllm
@pytest.mark.timeout(600)  # the first vLLM test also pays for the server start
def test_vllm_honours_min_tokens_exactly(vllm_server: ManagedServer) -> None:
    natural = stream_chat(vllm_server.base_url, max_tokens=64)
    assert natural.finish_reason == "stop" and natural.usage["completion_tokens"] < 16

    forced = stream_chat(vllm_server.base_url, max_tokens=64, min_tokens=64)
    assert forced.done
    assert forced.finish_reason == "length"
    assert forced.usage["completion_tokens"] == 64
    assert forced.text.startswith(natural.text)


@pytest.mark.vllm
@pytest.mark.timeout(600)
def test_vllm_exposes_tokenize_and_prometheus_metrics(vllm_server: ManagedServer) -> None:
    with urllib.request.urlopen(vllm_server.base_url + "/v1/models", timeout=30) as r:
        assert [m["id"] for m in json.loads(r.read())["data"]] == ["smollm2"]
    text = TOKENIZE_SAMPLES[0]
    got = post_json(
        vllm_server.base_url + "/tokenize",
        {"model": "smollm2", "prompt": text, "add_special_tokens": False},
    )
    assert got["count"] == len(got["tokens"]) > 0
    assert got["max_model_len"] == 4096

    before = _vllm_counter(vllm_server.base_url, "vllm:generation_tokens_total")
    stream_chat(vllm_server.base_url, max_tokens=8, ignore_eos=True)
    after = _vllm_counter(vllm_server.base_url, "vllm:generation_tokens_total")
    assert after - before == 8


def _vllm_counter(base_url: str, name: str) -> float:
    """Sum of a Prometheus counter's samples (all label sets) from vLLM's /metrics."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=30) as r:
        lines = r.read().decode().splitlines()
    samples = [
        float(ln.rsplit(" ", 1)[1])
        for ln in lines
        if ln.startswith(name + "{") or ln.startswith(name + " ")
    ]
    assert samples, f"{name} not in /metrics"
    return sum(samples)


# --- tokenizer ----------------------------------------------------------------------------------


@pytest.mark.llamacpp
@pytest.mark.vllm
def test_tokenizer_json_matches_llamacpp_tokenize(
    smollm2_tokenizer_json: Path, llama_server: ManagedServer
) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(smollm2_tokenizer_json))
    for text in TOKENIZE_SAMPLES:
        server_ids = post_json(
            llama_server.base_url + "/tokenize", {"content": text, "add_special": False}
        )["tokens"]
        assert tok.encode(text, add_special_tokens=False).ids == server_ids, text


@pytest.mark.llamacpp
@pytest.mark.vllm
@pytest.mark.timeout(600)
def test_llamacpp_and_vllm_agree_on_tokens(
    llama_server: ManagedServer, vllm_server: ManagedServer
) -> None:
    for text in TOKENIZE_SAMPLES:
        llama_ids = post_json(
            llama_server.base_url + "/tokenize", {"content": text, "add_special": False}
        )["tokens"]
        vllm_ids = post_json(
            vllm_server.base_url + "/tokenize",
            {"model": "smollm2", "prompt": text, "add_special_tokens": False},
        )["tokens"]
        assert llama_ids == vllm_ids, text
    # Same chat template on both sides: the same messages cost the same prompt tokens.
    content = post_json(
        llama_server.base_url + "/tokenize", {"content": PROMPT[0]["content"], "add_special": False}
    )["tokens"]
    llama = stream_chat(llama_server.base_url, max_tokens=1)
    vllm = stream_chat(vllm_server.base_url, max_tokens=1)
    assert llama.usage["prompt_tokens"] == vllm.usage["prompt_tokens"] > len(content)


# --- chromium -----------------------------------------------------------------------------------

PAGE = """<!doctype html>
<html><head><title>burstgpt infra check</title>
<style>body { margin: 0; background: rgb(0, 128, 255); }</style></head>
<body><h1 id="answer">waiting</h1>
<script>document.getElementById("answer").textContent = "answer " + (6 * 7);</script>
</body></html>
"""


@pytest.fixture
def local_page(tmp_path: Path) -> Iterator[str]:
    """A one-page site served by http.server on 127.0.0.1; yields its URL."""
    (tmp_path / "index.html").write_text(PAGE)
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/index.html"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.browser
def test_chromium_renders_local_page_and_saves_screenshot(
    local_page: str, artifacts_dir: Path
) -> None:
    out = artifacts_dir / "infra-chromium-local-page.png"
    out.unlink(missing_ok=True)
    with launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 640, "height": 360})
        page.goto(local_page, wait_until="load")
        assert page.title() == "burstgpt infra check"
        assert page.inner_text("#answer") == "answer 42"  # the page's script ran
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(0, 128, 255)"
        page.screenshot(path=str(out))
    assert _png_size(out) == (640, 360)
    with Image.open(out) as image:  # the PNG holds the rendered page, not a blank surface
        assert image.convert("RGB").getpixel((320, 300)) == (0, 128, 255)

    whole = browser_mod.screenshot(
        local_page, artifacts_dir / "infra-chromium-screenshot-fn.png", width=800, height=500
    )
    assert _png_size(whole) == (800, 500)


def test_chromium_missing_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser_mod.shutil, "which", lambda name: None)
    with pytest.raises(browser_mod.ChromiumMissing, match="apt-get install chromium"):
        browser_mod.chromium_path()
    with pytest.raises(browser_mod.ChromiumMissing), browser_mod.launch_chromium():
        pass
