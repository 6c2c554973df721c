"""Is the load generator keeping up? Lateness and event-loop lag, per second, and the verdict on them.

Why: a generator that is CPU-bound sends late (coordinated omission) and times every byte late, so
its latencies describe itself, not the server. Two signals, both per second of the run:

* lateness (send - scheduled; trace arrival only): a second is *late* when the p99 of the lateness
  of the requests due in it is over ``LATE_S`` (more than 1 % of them were sent more than 50 ms
  late), whatever the share of late seconds in the run;
* loop lag, measured on every sending process by a greenlet that sleeps ``LoopLagProbe.INTERVAL_S``
  and notes how much later it woke: a second is *blocked* when the loop lost more than
  ``BLOCKED_SHARE`` of it.

``SUSTAIN_S`` such seconds in a row make the run untrustworthy. For blocked seconds the probe also
notes the CPU its process used and the time it waited for one, to name the cause: its own work
(CPU-bound), other processes holding the CPU (starved: the server under test on the same cores,
say), or a call that does not yield (blocked). For late seconds every request says where its own
lateness came from (``TurnResult.user_wait_s``: waiting for a Locust user, only with
``--burstgpt-strict-curve``; ``connection_wait_s``: waiting for a free connection; the rest: the
event loop), and the largest part names the cause. The live warning and the final verdict come from
the same ``problems()``; a live warning is given again when later evidence changes its cause.
"""

from __future__ import annotations

import math
import os
import time
from collections import defaultdict
from time import perf_counter
from typing import Any

import gevent

from locust_burstgpt.replay.results import TurnResult

LATE_S = 0.05  # a request sent later than this after its due time is late
LATE_P99 = 0.99  # a second is late when this percentile of its lateness is over LATE_S
DOMINANT_SHARE = 0.5  # a part of the lateness this large names the cause
BLOCKED_SHARE = 0.3
SUSTAIN_S = 3
CPU_HINT_SHARE = (
    0.1  # late seconds whose loop lost this much point at the CPU, not at the user pool
)
OWN_CPU_SHARE = (
    0.7  # a lagging loop whose process used this much of a CPU was busy with its own work
)
WAITED_SHARE = 0.2  # ... and one that waited this much for a CPU was starved by other processes
STOLEN_SHARE = (
    0.2  # ... and a virtual machine whose host took this much of its CPU was starved by it
)
STEAL_EVERY = 20  # probe ticks between two reads of the machine's steal time


class LoopLagProbe:
    """On a sending process: how much of each second the gevent loop was too busy to wake a sleeper,
    and what the process did meanwhile (CPU it used, time it waited for a CPU), to name the cause."""

    INTERVAL_S = 0.05

    def __init__(self, epoch_wall: float) -> None:
        self.epoch_wall = epoch_wall
        # second -> [loop time lost, CPU time used, time spent waiting for a CPU, time observed,
        # share of the machine's CPU its host took (steal) x time]
        self._pending: dict[int, list[float]] = defaultdict(_zeros)
        self._schedstat = _open_proc(f"/proc/{os.getpid()}/schedstat")
        self._stat = _open_proc("/proc/stat")
        self._cpus = os.cpu_count() or 1
        self._greenlet = gevent.spawn(self._loop)

    def _loop(self) -> None:
        interval = self.INTERVAL_S
        last_wall, last_cpu, last_wait = time.time(), time.process_time(), self._run_delay()
        steal_wall, last_steal, ticks = last_wall, self._steal(), 0
        while True:
            t0 = perf_counter()
            gevent.sleep(interval)
            lag = perf_counter() - t0 - interval
            wall, cpu, wait = time.time(), time.process_time(), self._run_delay()
            if lag > 0.001:
                self._spread(wall - self.epoch_wall - lag, lag, (1.0, 0.0, 0.0, 0.0, 0.0))
            span = max(1e-9, wall - last_wall)
            waited = (
                (wait - last_wait) / span if wait is not None and last_wait is not None else 0.0
            )
            self._spread(
                last_wall - self.epoch_wall, span, (0.0, (cpu - last_cpu) / span, waited, 1.0, 0.0)
            )
            last_wall, last_cpu, last_wait = wall, cpu, wait
            ticks += 1
            if (
                ticks % STEAL_EVERY == 0 or lag > 0.5
            ):  # /proc/stat counts in 10 ms ticks: read it seldom
                steal = self._steal()
                if steal is not None and last_steal is not None and wall > steal_wall:
                    span = wall - steal_wall
                    stolen = (steal - last_steal) / self._cpus / span
                    self._spread(steal_wall - self.epoch_wall, span, (0.0, 0.0, 0.0, 0.0, stolen))
                steal_wall, last_steal = wall, steal

    def _spread(self, start: float, length: float, rates: tuple[float, ...]) -> None:
        """Book ``rates`` (one per field, per second) over [start, start + length) on every second
        it covers, in one pass."""
        end = start + length
        while start < end:
            second = math.floor(start)
            upto = min(end, second + 1.0)
            book, part = self._pending[int(second)], upto - start
            for k, rate in enumerate(rates):
                if rate:
                    book[k] += part * rate
            start = upto

    def _run_delay(self) -> float | None:
        """Seconds this process's main thread has spent runnable but waiting for a CPU (Linux)."""
        if self._schedstat is None:
            return None
        try:
            return int(os.pread(self._schedstat, 128, 0).split()[1]) / 1e9
        except (OSError, ValueError, IndexError):
            return None

    def _steal(self) -> float | None:
        """CPU seconds the host has taken from this virtual machine, summed over its CPUs (Linux)."""
        if self._stat is None:
            return None
        try:
            fields = os.pread(self._stat, 256, 0).split(b"\n", 1)[0].split()
            return int(fields[8]) / _USER_HZ
        except (OSError, ValueError, IndexError):
            return None

    def take(self) -> list[list[float | None]]:
        """Per second since the last call: ``[[second, loop time lost, CPU used, CPU waited, time
        observed, machine steal], ...]`` (a second seen in part, at the start or across two calls,
        has observed < 1; waited and steal are None where the system does not tell)."""
        pending, self._pending = self._pending, defaultdict(_zeros)
        waits, steals = self._schedstat is not None, self._stat is not None
        return [
            [
                s,
                round(v[0], 4),
                round(v[1], 4),
                round(v[2], 4) if waits else None,
                round(v[3], 4),
                round(v[4], 4) if steals else None,
            ]
            for s, v in sorted(pending.items())
        ]

    def stop(self) -> None:
        self._greenlet.kill(block=False)
        for fd in (self._schedstat, self._stat):
            if fd is not None:
                os.close(fd)
        self._schedstat = self._stat = None


def _zeros() -> list[float]:
    return [0.0, 0.0, 0.0, 0.0, 0.0]


def _open_proc(path: str) -> int | None:
    try:
        return os.open(path, os.O_RDONLY)
    except OSError:
        return None


try:
    _USER_HZ = float(os.sysconf("SC_CLK_TCK"))
except (ValueError, OSError, AttributeError):
    _USER_HZ = 100.0


def _streaks(seconds: list[int]) -> list[tuple[int, int]]:
    """Runs of consecutive seconds as (first, last)."""
    runs: list[tuple[int, int]] = []
    for s in sorted(seconds):
        if runs and s == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], s)
        else:
            runs.append((s, s))
    return runs


class ScheduleHealth:
    """On the reporting process: per-second lateness and its parts, fed by request results, and the
    probes' loop lags; ``problems()`` is the one diagnosis, live and at the end."""

    def __init__(self, arrival: str, strict: bool = False) -> None:
        self.arrival = arrival
        self.strict = strict  # users capped at the curve: a request never sent waited for one
        self.end_offset: float | None = None  # when the run was told to end (replay seconds)
        self._due: dict[int, int] = defaultdict(int)
        self._late: dict[int, int] = defaultdict(int)  # requests more than LATE_S late
        self._worst: dict[int, float] = defaultdict(float)
        # where the lateness of late requests came from, per second: [lateness, waited for a user,
        # waited for a connection, never sent]
        self._parts: dict[int, list[float]] = {}
        # where the loop lost time (max over processes), where it matters: second -> (source,
        # [lost, cpu used, cpu waited, time observed, steal]) of the process that lost the most
        self._blocked: dict[int, tuple[str, list[Any]]] = {}
        self._recent: dict[str, dict[int, list[Any]]] = defaultdict(
            dict
        )  # process -> its last seconds
        # the seconds currently over a threshold, kept as they change: the checks run every second
        # and must not walk the whole run
        self._late_seconds: set[int] = set()
        self._blocked_seconds: set[int] = set()

    def ended(self, offset: float) -> None:
        """The run was told to end at replay time ``offset``: a request due before then and never
        sent is as late as the schedule can get (it counts against it)."""
        if self.end_offset is None:
            self.end_offset = offset

    def add(self, result: TurnResult) -> None:
        """Count one request's lateness in the second it was due."""
        due = result.scheduled_offset_s
        if due is None or self.arrival == "saturate":
            return
        if result.record is None:
            # never sent: late by the time from its due time to the end, if it was due by then
            # (a due time that depended on a reply that never came was never known: not counted)
            if (
                result.due_nominal
                or result.not_sent_reason == "prompt_failed"
                or self.end_offset is None
                or due >= self.end_offset
            ):
                return
            lateness, waited, unsent = self.end_offset - due, 0.0, True
        else:
            lateness, unsent = result.lateness, False
            if lateness is None:
                return
            waited = result.user_wait_s or 0.0
        s = int(math.floor(due))
        self._due[s] += 1
        if lateness > LATE_S:
            self._late[s] += 1
            self._worst[s] = max(self._worst[s], lateness)
            parts = self._parts.setdefault(s, [0.0, 0.0, 0.0, 0.0])
            parts[0] += lateness
            if unsent:
                # with users capped at the curve it waited for one until the end
                parts[1 if self.strict else 3] += lateness
            else:
                parts[1] += min(lateness, waited)
                parts[2] += min(lateness, result.connection_wait_s or 0.0)
        n = self._due[s]
        # p99 (inverted CDF) of n values is over LATE_S when more than n - ceil(0.99 n) are
        if self._late.get(s, 0) > n - math.ceil(LATE_P99 * n):
            self._late_seconds.add(s)
        else:
            self._late_seconds.discard(s)

    def note_lags(self, lags: Any, source: str = "local") -> None:
        """A probe's ``take()``, from process ``source`` (a second may arrive in two parts).

        Items are ``[second, lost]`` or ``[second, lost, cpu used, cpu waited, time observed, steal]``
        (see ``LoopLagProbe.take``)."""
        recent = self._recent[source]
        for item in lags or ():
            s = int(item[0])
            v = recent.get(s)
            if v is None:
                v = recent[s] = [0.0, None, None, 0.0, None]
            v[0] += float(item[1])
            if len(item) > 4:
                v[1] = (v[1] or 0.0) + float(item[2])
                if item[3] is not None:
                    v[2] = (v[2] or 0.0) + float(item[3])
                v[3] += float(item[4])
                if len(item) > 5 and item[5] is not None:
                    v[4] = (v[4] or 0.0) + float(item[5])
            held = self._blocked.get(s)
            if v[0] >= CPU_HINT_SHARE and (held is None or held[0] == source or v[0] > held[1][0]):
                self._blocked[s] = (
                    source,
                    v,
                )  # kept sparse: a long healthy run stores nothing here
            if v[0] > BLOCKED_SHARE:
                self._blocked_seconds.add(s)
            for old in [k for k in recent if k < s - 5]:
                del recent[old]

    def _lost(self, s: int) -> float:
        held = self._blocked.get(s)
        return held[1][0] if held else 0.0

    def late_streaks(self) -> list[tuple[int, int]]:
        if self.arrival == "saturate":
            return []  # saturate mode has no schedule to keep
        return [r for r in _streaks(list(self._late_seconds)) if r[1] - r[0] + 1 >= SUSTAIN_S]

    def blocked_streaks(self) -> list[tuple[int, int]]:
        return [r for r in _streaks(list(self._blocked_seconds)) if r[1] - r[0] + 1 >= SUSTAIN_S]

    def _cause(self, seconds: list[int]) -> dict[str, Any]:
        """What the process did while its loop lagged: CPU used and CPU waited for, as shares."""
        details = [self._blocked[s][1] for s in seconds if s in self._blocked]
        seen = sum(d[3] for d in details if d[1] is not None)
        cpu = [d[1] for d in details if d[1] is not None]
        wait = [d[2] for d in details if d[2] is not None]
        steal = [d[4] for d in details if d[4] is not None]
        out: dict[str, Any] = {
            "cpu_share": round(sum(cpu) / seen, 3) if cpu and seen > 0 else None,
            "wait_share": round(sum(wait) / seen, 3) if wait and seen > 0 else None,
            "steal_share": round(sum(steal) / seen, 3) if steal and seen > 0 else None,
        }
        if out["cpu_share"] is None:
            out["cause"] = "cpu"  # no evidence either way: the classic reading
        elif out["steal_share"] is not None and out["steal_share"] >= STOLEN_SHARE:
            out["cause"] = "stolen"
        elif out["wait_share"] is not None and out["wait_share"] >= WAITED_SHARE:
            out["cause"] = "starved"
        elif out["cpu_share"] >= OWN_CPU_SHARE:
            out["cause"] = "cpu"
        else:
            out["cause"] = "blocked" if out["wait_share"] is not None else "starved_or_blocked"
        return out

    def problems(self) -> list[str]:
        """Plain sentences, one per kind of trouble; empty when the generator kept up."""
        return [text for _key, text in self.diagnosis()]

    def diagnosis(self) -> list[tuple[str, str]]:
        """``(kind:cause, sentence)`` per kind of trouble: the live warning and the final verdict
        both come from here, and the key tells when later evidence changed a cause."""
        late, blocked = self.late_streaks(), self.blocked_streaks()
        out: list[str] = []
        keys: list[str] = []
        if blocked:
            keys.append(
                "blocked:" + self._cause([s for a, b in blocked for s in range(a, b + 1)])["cause"]
            )
            seconds = [s for a, b in blocked for s in range(a, b + 1)]
            worst = max(self._lost(s) for s in seconds)
            lost = (
                f"its event loop lost more than {BLOCKED_SHARE:.0%} of each second for {_span(blocked)} "
                f"(worst {min(worst, 1.0):.0%})"
            )
            why = self._cause(seconds)
            cpu, wait = why["cpu_share"], why["wait_share"]
            used = f"its process used {cpu:.0%} of a CPU" if cpu is not None else ""
            waited = f" and waited {wait:.0%} of the time for one" if wait is not None else ""
            late_note = "so requests left late and every time it measured includes that delay"
            if why["cause"] == "cpu":
                out.append(
                    f"the load generator was saturated (CPU-bound): {lost}"
                    + (f" while {used}" if used else "")
                    + f", {late_note}; use more processes (--processes N, or more workers)"
                )
            elif why["cause"] == "starved":
                out.append(
                    f"the load generator was starved of CPU: {lost} while {used}{waited}: other processes "
                    f"on this machine had the CPU (the server under test, if it runs here), {late_note}; give "
                    "the generator cores of its own, or run the other processes at a lower priority"
                )
            elif why["cause"] == "stolen":
                out.append(
                    f"the load generator was starved of CPU by the host of this virtual machine: {lost} while "
                    f"{used}, and the host took {why['steal_share']:.0%} of the machine's CPU (steal), "
                    f"{late_note}; use a machine whose CPUs are not oversubscribed"
                )
            elif why["cause"] == "blocked":
                out.append(
                    f"the load generator's event loop was blocked: {lost} while {used}{waited}: a call that "
                    f"does not yield to gevent held the loop (file or network I/O outside gevent, a long C "
                    f"call), {late_note}; GEVENT_MONITOR_THREAD_ENABLE=true makes gevent print its stack"
                )
            else:
                out.append(
                    f"the load generator was starved of CPU or blocked: {lost} while only {used}: other "
                    f"processes had the CPU, or a call that does not yield to gevent held the loop, {late_note}"
                )
        if late:
            seconds = [s for a, b in late for s in range(a, b + 1)]
            keys.append("late:" + self.late_cause(seconds)["cause"])
            out.append(self._late_problem(late, bool(blocked)))
        return list(zip(keys, out, strict=True))

    def late_cause(self, seconds: list[int]) -> dict[str, Any]:
        """Where the lateness of the late requests of ``seconds`` came from, and the cause it names:
        ``users`` (waited for a Locust user), ``connections`` (waited for a free connection), else
        the event loop's own: ``cpu``/``starved``/``stolen``/``blocked`` from the probe's evidence,
        or ``loop`` when the probe saw no lost time."""
        total = user = conn = unsent = 0.0
        for s in seconds:
            parts = self._parts.get(s)
            if parts is not None:
                total, user, conn = total + parts[0], user + parts[1], conn + parts[2]
                unsent += parts[3]
        loop = max(0.0, total - user - conn - unsent)
        shares = {
            "user_wait_share": round(user / total, 3) if total else None,
            "connection_wait_share": round(conn / total, 3) if total else None,
            "unsent_share": round(unsent / total, 3) if total else None,
            "loop_share": round(loop / total, 3) if total else None,
        }
        if total and user / total >= DOMINANT_SHARE:
            cause = "users"
        elif total and conn / total >= DOMINANT_SHARE:
            cause = "connections"
        elif total and unsent / total >= DOMINANT_SHARE:
            cause = "unsent"
        elif max((self._lost(s) for s in seconds), default=0.0) >= CPU_HINT_SHARE:
            cause = self._cause(seconds)["cause"]
        else:
            cause = "loop"
        return {"cause": cause, **shares}

    def _late_problem(self, late: list[tuple[int, int]], blocked: bool) -> str:
        seconds = [s for a, b in late for s in range(a, b + 1)]
        worst = max(self._worst.get(s, 0.0) for s in seconds)
        why = self.late_cause(seconds)
        cause = why["cause"]
        if cause == "users":
            text = (
                f"they waited for a free Locust user ({why['user_wait_share']:.0%} of the lateness): "
                "--burstgpt-strict-curve caps users at the trace's concurrency; drop it, or raise "
                "--burstgpt-headroom"
            )
        elif cause == "unsent":
            text = (
                f"they were still unsent when the run ended ({why['unsent_share']:.0%} of the "
                "lateness): the run was stopped (--run-time, or by hand) while they were due"
            )
        elif cause == "connections":
            text = (
                f"they waited for a free connection of the client's pool "
                f"({why['connection_wait_share']:.0%} of the lateness)"
            )
        elif cause in ("cpu", "starved", "stolen", "blocked", "starved_or_blocked"):
            lost = max(self._lost(s) for s in seconds)
            text = (
                f"the load generator's event loop was late ({why['loop_share']:.0%} of the lateness; "
                f"it lost up to {min(lost, 1.0):.0%} of those seconds): "
                + _ADVICE[cause]
                + (" (see above)" if blocked else "")
            )
        else:
            text = (
                f"the event loop sent them late ({why['loop_share']:.0%} of the lateness) although "
                "its probe saw no blocked second: a busy load process; use more processes, or a "
                "less busy machine"
            )
        return (
            f"the schedule was not kept: in {_span(late)} more than 1 % of the requests due were "
            f"sent more than {LATE_S * 1000:.0f} ms late (worst {worst:.2f} s); {text}"
        )

    def summary(self) -> dict[str, Any]:
        blocked, late = self.blocked_streaks(), self.late_streaks()
        return {
            "late_seconds": [list(r) for r in late],
            "late_causes": [
                {"seconds": list(r), **self.late_cause(list(range(r[0], r[1] + 1)))} for r in late
            ],
            "blocked_seconds": [list(r) for r in blocked],
            "blocked_causes": [
                {"seconds": list(r), **self._cause(list(range(r[0], r[1] + 1)))} for r in blocked
            ],
            "thresholds": {
                "late_s": LATE_S,
                "late_percentile": LATE_P99,
                "blocked_share": BLOCKED_SHARE,
                "sustain_s": SUSTAIN_S,
                "own_cpu_share": OWN_CPU_SHARE,
                "waited_share": WAITED_SHARE,
                "stolen_share": STOLEN_SHARE,
            },
        }


class LiveWarnings:
    """What the run has said so far: a kind of trouble is told once, and again when later evidence
    names another cause for it (the final verdict says what the last warning said)."""

    def __init__(self) -> None:
        self._said: dict[str, str] = {}  # kind of trouble -> the cause last said

    def news(self, diagnosis: list[tuple[str, str]]) -> list[str]:
        """The warnings to give now, from ``ScheduleHealth.diagnosis()``."""
        out = []
        for key, problem in diagnosis:
            kind, _, cause = key.partition(":")
            said = self._said.get(kind)
            if said != cause:
                self._said[kind] = cause
                again = " (the cause changed with later evidence)" if said is not None else ""
                out.append(f"UNTRUSTWORTHY RUN so far{again}: {problem}")
        return out


_ADVICE = {
    "cpu": "it was CPU-bound; use more processes (--processes N, or more workers)",
    "starved": "other processes on this machine had the CPU; give the generator cores of its own",
    "stolen": "the host of this virtual machine took its CPU; use a machine whose CPUs are not "
    "oversubscribed",
    "blocked": "a call that does not yield to gevent held the loop",
    "starved_or_blocked": "other processes had the CPU, or a call that does not yield held the loop",
}


def _span(runs: list[tuple[int, int]]) -> str:
    parts = [f"seconds {a}-{b}" for a, b in runs]
    return ", ".join(parts) + f" ({sum(b - a + 1 for a, b in runs)} s)"
