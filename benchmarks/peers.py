"""Side by side with peer tools: the same BurstGPT schedule, the same server, one tool at a time.

Tools: our plugin (locust-burstgpt), AIPerf and GuideLLM (each installed from PyPI into its own
virtualenv under the cache, pinned), and vLLM's ``vllm bench serve`` (from the CPU vLLM install
the test suite makes). Servers: the embedded simulator's ``fast`` profile (costs almost nothing,
so differences are the load generator's) and llama.cpp with SmolLM2-135M (a real server).

For each tool and server it prints: requests completed, achieved vs scheduled arrivals per
second and their mean absolute error over the schedule's seconds, the send lag p99 derived the
same way for every tool and the tool's own lateness/dispatch-delay p99 where it reports one,
client CPU seconds per 1,000 streamed tokens (whole process tree; whole run and replay only) and
peak RSS; then ours against the best peer, and whether the targets are met (at least 2x lower
client CPU per streamed token than the best peer, arrival error no worse than the best peer's).

Usage:
    python benchmarks/peers.py                       # both servers, every tool, 3 passes (~45 min)
    python benchmarks/peers.py --repeat 1            # one pass (~15 min)
    python benchmarks/peers.py --servers sim --tools ours,aiperf
    python benchmarks/peers.py --write-readme        # also replace the table in benchmarks/README.md

Everything binds and targets 127.0.0.1; every run is bounded by its schedule and a timeout, and
each server is stopped when its part ends. How each tool is invoked: benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402

from benchmarks.peers import install, report, schedule, servers, tools  # noqa: E402
from benchmarks.peers.compare import RunResult, run_tool  # noqa: E402

TRACE = ROOT / "locust_burstgpt" / "data" / "BurstGPT_1_first7days_rows0000001-0019431.csv"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--servers", default="sim,llamacpp", help="comma-separated: sim, llamacpp")
    p.add_argument(
        "--tools",
        default="ours,aiperf,guidellm,vllm",
        help="comma-separated: ours, aiperf, guidellm, vllm",
    )
    p.add_argument(
        "--trace", default=str(TRACE), help="BurstGPT trace file (default: bundled BurstGPT_1 week)"
    )
    p.add_argument(
        "--sim-window", default="d0+00:00+24h", help="trace window for the simulator runs"
    )
    p.add_argument(
        "--sim-speedup", type=float, default=960.0, help="speedup for the simulator runs"
    )
    p.add_argument(
        "--llama-window", default="d0+08:00+1h", help="trace window for the llama.cpp runs"
    )
    p.add_argument(
        "--llama-speedup", type=float, default=60.0, help="speedup for the llama.cpp runs"
    )
    p.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="passes over the tools per server, in alternating order; tables show medians",
    )
    p.add_argument(
        "--llama-max-request-tokens",
        type=int,
        default=96,
        help="cap on prompt tokens for llama.cpp (SmolLM2 on one CPU thread prefills ~200 tokens/s)",
    )
    p.add_argument(
        "--llama-max-response-tokens",
        type=int,
        default=24,
        help="cap on response tokens for llama.cpp (it decodes ~60-90 tokens/s in total)",
    )
    p.add_argument(
        "--ours-sim-args", default="", help="extra locust arguments for our runs on the simulator"
    )
    p.add_argument(
        "--ours-llama-args",
        default="--burstgpt-headroom 10",
        help="extra locust arguments for our runs on llama.cpp (the user pool is sized from the "
        "trace's service times; llama.cpp on one thread is several times slower)",
    )
    p.add_argument("--max-requests", type=int, default=4000, help="bound on requests per schedule")
    p.add_argument(
        "--timeout", type=float, default=600.0, help="seconds before a tool's run is killed"
    )
    p.add_argument(
        "--out", default="", help="work directory (default: test-artifacts/peers/<time>)"
    )
    p.add_argument(
        "--write-readme",
        action="store_true",
        help="replace the results block of benchmarks/README.md with this run's tables",
    )
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    args.servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    args.tools = [t.strip() for t in args.tools.split(",") if t.strip()]
    for s in args.servers:
        if s not in servers.TOKEN_COUNTERS:
            p.error(f"--servers: unknown server {s!r}; expected sim or llamacpp")
    for t in args.tools:
        if t not in tools.TOOLS:
            p.error(f"--tools: unknown tool {t!r}; expected one of {', '.join(tools.TOOLS)}")
    return args


def log(msg: str) -> None:
    print(f"[peers {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_tools(names: list[str]) -> list[tools.Tool]:
    out: list[tools.Tool] = []
    for name in names:
        if name == "ours":
            out.append(tools.ours())
        elif name == "vllm":
            py = install.ensure_vllm(log)["python"]
            out.append(tools.VllmBench(py, install.vllm_version(py)))
        else:
            inst = install.ensure_peer(name, log)
            out.append(tools.TOOLS[name](inst.python, inst.version))
    return out


def schedules(args: argparse.Namespace) -> dict[str, schedule.Schedule]:
    out = {}
    if "sim" in args.servers:
        out["sim"] = schedule.from_trace(
            args.trace, args.sim_window, args.sim_speedup, max_requests=args.max_requests
        )
    if "llamacpp" in args.servers:
        limits = schedule.Limits(args.llama_max_request_tokens, args.llama_max_response_tokens)
        out["llamacpp"] = schedule.from_trace(
            args.trace,
            args.llama_window,
            args.llama_speedup,
            limits,
            max_requests=args.max_requests,
        )
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = psutil.virtual_memory().total / 2**30
    return (
        f"{os.cpu_count()} vCPU ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.1f} at start"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    out = (
        Path(args.out)
        if args.out
        else ROOT / "test-artifacts" / "peers" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    )
    out.mkdir(parents=True, exist_ok=True)
    tokenizer_dir = install.ensure_vllm(log)["model"]  # SmolLM2's tokenizer, for the peers' prompts
    if "llamacpp" in args.servers:
        install.ensure_llamacpp(log)
    tool_list = make_tools(args.tools)
    plans = schedules(args)
    header = [
        f"Run {dt.datetime.now().strftime('%Y-%m-%d %H:%M')} on {machine()}.",
        "Versions: " + "; ".join(f"{t.label}: {t.version}" for t in tool_list) + ".",
    ]
    log(header[0])
    log(header[1])
    sections, all_results = [], []
    for kind in args.servers:
        plan = plans[kind]
        results: list[RunResult] = []
        part_start = time.monotonic()
        with servers.running(kind, tokenizer_dir, out / kind) as server:
            log(f"{kind} at {server.base_url}: {plan.source}")
            for i in range(args.repeat):
                for tool in tool_list if i % 2 == 0 else tool_list[::-1]:
                    if isinstance(tool, tools.Ours):
                        tool.extra_args = tuple(
                            shlex.split(
                                args.ours_sim_args if kind == "sim" else args.ours_llama_args
                            )
                        )
                    results.append(
                        run_tool(
                            tool,
                            server,
                            plan,
                            out / kind / f"pass{i + 1}" / tool.name,
                            args.timeout,
                            log,
                            pass_index=i,
                        )
                    )
        part_s = time.monotonic() - part_start
        log(f"{kind} part took {part_s:.0f} s")
        text = report.section(
            {"sim": "Simulator, fast profile", "llamacpp": "llama.cpp, SmolLM2-135M"}[kind],
            plan,
            results,
            part_s,
        )
        print("\n" + text + "\n", flush=True)
        sections.append(text)
        all_results += results
    took = time.monotonic() - started
    body = (
        "\n".join(header) + f" Whole comparison: {took / 60:.1f} min.\n\n" + "\n\n".join(sections)
    )
    (out / "results.md").write_text(body + "\n", encoding="utf-8")
    (out / "results.json").write_text(
        json.dumps([r.as_dict() for r in all_results], indent=1, default=str)
    )
    log(f"done in {took / 60:.1f} min; results in {out}")
    if args.write_readme:
        report.update_readme(ROOT / "benchmarks" / "README.md", body)
        log("benchmarks/README.md updated")
    return 0 if all(r.ok for r in all_results) else 1


if __name__ == "__main__":
    sys.exit(main())
