"""Write one Schedule in each tool's own trace format (same offsets, same token counts).

* BurstGPT CSV (``Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type``, no
  Session ID column, so every row is a one-turn conversation): read by our plugin
  (``--burstgpt-trace``) and by AIPerf (``--custom-dataset-type burst-gpt-trace``).
* JSONL ``{"timestamp", "prompt_tokens", "output_tokens"}``: GuideLLM ``trace_synthetic``.
* JSONL ``{"timestamp", "input_length", "output_length", "hash_ids"}``: vLLM ``timed_trace``.
  vLLM builds the prompt from 16-token blocks named by ``hash_ids``; every request gets its own
  blocks, so no two prompts share a prefix (BurstGPT records no prompt content to share).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .schedule import Schedule

BURSTGPT_HEADER = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"
VLLM_BLOCK_TOKENS = 16  # vLLM's --timed-trace-chunk-hash-size default


def write_burstgpt_csv(schedule: Schedule, path: Path, model: str = "ChatGPT") -> Path:
    """BurstGPT_1-schema CSV with the schedule's offsets as (fractional) timestamps."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(BURSTGPT_HEADER + "\n")
        for t, p, o in zip(
            schedule.offsets, schedule.request_tokens, schedule.response_tokens, strict=True
        ):
            f.write(f"{t:.6f},{model},{int(p)},{int(o)},{int(p) + int(o)},API log\n")
    return path


def write_guidellm_jsonl(schedule: Schedule, path: Path) -> Path:
    """GuideLLM trace_synthetic rows (seconds, prompt and output token counts)."""
    with open(path, "w", encoding="utf-8") as f:
        for t, p, o in zip(
            schedule.offsets, schedule.request_tokens, schedule.response_tokens, strict=True
        ):
            f.write(
                json.dumps(
                    {
                        "timestamp": round(float(t), 6),
                        "prompt_tokens": int(p),
                        "output_tokens": int(o),
                    }
                )
                + "\n"
            )
    return path


def write_vllm_timed_trace(schedule: Schedule, path: Path) -> Path:
    """vLLM timed_trace rows; ``hash_ids`` cover the prompt in 16-token blocks, none shared."""
    next_block = 0
    with open(path, "w", encoding="utf-8") as f:
        for t, p, o in zip(
            schedule.offsets, schedule.request_tokens, schedule.response_tokens, strict=True
        ):
            blocks = math.ceil(int(p) / VLLM_BLOCK_TOKENS)
            f.write(
                json.dumps(
                    {
                        "timestamp": round(float(t), 6),
                        "input_length": int(p),
                        "output_length": int(o),
                        "hash_ids": list(range(next_block, next_block + blocks)),
                    }
                )
                + "\n"
            )
            next_block += blocks
    return path
