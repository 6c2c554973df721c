"""Tables of a comparison: one row per tool, then ours against the best peer, then the targets."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from .compare import RunResult
from .schedule import Schedule

BEGIN, END = "<!-- peers-results:begin -->", "<!-- peers-results:end -->"
CPU_TARGET_RATIO = 0.5   # at least 2x lower client CPU per streamed token than the best peer


def _num(x: float | None, fmt: str = "{:.2f}") -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else fmt.format(x)


def tool_table(results: Sequence[RunResult], schedule: Schedule) -> str:
    """Markdown table, one row per tool."""
    rows = ["| tool | completed / scheduled | failed | achieved / scheduled req/s | arrival MAE (req/s per 1-s bin) "
            "| send lag p99, derived (ms) | lateness p99, tool's own (ms) | client CPU s / 1k tokens, whole run "
            "| ... replay only | peak RSS MB (processes) | wall s | other load on the machine (cores) |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        if r.parsed is None or r.fidelity is None or r.usage is None:
            rows.append(f"| {r.label} | failed: {r.error} | | | | | | | | | | |")
            continue
        p, f, u = r.parsed, r.fidelity, r.usage
        rows.append(
            f"| {r.label}{' (exit: ' + r.error + ')' if r.error else ''} | {p.completed} / {len(schedule)} "
            f"| {p.failed} | {f.achieved_rate:.2f} / {f.scheduled_rate:.2f} | {f.mae_per_s:.3f} "
            f"| {_num(f.lag_p99_ms, '{:.1f}')} | {_num(p.lateness_p99_ms, '{:.1f}')} "
            f"| {_num(r.cpu_per_1k(), '{:.3f}')} | {_num(r.cpu_per_1k(True), '{:.3f}')} "
            f"| {u.peak_rss_mb:.0f} ({u.peak_processes}) | {u.wall_s:.0f} | {_num(r.background_cores, '{:.2f}')} |")
    return "\n".join(rows)


METRICS: list[tuple[str, Callable[[RunResult], float]]] = [
    ("client CPU s / 1k tokens, whole run", lambda r: r.cpu_per_1k()),
    ("client CPU s / 1k tokens, replay only", lambda r: r.cpu_per_1k(True)),
    ("arrival MAE (req/s per 1-s bin)", lambda r: r.fidelity.mae_per_s if r.fidelity else math.nan),
    ("send lag p99, derived (ms)", lambda r: r.fidelity.lag_p99_ms if r.fidelity else math.nan),
    ("peak RSS (MB)", lambda r: r.usage.peak_rss_mb if r.usage else math.nan),
]


def best_peer(results: Sequence[RunResult], metric: Callable[[RunResult], float]) -> RunResult | None:
    """The peer with the lowest value of ``metric`` among peers that completed the schedule."""
    peers = [r for r in results if r.tool != "ours" and _usable(r) and not math.isnan(metric(r))]
    return min(peers, key=metric) if peers else None


def _usable(r: RunResult) -> bool:
    return r.parsed is not None and r.fidelity is not None and r.usage is not None and r.parsed.completed > 0


def ratio_table(results: Sequence[RunResult]) -> str:
    """Ours against the best peer, metric by metric (lower is better for all of them)."""
    ours = next((r for r in results if r.tool == "ours" and _usable(r)), None)
    rows = ["| metric (lower is better) | ours | best peer | best peer's value | ours / best peer |",
            "|---|---|---|---|---|"]
    for name, metric in METRICS:
        best = best_peer(results, metric)
        mine = metric(ours) if ours else math.nan
        theirs = metric(best) if best else math.nan
        rows.append(f"| {name} | {_num(mine, '{:.3f}')} | {best.label if best else 'n/a'} "
                    f"| {_num(theirs, '{:.3f}')} | {_ratio(mine, theirs)} |")
    return "\n".join(rows)


def _ratio(mine: float, theirs: float) -> str:
    if math.isnan(mine) or math.isnan(theirs):
        return "n/a"
    if theirs == 0:
        return "equal (both 0)" if mine == 0 else "inf"
    return f"{mine / theirs:.2f}x"


def verdicts(results: Sequence[RunResult]) -> list[str]:
    """The two targets, stated as met or not, with the numbers."""
    ours = next((r for r in results if r.tool == "ours" and _usable(r)), None)
    if ours is None:
        return ["our run failed: no verdict"]
    out = []
    for name, replay_only in (("whole run", False), ("replay only", True)):
        best = best_peer(results, lambda r, ro=replay_only: r.cpu_per_1k(ro))
        if best is None:
            out.append(f"CPU ({name}): no peer to compare with")
            continue
        ratio = ours.cpu_per_1k(replay_only) / best.cpu_per_1k(replay_only)
        met = ratio <= CPU_TARGET_RATIO
        out.append(f"CPU per streamed token ({name}): ours {ours.cpu_per_1k(replay_only):.3f} vs "
                   f"{best.label} {best.cpu_per_1k(replay_only):.3f} s/1k tokens = {ratio:.2f}x "
                   f"({1 / ratio:.1f}x lower) -> target <= {CPU_TARGET_RATIO}x {'MET' if met else 'NOT MET'}")
    best = best_peer(results, lambda r: r.fidelity.mae_per_s)
    if best is not None:
        mine, theirs = ours.fidelity.mae_per_s, best.fidelity.mae_per_s
        out.append(f"arrival MAE: ours {mine:.3f} vs {best.label} {theirs:.3f} req/s -> target "
                   f"<= best peer {'MET' if mine <= theirs else 'NOT MET'}")
    return out


def section(server: str, schedule: Schedule, results: Sequence[RunResult]) -> str:
    """Everything about one server, as Markdown."""
    per_s = schedule.per_second()
    lines = [f"#### {server}", "",
             f"Schedule: {schedule.source}: {len(schedule):,} requests over {schedule.duration_s:.1f} s "
             f"(mean {len(schedule) / max(schedule.duration_s, 1e-9):.1f} req/s, busiest second {per_s.max()}, "
             f"{schedule.output_tokens:,} output tokens).", "",
             tool_table(results, schedule), "", "Ours against the best peer:", "", ratio_table(results), ""]
    lines += [f"- {v}" for v in verdicts(results)]
    notes = [f"- {r.label}: {n}" for r in results for n in r.notes]
    if notes:
        lines += ["", *notes]
    return "\n".join(lines)


def update_readme(readme: Path, body: str) -> None:
    """Replace the generated results block of the README (between the two markers)."""
    text = readme.read_text(encoding="utf-8")
    block = f"{BEGIN}\n{body.rstrip()}\n{END}"
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme} has no {BEGIN} ... {END} block to replace")
    text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    readme.write_text(text, encoding="utf-8")
