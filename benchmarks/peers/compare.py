"""Run every tool on one server and schedule, one after another, and collect the figures."""

from __future__ import annotations

import os
import shlex
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import fidelity
from .procmon import TreeUsage, run_measured
from .schedule import Schedule
from .servers import generated_tokens, machine_busy_cpu, process_tree_cpu
from .tools import Parsed, Server, Tool


@dataclass
class RunResult:
    """One tool's run on one server."""

    server: str
    tool: str
    label: str
    version: str
    command: list[str]
    pass_index: int = 0
    usage: TreeUsage | None = None
    parsed: Parsed | None = None
    fidelity: fidelity.Fidelity | None = None
    server_tokens: int = 0  # generated tokens the server counted during the run
    replay_cpu_s: float = float("nan")
    replay_wall_s: float = float("nan")
    server_cpu_s: float = float("nan")  # the server process's CPU during the run
    background_cores: float = float("nan")  # everything else the machine ran, in cores (noise)
    error: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.error is None

    def cpu_per_1k(self, replay_only: bool = False) -> float:
        """Client CPU seconds per 1,000 server-counted streamed tokens."""
        if not self.server_tokens or self.usage is None:
            return float("nan")
        cpu = self.replay_cpu_s if replay_only else self.usage.cpu_s
        return cpu / self.server_tokens * 1000.0

    def as_dict(self) -> dict:
        f = self.fidelity
        u = self.usage
        p = self.parsed
        return {
            "server": self.server,
            "pass": self.pass_index + 1,
            "tool": self.tool,
            "label": self.label,
            "version": self.version,
            "command": shlex.join(self.command),
            "error": self.error,
            "notes": self.notes,
            "completed": p.completed if p else None,
            "failed": p.failed if p else None,
            "tool_output_tokens": p.output_tokens if p else None,
            "server_tokens": self.server_tokens,
            "tool_lateness_p99_ms": p.lateness_p99_ms if p else None,
            "tool_lateness_kind": p.lateness_kind if p else None,
            "fidelity": f.__dict__ if f else None,
            "wall_s": u.wall_s if u else None,
            "cpu_s": u.cpu_s if u else None,
            "replay_cpu_s": self.replay_cpu_s,
            "replay_wall_s": self.replay_wall_s,
            "cpu_per_1k_tokens": self.cpu_per_1k(),
            "replay_cpu_per_1k_tokens": self.cpu_per_1k(True),
            "server_cpu_s": self.server_cpu_s,
            "background_cores": self.background_cores,
            "peak_rss_mb": u.peak_rss_mb if u else None,
            "peak_processes": u.peak_processes if u else None,
        }


def run_tool(
    tool: Tool,
    server: Server,
    schedule: Schedule,
    workdir: Path,
    timeout_s: float,
    log=print,
    pass_index: int = 0,
) -> RunResult:
    """Run ``tool`` once against ``server`` and measure it; failures are recorded, not raised."""
    workdir.mkdir(parents=True, exist_ok=True)
    shown = "/".join(workdir.parts[-3:])  # <server>/pass<n>/<tool> under the run's directory
    tool.write_inputs(schedule, workdir)
    cmd = tool.command(server, workdir, len(schedule))
    result = RunResult(server.kind, tool.name, tool.label, tool.version, cmd, pass_index)
    tag = f"[{server.kind} pass {pass_index + 1}] {tool.label}"
    log(f"{tag}: {len(schedule)} requests over {schedule.duration_s:.0f} s ...")
    try:
        before = generated_tokens(server)
        busy0, server0 = machine_busy_cpu(), process_tree_cpu(server.pid)
        env = {**os.environ, **tool.env()}
        usage = run_measured(
            cmd, cwd=workdir, env=env, log_path=workdir / "tool.log", timeout_s=timeout_s
        )
        result.usage = usage
        result.server_cpu_s = process_tree_cpu(server.pid) - server0
        other = machine_busy_cpu() - busy0 - usage.cpu_s - result.server_cpu_s
        result.background_cores = max(0.0, other) / max(usage.wall_s, 1e-9)
        result.server_tokens = generated_tokens(server) - before
        if usage.timed_out:
            result.error = f"timed out after {timeout_s:.0f} s (log: {shown}/tool.log)"
            return result
        if usage.returncode != 0:
            result.error = f"exit code {usage.returncode} (log: {shown}/tool.log)"
        parsed = tool.parse(workdir)
        result.parsed = parsed
        result.notes += parsed.notes
        result.fidelity = fidelity.measure(schedule, parsed.sends, parsed.scheduled)
        if parsed.sends.size:
            t0, t1 = float(parsed.sends.min()), float(np.max(parsed.ends))
            result.replay_cpu_s = usage.cpu_between(t0, t1)
            result.replay_wall_s = t1 - t0
    except Exception as exc:  # a peer that breaks must not stop the comparison
        result.error = result.error or f"{type(exc).__name__}: {exc}"
        (workdir / "error.txt").write_text(traceback.format_exc())
    log(
        f"{tag}: "
        + (
            f"FAILED: {result.error}"
            if result.error
            else f"{result.parsed.completed} completed, CPU {result.usage.cpu_s:.1f} s, "
            f"{result.server_tokens:,} tokens, wall {result.usage.wall_s:.0f} s, "
            f"other load {result.background_cores:.2f} cores"
        )
    )
    return result
