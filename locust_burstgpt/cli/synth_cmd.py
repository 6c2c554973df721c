"""``burstgpt synth``: write a BurstGPT_3-schema trace from params.json or a preset, at any rate."""

from __future__ import annotations

import argparse
import re
import sys
import time

HELP = (
    "Synthesize a BurstGPT_3-schema trace from a fitted model or a preset, at any rate and length"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--params", help="A params.json written by 'burstgpt fit'")
    src.add_argument(
        "--preset",
        help="A named model: paper-demo, burstgpt1-week1, burstgpt3-slice (see --list-presets)",
    )
    src.add_argument("--list-presets", action="store_true", help="List the presets and exit")
    parser.add_argument(
        "--rate",
        default=None,
        help="Mean requests per second over the window, or 'Nx' for N times the "
        "fitted mean rate (default: the fitted mean rate)",
    )
    parser.add_argument(
        "--duration",
        default=None,
        help="Length of the window: seconds or 90s/10m/2h/7d (default: the fitted window's)",
    )
    parser.add_argument(
        "--start",
        default=None,
        help="Window start from 00:00 of day 0: seconds, 9h/90m, or d<day>+HH:MM such as "
        "'d0+09:00' (default: the fitted window's time of day, on day 0)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="Random seed (default 0): same seed, same trace"
    )
    parser.add_argument(
        "--day-levels",
        choices=("cycle", "flat"),
        default="cycle",
        help="'cycle' repeats the fitted day-to-day levels (default); 'flat' gives every day level 1",
    )
    parser.add_argument(
        "--tail",
        choices=("keep", "cut"),
        default="keep",
        help="'keep' (default) keeps every turn of conversations started in the window, "
        "even after its end; 'cut' drops rows at or after the end",
    )
    parser.add_argument("-o", "--output", help="Where to write the CSV trace")


def parse_rate(text: str | None, fitted: float) -> float:
    """``'2.5'`` requests/s, or ``'10x'`` times the fitted mean rate."""
    if text is None:
        return fitted
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([xX]?)\s*", text)
    if not m or float(m[1]) <= 0:
        raise ValueError(
            f"rate {text!r}: expected requests per second > 0 (e.g. 2.5) or a multiple such as 10x"
        )
    return float(m[1]) * (fitted if m[2] else 1.0)


def parse_start_option(text: str) -> float:
    """Seconds from 00:00 of day 0: ``32400``, ``9h``, ``90m`` or ``d0+09:00``."""
    from locust_burstgpt.trace.window import WindowSyntaxError, parse_duration, parse_start

    value = text.strip()
    try:
        return (
            parse_start(value)
            if value.startswith("d") or value.replace(".", "", 1).isdigit()
            else parse_duration(value)
        )
    except WindowSyntaxError:
        raise ValueError(
            f"start {text!r}: expected seconds from 00:00 of day 0 (e.g. 32400 or 9h) "
            "or d<day>+HH:MM (e.g. d0+09:00)"
        ) from None


def run(args: argparse.Namespace) -> int:
    from locust_burstgpt.provision.params import load_params
    from locust_burstgpt.provision.presets import DESCRIPTIONS, load_preset
    from locust_burstgpt.provision.summary import trace_summary
    from locust_burstgpt.provision.synth import synthesize, write_trace
    from locust_burstgpt.trace.window import parse_duration

    if args.list_presets:
        for name, desc in DESCRIPTIONS.items():
            print(f"{name:18s} {desc}")
        return 0
    if not args.output:
        print("burstgpt synth: error: -o/--output is required", file=sys.stderr)
        return 2
    try:
        params = load_params(args.params) if args.params else load_preset(args.preset)
        rate = parse_rate(args.rate, params.mean_rate)
        duration = parse_duration(args.duration) if args.duration else None
        start = parse_start_option(args.start) if args.start else None
        t0 = time.perf_counter()
        trace = synthesize(
            params,
            rate=rate,
            duration_s=duration,
            start_s=start,
            seed=args.seed,
            day_levels=args.day_levels,
            tail=args.tail,
        )
        write_trace(trace, args.output)
        took = time.perf_counter() - t0
    except (ValueError, OSError) as exc:  # ParamsError and WindowSyntaxError are ValueErrors
        print(f"burstgpt synth: error: {exc}", file=sys.stderr)
        return 2
    print(trace_summary(trace))
    print(f"wrote {args.output} in {took:.2f} s")
    return 0
