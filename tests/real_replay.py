"""Headless replays against a real server, seen from three sides.

A replay runs Locust with the plugin in a subprocess (``tests/plugin_runs.py``) through a recording
proxy (``tests/servers/recording_proxy.py``), so each test can compare:

* what the plugin says it did: the books in the process dump, ``requests.jsonl``, ``timeline.csv``,
  ``summary.json`` and the run log;
* what the server was sent: every request body and header on the wire;
* what the trace asks for: the same window prepared independently here with ``prepare()``.
"""

from __future__ import annotations

import csv
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from locust_burstgpt.trace import Workload, load_trace, prepare
from tests.plugin_runs import LocustRun, run_locust
from tests.servers.recording_proxy import RecordingProxy, SeenRequest

COMPLETIONS_PATH = "/v1/chat/completions"


@dataclass(frozen=True)
class ReplayCase:
    """One headless replay: a window of a trace, time-scaled to what a server can serve."""

    trace: Path
    window: str
    speedup: float
    rate_scale: float
    headroom: float = 1.25  # users per trace conversation in progress; more for slow servers
    transport: str = "raw"
    drain_timeout_s: float = 90.0  # a cap, not a wait: the run ends when the last reply is in
    seed: int = 0
    # seconds after the window's end to go on sending turns a slow server pushed past it; None:
    # the plugin's default (the window's length, at least 60 s)
    overrun_s: float | None = None

    def locust_args(self, report_dir: Path) -> list[str]:
        return [
            "--burstgpt-trace",
            str(self.trace),
            "--burstgpt-window",
            self.window,
            "--burstgpt-speedup",
            f"{self.speedup:g}",
            "--burstgpt-rate-scale",
            f"{self.rate_scale:g}",
            "--burstgpt-headroom",
            f"{self.headroom:g}",
            "--burstgpt-transport",
            self.transport,
            "--burstgpt-seed",
            str(self.seed),
            "--burstgpt-drain-timeout",
            f"{self.drain_timeout_s:g}",
            "--burstgpt-report",
            str(report_dir),
            *(["--burstgpt-overrun", f"{self.overrun_s:g}"] if self.overrun_s is not None else []),
        ]

    def workload(self) -> Workload:
        """The window as the trace defines it, prepared here independently of the run."""
        return prepare(
            load_trace(self.trace),
            window=self.window,
            speedup=self.speedup,
            rate_scale=None if self.rate_scale == 1.0 else self.rate_scale,
            seed=self.seed,
        )


@dataclass(frozen=True)
class OfferedLoad:
    """What a replay asks of the server inside its window (turns due after the window's end are
    not sent): the figures the speedup and rate scale were chosen from."""

    duration_s: float
    conversations: int
    multi_turn_conversations: int
    requests: int  # turns due inside the window, assuming recorded service times
    later_turns: int  # of which turns 2, 3, ...: the ones that can reuse a cached prefix
    prompt_tokens: int  # as recorded, history included
    output_tokens: int

    @classmethod
    def of(cls, wl: Workload) -> OfferedLoad:
        convs = list(wl.conversations())
        due = [
            (k, turn)
            for c in convs
            for k, (turn, at) in enumerate(zip(c.turns, c.scheduled_offsets, strict=True))
            if at < wl.duration_s
        ]
        return cls(
            duration_s=wl.duration_s,
            conversations=len(convs),
            multi_turn_conversations=sum(len(c.turns) > 1 for c in convs),
            requests=len(due),
            later_turns=sum(k > 0 for k, _ in due),
            prompt_tokens=sum(t.request_tokens for _, t in due),
            output_tokens=sum(t.response_tokens for _, t in due),
        )

    def describe(self) -> str:
        d = max(self.duration_s, 1.0)
        return (
            f"{self.requests} requests ({self.later_turns} later turns) in {self.conversations} "
            f"conversations ({self.multi_turn_conversations} multi-turn) due in {self.duration_s:.0f} s: "
            f"{self.requests / d:.2f} req/s, {self.prompt_tokens / d:.0f} prompt tok/s (history included), "
            f"{self.output_tokens / d:.0f} output tok/s"
        )


@dataclass
class ReplayResult:
    case: ReplayCase
    run: LocustRun
    entries: list[dict[str, Any]]  # requests.jsonl, one per scheduled request
    timeline: list[dict[str, str]]  # timeline.csv rows
    summary: dict[str, Any]
    wire: list[SeenRequest]  # every request the server was sent, in arrival order
    wall_s: float
    workload: Workload
    offered: OfferedLoad
    report_dir: Path

    @property
    def ledger(self) -> dict[str, Any]:
        return self.run.ledger()

    @property
    def sent(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["outcome"] != "not_sent"]

    @property
    def ok(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["outcome"] == "ok"]

    def completions_on_wire(self) -> list[SeenRequest]:
        return [r for r in self.wire if r.method == "POST" and r.path == COMPLETIONS_PATH]

    def column(self, name: str) -> list[float]:
        """The non-empty values of one ``timeline.csv`` column."""
        return [float(r[name]) for r in self.timeline if r.get(name) not in (None, "")]

    def log_tail(self, n: int = 3000) -> str:
        """The run's errors, warnings and trust verdict (wherever they were logged), then its last lines."""
        notable = [
            line
            for line in self.run.output.splitlines()
            if any(
                k in line.lower()
                for k in (
                    "/error/",
                    "/warning/",
                    "not sent:",
                    "untrustworthy",
                    "saturated",
                    "schedule was not kept",
                )
            )
        ]
        problems = self.summary.get("verdict", {}).get("trust_problems") if self.summary else None
        head = "\n".join(notable[:40])
        return f"trust problems: {problems}\n{head}\n...\n{self.run.output[-n:]}"


def run_replay(base_url: str, case: ReplayCase, tmp: Path, report_dir: Path) -> ReplayResult:
    """Run ``case`` headless against ``base_url`` through a recording proxy; read everything back.

    The run's report (``requests.jsonl``, ``timeline.csv``, ``summary.json``, ``report.png``) goes
    to ``report_dir``, replaced if it exists; Locust's per-process dumps go to ``tmp``.
    """
    target = urlsplit(base_url)
    workload = case.workload()
    offered = OfferedLoad.of(workload)
    if report_dir.exists():
        shutil.rmtree(report_dir)
    proxy = RecordingProxy(target.hostname or "127.0.0.1", target.port or 80).start()
    t0 = time.monotonic()
    try:
        run = run_locust(
            tmp,
            proxy.base_url,
            *case.locust_args(report_dir),
            timeout=offered.duration_s + case.drain_timeout_s + 240,
        )
    finally:
        proxy.stop()
    wall = time.monotonic() - t0
    entries = _read_jsonl(report_dir / "requests.jsonl")
    timeline = _read_csv(report_dir / "timeline.csv")
    summary_path = report_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    return ReplayResult(
        case,
        run,
        entries,
        timeline,
        summary,
        proxy.snapshot("/"),
        wall,
        workload,
        offered,
        report_dir,
    )


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
