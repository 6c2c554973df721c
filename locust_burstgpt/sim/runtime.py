"""The running simulator: one asyncio server, one engine-loop task driving the engine in real time.

Why it exists: it joins the pure engine to the wire. The loop plans a step starting at ``t``,
sleeps until the step's scheduled end ``t + step_time``, writes every token due at that end, and
plans the next step starting at that same scheduled end (so the simulator's own CPU time hides
inside the next step; requests that arrived after that instant wait for the step after, as they
would on a real server). Wall-clock step length is therefore ``max(step_time, CPU time to plan
and write a step)``; with the ``fast`` profile (step_time 0) steps run back to back with one pass
through the event loop between them, so I/O and new requests are served every step.
"""

from __future__ import annotations

import asyncio
import logging
import time

from locust_burstgpt.sim.config import SimConfig
from locust_burstgpt.sim.engine import Engine, SeqRequest, Sequence
from locust_burstgpt.sim.faults import FaultPlan
from locust_burstgpt.sim.http_server import HttpConnection
from locust_burstgpt.sim.metrics import WireMetrics, render
from locust_burstgpt.sim.routes import SimApi

log = logging.getLogger("locust_burstgpt.sim")
_clock = time.monotonic
# Event-loop timers fire up to about a millisecond early or late; closer than this is on time.
TIMER_SLACK_S = 0.002
# How far behind its timeline the engine may run and still catch up (see _engine_loop).
MAX_LAG_S = 0.025


class SimServer:
    """Engine + HTTP server + metrics of one simulator instance (one event loop)."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.engine = Engine(config.profile)
        self.faults = FaultPlan(config.faults, seed=config.seed)
        self.wire_metrics = WireMetrics()
        self.connections: set[HttpConnection] = set()
        self.api = SimApi(self)  # every connection hands its requests to it
        self.started_at = _clock()
        self.started_wall = time.time()
        self.server: asyncio.base_events.Server | None = None
        self._wake: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None

    # ---- lifecycle --------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen and start the engine loop; returns the bound port."""
        loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self.server = await loop.create_server(
            lambda: HttpConnection(self.api), host, port, backlog=4096, reuse_address=True
        )
        self._loop_task = loop.create_task(self._engine_loop())
        self._loop_task.add_done_callback(_report_crash)
        self.started_at = _clock()
        self.started_wall = time.time()
        return self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for conn in list(self.connections):
            conn.close()
        if self._loop_task is not None:
            self._loop_task.cancel()
            try:
                await self._loop_task
            except asyncio.CancelledError:
                pass
        if self.server is not None:
            await self.server.wait_closed()

    # ---- used by the API and the streams -------------------------------------------------------------

    def submit(self, req: SeqRequest, owner: object) -> Sequence:
        seq = self.engine.add(req, owner)
        assert self._wake is not None
        self._wake.set()
        return seq

    def abort(self, seq: Sequence) -> None:
        self.engine.abort(seq)
        if self._wake is not None:
            self._wake.set()

    def render_metrics(self) -> str:
        return render(self.engine, self.wire_metrics, self.config.model)

    # ---- the engine loop --------------------------------------------------------------------

    async def _engine_loop(self) -> None:
        engine = self.engine
        wake = self._wake
        assert wake is not None
        sleep = asyncio.sleep
        prev_end: float | None = None  # scheduled end of the previous step, None after idling
        while True:
            now = _clock()
            # Steps run back to back on the model's timeline: the next one starts where the last
            # ended, so the CPU time spent writing chunks (and a late timer or a busy machine)
            # hides inside the next step. Only a lag beyond MAX_LAG_S slips the timeline, so a
            # simulator that is CPU-bound runs steps at its CPU speed instead of bursting.
            start = now if prev_end is None else max(prev_end, now - MAX_LAG_S)
            step = engine.step(start) if engine.has_work(start) else None
            if step is None:
                if prev_end is not None:
                    prev_end = None  # nothing was due at the anchored start: look again from now
                    continue
                wake.clear()
                nxt = engine.next_wakeup(now)
                timeout = None if nxt is None else max(0.0, nxt - _clock())
                try:
                    await asyncio.wait_for(wake.wait(), timeout)
                except (asyncio.TimeoutError, TimeoutError):
                    pass
                continue
            end = step.end
            # Sleep until the step's scheduled end (timers may fire early by up to a ms).
            while True:
                delay = end - _clock()
                if delay <= TIMER_SLACK_S / 10:
                    break
                await sleep(delay)
            if step.duration <= TIMER_SLACK_S / 10:
                await sleep(0)  # let I/O run between back-to-back steps
            prev_end = end
            for seq in step.tokens:
                try:
                    seq.owner.on_token(seq, end)  # type: ignore[union-attr]
                except Exception:
                    log.exception("error delivering a token of request %s", seq.seq_id)


def _report_crash(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error(
            "simulator engine loop crashed; no more tokens will be produced",
            exc_info=task.exception(),
        )


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """An event loop: uvloop when installed (``auto``) or asked for, else plain asyncio."""
    if kind not in ("auto", "asyncio", "uvloop"):
        raise ValueError(f"unknown event loop {kind!r}; use auto, asyncio or uvloop")
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise ValueError(
                    "event loop 'uvloop' asked for but uvloop is not installed "
                    "(pip install 'locust-burstgpt[sim-fast]')"
                ) from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()
