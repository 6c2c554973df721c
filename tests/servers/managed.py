"""Start a real server process on 127.0.0.1, wait for health, stop it by PID (also on failure)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

CACHE = Path(os.environ.get("BURSTGPT_CACHE") or Path.home() / ".cache" / "locust-burstgpt")


# The servers share this machine's cores with the load generator (vLLM's engine core even spins on
# the core it leaves free). Run them at a lower priority so the generator never waits for a CPU the
# server holds: its send times and clocks must describe the server, not the contention. The nice
# value only counts against processes of the same session: with the kernel's scheduler autogroups
# (on by default), each session is scheduled as one unit, so a server in a session of its own would
# still take half of a shared core whatever its nice value. Servers therefore get a process group
# of their own (to be stopped as a whole) but stay in the caller's session.
BELOW_GENERATOR = ["nice", "-n", "10"]
_OWN_GROUP: dict = (
    {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
)


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
    startup_s: float | None = None  # seconds from launch to the first healthy answer
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120.0) -> ManagedServer:
        """Launch in a new process group (same session) and wait until ``health_path`` answers 200.

        Any failure while starting (exit, timeout, interrupt) stops the whole group first, so a
        half-started server with child processes (vLLM has several) never outlives the caller.
        """
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            self.cmd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            **_OWN_GROUP,  # not start_new_session: see BELOW_GENERATOR
        )
        t0 = time.monotonic()
        try:
            self._wait_healthy(t0 + timeout_s, timeout_s)
        except BaseException:
            self.stop()
            raise
        self.startup_s = time.monotonic() - t0
        return self

    def _wait_healthy(self, deadline: float, timeout_s: float) -> None:
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode}; log: {self.log_path}"
                )
            try:
                with urllib.request.urlopen(self.base_url + self.health_path, timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not healthy after {timeout_s}s; log: {self.log_path}")

    def stop(self, grace_s: float = 20.0) -> None:
        """SIGTERM the process group, wait for it to empty, SIGKILL whatever is left."""
        if self.proc is None:
            return
        pgid = self.proc.pid  # process_group=0: the leader's pid is the group id
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        try:
            self.proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            pass
        # Children (e.g. vLLM's engine core) may outlive the leader briefly while they clean up.
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _group_alive(pgid):
            _signal_group(pgid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


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
        p["server"],
        "-m",
        p["model"],
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "-c",
        str(ctx),
        "-np",
        str(parallel),
        "-kvu",
        "-t",
        "1",
        "--no-webui",
        "--metrics",
        "-a",
        "smollm2",
    ]
    return ManagedServer(
        "llama-server", [*BELOW_GENERATOR, *cmd], port, log_dir / f"llama-server-{port}.log"
    )


def vllm_paths() -> dict[str, str]:
    """Paths written by ``tests/servers/install_vllm.sh``: venv python, HF model dir, tokenizer.json."""
    paths = CACHE / "vllm" / "paths.json"
    if not paths.exists():
        raise RuntimeError(
            f"vLLM not installed ({paths} missing): run `bash tests/run.sh` "
            "or `bash tests/servers/install_vllm.sh` first"
        )
    return json.loads(paths.read_text())


def vllm_server(log_dir: Path, max_model_len: int = 4096, kv_cache_gib: int = 1) -> ManagedServer:
    """vLLM (CPU build) serving SmolLM2-135M as ``smollm2``; eager mode starts ~4x faster than compiled."""
    p = vllm_paths()
    port = free_port()
    cmd = [
        p["python"],
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        p["model"],
        "--served-model-name",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "bfloat16",
        "--max-model-len",
        str(max_model_len),
        "--enforce-eager",
        "--enable-prompt-tokens-details",  # usage.prompt_tokens_details.cached_tokens, as llama.cpp sends
    ]
    env = {
        "VLLM_CPU_KVCACHE_SPACE": str(kv_cache_gib),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "VLLM_NO_USAGE_STATS": "1",  # no usage reports leave the machine
        "DO_NOT_TRACK": "1",
    }
    return ManagedServer(
        "vllm", [*BELOW_GENERATOR, *cmd], port, log_dir / f"vllm-{port}.log", env=env
    )
