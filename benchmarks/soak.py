"""Soak: replay a steady synthetic trace through Locust against the simulator for a long time and
print the load process's resident memory every minute.

What it shows: memory stays flat once the run is warm, so a long run does not grow with the number
of requests (metrics are bounded histograms; per-request data goes to requests.jsonl on disk). The
baseline is the same run's own first minute: the figures are RSS at each minute, its ratio to minute 1,
the growth per 1,000 requests after minute 1, and the size of requests.jsonl for comparison.

    .venv/bin/python benchmarks/soak.py                   # 10 minutes at 20 requests/s
    .venv/bin/python benchmarks/soak.py --minutes 2 --rate 5
    .venv/bin/python benchmarks/soak.py --attribute        # also: which lines allocated what grew

It binds and targets 127.0.0.1 only and stops by itself (the shape ends the run with its window).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from locust_burstgpt.sim import SimulatorProcess  # noqa: E402
from tests.support import HEADER_3  # noqa: E402

# --attribute: the shipped classes plus tracemalloc snapshots after the first interval and shortly
# before the window ends; the lines whose live memory grew most are written to a file.
ATTRIBUTE_LOCUSTFILE = """
import gc, os, tracemalloc
import gevent
from locust import events
from locust_burstgpt.plugin import BurstGPTShape, BurstGPTUser

class SoakUser(BurstGPTUser):
    pass

class SoakShape(BurstGPTShape):
    pass

SKIP = [tracemalloc.Filter(False, "<frozen*"), tracemalloc.Filter(False, tracemalloc.__file__)]

@events.test_start.add_listener
def _attribute(environment, **_kw):
    first, last, out = (float(os.environ["SOAK_FIRST_S"]), float(os.environ["SOAK_LAST_S"]),
                        os.environ["SOAK_ATTRIBUTION"])
    tracemalloc.start(1)

    def snapshots():
        gevent.sleep(first)
        gc.collect()
        a = tracemalloc.take_snapshot().filter_traces(SKIP)
        gevent.sleep(last - first)
        gc.collect()
        b = tracemalloc.take_snapshot().filter_traces(SKIP)
        with open(out, "w") as f:
            for st in b.compare_to(a, "lineno")[:12]:
                f.write(f"{st.size_diff / 1024:9.1f} KiB {st.count_diff:+8d} objects  {st.traceback}\\n")

    gevent.spawn(snapshots)
"""


def write_trace(path: Path, seconds: int, rate: float, seed: int = 7) -> int:
    """A steady trace: ``rate`` requests a second, one in ten conversations three turns long."""
    rng = random.Random(seed)
    rows: list[tuple[float, str]] = []
    t, n, session = 0.0, 0, 0
    while t < seconds - 5:
        prompt, reply = rng.randint(50, 400), rng.randint(10, 80)
        if n % 10 == 0:
            session += 1
            for k in range(3):
                at = t + 1.5 * k
                if at < seconds - 3:
                    p = prompt + 150 * k
                    rows.append(
                        (
                            at,
                            f"{at:.3f},soak{session},1,GPT-4,{p},{reply},{p + reply},Conversation log\n",
                        )
                    )
        else:
            rows.append((t, f"{t:.3f},,1,ChatGPT,{prompt},{reply},{prompt + reply},API log\n"))
        n += 1
        t += 1.0 / rate
    rows.sort(key=lambda r: r[0])
    path.write_text(HEADER_3 + "\n" + "".join(r for _, r in rows))
    return len(rows)


def line_count(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=20.0, help="requests per second")
    ap.add_argument("--interval", type=float, default=60.0, help="seconds between RSS samples")
    ap.add_argument(
        "--attribute",
        action="store_true",
        help="trace allocations (slower) and print the lines whose memory grew most",
    )
    args = ap.parse_args()
    seconds = int(args.minutes * 60)
    with tempfile.TemporaryDirectory(prefix="burstgpt-soak-") as tmp_name:
        tmp = Path(tmp_name)
        trace = tmp / "soak.csv"
        rows = write_trace(trace, seconds, args.rate)
        report = tmp / "report"
        print(
            f"soak: {rows} requests over {seconds} s ({args.rate:g}/s), simulator profile fast",
            flush=True,
        )
        locustfile = ROOT / "locustfiles" / "burstgpt.py"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if args.attribute:
            locustfile = tmp / "soak_attribute.py"
            locustfile.write_text(ATTRIBUTE_LOCUSTFILE)
            env.update(
                SOAK_FIRST_S=str(args.interval),
                SOAK_LAST_S=str(max(args.interval + 1, seconds - 10)),
                SOAK_ATTRIBUTION=str(tmp / "attribution.txt"),
            )
        with SimulatorProcess(profile="fast") as sim:
            cmd = [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(locustfile),
                "--headless",
                "--only-summary",
                "--host",
                sim.base_url,
                "--burstgpt-trace",
                str(trace),
                "--burstgpt-window",
                f"0+{seconds}s",
                "--burstgpt-report",
                str(report),
                "--burstgpt-server-metrics",
                "off",
            ]
            log = open(tmp / "locust.log", "w")  # noqa: SIM115 - closed below
            proc = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
            ps = psutil.Process(proc.pid)
            samples: list[
                tuple[float, float, int, int]
            ] = []  # (minute, rss MiB, requests, jsonl bytes)
            started = time.monotonic()
            next_at = started + args.interval
            try:
                while proc.poll() is None:
                    time.sleep(min(1.0, max(0.0, next_at - time.monotonic())))
                    if time.monotonic() < next_at or proc.poll() is not None:
                        continue
                    next_at += args.interval
                    rss = ps.memory_info().rss / 2**20
                    jsonl = report / "requests.jsonl"
                    size = jsonl.stat().st_size if jsonl.exists() else 0
                    samples.append(
                        ((time.monotonic() - started) / 60, rss, line_count(jsonl), size)
                    )
                    m, r, n, b = samples[-1]
                    base = samples[0][1]
                    print(
                        f"minute {m:5.1f}: RSS {r:7.1f} MiB ({r / base:5.3f} x first sample), {n:6d} requests "
                        f"done, requests.jsonl {b / 2**20:6.1f} MiB",
                        flush=True,
                    )
                proc.wait(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                log.close()
            tail = (tmp / "locust.log").read_text().splitlines()
        print(
            "\n".join(
                line for line in tail if line.startswith(("Reconciliation", "UNTRUSTWORTHY", "SLO"))
            )
        )
        if len(samples) >= 2:
            (m0, r0, n0, b0), (m1, r1, n1, b1) = samples[0], samples[-1]
            per_k = (r1 - r0) / max(1, n1 - n0) * 1000 * 1024
            per_min = (r1 - r0) * 1024 / max(1e-9, m1 - m0)
            print(
                f"RSS minute {m0:.1f} -> {m1:.1f}: {r0:.1f} -> {r1:.1f} MiB, ratio {r1 / r0:.3f}; "
                f"{per_min:+.0f} KiB per minute, {per_k:+.1f} KiB per 1,000 requests after the first sample "
                f"(requests.jsonl grew {(b1 - b0) / max(1, n1 - n0) * 1000 / 1024:.1f} KiB per 1,000)"
            )
            print(
                "growth that stays the same per minute at another --rate is per-second bookkeeping "
                "(timeline rows, Locust's per-second counters), not per-request"
            )
        attribution = tmp / "attribution.txt"
        if attribution.exists():
            print("memory growth by allocation site, first sample -> 10 s before the end:")
            print(attribution.read_text(), end="")
        print(f"locust exit code {proc.returncode}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
