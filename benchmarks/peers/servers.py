"""The servers of the comparison, on 127.0.0.1, and their generated-token counters.

* ``sim``: the embedded simulator, ``fast`` profile (1 ms steps, one token per running sequence
  per step, no modelled compute): the server costs almost nothing, so what differs between runs
  is the load generator.
* ``llamacpp``: llama.cpp's ``llama-server`` with SmolLM2-135M (as the test suite runs it):
  a real server with real continuous batching, and a small one.

Streamed tokens are counted on the server (``vllm:generation_tokens_total`` on the simulator,
``llamacpp:tokens_predicted_total`` on llama.cpp) before and after each tool's run, so every tool
is charged per token by the same meter, whatever its own parsing counts.
"""

from __future__ import annotations

import re
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from locust_burstgpt.sim import SimulatorProcess

from .tools import Server

ROOT = Path(__file__).resolve().parents[2]
TOKEN_COUNTERS = {
    "sim": "vllm:generation_tokens_total",
    "llamacpp": "llamacpp:tokens_predicted_total",
}


@contextmanager
def running(kind: str, tokenizer_dir: str, log_dir: Path) -> Iterator[Server]:
    """Start the server, yield it, always stop it."""
    log_dir.mkdir(parents=True, exist_ok=True)
    if kind == "sim":
        with SimulatorProcess(profile="fast", log_file=log_dir / "sim.log") as sim:
            yield Server(
                "sim",
                sim.base_url,
                "burstgpt-sim",
                tokenizer_dir,
                text_prompts_only=True,
                pid=sim.pid,
            )
        return
    if kind == "llamacpp":
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from tests.servers.managed import llamacpp_server

        server = llamacpp_server(log_dir).start()
        try:
            yield Server(
                "llamacpp",
                server.base_url,
                "smollm2",
                tokenizer_dir,
                text_prompts_only=False,
                pid=server.proc.pid if server.proc else None,
            )
        finally:
            server.stop()
        return
    raise ValueError(f"unknown server {kind!r}: expected sim or llamacpp")


def process_tree_cpu(pid: int | None) -> float:
    """User+system CPU seconds of a process and its children (0 if it is gone)."""
    if pid is None:
        return 0.0
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def machine_busy_cpu() -> float:
    """CPU seconds the whole machine spent busy since boot (every state but idle and iowait)."""
    t = psutil.cpu_times()
    return sum(
        getattr(t, f)
        for f in ("user", "nice", "system", "irq", "softirq", "steal")
        if hasattr(t, f)
    )


def generated_tokens(server: Server) -> int:
    """The server's generated-token counter (summed over label sets)."""
    name = TOKEN_COUNTERS[server.kind]
    with urllib.request.urlopen(server.base_url + "/metrics", timeout=10) as r:
        text = r.read().decode()
    pattern = re.compile(rf"^{re.escape(name)}(?:{{[^}}]*}})?\s+([0-9.eE+-]+)$", re.M)
    values = [float(v) for v in pattern.findall(text)]
    if not values:
        raise RuntimeError(f"{server.base_url}/metrics has no {name}")
    return int(sum(values))
