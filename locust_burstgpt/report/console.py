"""The end-of-run text: exact LLM metrics per trace class, reconciliation, SLO verdicts."""

from __future__ import annotations

from typing import Any


def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v * 1000:.1f}" if v < 10 else f"{v * 1000:.0f}"


def metrics_table(summary: dict[str, Any]) -> str:
    """A fixed-width table; latencies in ms, exact (not Locust's rounded buckets)."""
    head = (
        f"{'class':<22} {'reqs':>6} {'ok':>6} {'TTFT p50':>9} {'p99':>8} {'ITL p50':>8} {'p99':>8} "
        f"{'TPOT p50':>9} {'p99':>8} {'E2E p50':>9} {'p99':>9} {'late p99':>9} {'out tok/s':>10} "
        f"{'goodput':>8}"
    )
    lines = [
        "LLM metrics (ms; exact percentiles; latencies of ok requests, lateness of every request sent)",
        head,
        "-" * len(head),
    ]
    for label, s in summary.items():
        good = s.get("goodput") or {}
        frac = good.get("fraction")
        tps = s.get("output_tokens_per_s")
        lines.append(
            f"{label[:22]:<22} {s['requests']:>6} {s['ok']:>6} {_ms(s['ttft']['p50']):>9} "
            f"{_ms(s['ttft']['p99']):>8} {_ms(s['itl']['p50']):>8} {_ms(s['itl']['p99']):>8} "
            f"{_ms(s['tpot']['p50']):>9} {_ms(s['tpot']['p99']):>8} {_ms(s['e2e']['p50']):>9} "
            f"{_ms(s['e2e']['p99']):>9} {_ms(s['lateness']['p99']):>9} "
            f"{(f'{tps:.1f}' if tps is not None else '-'):>10} {(f'{frac:.3f}' if frac is not None else '-'):>8}"
        )
    return "\n".join(lines)


def length_line(summary: dict[str, Any]) -> str:
    length = (summary.get("All") or {}).get("length") or {}

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{v * 100:.1f} %"

    adjusted = length.get("prompt_adjusted") or 0
    checked = length.get("prompt_checked") or 0
    trace = length.get("prompt_trace_fraction")
    if trace is None:  # no trace lengths known: the targets only
        prompt = f"prompt tokens == target for {pct(length.get('prompt_exact_fraction'))}"
    else:
        prompt = f"prompt tokens == the trace's for {pct(trace)} of {checked} ok requests"
        if adjusted:
            prompt += (
                f"; {adjusted} had an adjusted target (raised to the chat template's minimum or "
                f"clipped to the model's context), {length.get('prompt_adjusted_exact') or 0} "
                "of them == it"
            )
    return (
        f"Length fidelity: {prompt}; completion tokens == target for "
        f"{pct(length.get('completion_exact_fraction'))}"
    )
