"""Helpers for tests that run Locust with the plugin in a subprocess and read what happened."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTRUMENTED = ROOT / "tests" / "locustfiles" / "instrumented.py"


@dataclass
class LocustRun:
    returncode: int
    output: str
    dumps: list[dict]

    def by_role(self, role: str) -> list[dict]:
        return [d for d in self.dumps if d["role"] == role]

    @property
    def records(self) -> list[dict]:
        return [r for d in self.dumps for r in d["records"]]

    def ledger(self) -> dict:
        """The run's books: the local process's, or the sum of the workers' final accounts."""
        local = self.by_role("local")
        if local:
            return local[0]["ledger"]
        total: dict = {"scheduled": 0, "sent": 0, "outcomes": {}, "not_sent": {}}
        for led in self.by_role("master")[0]["worker_ledgers"].values():
            total["scheduled"] += led["scheduled"]
            total["sent"] += led["sent"]
            for key in ("outcomes", "not_sent"):
                for k, v in led[key].items():
                    total[key][k] = total[key].get(k, 0) + v
        return total


def run_locust(
    tmp: Path,
    host: str | None,
    *args: str,
    timeout: float = 180,
    locustfile: Path = INSTRUMENTED,
    env: dict | None = None,
) -> LocustRun:
    dump = tmp / "dump"
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(locustfile),
        "--headless",
        "--only-summary",
        "--loglevel",
        "INFO",
        *args,
    ]
    if host:
        cmd += ["--host", host]
    proc = subprocess.run(
        cmd,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "BURSTGPT_TEST_DUMP": str(dump), "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    dumps = [json.loads(Path(p).read_text()) for p in sorted(glob.glob(f"{dump}.*.json"))]
    return LocustRun(proc.returncode, proc.stdout + proc.stderr, dumps)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(-(-q / 100 * len(s) // 1)) - 1))
    return s[k]


def run_master_and_workers(
    tmp: Path,
    host: str,
    workers: int,
    *args: str,
    timeout: float = 180,
    locustfile: Path = INSTRUMENTED,
) -> LocustRun:
    """An explicit ``--master`` and ``workers`` ``--worker`` processes on 127.0.0.1 (as across
    hosts), the same arguments for all; the master's output is the run's."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dump = tmp / "dump"
    env = {**os.environ, "BURSTGPT_TEST_DUMP": str(dump), "PYTHONUNBUFFERED": "1"}
    common = [sys.executable, "-m", "locust", "-f", str(locustfile), "--loglevel", "INFO", *args]
    procs = [
        subprocess.Popen(
            [*common, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        for _ in range(workers)
    ]
    try:
        master = subprocess.run(
            [
                *common,
                "--headless",
                "--only-summary",
                "--master",
                "--master-bind-host",
                "127.0.0.1",
                "--master-bind-port",
                str(port),
                "--expect-workers",
                str(workers),
                "--host",
                host,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
        for p in procs:
            p.wait(timeout=30)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    dumps = [json.loads(Path(p).read_text()) for p in sorted(glob.glob(f"{dump}.*.json"))]
    return LocustRun(master.returncode, master.stdout + master.stderr, dumps)
