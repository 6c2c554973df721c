"""Plain-text summaries of a fitted model and of a synthesized trace, for the command line."""

from __future__ import annotations

import numpy as np

from .params import DAY_S, Params
from .synth import SynthTrace


def _clock(seconds: float) -> str:
    s = int(seconds) % DAY_S
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}"


def _span(seconds: float) -> str:
    if seconds >= 2 * DAY_S:
        return f"{seconds / DAY_S:.1f} d"
    if seconds >= 7200:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds:,.0f} s"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return [fmt.format(*header), *(fmt.format(*r) for r in rows)]


def params_summary(params: Params) -> str:
    """What was fitted, per class: arrivals, then conversations and lengths."""
    src = params.source
    total = sum(c.rows for c in params.classes)
    sha = f" (sha256 {src.sha256[:12]}...)" if src.sha256 else ""
    lines = [
        f"source {src.name}{sha}, window {src.window}: [{src.window_start_s:.0f}, {src.window_end_s:.0f}) s "
        f"= {_span(src.duration_s)}, {total:,} rows",
        f"mean rate {params.mean_rate:.4g} requests/s; time-of-day bins of {params.bin_s // 60} min; "
        f"synth starts at {_clock(params.start_s)} of day 0 by default",
        "",
    ]
    arrival_rows = []
    for c in params.classes:
        a = c.arrivals
        rates = np.array([r for r in a.rate_per_s if r is not None])
        peak = rates.max() if rates.size else 0.0
        trough = rates.min() if rates.size else 0.0
        busiest = (
            int(np.nanargmax([np.nan if r is None else r for r in a.rate_per_s]))
            if rates.size
            else 0
        )
        shapes = np.array(a.shape)
        arrival_rows.append(
            [
                f"{c.log_type} / {c.model}",
                f"{c.rows:,}",
                f"{c.rows / max(total, 1):.1%}",
                f"{a.mean_rate() * 3600:.4g}",
                f"{peak * 3600:.4g} at {_clock(busiest * params.bin_s)}",
                f"{trough * 3600:.3g}",
                f"{np.median(shapes):.3g} [{shapes.min():.3g}-{shapes.max():.3g}]",
                f"{min(a.day_levels):.2f}-{max(a.day_levels):.2f} ({len(a.day_levels)} d)",
            ]
        )
    lines += _table(
        [
            "class",
            "rows",
            "share",
            "starts/h",
            "peak/h",
            "trough/h",
            f"gamma shape ({params.classes[0].arrivals.shape_estimator})",
            "day levels",
        ],
        arrival_rows,
    )
    lines.append("")
    length_rows = []
    for c in params.classes:
        ln, conv = c.lengths, c.conversations
        think = (
            "-"
            if conv.think_s is None or conv.turns.mean() == 1
            else f"{conv.think_s.quantile(0.5):.0f} s"
        )
        resp = ln.response.dists
        length_rows.append(
            [
                f"{c.log_type} / {c.model}",
                f"{conv.turns.mean():.2f}",
                think,
                f"{ln.first_request.quantile(0.5):.0f}/{ln.first_request.quantile(0.9):.0f}",
                "-"
                if ln.increment is None or conv.turns.mean() == 1
                else f"{np.median([d.quantile(0.5) for d in ln.increment.dists]):+.0f}",
                f"{resp[0].quantile(0.5):.0f} .. {resp[-1].quantile(0.5):.0f} ({len(resp)})",
                f"{c.failures.rate:.2%}",
                f"{c.elapsed.intercept_s:.2f} + {c.elapsed.per_response_token_s:.4f}/tok",
            ]
        )
    lines += _table(
        [
            "class",
            "turns",
            "think p50",
            "1st req p50/p90",
            "increment p50",
            "resp p50 by req bucket",
            "failed",
            "elapsed s",
        ],
        length_rows,
    )
    if params.notes:
        lines.append("")
        lines += [f"note: {n}" for n in params.notes]
    return "\n".join(lines)


def trace_summary(trace: SynthTrace) -> str:
    """Rows, rate achieved against the target, span, and per-class counts."""
    end = trace.timestamp[-1] if trace.rows else trace.start_s
    lines = [
        f"{trace.rows:,} requests in {trace.conversations:,} conversations; "
        f"rate {trace.rate:.4g}/s over {_span(trace.duration_s)} (target {trace.target_rate:.4g}/s)",
        f"window [{trace.start_s:.0f}, {trace.start_s + trace.duration_s:.0f}) s, "
        f"starting {_clock(trace.start_s)} of day {int(trace.start_s // DAY_S)}; last request at {end:.0f} s",
    ]
    counts = np.bincount(trace.class_code, minlength=len(trace.classes))
    failed = np.bincount(
        trace.class_code, weights=trace.response_tokens == 0, minlength=len(trace.classes)
    )
    for (model, log_type), n, f in zip(trace.classes, counts, failed, strict=True):
        lines.append(f"  {log_type} / {model}: {n:,} requests, {int(f):,} failed")
    return "\n".join(lines)
