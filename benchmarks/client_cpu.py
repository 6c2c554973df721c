"""Client CPU per streamed chunk (raw vs openai transport) and open-loop dispatch lateness.

Against the embedded simulator's ``fast`` profile (1 ms steps, one token per SSE chunk), in one
run so the two transports see the same machine state:

  1. CPU per chunk: each transport streams the same requests (``--streams`` at a time,
     ``--tokens`` content chunks each); CPU = ``resource.getrusage(RUSAGE_SELF)`` user+sys of
     this process only (the simulator is a separate process), divided by the content chunks
     received. Rounds alternate between transports; medians are reported, and the ratio
     openai/raw is the comparison that survives a noisy machine.
  2. Lateness: an open-loop Poisson schedule at ``--rate`` requests/s for ``--seconds``. One
     dispatcher greenlet sleeps until each scheduled time and spawns the request; lateness =
     the client's send time - scheduled time. The same schedule dispatched to a no-op first
     gives the baseline (the event loop's own wake-up lateness) in the same run.

Targets: raw <= 25 us/chunk, raw >= 4x cheaper than openai, lateness p99 < 5 ms.

Usage:  python benchmarks/client_cpu.py [--streams 8] [--tokens 120] [--requests 48]
                                         [--rounds 3] [--rate 500] [--seconds 10] [--pin]
                                         [--strict]
Binds 127.0.0.1 only; the simulator is stopped at the end; every phase is bounded.
"""

from gevent import monkey

monkey.patch_all()  # the openai transport's sockets are cooperative only when patched (as in Locust)

import argparse  # noqa: E402
import gc  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import gevent.pool  # noqa: E402

from locust_burstgpt.client import ClientConfig, Outcome, RequestRecord, make_client  # noqa: E402
from locust_burstgpt.metrics import ExactHistogram  # noqa: E402
from locust_burstgpt.prompts import output_controls  # noqa: E402
from locust_burstgpt.sim import SimulatorProcess  # noqa: E402

TARGET_RAW_US = 25.0
TARGET_RATIO = 4.0
TARGET_LATENESS_P99_MS = 5.0
MODEL = "burstgpt-sim"


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def body(tokens: int, i: int) -> dict:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": f"benchmark request {i}"}],
        **output_controls(tokens, "sim"),
    }


def stream_round(client, streams: int, requests: int, tokens: int) -> tuple[float, int, float]:
    """(CPU seconds, content chunks, wall seconds) for ``requests`` streams, ``streams`` at a time."""
    records = [RequestRecord(f"r{i}") for i in range(requests)]
    pool = gevent.pool.Pool(streams)
    c0, w0 = cpu_s(), time.perf_counter()
    with gevent.Timeout(300):
        for i, r in enumerate(records):
            pool.spawn(client.send, body(tokens, i), r)
        pool.join()
    cpu, wall = cpu_s() - c0, time.perf_counter() - w0
    bad = [r for r in records if r.outcome is not Outcome.OK]
    if bad:
        raise SystemExit(f"{len(bad)} requests failed, e.g. {bad[0].outcome}: {bad[0].error}")
    chunks = sum(len(r.chunk_times) for r in records)
    return cpu, chunks, wall


def cpu_per_chunk(sim_url: str, args: argparse.Namespace) -> dict[str, list[float]]:
    clients = {
        name: make_client(ClientConfig(base_url=sim_url, transport=name, pool_size=256))
        for name in ("raw", "openai")
    }
    for client in clients.values():  # warm up: connections, imports, first-call costs
        stream_round(client, args.streams, args.streams * 2, 8)
    per_chunk: dict[str, list[float]] = {name: [] for name in clients}
    for k in range(args.rounds):
        order = ["raw", "openai"] if k % 2 == 0 else ["openai", "raw"]
        for name in order:
            cpu, chunks, wall = stream_round(
                clients[name], args.streams, args.requests, args.tokens
            )
            us = cpu / chunks * 1e6
            per_chunk[name].append(us)
            print(
                f"  round {k + 1} {name:>6}: {chunks} chunks in {wall:.2f} s "
                f"({chunks / wall:,.0f}/s), CPU {cpu * 1e3:.0f} ms = {us:.1f} us/chunk "
                f"({cpu / wall:.0%} of a core)"
            )
    for client in clients.values():
        client.close()
    return per_chunk


def poisson_schedule(rate: float, seconds: float, seed: int = 1) -> list[float]:
    rng = random.Random(seed)
    t, out = 0.0, []
    while True:
        t += rng.expovariate(rate)
        if t >= seconds:
            return out
        out.append(t)


def dispatch(schedule: list[float], fire) -> None:
    """The open-loop dispatcher: sleep until each scheduled time, then spawn (never wait)."""
    group = gevent.pool.Group()
    t0 = time.perf_counter() + 0.2
    now = time.perf_counter
    for i, offset in enumerate(schedule):
        due = t0 + offset
        delay = due - now()
        if delay > 0:
            gevent.sleep(delay)
        group.spawn(fire, i, due)
    with gevent.Timeout(60):
        group.join()


def lateness(sim_url: str, args: argparse.Namespace) -> dict:
    schedule = poisson_schedule(args.rate, args.seconds)
    baseline = ExactHistogram()
    dispatch(schedule, lambda i, due: baseline.add(time.perf_counter() - due))
    client = make_client(ClientConfig(base_url=sim_url, pool_size=2048))
    stream_round(client, 16, 64, 8)  # warm connections
    records: list[RequestRecord] = []
    in_flight = [0, 0]  # now, peak

    def fire(i: int, due: float) -> None:
        rec = RequestRecord(f"l{i}", scheduled_at=due)
        records.append(rec)
        in_flight[0] += 1
        in_flight[1] = max(in_flight)
        try:
            client.send(body(args.late_tokens, i), rec)
        finally:
            in_flight[0] -= 1

    gc.collect()
    gc.freeze()  # as a load generator must: a full collection of a large heap stalls every timer
    c0, w0 = cpu_s(), time.perf_counter()
    dispatch(schedule, fire)
    cpu, wall = cpu_s() - c0, time.perf_counter() - w0
    client.close()
    late, ttft = ExactHistogram(), ExactHistogram()
    late.add_many(r.lateness for r in records)
    ttft.add_many(r.ttft for r in records if r.ttft is not None)
    failed = sum(r.outcome is not Outcome.OK for r in records)
    return {
        "baseline": baseline,
        "late": late,
        "ttft": ttft,
        "failed": failed,
        "peak": in_flight[1],
        "cpu_share": cpu / wall,
    }


def pin(sim_pid: int) -> str:
    """Simulator on one CPU, this process on another, when the machine has two or more."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return "not pinned (one CPU)"
    os.sched_setaffinity(sim_pid, {cpus[-1]})
    os.sched_setaffinity(0, {cpus[0]})
    return f"client on CPU {cpus[0]}, simulator on CPU {cpus[-1]}"


def ms(h: ExactHistogram, q: float) -> str:
    return f"{h.percentile(q) * 1e3:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=8, help="concurrent streams per CPU round")
    ap.add_argument("--tokens", type=int, default=120, help="content chunks per request")
    ap.add_argument("--requests", type=int, default=48, help="requests per CPU round")
    ap.add_argument("--rounds", type=int, default=3, help="CPU rounds per transport")
    ap.add_argument("--rate", type=float, default=500.0, help="open-loop requests/s")
    ap.add_argument("--seconds", type=float, default=10.0, help="open-loop schedule length")
    ap.add_argument(
        "--late-tokens", type=int, default=8, help="output tokens per open-loop request"
    )
    ap.add_argument(
        "--pin", action="store_true", help="pin the simulator and this process to different CPUs"
    )
    ap.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()

    with SimulatorProcess(profile="fast") as sim:
        print(
            f"simulator {sim.base_url} (fast profile, 1 ms steps, one token per chunk); "
            f"{pin(sim.pid) if args.pin else 'not pinned'}; "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        print(
            f"1. CPU per content chunk: {args.streams} streams x {args.tokens} tokens, "
            f"{args.requests} requests per round"
        )
        per_chunk = cpu_per_chunk(sim.base_url, args)
        print(
            f"2. lateness: Poisson {args.rate:g} req/s for {args.seconds:g} s, "
            f"{args.late_tokens} tokens each, raw transport"
        )
        lat = lateness(sim.base_url, args)
    baseline, late, failed = lat["baseline"], lat["late"], lat["failed"]

    raw, oai = statistics.median(per_chunk["raw"]), statistics.median(per_chunk["openai"])
    ratio = oai / raw
    print("\nresults")
    print(
        f"  raw transport     {raw:7.1f} us CPU per chunk (median of {args.rounds}; "
        f"target <= {TARGET_RAW_US:g})"
    )
    print(f"  openai transport  {oai:7.1f} us CPU per chunk (median of {args.rounds})")
    print(f"  openai / raw      {ratio:7.1f} x (target >= {TARGET_RATIO:g})")
    print(
        f"  lateness          p50 {ms(late, 50)}  p90 {ms(late, 90)}  p99 {ms(late, 99)}  "
        f"max {late.max * 1e3:.2f} ms over {late.count} requests ({failed} not ok; "
        f"target p99 < {TARGET_LATENESS_P99_MS:g} ms)"
    )
    print(
        f"  dispatch baseline p50 {ms(baseline, 50)}  p90 {ms(baseline, 90)}  "
        f"p99 {ms(baseline, 99)}  max {baseline.max * 1e3:.2f} ms (same schedule, no-op requests)"
    )
    print(
        f"  open-loop run     peak {lat['peak']} in flight, TTFT p50 {ms(lat['ttft'], 50)} "
        f"p99 {ms(lat['ttft'], 99)} ms, client CPU {lat['cpu_share']:.0%} of a core"
    )
    checks = {
        "raw us/chunk": raw <= TARGET_RAW_US,
        "openai/raw ratio": ratio >= TARGET_RATIO,
        "lateness p99": late.percentile(99) * 1e3 < TARGET_LATENESS_P99_MS,
    }
    print("  targets: " + ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in checks.items()))
    return 0 if all(checks.values()) or not args.strict else 1


if __name__ == "__main__":
    sys.exit(main())
