"""Benchmark: ``burstgpt synth`` writing a million-row trace, against a plain pandas CSV write.

    python benchmarks/synth_speed.py [--rows 1000000] [--repeat 3] [--preset burstgpt1-week1 ...]

For each preset, synthesizes about ``--rows`` requests over 7 days (the rate is set to rows /
duration) and writes the 8-column CSV, timing generation and writing separately. The baseline,
in the same run and on the same rows, is ``pandas.DataFrame.to_csv`` of those 8 columns (the
usual way to write such a table; it does no generation at all). Prints medians over
``--repeat`` runs, the ratio to the baseline, and whether the target (a million-row trace
written in under 20 s, generation included) is met.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 20.0
WEEK_S = 7 * 86400.0


def run_once(preset: str, rows: int, folder: Path, seed: int) -> tuple[int, float, float, float]:
    """(rows written, generation s, our write s, pandas write s) for one repetition."""
    from locust_burstgpt.provision.presets import load_preset
    from locust_burstgpt.provision.synth import synthesize, write_trace

    params = load_preset(preset)
    t0 = time.perf_counter()
    trace = synthesize(params, rate=rows / WEEK_S, duration_s=WEEK_S, seed=seed)
    t1 = time.perf_counter()
    write_trace(trace, folder / "synth.csv")
    t2 = time.perf_counter()
    frame = trace.to_arrow().to_pandas()
    t3 = time.perf_counter()
    frame.to_csv(folder / "pandas.csv", index=False)
    t4 = time.perf_counter()
    return trace.rows, t1 - t0, t2 - t1, t4 - t3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--preset",
        action="append",
        help="Preset(s) to time (default: burstgpt1-week1, burstgpt3-slice, paper-demo)",
    )
    args = parser.parse_args()
    presets = args.preset or ["burstgpt1-week1", "burstgpt3-slice", "paper-demo"]
    print(
        f"synthesize about {args.rows:,} requests over 7 days and write the CSV; median of {args.repeat}"
    )
    print(
        f"{'preset':18s} {'rows':>10s} {'generate s':>11s} {'write s':>8s} {'total s':>8s} "
        f"{'rows/s':>10s} {'pandas to_csv s':>16s} {'total/pandas':>13s}  target < {TARGET_S:.0f} s"
    )
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for preset in presets:
            runs = [run_once(preset, args.rows, folder, seed) for seed in range(args.repeat)]
            n = runs[0][0]
            gen = statistics.median(r[1] for r in runs)
            write = statistics.median(r[2] for r in runs)
            total = statistics.median(r[1] + r[2] for r in runs)
            base = statistics.median(r[3] for r in runs)
            met = total < TARGET_S
            ok &= met
            print(
                f"{preset:18s} {n:>10,d} {gen:>11.2f} {write:>8.2f} {total:>8.2f} {n / total:>10,.0f} "
                f"{base:>16.2f} {total / base:>13.2f}  {'PASS' if met else 'FAIL'}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
