"""``burstgpt inspect``: summarize a BurstGPT trace (or a window of it), optionally as JSON or a plot."""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

HELP = "Summarize a BurstGPT trace: mix, conversations, arrivals, burstiness, lengths, concurrency"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "trace",
        nargs="?",
        default=None,
        help="BurstGPT trace (.csv, .csv.gz, .parquet); default: the bundled BurstGPT_3 slice",
    )
    parser.add_argument(
        "--window",
        default=None,
        help="Only this window: '<start>+<duration>' (start in trace seconds or "
        "d<day>+HH:MM, e.g. 'd0+14:00+10m'), 'first:<dur>', 'busiest:<dur>' "
        "or 'peak-concurrency:<dur>'; default: the whole trace",
    )
    parser.add_argument(
        "--model",
        action="append",
        default=None,
        metavar="NAME",
        help="Only rows of this model (repeatable, or comma-separated)",
    )
    parser.add_argument(
        "--log-type",
        action="append",
        default=None,
        metavar="NAME",
        help="Only rows of this log type, e.g. 'Conversation log' (repeatable)",
    )
    parser.add_argument(
        "--failed",
        choices=("skip", "send"),
        default="skip",
        help="Failed rows (0 response tokens): left out of the replay statistics "
        "(skip, default) or kept (send); always counted in failed_rows",
    )
    parser.add_argument(
        "--speedup",
        type=float,
        default=1.0,
        help="Divide arrival and think times by this factor (service times are not)",
    )
    parser.add_argument("--json", action="store_true", help="Print one JSON object instead of text")
    parser.add_argument(
        "--plot",
        metavar="OUT.png",
        default=None,
        help="Also write a PNG: concurrency and arrivals per second, hour-of-day "
        "profile, request/response length histograms",
    )
    parser.add_argument("--no-progress", action="store_true", help="Never show load progress")


def _names(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return [v.strip() for item in values for v in item.split(",") if v.strip()]


def run(args: argparse.Namespace) -> int:
    from locust_burstgpt.trace import TraceError, load_trace, prepare
    from locust_burstgpt.trace.summary import summarize

    try:
        raw = load_trace(args.trace, progress=False if args.no_progress else None)
        wl = prepare(
            raw,
            models=_names(args.model),
            log_types=_names(args.log_type),
            failed=args.failed,
            window=args.window,
            speedup=args.speedup,
        )
        summary = summarize(wl)
    except TraceError as exc:
        print(f"burstgpt inspect: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # bad option values (window grammar, unknown model, speedup)
        print(f"burstgpt inspect: error: {exc}", file=sys.stderr)
        return 2
    if args.plot:
        from locust_burstgpt.trace.plot import plot_workload

        try:
            plot_workload(wl, args.plot)
        except OSError as exc:
            print(f"burstgpt inspect: error: cannot write {args.plot}: {exc}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps(_jsonable(summary), indent=2))
    else:
        print(format_summary(summary))
        if args.plot:
            print(f"\nwrote {args.plot}")
    return 0


def _jsonable(value: Any) -> Any:
    """Plain JSON: finite floats, str keys (NaN/inf become null)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "-"
    if isinstance(x, float):
        if x == int(x) and abs(x) < 1e15:
            return f"{int(x):,}"
        return f"{x:,.{digits}g}" if abs(x) < 1000 else f"{x:,.0f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def _row(stats: dict[str, Any]) -> str:
    return "  ".join(
        f"{k} {_num(v)}" for k, v in stats.items() if k not in ("estimated", "dequantized")
    )


def format_summary(s: dict[str, Any]) -> str:
    """The human-readable version of the summary."""
    w = s["window"]
    est = (
        " (ESTIMATED service times: not recorded in the trace)"
        if s["concurrency"]["estimated"]
        else ""
    )
    lines = [
        f"trace      {s['file']}",
        f"sha256     {s['sha256']}",
        f"window     {w['spec']}: trace seconds [{_num(w['start'])}, {_num(w['end'])}) "
        f"= {_num(w['length_s'])} s; speedup {_num(s['speedup'])} -> {_num(s['duration_s'])} s",
        f"rows       {s['rows']:,} in window, {s['failed_rows']:,} failed (0 response tokens), "
        f"{s['rows_used']:,} replayed (failed rows: {s['failed_policy']}); span {_num(s['span_s'])} s",
        "models     " + ", ".join(f"{k} {v:,}" for k, v in s["models"].items()),
        "log types  " + ", ".join(f"{k} {v:,}" for k, v in s["log_types"].items()),
        f"conversations {s['conversations']:,} ({s['requests']:,} requests); turns: "
        + _row(s["turns_per_conversation"]),
        "think time (s)       " + _row(s["think_time_s"]),
        "arrivals per second  "
        + _row(s["arrivals_per_s"])
        + f"  index of dispersion (1 s) {_num(s['index_of_dispersion_1s'])}",
        "inter-arrival (s)    " + _row(s["interarrival_s"]),
        "request tokens       " + _row(s["request_tokens"]),
        "response tokens      " + _row(s["response_tokens"]),
        "concurrency          " + _row(s["concurrency"]) + est,
        "requests in flight   " + _row(s["in_flight"]) + est,
    ]
    lines += [f"warning: {msg}" for msg in s["warnings"]]
    return "\n".join(lines)
