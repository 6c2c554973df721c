"""Capacity of the embedded simulator: concurrent streams and streamed tokens/s on ONE core.

The simulator runs in its own process pinned to one CPU; this script's process (pinned to
another CPU when there is one) is the load generator: a minimal asyncio raw-socket client that
keeps N keep-alive connections each streaming chat completions back to back (one token per SSE
chunk), counting content chunks as they arrive.

Runs, all against the same targets (>= 1,000 concurrent streams, >= 20,000 streamed tokens/s):
  1. fast profile (1 ms steps, so N streams schedule N*1000 tokens/s: the simulator is
     CPU-bound), plain asyncio event loop       -> achieved tokens/s, simulator CPU utilisation
  2. the same with uvloop (when installed)      -> the same, and the ratio to run 1
  3. paced: 50 ms steps x N streams = N*20 tokens/s scheduled -> achieved/scheduled, the
     simulator's per-token send delay (chunk write time - its step's scheduled end, from its own
     histogram) and client-measured inter-token latency vs the 50 ms schedule.

Usage:  python benchmarks/sim_capacity.py [--streams 1000] [--seconds 10] [--max-tokens 200]
Everything binds 127.0.0.1; each run is bounded by --seconds; the simulator is stopped after each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import time
from dataclasses import dataclass, field

import psutil

from locust_burstgpt.sim import SimulatorProcess

TARGET_STREAMS = 1000
TARGET_TOKENS_PER_S = 20_000
_CONTENT = b'"delta":{"content":"'
_END = b"data: [DONE]\n\n\r\n0\r\n\r\n"
_KEEP = max(len(_CONTENT), len(_END))


@dataclass
class LoadStats:
    tokens: int = 0  # content chunks received inside the measured window
    all_tokens: int = 0  # ... during the whole run
    requests: int = 0
    errors: int = 0
    ttfts: list[float] = field(default_factory=list)
    itls: list[float] = field(default_factory=list)


class StreamClient(asyncio.Protocol):
    """One keep-alive connection sending streamed chat requests back to back."""

    def __init__(
        self,
        request: bytes,
        stats: LoadStats,
        stop_at: float,
        record_from: float,
        sample_itl: bool,
        done: asyncio.Future[None],
    ) -> None:
        self.request = request
        self.stats = stats
        self.stop_at = stop_at
        self.record_from = record_from
        self.sample_itl = sample_itl
        self.done = done
        self.buf = b""
        self.transport: asyncio.Transport | None = None
        self.sent_at = 0.0
        self.last = 0.0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self._send()

    def _send(self) -> None:
        self.buf = b""
        self.sent_at = self.last = time.monotonic()
        assert self.transport is not None
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        prev = self.buf  # the last bytes of the previous read, for patterns split across reads
        joined = prev + data
        n = joined.count(_CONTENT) - prev.count(_CONTENT)
        self.stats.all_tokens += n
        if n and now >= self.record_from:
            self.stats.tokens += n
            if self.sample_itl:
                if self.last == self.sent_at:
                    self.stats.ttfts.append(now - self.sent_at)
                else:
                    self.stats.itls.append(now - self.last)
        if n:
            self.last = now
        self.buf = joined[-_KEEP:]
        if self.buf.endswith(_END):
            self.stats.requests += 1
            if now < self.stop_at:
                self._send()
            else:
                assert self.transport is not None
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if time.monotonic() < self.stop_at:
            self.stats.errors += 1
        if not self.done.done():
            self.done.set_result(None)


async def drive(
    port: int, streams: int, seconds: float, warmup: float, max_tokens: int, sample_itl: bool
) -> tuple[LoadStats, float]:
    loop = asyncio.get_running_loop()
    body = json.dumps(
        {
            "model": "burstgpt-sim",
            "messages": [{"role": "user", "content": "Hello there"}],
            "max_tokens": max_tokens,
            "ignore_eos": True,
            "stream": True,
        }
    ).encode()
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%b" % (len(body), body)
    )
    stats = LoadStats()
    t0 = time.monotonic()
    record_from = t0 + warmup
    stop_at = record_from + seconds
    dones = []
    for i in range(streams):
        fut: asyncio.Future[None] = loop.create_future()
        dones.append(fut)
        await loop.create_connection(
            lambda fut=fut, i=i: StreamClient(
                request, stats, stop_at, record_from, sample_itl and i % 10 == 0, fut
            ),
            "127.0.0.1",
            port,
        )
    await asyncio.sleep(max(0.0, stop_at - time.monotonic()))
    measured = time.monotonic() - record_from
    tokens_in_window = stats.tokens
    await asyncio.wait(dones, timeout=max_tokens * 0.1 + 10)
    stats.tokens = tokens_in_window
    return stats, measured


def scrape(base_url: str) -> str:
    import urllib.request

    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as r:
        return r.read().decode()


def histogram(page: str, name: str) -> list[tuple[float, int]]:
    out = []
    for m in re.finditer(rf'^{re.escape(name)}_bucket{{[^}}]*le="([^"]+)"}} (\d+)$', page, re.M):
        out.append((float(m.group(1)), int(m.group(2))))
    return out


def counter(page: str, name: str) -> int:
    m = re.search(rf"^{re.escape(name)}{{[^}}]*}} (\S+)$", page, re.M)
    assert m, name
    return int(float(m.group(1)))


def quantile_bound(
    before: list[tuple[float, int]], after: list[tuple[float, int]], q: float
) -> float:
    """Upper bucket bound below which a fraction q of the run's observations fall."""
    delta = [(b, a - c) for (b, a), (_, c) in zip(after, before, strict=True)]
    total = delta[-1][1]
    if total == 0:
        return float("nan")
    for bound, cum in delta:
        if cum >= q * total:
            return bound
    return float("inf")


def client_loop() -> asyncio.AbstractEventLoop:
    """The load generator's loop: uvloop when installed (a cheaper client leaves more headroom)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_one(
    label: str,
    profile_over: dict,
    loop_kind: str,
    args: argparse.Namespace,
    sim_cpu: int,
    sample_itl: bool,
) -> dict:
    config = {"profile_overrides": profile_over} if profile_over else None
    sim = SimulatorProcess(profile="fast", config=config, loop=loop_kind)
    sim.start()
    try:
        os.sched_setaffinity(sim.pid, {sim_cpu})
        proc = psutil.Process(sim.pid)
        before = scrape(sim.base_url)
        cpu0 = proc.cpu_times()
        w0 = time.monotonic()
        loop = client_loop()
        try:
            stats, measured = loop.run_until_complete(
                drive(
                    sim.port, args.streams, args.seconds, args.warmup, args.max_tokens, sample_itl
                )
            )
        finally:
            loop.close()
        cpu1 = proc.cpu_times()
        wall = time.monotonic() - w0
        after = scrape(sim.base_url)
    finally:
        sim.stop()
    cpu_util = ((cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)) / wall
    name = "burstgpt_sim:token_send_delay_seconds"
    hb, ha = histogram(before, name), histogram(after, name)
    res = {
        "label": label,
        "loop": loop_kind,
        "streams": args.streams,
        "tokens_per_s": stats.tokens / measured,
        "requests": stats.requests,
        "errors": stats.errors,
        "sim_cpu": cpu_util,
        "send_delay_p50_le": quantile_bound(hb, ha, 0.5),
        "send_delay_p99_le": quantile_bound(hb, ha, 0.99),
        "client_chunks": stats.all_tokens,
        "sim_chunks": counter(after, "burstgpt_sim:streamed_chunks_total")
        - counter(before, "burstgpt_sim:streamed_chunks_total"),
    }
    if sample_itl and stats.itls:
        itls = sorted(stats.itls)
        res["itl_p50"] = statistics.median(itls)
        res["itl_p99"] = itls[int(len(itls) * 0.99)]
    return res


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--streams", type=int, default=TARGET_STREAMS)
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--max-tokens", type=int, default=200)
    ap.add_argument("--step", type=float, default=0.05, help="step time of the paced run, s")
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    sim_cpu, load_cpu = cpus[0], cpus[-1]
    if sim_cpu == load_cpu:
        print("warning: one CPU only: simulator and load generator share it", file=sys.stderr)
    os.sched_setaffinity(0, {load_cpu})
    try:
        import uvloop  # noqa: F401

        have_uvloop = True
    except ImportError:
        have_uvloop = False
    print(
        f"simulator pinned to CPU {sim_cpu}, load generator (this process) to CPU {load_cpu}; "
        f"{args.streams} streams x {args.max_tokens} tokens, {args.seconds:.0f} s measured per run"
    )
    runs = [run_one("fast", {}, "asyncio", args, sim_cpu, False)]
    if have_uvloop:
        runs.append(run_one("fast", {}, "uvloop", args, sim_cpu, False))
    best = "uvloop" if have_uvloop else "asyncio"
    paced = run_one(
        f"paced {args.step * 1000:.0f} ms", {"step_base_s": args.step}, best, args, sim_cpu, True
    )
    runs.append(paced)

    print()
    print(
        f"{'run':<14}{'loop':<9}{'streams':>8}{'tokens/s':>11}{'vs 20k':>8}{'sim CPU':>9}"
        f"{'tokens/sim-CPU-s':>18}{'send delay p50/p99 (<= bucket)':>33}{'errors':>8}"
    )
    for r in runs:
        per_cpu = r["tokens_per_s"] / r["sim_cpu"] if r["sim_cpu"] > 0 else float("nan")
        print(
            f"{r['label']:<14}{r['loop']:<9}{r['streams']:>8}{r['tokens_per_s']:>11,.0f}"
            f"{r['tokens_per_s'] / TARGET_TOKENS_PER_S:>8.2f}{r['sim_cpu'] * 100:>8.0f}%"
            f"{per_cpu:>18,.0f}"
            f"{r['send_delay_p50_le'] * 1000:>16.2f} / {r['send_delay_p99_le'] * 1000:.1f} ms"
            f"{r['errors']:>8}"
        )
    for r in runs:
        if r["client_chunks"] != r["sim_chunks"]:
            print(
                f"warning: {r['label']}/{r['loop']}: client counted {r['client_chunks']} chunks, "
                f"simulator wrote {r['sim_chunks']}"
            )
    print(
        "(client chunk counts equal the simulator's own counts in every run)"
        if all(r["client_chunks"] == r["sim_chunks"] for r in runs)
        else ""
    )
    print(
        f"fast runs schedule {args.streams * 1000:,} tokens/s (1 ms steps): sim CPU near 100 % means the "
        "simulator was the limit; below that, the load generator was, and tokens/sim-CPU-s "
        "estimates the simulator's one-core ceiling."
    )
    scheduled = args.streams / args.step
    print()
    print(
        f"paced run: scheduled {scheduled:,.0f} tokens/s ({args.streams} streams / {args.step * 1000:.0f} ms), "
        f"achieved {paced['tokens_per_s']:,.0f} (ratio {paced['tokens_per_s'] / scheduled:.3f}); "
        f"client ITL p50 {paced.get('itl_p50', float('nan')) * 1000:.1f} ms, "
        f"p99 {paced.get('itl_p99', float('nan')) * 1000:.1f} ms vs {args.step * 1000:.0f} ms schedule"
    )
    if len(runs) == 3:
        print(
            f"uvloop / asyncio tokens/s ratio: {runs[1]['tokens_per_s'] / runs[0]['tokens_per_s']:.2f}"
        )
    top = max(r["tokens_per_s"] for r in runs[:-1])
    ok = (
        top >= TARGET_TOKENS_PER_S
        and args.streams >= TARGET_STREAMS
        and all(r["errors"] == 0 for r in runs)
    )
    print(
        f"target >= {TARGET_STREAMS} streams and >= {TARGET_TOKENS_PER_S:,} tokens/s on one core: "
        f"{'MET' if ok else 'NOT MET'} (best {top:,.0f} tokens/s = {top / TARGET_TOKENS_PER_S:.2f}x target)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
