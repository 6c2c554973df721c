"""Benchmark: the trace pipeline on a BurstGPT_3-sized file against a plain ``pandas.read_csv``.

    python benchmarks/trace_load.py [--rows 5344021] [--repeat 3] [--regenerate]

Generates (once, cached in the temp directory) a synthetic file in BurstGPT_3's 8-column schema
and size: 5,344,021 rows, about 4.4 % Conversation-log rows grouped into sessions (mean 4.2
turns), the rest API-log rows without a Session ID, bursty Gamma inter-arrivals over 110 days,
7 % failed rows, integer Elapsed times. The *values* are synthetic; only the shape and size
follow the published statistics of BurstGPT_3, which is what the timing depends on.

Then, alternating in fresh child processes (so each peak RSS is its own):

* baseline: ``pandas.read_csv(path)`` with default options;
* pipeline: ``load_trace`` (read + validate + normalize + sha256) and ``prepare`` with its
  defaults (the whole trace, failed rows skipped, speedup 1): conversations, service times and
  the three per-second curves.

Prints the median of each, their ratio, and each child's peak RSS. Targets: pipeline within 2.5x
the plain read, under 15 s, peak RSS under 3 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROWS_BURSTGPT_3 = 5_344_021
CONVERSATION_SHARE = 233_617 / ROWS_BURSTGPT_3  # 4.37 % Conversation-log rows (with sessions)
SPAN_S = 110 * 86400.0
T0 = 19_440_110.0
HEADER = [
    "Timestamp",
    "Session ID",
    "Elapsed time",
    "Model",
    "Request tokens",
    "Response tokens",
    "Total tokens",
    "Log Type",
]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    """Write a BurstGPT_3-shaped CSV with ``rows`` data rows (vectorised; a few seconds)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    rng = np.random.default_rng(seed)
    n_conv_rows = int(round(rows * CONVERSATION_SHARE))
    # Session lengths: 45 % one turn, else 1 + geometric (mean ~4.2 turns, median 2).
    turns = np.where(rng.random(n_conv_rows) < 0.45, 1, 1 + rng.geometric(1 / 5.78, n_conv_rows))
    turns = turns[: int(np.searchsorted(np.cumsum(turns), n_conv_rows)) + 1]
    turns[-1] -= int(turns.sum()) - n_conv_rows
    turns = turns[turns > 0]
    n_sessions = turns.size
    n_api = rows - n_conv_rows

    def arrivals(n: int) -> np.ndarray:
        gaps = rng.gamma(0.3, 1.0, n)  # bursty: CV ~1.8
        t = np.cumsum(gaps)
        return np.floor(T0 + t / t[-1] * SPAN_S * 0.995)

    api_ts = arrivals(n_api)
    first_ts = arrivals(n_sessions)
    sess = np.repeat(np.arange(n_sessions), turns)
    first_row = np.cumsum(turns) - turns
    k = np.arange(n_conv_rows) - np.repeat(first_row, turns)
    think = np.where(k > 0, np.floor(rng.lognormal(np.log(100), 1.2, n_conv_rows)), 0.0)
    conv_ts = np.repeat(first_ts, turns) + (
        np.cumsum(think) - np.repeat(np.cumsum(think)[first_row] - think[first_row], turns)
    )

    is_conv = np.concatenate([np.zeros(n_api, bool), np.ones(n_conv_rows, bool)])
    ts = np.concatenate([api_ts, conv_ts])
    session_idx = np.concatenate([np.full(n_api, -1), sess])
    turn_idx = np.concatenate([np.zeros(n_api, np.int64), k])
    order = np.argsort(ts, kind="stable")
    ts, is_conv, session_idx, turn_idx = (
        ts[order],
        is_conv[order],
        session_idx[order],
        turn_idx[order],
    )

    gpt4 = rng.random(rows) < 0.15
    req = np.clip(np.round(rng.lognormal(np.log(327), 1.1, rows)), 1, 125_591).astype(np.int64)
    req += np.where(turn_idx > 0, turn_idx * 300, 0)  # history grows with turns
    resp = np.clip(np.round(rng.lognormal(np.log(120), 1.0, rows)), 1, 5_383).astype(np.int64)
    fail = rng.random(rows) < np.where(is_conv, 0.0079, 0.0756)
    resp[fail] = 0
    req[fail & (rng.random(rows) < 0.9)] = 0
    per_token = np.where(gpt4, 0.116, 0.011)
    elapsed = np.floor(np.where(is_conv, 1.0, 0.0) + per_token * resp * rng.lognormal(0, 0.5, rows))

    ids = np.array(
        [
            f"{int(a):08x}-{int(b):04x}-4{int(c):03x}-a{int(d):03x}-{int(e):012x}"
            for a, b, c, d, e in zip(
                rng.integers(0, 2**32, n_sessions),
                rng.integers(0, 2**16, n_sessions),
                rng.integers(0, 2**12, n_sessions),
                rng.integers(0, 2**12, n_sessions),
                rng.integers(0, 2**48, n_sessions),
                strict=True,
            )
        ]
    )
    session = pa.array(
        np.where(session_idx >= 0, ids[np.maximum(session_idx, 0)], None), pa.string()
    )
    ts_text = pc.binary_join_element_wise(
        pc.cast(pa.array(ts.astype(np.int64)), pa.string()), ".0", ""
    )
    table = pa.table(
        {
            "Timestamp": ts_text,
            "Session ID": session,
            "Elapsed time": elapsed.astype(np.int64),
            "Model": np.where(gpt4, "GPT-4", "ChatGPT"),
            "Request tokens": req,
            "Response tokens": resp,
            "Total tokens": req + resp,
            "Log Type": np.where(is_conv, "Conversation log", "API log"),
        }
    )
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as fh:
        fh.write((",".join(HEADER) + "\n").encode())
        pacsv.write_csv(
            table, fh, write_options=pacsv.WriteOptions(include_header=False, quoting_style="none")
        )
    tmp.replace(path)


def child(mode: str, path: str) -> None:
    """Run one measurement in this (fresh) process and print JSON on stdout."""
    if mode == "baseline":
        import pandas as pd

        t = time.perf_counter()
        df = pd.read_csv(path)
        seconds = time.perf_counter() - t
        info = {"rows": len(df)}
    else:
        from locust_burstgpt.trace import load_trace, prepare

        t = time.perf_counter()
        raw = load_trace(path, progress=False)
        t_load = time.perf_counter() - t
        wl = prepare(raw)  # defaults: whole trace, failed rows skipped, speedup 1
        seconds = time.perf_counter() - t
        info = {
            "rows": raw.rows,
            "load_s": round(t_load, 3),
            "prepare_s": round(seconds - t_load, 3),
            "conversations": wl.n_conversations,
            "requests": wl.n_requests,
            "curve_seconds": len(wl.curves),
            "peak_concurrency": int(wl.curves.concurrency.max()),
        }
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"mode": mode, "seconds": seconds, "peak_rss_mb": peak_kb / 1024, **info}))


def run_child(mode: str, path: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=ROWS_BURSTGPT_3)
    ap.add_argument(
        "--repeat", type=int, default=3, help="baseline/pipeline pairs (median reported)"
    )
    ap.add_argument("--regenerate", action="store_true")
    ap.add_argument("--dir", default=os.path.join(tempfile.gettempdir(), "locust-burstgpt-bench"))
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return 0

    path = Path(args.dir) / f"burstgpt3_shaped_{args.rows}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    if args.regenerate or not path.exists():
        t = time.perf_counter()
        generate(path, args.rows)
        print(f"generated {path} in {time.perf_counter() - t:.1f} s")
    print(f"file: {path} ({path.stat().st_size / 1e6:,.0f} MB, {args.rows:,} rows)")
    with open(path, "rb") as fh:  # warm the page cache for both contenders
        while fh.read(16 << 20):
            pass

    base, pipe = [], []
    for i in range(args.repeat):
        base.append(run_child("baseline", path))
        pipe.append(run_child("pipeline", path))
        print(
            f"  pair {i + 1}: read_csv {base[-1]['seconds']:.2f} s, pipeline {pipe[-1]['seconds']:.2f} s "
            f"(load {pipe[-1]['load_s']:.2f} + prepare {pipe[-1]['prepare_s']:.2f}), "
            f"ratio {pipe[-1]['seconds'] / base[-1]['seconds']:.2f}"
        )
    b_med = statistics.median(r["seconds"] for r in base)
    p_med = statistics.median(r["seconds"] for r in pipe)
    b_min = min(r["seconds"] for r in base)
    p_min = min(r["seconds"] for r in pipe)
    ratio = statistics.median(p["seconds"] / b["seconds"] for p, b in zip(pipe, base, strict=True))
    rss_b = max(r["peak_rss_mb"] for r in base)
    rss_p = max(r["peak_rss_mb"] for r in pipe)
    last = pipe[-1]
    print(
        f"workload: {last['conversations']:,} conversations, {last['requests']:,} requests, "
        f"{last['curve_seconds']:,} curve seconds, peak concurrency {last['peak_concurrency']}"
    )
    print(
        f"plain pandas.read_csv     : median {b_med:5.2f} s  best {b_min:5.2f} s  peak RSS {rss_b:,.0f} MB"
    )
    print(
        f"load+validate+conv+curves : median {p_med:5.2f} s  best {p_min:5.2f} s  peak RSS {rss_p:,.0f} MB"
    )
    print(
        f"ratio pipeline/read_csv   : median of pairs {ratio:.2f}x, of medians {p_med / b_med:.2f}x, "
        f"of bests {p_min / b_min:.2f}x"
    )
    print("targets: ratio <= 2.5x, pipeline < 15 s, peak RSS < 3,072 MB")
    ok = ratio <= 2.5 and p_med < 15 and rss_p < 3072
    print("PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
