"""Run a load generator as a subprocess and measure its whole process tree.

CPU: every ``interval_s`` the tree (the process and all its descendants) is listed with psutil
and each process's own user+system CPU is remembered; the run's CPU is the sum over every
process ever seen. When the root exits it is reaped with ``os.wait4``, whose rusage covers every
descendant that was waited for, exactly; the larger of the two totals is reported (the samples
catch orphans nobody waited for, wait4 catches the last moments of short-lived children).
Memory: the sum of the tree's RSS at each sample; the peak of that sum is reported (shared pages
of forked workers count once per process, as ``ps`` shows them).
The CPU samples are kept as a time series, so CPU inside any wall-clock interval (e.g. the replay
itself, without start-up and report writing) can be read afterwards.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass
class TreeUsage:
    """What a measured run used."""

    returncode: int
    wall_s: float
    cpu_s: float  # user + system of the whole tree, whole run
    peak_rss_mb: float  # peak of the tree's summed RSS
    peak_processes: int
    started_at: float  # wall clock
    samples: list[tuple[float, float]] = field(default_factory=list)  # (wall time, tree CPU so far)
    timed_out: bool = False

    def cpu_between(self, t0: float, t1: float) -> float:
        """Tree CPU seconds spent in the wall-clock interval [t0, t1] (linear between samples)."""
        return max(0.0, self._cpu_at(t1) - self._cpu_at(t0))

    def _cpu_at(self, t: float) -> float:
        s = self.samples
        if not s:
            return 0.0
        times = [x[0] for x in s]
        i = bisect_left(times, t)
        if i == 0:
            return s[0][1] * (t >= s[0][0])
        if i >= len(s):
            return s[-1][1]
        (ta, ca), (tb, cb) = s[i - 1], s[i]
        return ca + (cb - ca) * (t - ta) / (tb - ta) if tb > ta else cb


class _Sampler(threading.Thread):
    def __init__(self, pid: int, interval_s: float) -> None:
        super().__init__(daemon=True)
        self.root = psutil.Process(pid)
        self.interval_s = interval_s
        self.stop_event = threading.Event()
        self.cpu: dict[tuple[int, float], float] = {}  # (pid, create_time) -> own CPU seconds
        self.samples: list[tuple[float, float]] = []
        self.peak_rss = 0
        self.peak_procs = 0

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval_s)

    def sample(self) -> None:
        try:
            procs = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        rss = 0
        alive = 0
        for p in procs:
            try:
                with p.oneshot():
                    t = p.cpu_times()
                    key = (p.pid, p.create_time())
                    rss += p.memory_info().rss
            except psutil.Error:
                continue
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            alive += 1
            self.cpu[key] = t.user + t.system
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_procs = max(self.peak_procs, alive)
        self.samples.append((time.time(), sum(self.cpu.values())))


def run_measured(
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    log_path: Path,
    timeout_s: float,
    interval_s: float = 0.2,
) -> TreeUsage:
    """Run ``cmd`` to completion (killing its process group after ``timeout_s``) and measure it."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        sampler = _Sampler(proc.pid, interval_s)
        sampler.start()
        timed_out = False
        deadline = t0 + timeout_s
        while True:
            pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                break
            if time.monotonic() > deadline:
                timed_out = True
                _kill_group(proc.pid)
                pid, status, rusage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop_event.set()
        sampler.join()
        _kill_group(proc.pid)  # nothing of the tool may outlive its run
    reaped = rusage.ru_utime + rusage.ru_stime
    sampled = sampler.samples[-1][1] if sampler.samples else 0.0
    cpu = max(reaped, sampled)
    samples = [*sampler.samples, (time.time(), cpu)]
    return TreeUsage(
        returncode=proc.returncode,
        wall_s=wall,
        cpu_s=cpu,
        peak_rss_mb=sampler.peak_rss / 2**20,
        peak_processes=sampler.peak_procs,
        started_at=started,
        samples=samples,
        timed_out=timed_out,
    )


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, 9)
    except (ProcessLookupError, PermissionError):
        pass
