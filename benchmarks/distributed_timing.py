"""Distributed timing: schedule lateness with ``--processes 2`` and with ``--master`` + 2 ``--worker``
against one process, on the same schedule and server, in one run.

What it shows: workers keep the schedule as one process does. The baseline is the single process of
the same run; the figures are lateness p50/p95/p99/max (from each run's own ``summary.json``) and
the ratio of each distributed p99 to the single process's. Each setup runs ``--repeat`` times in
alternating order; medians are printed.

    .venv/bin/python benchmarks/distributed_timing.py            # bundled BurstGPT_3 slice at 1000x
    .venv/bin/python benchmarks/distributed_timing.py --repeat 3 --speedup 2000

The server is the embedded simulator's ``fast`` profile (answers in milliseconds, so the load
generator, not the server, is what is measured). Everything binds 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from locust_burstgpt.sim import SimulatorProcess  # noqa: E402

LOCUSTFILE = ROOT / "locustfiles" / "burstgpt.py"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(setup: str, host: str, window: str, speedup: float, out: Path) -> dict:
    common = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--burstgpt-window",
        window,
        "--burstgpt-speedup",
        str(speedup),
    ]
    head = ["--headless", "--only-summary", "--host", host, "--burstgpt-report", str(out)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT, "env": env}
    if setup == "one process":
        subprocess.run([*common, *head], timeout=600, check=False, **quiet)
    elif setup == "--processes 2":
        subprocess.run([*common, *head, "--processes", "2"], timeout=600, check=False, **quiet)
    else:
        port = str(_port())
        workers = [
            subprocess.Popen(
                [*common, "--worker", "--master-host", "127.0.0.1", "--master-port", port], **quiet
            )
            for _ in range(2)
        ]
        master = [
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            port,
            "--expect-workers",
            "2",
        ]
        subprocess.run([*common, *head, *master], timeout=600, check=False, **quiet)
        for w in workers:
            w.wait(timeout=60)
    summary = json.loads((out / "summary.json").read_text())
    late = summary["metrics"]["All"]["lateness"]
    return {
        "p50": late["p50"],
        "p95": late["p95"],
        "p99": late["p99"],
        "max": late["max"],
        "sent": summary["reconciliation"]["sent"],
        "trusted": summary["verdict"]["trusted"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--window", default="19440110+70000s", help="window of the bundled slice")
    ap.add_argument("--speedup", type=float, default=1000.0)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    setups = ["one process", "--processes 2", "master + 2 workers"]
    results: dict[str, list[dict]] = {s: [] for s in setups}
    with SimulatorProcess(profile="fast") as sim, tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeat):
            order = setups if k % 2 == 0 else setups[::-1]
            for setup in order:
                out = Path(tmp) / f"{k}-{setup.replace(' ', '_')}"
                r = run(setup, sim.base_url, args.window, args.speedup, out)
                results[setup].append(r)
                print(
                    f"pass {k + 1} {setup:>20}: lateness p50 {r['p50'] * 1000:.2f} p95 "
                    f"{r['p95'] * 1000:.2f} p99 {r['p99'] * 1000:.2f} max {r['max'] * 1000:.1f} ms; "
                    f"sent {r['sent']}; trusted {r['trusted']}",
                    flush=True,
                )

    def med(setup: str, key: str) -> float:
        return statistics.median(r[key] for r in results[setup])

    base = med("one process", "p99")
    print(
        f"\nmedians over {args.repeat} pass(es), window {args.window} at speedup {args.speedup:g}:"
    )
    for setup in setups:
        p99 = med(setup, "p99")
        print(
            f"{setup:>20}: lateness p95 {med(setup, 'p95') * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms "
            f"({p99 / base:.2f}x the single process)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
