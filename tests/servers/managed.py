"""Start a real server process on 127.0.0.1, wait for health, stop it by PID (also on failure)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CACHE = Path(os.environ.get("BURSTGPT_CACHE") or Path.home() / ".cache" / "locust-burstgpt")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ManagedServer:
    """A server subprocess; ``base_url`` is ``http://127.0.0.1:<port>``."""

    name: str
    cmd: list[str]
    port: int
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    health_path: str = "/health"
    proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120.0) -> ManagedServer:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.cmd, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; log: {self.log_path}")
            try:
                with urllib.request.urlopen(self.base_url + self.health_path, timeout=2) as r:
                    if r.status == 200:
                        return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} not healthy after {timeout_s}s; log: {self.log_path}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)


def llamacpp_paths() -> dict[str, str]:
    paths = CACHE / "llamacpp" / "paths.json"
    if not paths.exists():
        raise RuntimeError(
            f"llama.cpp server not installed ({paths} missing): run `bash tests/run.sh` "
            "or `bash tests/servers/install_llamacpp.sh` first"
        )
    return json.loads(paths.read_text())


def llamacpp_server(log_dir: Path, parallel: int = 8, ctx: int = 16384) -> ManagedServer:
    """llama-server with SmolLM2-135M, continuous batching over ``parallel`` slots, unified KV."""
    p = llamacpp_paths()
    port = free_port()
    cmd = [
        p["server"], "-m", p["model"], "--host", "127.0.0.1", "--port", str(port),
        "-c", str(ctx), "-np", str(parallel), "-kvu", "-t", "1", "--no-webui", "--metrics",
        "-a", "smollm2",
    ]
    return ManagedServer("llama-server", cmd, port, log_dir / f"llama-server-{port}.log")
