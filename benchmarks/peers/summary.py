"""One tool's figures over repeated passes: the median of each, with its range.

The machine is shared: a single run can be hit by a burst of someone else's work (the "other
load" column shows it), so every tool runs several times, in alternating order, and the tables
show medians. Failed passes (no usable output) are left out of the medians and counted.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .compare import RunResult


@dataclass(frozen=True)
class Stat:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat:
        vals = [v for v in values if v is not None and not math.isnan(v)]
        if not vals:
            return cls(math.nan, math.nan, math.nan)
        return cls(statistics.median(vals), min(vals), max(vals))

    def fmt(self, spec: str = "{:.3f}", spread: bool = True) -> str:
        if math.isnan(self.median):
            return "n/a"
        text = spec.format(self.median)
        if spread and self.high > self.low:
            text += f" ({spec.format(self.low)}-{spec.format(self.high)})"
        return text


@dataclass
class ToolSummary:
    tool: str
    label: str
    version: str
    runs: list[RunResult]
    usable: list[RunResult] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.usable = [
            r
            for r in self.runs
            if r.parsed is not None
            and r.fidelity is not None
            and r.usage is not None
            and r.parsed.completed > 0
        ]

    @property
    def failed_runs(self) -> list[RunResult]:
        return [r for r in self.runs if not r.ok]

    def stat(self, fn: Callable[[RunResult], float | None]) -> Stat:
        return Stat.of([fn(r) for r in self.usable])

    # the figures, each a Stat over the usable passes
    def completed(self) -> Stat:
        return self.stat(lambda r: r.parsed.completed)

    def failed(self) -> Stat:
        return self.stat(lambda r: r.parsed.failed)

    def achieved_rate(self) -> Stat:
        return self.stat(lambda r: r.fidelity.achieved_rate)

    def mae(self) -> Stat:
        return self.stat(lambda r: r.fidelity.mae_per_s)

    def lag_p99(self) -> Stat:
        return self.stat(lambda r: r.fidelity.lag_p99_ms)

    def tool_lateness_p99(self) -> Stat:
        return self.stat(lambda r: r.parsed.lateness_p99_ms)

    def cpu(self, replay_only: bool = False) -> Stat:
        return self.stat(lambda r: r.cpu_per_1k(replay_only))

    def peak_rss(self) -> Stat:
        return self.stat(lambda r: r.usage.peak_rss_mb)

    def processes(self) -> int:
        return max((r.usage.peak_processes for r in self.usable), default=0)

    def wall(self) -> Stat:
        return self.stat(lambda r: r.usage.wall_s)

    def background(self) -> Stat:
        return self.stat(lambda r: r.background_cores)

    def notes(self) -> list[str]:
        seen: list[str] = []
        for r in self.runs:
            for n in r.notes:
                if n not in seen:
                    seen.append(n)
        for r in self.failed_runs:
            seen.append(f"pass failed: {r.error}")
        return seen


def summarize(runs: Sequence[RunResult]) -> list[ToolSummary]:
    """Group runs by tool, in first-seen order."""
    order: list[str] = []
    by_tool: dict[str, list[RunResult]] = {}
    for r in runs:
        if r.tool not in by_tool:
            order.append(r.tool)
            by_tool[r.tool] = []
        by_tool[r.tool].append(r)
    return [ToolSummary(t, by_tool[t][0].label, by_tool[t][0].version, by_tool[t]) for t in order]
