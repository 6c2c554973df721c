"""Prompts of exactly the trace's size in the target server's tokenizer, and exact output length.

    builder = make_prompt_builder(PromptConfig(backend="auto", base_url=url, model=m), client)
    built = builder.build_turn(target_prompt_tokens, history, conv_key="conv-17")
    body = {"model": m, "messages": built.messages, **output_controls(target_output, "vllm")}
    ...send...
    builder.observe(built, record)          # usage.prompt_tokens feeds statistics/calibration

Nothing here imports Locust.
"""

from __future__ import annotations

from locust_burstgpt.prompts.builder import (
    COMPLETION_SEPARATOR,
    BuilderStats,
    BuiltPrompt,
    PromptBuilder,
    PromptInputError,
)
from locust_burstgpt.prompts.counters import PromptBackendError, TemplateOverhead
from locust_burstgpt.prompts.factory import PromptConfig, make_prompt_builder
from locust_burstgpt.prompts.output import output_controls

__all__ = [
    "COMPLETION_SEPARATOR",
    "BuilderStats",
    "BuiltPrompt",
    "PromptBackendError",
    "PromptBuilder",
    "PromptConfig",
    "PromptInputError",
    "TemplateOverhead",
    "make_prompt_builder",
    "output_controls",
]
