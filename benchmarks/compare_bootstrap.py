"""``burstgpt compare``'s bootstrap: weighted resamples against writing each resample out.

Two synthetic runs of ``--requests`` streamed requests (``--chunks`` chunks each, three turns per
conversation, two classes) are compared over ``--resamples`` bootstrap resamples. The figure is
the time ``compare_runs`` takes. The baseline, in the same run and on the same data, is the plain
way for the costliest family only: for every resample, concatenate the drawn conversations' ITL
values and call ``np.percentile`` (p50/p90/p95/p99), for the class All and each class (so it is
a lower bound of the plain cost of everything). Its p99s must equal the weighted ones, which the
script checks.

Usage:  python benchmarks/compare_bootstrap.py [--requests 10000] [--chunks 100] [--resamples 200]
Writes its two report directories under a temporary directory and removes them.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np

from locust_burstgpt.report.compare import CompareOptions, Sample, compare_runs, load_run

PCTS = (50, 90, 95, 99)


def write_run(d: Path, n: int, chunks: int, scale: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    d.mkdir(parents=True)
    with open(d / "requests.jsonl", "w") as f:
        for i in range(n):
            ttft = float(rng.lognormal(math.log(0.2 * scale), 0.3))
            ms = (np.cumsum(rng.normal(0.02, 0.002, chunks)) + ttft) * 1000
            entry = {
                "request_id": str(i),
                "outcome": "ok",
                "conversation": f"c{i // 3}",
                "trace_row": i,
                "class": "API" if i % 2 else "chat",
                "ttft": ttft,
                "tpot": 0.02,
                "e2e": float(ms[-1]) / 1000,
                "chunk_ms": [round(float(x), 2) for x in ms],
                "completion_tokens": chunks,
            }
            f.write(json.dumps(entry) + "\n")
    (d / "summary.json").write_text(json.dumps({"run_duration_s": 600.0}))
    return d


def plain_itl_bootstrap(units: list[np.ndarray], resamples: int, seed: int) -> list[float]:
    """ITL p50/p90/p95/p99 of each written-out resample; returns the p99s."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(resamples):
        idx = rng.integers(0, len(units), len(units))
        out.append(float(np.percentile(np.concatenate([units[i] for i in idx]), PCTS)[-1]))
    return out


def itl_units(run, cls: str) -> list[np.ndarray]:
    convs = run.conversations(cls)
    return [
        np.concatenate([np.diff(np.asarray(e["chunk_ms"], float)) / 1000 for e in convs[k]])
        for k in sorted(convs)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--chunks", type=int, default=100)
    ap.add_argument("--resamples", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        a = load_run(write_run(Path(tmp) / "a", args.requests, args.chunks, 1.0, 1))
        b = load_run(write_run(Path(tmp) / "b", args.requests, args.chunks, 1.1, 2))
        t0 = time.perf_counter()
        deltas = compare_runs(a, b, CompareOptions(resamples=args.resamples))
        ours = time.perf_counter() - t0

        t0 = time.perf_counter()
        for cls in ("All", "API", "chat"):
            plain = plain_itl_bootstrap(itl_units(a, cls), args.resamples, seed=3)
        base = time.perf_counter() - t0
        units = itl_units(a, "chat")
        rng = np.random.default_rng(3)
        sample = Sample(units)
        weighted = []
        for _ in range(args.resamples):
            draws = np.bincount(rng.integers(0, len(units), len(units)), minlength=len(units))
            weighted.append(sample.view(draws).percentile(99))
        same = np.allclose(plain, weighted, rtol=1e-12)
    itl = args.requests * (args.chunks - 1)
    print(
        f"{args.requests} requests, {itl:,} ITL values per run, {args.resamples} resamples\n"
        f"  compare_runs, every metric and class ({len(deltas)} deltas): {ours:.2f} s\n"
        f"  baseline, written-out resamples, the 4 ITL percentiles of 3 classes: {base:.2f} s\n"
        f"  ratio baseline / compare_runs: {base / ours:.1f}x (the baseline does 12 of "
        f"{len(deltas)} figures)\n"
        f"  weighted percentiles equal the written-out ones: {same}"
    )
    if not same:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
