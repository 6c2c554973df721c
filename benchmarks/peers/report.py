"""Tables of a comparison: one row per tool (medians over passes), ours against the best peer, the
targets, and every pass on its own."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from .compare import RunResult
from .schedule import Schedule
from .summary import Stat, ToolSummary, summarize

BEGIN, END = "<!-- peers-results:begin -->", "<!-- peers-results:end -->"
CPU_TARGET_RATIO = 0.5  # at least 2x lower client CPU per streamed token than the best peer


def _num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def tool_table(summaries: Sequence[ToolSummary], schedule: Schedule) -> str:
    """Markdown table, one row per tool: medians over the passes (range in brackets)."""
    rows = [
        "| tool | passes | completed / scheduled | failed | achieved / scheduled req/s "
        "| arrival MAE (req/s per 1-s bin) | send lag p99, derived (ms) | lateness p99, tool's own (ms) "
        "| client CPU s / 1k tokens, whole run | ... replay only | peak RSS MB (processes) | wall s "
        "| other load on the machine (cores) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        if not s.usable:
            rows.append(
                f"| {s.label} | 0 of {len(s.runs)} | failed: {s.runs[0].error} | | | | | | | | | | |"
            )
            continue
        rows.append(
            f"| {s.label} | {len(s.usable)} of {len(s.runs)} | {s.completed().fmt('{:.0f}', False)} / {len(schedule)} "
            f"| {s.failed().fmt('{:.0f}', False)} | {s.achieved_rate().fmt('{:.2f}', False)} / "
            f"{len(schedule) / max(schedule.duration_s, 1e-9):.2f} | {s.mae().fmt()} | {s.lag_p99().fmt('{:.1f}')} "
            f"| {s.tool_lateness_p99().fmt('{:.1f}')} | {s.cpu().fmt()} | {s.cpu(True).fmt()} "
            f"| {s.peak_rss().fmt('{:.0f}', False)} ({s.processes()}) | {s.wall().fmt('{:.0f}', False)} "
            f"| {s.background().fmt('{:.2f}')} |"
        )
    return "\n".join(rows)


def pass_table(runs: Sequence[RunResult]) -> str:
    """Every pass on its own, in the order run."""
    rows = [
        "| pass | tool | arrival MAE | send lag p99 (ms) | CPU s / 1k tokens, replay only | other load (cores) |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        f = r.fidelity
        label = r.label + (f" (failed: {r.error})" if r.error else "")
        rows.append(
            f"| {r.pass_index + 1} | {label} | {_num(f.mae_per_s if f else None, '{:.3f}')} "
            f"| {_num(f.lag_p99_ms if f else None, '{:.1f}')} | {_num(r.cpu_per_1k(True), '{:.3f}')} "
            f"| {_num(r.background_cores)} |"
        )
    return "\n".join(rows)


METRICS: list[tuple[str, Callable[[ToolSummary], Stat]]] = [
    ("client CPU s / 1k tokens, whole run", lambda s: s.cpu()),
    ("client CPU s / 1k tokens, replay only", lambda s: s.cpu(True)),
    ("arrival MAE (req/s per 1-s bin)", lambda s: s.mae()),
    ("send lag p99, derived (ms)", lambda s: s.lag_p99()),
    ("peak RSS (MB)", lambda s: s.peak_rss()),
]


def best_peer(
    summaries: Sequence[ToolSummary], metric: Callable[[ToolSummary], Stat]
) -> ToolSummary | None:
    """The peer with the lowest median of ``metric`` among peers with a usable pass."""
    peers = [
        s for s in summaries if s.tool != "ours" and s.usable and not math.isnan(metric(s).median)
    ]
    return min(peers, key=lambda s: metric(s).median) if peers else None


def _ours(summaries: Sequence[ToolSummary]) -> ToolSummary | None:
    return next((s for s in summaries if s.tool == "ours" and s.usable), None)


def _ratio(mine: float, theirs: float) -> str:
    if math.isnan(mine) or math.isnan(theirs):
        return "n/a"
    if theirs == 0:
        return "equal (both 0)" if mine == 0 else "inf"
    return f"{mine / theirs:.2f}x"


def ratio_table(summaries: Sequence[ToolSummary]) -> str:
    """Ours against the best peer, metric by metric (medians; lower is better for all of them)."""
    ours = _ours(summaries)
    rows = [
        "| metric (median; lower is better) | ours | best peer | best peer's value | ours / best peer |",
        "|---|---|---|---|---|",
    ]
    for name, metric in METRICS:
        best = best_peer(summaries, metric)
        mine = metric(ours).median if ours else math.nan
        theirs = metric(best).median if best else math.nan
        rows.append(
            f"| {name} | {_num(mine, '{:.3f}')} | {best.label if best else 'n/a'} "
            f"| {_num(theirs, '{:.3f}')} | {_ratio(mine, theirs)} |"
        )
    return "\n".join(rows)


def verdicts(summaries: Sequence[ToolSummary]) -> list[str]:
    """The two targets, stated as met or not, with the numbers (medians)."""
    ours = _ours(summaries)
    if ours is None:
        return ["our runs failed: no verdict"]
    out = []
    for name, replay_only in (("whole run", False), ("replay only", True)):
        best = best_peer(summaries, lambda s, ro=replay_only: s.cpu(ro))
        if best is None:
            out.append(f"CPU per streamed token ({name}): no peer to compare with")
            continue
        mine, theirs = ours.cpu(replay_only).median, best.cpu(replay_only).median
        ratio = mine / theirs
        out.append(
            f"CPU per streamed token ({name}): ours {mine:.3f} vs {best.label} {theirs:.3f} s/1k tokens "
            f"= {ratio:.2f}x ({1 / ratio:.1f}x lower) -> target <= {CPU_TARGET_RATIO}x: "
            f"{'MET' if ratio <= CPU_TARGET_RATIO else 'NOT MET'}"
        )
        others = [s for s in summaries if s.tool not in ("ours", best.tool) and s.usable]
        for s in others:
            r = mine / s.cpu(replay_only).median
            out.append(
                f"  against {s.label}: {r:.2f}x ({1 / r:.1f}x lower) -> "
                f"{'MET' if r <= CPU_TARGET_RATIO else 'NOT MET'}"
            )
    best = best_peer(summaries, lambda s: s.mae())
    if best is not None:
        mine, theirs = ours.mae().median, best.mae().median
        out.append(
            f"arrival MAE: ours {mine:.3f} vs {best.label} {theirs:.3f} req/s per 1-s bin -> target "
            f"<= best peer: {'MET' if mine <= theirs else 'NOT MET'}"
        )
    return out


def section(
    server: str, schedule: Schedule, runs: Sequence[RunResult], took_s: float | None = None
) -> str:
    """Everything about one server, as Markdown."""
    summaries = summarize(runs)
    per_s = schedule.per_second()
    passes = max((r.pass_index for r in runs), default=0) + 1
    lines = [
        f"#### {server}",
        "",
        f"Schedule: {schedule.source}: {len(schedule):,} requests over {schedule.duration_s:.1f} s "
        f"(mean {len(schedule) / max(schedule.duration_s, 1e-9):.1f} req/s, busiest second {per_s.max()}, "
        f"{schedule.output_tokens:,} output tokens). {passes} pass(es), tool order alternating; "
        "medians, with the range over passes in brackets"
        + (f"; this part took {took_s / 60:.1f} min." if took_s is not None else "."),
        "",
        tool_table(summaries, schedule),
        "",
        "Ours against the best peer:",
        "",
        ratio_table(summaries),
        "",
    ]
    lines += [f"  - {v.strip()}" if v.startswith("  ") else f"- {v}" for v in verdicts(summaries)]
    notes = [f"- {s.label}: {n}" for s in summaries for n in s.notes()]
    if notes:
        lines += ["", *notes]
    lines += ["", "<details><summary>Every pass</summary>", "", pass_table(runs), "", "</details>"]
    return "\n".join(lines)


def update_readme(readme: Path, body: str) -> None:
    """Replace the generated results block of the README (between the two markers)."""
    text = readme.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{body.rstrip()}\n{END}"
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme} has no {BEGIN} ... {END} block to replace")
    text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    readme.write_text(text, encoding="utf-8")
