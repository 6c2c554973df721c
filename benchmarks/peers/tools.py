"""The load generators compared: how each is invoked on a schedule and how its output is read.

Each tool gets the same schedule (in its own file format, see ``formats.py``) and the same server,
and streams with ``ignore_eos`` so replies have exactly the scheduled length: chat completions,
except vLLM's ``timed_trace``, which only drives ``/v1/completions``. Client settings are the
tools' defaults otherwise. Optional extras that only some tools have are switched
off where a switch exists (server-metrics scraping, GPU telemetry, live UIs), so that client CPU
is the cost of generating load and recording per-request results.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import formats
from .fidelity import percentile
from .schedule import Schedule

ROOT = Path(__file__).resolve().parents[2]
SHIM = Path(__file__).resolve().parent / "vllm_bench_shim.py"
# time.time() - time.perf_counter() here; perf_counter is CLOCK_MONOTONIC, shared by every process
# on the machine, so another process's perf_counter readings convert to wall-clock time with it.
WALL_MINUS_PERF = time.time() - time.perf_counter()


@dataclass
class Server:
    """The server every tool targets in one comparison."""

    kind: str  # "sim" or "llamacpp"
    base_url: str
    model: str
    tokenizer_dir: str  # HF tokenizer folder the peers synthesize prompts with
    text_prompts_only: bool  # the server rejects token-id prompts on /v1/completions
    pid: int | None = None  # the server process (its CPU is not background load)


@dataclass
class Parsed:
    """What a tool's own output says about each request (times are wall-clock seconds)."""

    sends: np.ndarray
    ends: np.ndarray
    completed: int
    failed: int
    output_tokens: int | None  # sum of per-request completion tokens the tool recorded
    lateness_p99_ms: float | None  # the tool's own schedule-lateness figure, if any
    lateness_kind: str = ""  # what that figure is
    notes: list[str] = field(default_factory=list)
    scheduled: np.ndarray | None = None  # each send's scheduled offset, when the output says it


class Tool:
    """One load generator. Subclasses fill in the files, the command line and the parser."""

    name = ""
    label = ""

    def __init__(self, python: str, version: str) -> None:
        self.python = python
        self.version = version

    def write_inputs(self, schedule: Schedule, workdir: Path) -> None:
        raise NotImplementedError

    def command(self, server: Server, workdir: Path, n_requests: int) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return {
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "DO_NOT_TRACK": "1",
            "TQDM_DISABLE": "1",
            "PYTHONUNBUFFERED": "1",
        }

    def parse(self, workdir: Path) -> Parsed:
        raise NotImplementedError


class Ours(Tool):
    """locust-burstgpt: ``locust -f locustfiles/burstgpt.py`` with the converted trace.

    ``extra_args`` are added per server (see ``peers.py``: the user pool's headroom on llama.cpp).
    """

    name, label = "ours", "locust-burstgpt"
    extra_args: tuple[str, ...] = ()

    def write_inputs(self, schedule: Schedule, workdir: Path) -> None:
        formats.write_burstgpt_csv(schedule, workdir / "trace.csv")

    def command(self, server: Server, workdir: Path, n_requests: int) -> list[str]:
        return [
            self.python,
            "-m",
            "locust",
            "-f",
            str(ROOT / "locustfiles" / "burstgpt.py"),
            "--headless",
            "--only-summary",
            "--loglevel",
            "WARNING",
            "--host",
            server.base_url,
            "--burstgpt-trace",
            str(workdir / "trace.csv"),
            "--burstgpt-speedup",
            "1",
            "--burstgpt-server-metrics",
            "off",
            "--burstgpt-report",
            str(workdir / "report"),
            *self.extra_args,
        ]

    def parse(self, workdir: Path) -> Parsed:
        sends, ends, lateness, scheduled = [], [], [], []
        completed = failed = tokens = 0
        offsets = _offsets(workdir / "trace.csv")
        path = workdir / "report" / "requests.jsonl"
        with open(path, encoding="utf-8") as f:
            for line in f:
                e = json.loads(line)
                if e.get("sent_at") is None:
                    continue
                sends.append(e["sent_at"])
                ends.append(e.get("last_byte_at") or e["sent_at"])
                scheduled.append(offsets[int(e["trace_row"]) - 1])
                if e.get("lateness") is not None:
                    lateness.append(e["lateness"])
                if e.get("outcome") == "ok":
                    completed += 1
                    tokens += e.get("completion_tokens") or 0
                else:
                    failed += 1
        return Parsed(
            np.array(sends),
            np.array(ends),
            completed,
            failed,
            tokens,
            percentile(np.array(lateness), 99) * 1000.0 if lateness else None,
            "send - scheduled (true schedule origin)",
            scheduled=np.array(scheduled),
        )


class AIPerf(Tool):
    """NVIDIA AIPerf: ``aiperf profile`` on the same BurstGPT CSV, fixed schedule."""

    name, label = "aiperf", "AIPerf"

    def write_inputs(self, schedule: Schedule, workdir: Path) -> None:
        formats.write_burstgpt_csv(schedule, workdir / "trace.csv")

    def command(self, server: Server, workdir: Path, n_requests: int) -> list[str]:
        return [
            str(Path(self.python).parent / "aiperf"),
            "profile",
            "--model",
            server.model,
            "--url",
            server.base_url,
            "--endpoint-type",
            "chat",
            "--streaming",
            "--tokenizer",
            server.tokenizer_dir,
            "--input-file",
            str(workdir / "trace.csv"),
            "--custom-dataset-type",
            "burst-gpt-trace",
            "--fixed-schedule",
            "--extra-inputs",
            "ignore_eos:true",
            "--use-server-token-count",
            "--ui",
            "none",
            "--no-server-metrics",
            "--no-gpu-telemetry",
            "--artifact-dir",
            str(workdir / "artifacts"),
        ]

    def parse(self, workdir: Path) -> Parsed:
        sends, ends = [], []
        completed = failed = tokens = 0
        with open(workdir / "artifacts" / "profile_export.jsonl", encoding="utf-8") as f:
            for line in f:
                r = json.loads(line)
                md = r["metadata"]
                if md.get("benchmark_phase", "profiling") != "profiling":
                    continue
                start = md.get("request_start_ns")
                if start is None:
                    continue
                sends.append(start / 1e9)
                ends.append((md.get("request_end_ns") or start) / 1e9)
                if r.get("error") or md.get("was_cancelled"):
                    failed += 1
                    continue
                completed += 1
                osl = (r.get("metrics") or {}).get("usage_completion_tokens") or {}
                tokens += int(osl.get("value") or 0)
        summary = json.loads((workdir / "artifacts" / "profile_export_aiperf.json").read_text())
        lag = summary.get("replay_sched_lag_p99") or {}
        return Parsed(
            np.array(sends),
            np.array(ends),
            completed,
            failed,
            tokens,
            lag.get("avg"),
            "replay_sched_lag_p99 (anchored at the least-late request)",
        )


class GuideLLM(Tool):
    """GuideLLM: ``guidellm run`` with the replay profile on a trace_synthetic JSONL."""

    name, label = "guidellm", "GuideLLM"

    def write_inputs(self, schedule: Schedule, workdir: Path) -> None:
        formats.write_guidellm_jsonl(schedule, workdir / "trace.jsonl")

    def command(self, server: Server, workdir: Path, n_requests: int) -> list[str]:
        data = {
            "kind": "trace_synthetic",
            "source": {"kind": "json_file", "path": str(workdir / "trace.jsonl")},
            "timestamp_column": "timestamp",
            "prompt_tokens_column": "prompt_tokens",
            "output_tokens_column": "output_tokens",
        }
        return [
            str(Path(self.python).parent / "guidellm"),
            "run",
            "--backend",
            f"kind=openai_http,target={server.base_url},model={server.model}",
            "--profile",
            "kind=replay,schedule_turn=timestamp",
            "--tokenizer",
            f"kind=huggingface_auto,model={server.tokenizer_dir}",
            "--data",
            json.dumps(data),
            "--output",
            f"kind=json,path={workdir / 'guidellm.json'}",
            "--disable-console-interactive",
        ]

    def env(self) -> dict[str, str]:
        return {**super().env(), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}

    def parse(self, workdir: Path) -> Parsed:
        doc = json.loads((workdir / "guidellm.json").read_text())
        bench = doc["benchmarks"][0]
        sends, ends, scheduled = [], [], []
        completed = failed = tokens = 0
        for status in ("successful", "errored", "incomplete"):
            for r in bench["requests"].get(status) or ():
                t = r["info"]["timings"]
                if t.get("request_start") is None:
                    continue
                sends.append(t["request_start"])
                scheduled.append(
                    (r["info"].get("settings") or {}).get("relative_timestamp", np.nan)
                )
                ends.append(t.get("request_end") or t["request_start"])
                if status == "successful":
                    completed += 1
                    tokens += int((r.get("output_metrics") or {}).get("text_tokens") or 0)
                else:
                    failed += 1
        delay = bench["metrics"]["request_dispatch_delay"]["total"]["percentiles"]["p99"]
        sched = np.array(scheduled, dtype=np.float64)
        return Parsed(
            np.array(sends),
            np.array(ends),
            completed,
            failed,
            tokens,
            None if delay is None else delay * 1000.0,
            "request_dispatch_delay p99 (request start - targeted start)",
            scheduled=None if np.isnan(sched).any() else sched,
        )


class VllmBench(Tool):
    """vLLM's ``vllm bench serve`` with the timed_trace dataset (self-timed, completions API)."""

    name, label = "vllm", "vllm bench serve"

    def write_inputs(self, schedule: Schedule, workdir: Path) -> None:
        formats.write_vllm_timed_trace(schedule, workdir / "trace.jsonl")

    def command(self, server: Server, workdir: Path, n_requests: int) -> list[str]:
        cmd = [
            self.python,
            str(SHIM),
            "--backend",
            "openai",
            "--base-url",
            server.base_url,
            "--endpoint",
            "/v1/completions",
            "--model",
            server.model,
            "--tokenizer",
            server.tokenizer_dir,
            "--dataset-name",
            "timed_trace",
            "--dataset-path",
            str(workdir / "trace.jsonl"),
            "--num-prompts",
            str(n_requests),
            "--ignore-eos",
            "--save-result",
            "--save-detailed",
            "--result-dir",
            str(workdir),
            "--result-filename",
            "vllm.json",
            "--disable-tqdm",
        ]
        if server.text_prompts_only:
            cmd.append("--text-prompts")
        return cmd

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
        }

    def parse(self, workdir: Path) -> Parsed:
        doc = json.loads((workdir / "vllm.json").read_text())
        starts = np.array(doc["start_times"], dtype=np.float64) + WALL_MINUS_PERF
        latencies = np.array([x or 0.0 for x in doc["latencies"]], dtype=np.float64)
        tokens = sum(int(x or 0) for x in doc["output_lens"])
        offsets = _offsets_jsonl(workdir / "trace.jsonl")  # results are in input order
        return Parsed(
            starts,
            starts + latencies,
            int(doc["completed"]),
            int(doc["failed"]),
            tokens,
            None,
            "not reported in self-timed mode",
            notes=["sends one extra warm-up request (the first prompt) before the run"],
            scheduled=offsets[: starts.size] if offsets.size >= starts.size else None,
        )


def _offsets(csv_path: Path) -> np.ndarray:
    """The Timestamp column of a converted BurstGPT CSV (row k is schedule entry k)."""
    with open(csv_path, encoding="utf-8") as f:
        next(f)
        return np.array([float(line.split(",", 1)[0]) for line in f])


def _offsets_jsonl(path: Path) -> np.ndarray:
    with open(path, encoding="utf-8") as f:
        return np.array([json.loads(line)["timestamp"] for line in f])


TOOLS: dict[str, type[Tool]] = {t.name: t for t in (Ours, AIPerf, GuideLLM, VllmBench)}


def ours(python: str = sys.executable) -> Ours:
    from importlib.metadata import version

    return Ours(python, f"locust-burstgpt {version('locust-burstgpt')}, locust {version('locust')}")
