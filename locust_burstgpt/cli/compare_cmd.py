"""``burstgpt compare BASELINE RUN [...]``: did a change make the server better, worse, or neither?

Reads each report directory's ``requests.jsonl`` (see ``report/compare.py`` for the statistics),
prints one table per run against the baseline, writes ``compare.json`` and an overlay plot with
``--out``, and exits 3 when a metric named in ``--fail-on`` got worse: a CI gate on regressions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HELP = "Compare runs' reports with a baseline: per-class deltas, confidence intervals, verdicts"
HEADLINE = ("ttft_p99", "tpot_p99", "itl_p99", "e2e_p99", "goodput", "error_ratio")


def _fraction(text: str) -> float:
    t = text.strip()
    try:
        v = float(t[:-1]) / 100 if t.endswith("%") else float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number or a percentage") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected 0 <= value < 1 (or 0-99 %)")
    return v


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("baseline", help="The baseline run's --burstgpt-report directory")
    parser.add_argument("runs", nargs="+", metavar="RUN", help="Report directories to compare")
    parser.add_argument(
        "-o", "--out", default=None, help="Write compare.json and compare.png into this directory"
    )
    parser.add_argument(
        "--confidence",
        type=_fraction,
        default=0.95,
        help="Confidence level of the intervals (default 0.95)",
    )
    parser.add_argument(
        "--min-effect",
        type=_fraction,
        default=0.05,
        help="Smallest relative change of a latency or rate that is called better or worse "
        "(default 5%%); fractions (goodput, error_ratio) need --min-points",
    )
    parser.add_argument(
        "--min-points",
        type=_fraction,
        default=0.01,
        help="Smallest change of goodput or error_ratio that is called (default 0.01 = 1 point)",
    )
    parser.add_argument(
        "--resamples", type=int, default=1000, help="Bootstrap resamples (default 1000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="Bootstrap seed (default 0)")
    parser.add_argument(
        "--fail-on",
        default=",".join(HEADLINE),
        help="Exit 3 when one of these metrics got worse (comma-separated, of the class All): "
        f"default {','.join(HEADLINE)}; 'none' never fails",
    )
    parser.add_argument(
        "--all", action="store_true", help="Print every metric, not only those that changed"
    )


def run(args: argparse.Namespace) -> int:
    from locust_burstgpt.report.compare import (
        ALL,
        CompareError,
        CompareOptions,
        compare_runs,
        load_run,
        metric_names,
    )

    if args.resamples < 100:
        print("burstgpt compare: error: --resamples must be at least 100", file=sys.stderr)
        return 2
    known = metric_names()
    fail_on = [] if args.fail_on.strip() == "none" else [m.strip() for m in args.fail_on.split(",")]
    unknown = [m for m in fail_on if m and m not in known]
    if unknown:
        print(
            f"burstgpt compare: error: --fail-on {','.join(unknown)}: unknown; "
            f"known: {', '.join(sorted(known))}",
            file=sys.stderr,
        )
        return 2
    try:
        base = load_run(args.baseline)
        others = [load_run(r) for r in args.runs]
    except CompareError as exc:
        print(f"burstgpt compare: error: {exc}", file=sys.stderr)
        return 2
    options = CompareOptions(
        confidence=args.confidence,
        min_effect=args.min_effect,
        min_points=args.min_points,
        resamples=args.resamples,
        seed=args.seed,
    )
    results: dict[str, Any] = {"baseline": args.baseline, "options": options.__dict__, "runs": []}
    regressions: list[str] = []
    for path, other in zip(args.runs, others, strict=True):
        deltas = compare_runs(base, other, options)
        print(_table(args.baseline, path, deltas, args.all, options.confidence))
        worse = [d for d in deltas if d.cls == ALL and d.verdict == "worse" and d.metric in fail_on]
        regressions += [f"{path}: {d.metric} {_change(d)}" for d in worse]
        results["runs"].append({"run": path, "deltas": [d.as_dict() for d in deltas]})
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "compare.json").write_text(json.dumps(results, indent=1))
        _plot(base, others, [args.baseline, *args.runs], out / "compare.png")
        print(f"wrote {out / 'compare.json'} and {out / 'compare.png'}")
    if regressions:
        print("REGRESSION: " + "; ".join(regressions))
        return 3
    print(
        "no regression in "
        + (", ".join(fail_on) if fail_on else "(nothing checked: --fail-on none)")
    )
    return 0


def _fmt(v: float | None, unit: str) -> str:
    if v is None:
        return "-"
    if unit == "s":
        return f"{v * 1000:.1f} ms" if abs(v) < 10 else f"{v:.2f} s"
    if unit == "1/s":
        return f"{v:.1f}/s"
    return f"{v * 100:.1f} %"


def _change(d: Any) -> str:
    if d.change is None:
        return "-"
    if d.unit == "":
        return f"{d.change * 100:+.1f} pt"
    return f"{d.change * 100:+.1f} %"


def _ci(d: Any) -> str:
    if d.low is None or d.high is None:
        return "-"
    suffix = " pt" if d.unit == "" else " %"
    return f"[{d.low * 100:+.1f}, {d.high * 100:+.1f}]{suffix}"


def _table(base: str, run: str, deltas: list[Any], everything: bool, confidence: float) -> str:
    lines = [
        f"{run} against {base} ({confidence * 100:g} % intervals; bootstrap over conversations)",
        f"{'class':<24} {'metric':<20} {'baseline':>11} {'run':>11} {'change':>9} "
        f"{'interval':>20}  verdict",
    ]
    shown = [d for d in deltas if everything or d.cls == "All" or d.verdict in ("better", "worse")]
    for d in shown:
        lines.append(
            f"{d.cls[:24]:<24} {d.metric:<20} {_fmt(d.baseline, d.unit):>11} "
            f"{_fmt(d.value, d.unit):>11} {_change(d):>9} {_ci(d):>20}  {d.verdict}"
        )
    return "\n".join(lines)


def _plot(base: Any, others: list[Any], names: list[str], path: Path) -> None:
    """CDFs of TTFT, TPOT and E2E per run, overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from locust_burstgpt.report.compare import latency_values

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for metric, ax in zip(("ttft", "tpot", "e2e"), axes, strict=True):
        for run, name in zip([base, *others], names, strict=True):
            values = np.sort(latency_values(run, metric))
            if len(values):
                ax.step(values, np.arange(1, len(values) + 1) / len(values), label=Path(name).name)
        ax.set_xlabel(f"{metric.upper()} (s)")
        ax.set_ylabel("fraction of requests")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
