"""``burstgpt fit``: fit a trace's arrival, conversation, length and failure model to params.json."""

from __future__ import annotations

import argparse
import sys

HELP = "Fit a trace's workload model (arrivals, conversations, lengths, failures) to params.json"


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
        help="Fit only this window of the trace (same grammar as 'burstgpt inspect', "
        "e.g. 'd0+09:00+8h', 'first:2d', 'busiest:1h'); default: the whole trace",
    )
    parser.add_argument(
        "-o",
        "--output",
        default="params.json",
        help="Where to write the model (default params.json)",
    )
    parser.add_argument(
        "--bin",
        dest="bin_s",
        type=int,
        default=1200,
        help="Time-of-day bin in seconds, a divisor of 86400 (default 1200 = 20 min)",
    )
    parser.add_argument(
        "--shape-estimator",
        choices=("moments", "mle"),
        default="moments",
        help="Gamma shape per bin: 'moments' (1/CV^2, default; keeps the trace's "
        "burstiness) or 'mle' (maximum likelihood)",
    )
    parser.add_argument("--quiet", action="store_true", help="Do not print the summary")


def run(args: argparse.Namespace) -> int:
    from locust_burstgpt.provision.fit import FitOptions, fit_trace
    from locust_burstgpt.provision.params import save_params
    from locust_burstgpt.provision.summary import params_summary

    try:
        params = fit_trace(
            args.trace,
            window=args.window,
            options=FitOptions(bin_s=args.bin_s, shape_estimator=args.shape_estimator),
        )
        save_params(params, args.output)
    except (
        ValueError,
        OSError,
    ) as exc:  # TraceError, ParamsError and WindowSyntaxError are ValueErrors
        print(f"burstgpt fit: error: {exc}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(params_summary(params))
    print(f"wrote {args.output}")
    return 0
