"""Run the engine in virtual time: exact, instant, deterministic latencies for a list of arrivals.

Why it exists: tests check the scheduling model against arithmetic without sockets or clocks,
and the same replay shows what a profile does with a trace (queueing, TTFT spikes) in
milliseconds. The clock jumps from step end to step end (or to the next arrival / end of a stall)
exactly as the real-time server would if its CPU cost were zero.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from locust_burstgpt.sim.engine import Engine, SeqRequest, Sequence, Step
from locust_burstgpt.sim.profiles import Profile


@dataclass
class RequestTiming:
    """What a client would have measured for one request (seconds from its arrival)."""

    index: int
    arrival: float
    token_times: list[float]  # absolute time each token was due
    finish_reason: str
    cached_tokens: int
    num_preemptions: int

    @property
    def ttft(self) -> float:
        return self.token_times[0] - self.arrival

    @property
    def itls(self) -> list[float]:
        t = self.token_times
        return [b - a for a, b in zip(t, t[1:], strict=False)]

    @property
    def e2e(self) -> float:
        return self.token_times[-1] - self.arrival


@dataclass
class Replay:
    """Result of a virtual-time run: per-request timings and the engine's per-step history."""

    timings: list[RequestTiming]
    steps: list[Step] = field(default_factory=list)
    max_waiting: int = 0
    max_running: int = 0
    engine: Engine | None = None


def replay(
    profile: Profile,
    requests: Iterable[SeqRequest],
    keep_steps: bool = False,
    max_steps: int = 10_000_000,
) -> Replay:
    """Serve ``requests`` (each with its ``arrival``) to completion and time every token."""
    engine = Engine(profile)
    pending = sorted(enumerate(requests), key=lambda ir: ir[1].arrival)
    token_times: dict[int, list[float]] = {}
    seqs: dict[int, Sequence] = {}
    out = Replay(timings=[], engine=engine)
    now = pending[0][1].arrival if pending else 0.0
    k = 0
    for _ in range(max_steps):
        while k < len(pending) and pending[k][1].arrival <= now:
            idx, req = pending[k]
            seqs[idx] = engine.add(req, owner=idx)
            token_times[idx] = []
            k += 1
        step = engine.step(now) if engine.has_work(now) else None
        out.max_waiting = max(out.max_waiting, engine.num_waiting)  # after scheduling, as a gauge
        if step is None:
            wake = [engine.next_wakeup(now)]
            if k < len(pending):
                wake.append(pending[k][1].arrival)
            wake = [w for w in wake if w is not None]
            if not wake:
                break
            now = min(wake)
            continue
        out.max_running = max(out.max_running, engine.num_running)
        if keep_steps:
            out.steps.append(step)
        for seq in step.tokens:
            token_times[seq.owner].append(step.end)  # type: ignore[index]
        now = step.end
    else:
        raise RuntimeError(f"virtual replay did not finish within {max_steps} steps")
    for idx, seq in sorted(seqs.items()):
        out.timings.append(
            RequestTiming(
                index=idx,
                arrival=seq.arrival,
                token_times=token_times[idx],
                finish_reason=seq.finish_reason,
                cached_tokens=seq.cached_tokens or 0,
                num_preemptions=seq.num_preemptions,
            )
        )
    return out
