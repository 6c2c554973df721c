"""The ``--burstgpt-*`` command-line options: one table, used by Locust's parser, the web UI's start
form, ``burstgpt options`` and ``--burstgpt-help`` (Locust prints ``--help`` before a locustfile loads,
so plugin options never appear there)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class OptionSpec:
    """One plugin option; ``dest`` is the attribute on Locust's ``parsed_options``."""

    flag: str
    default: Any
    help: str
    type: type = str
    choices: tuple[str, ...] | None = None
    secret: bool = False
    env_var: str | None = None
    metavar: str | None = None
    web_ui: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "--burstgpt-trace",
        "",
        "BurstGPT trace file (.csv, .csv.gz, .parquet); empty: the bundled "
        "BurstGPT_3 400-row slice",
        metavar="FILE",
    ),
    OptionSpec(
        "--burstgpt-window",
        "",
        "Part of the trace to replay: START+DURATION (START in seconds or "
        "d<day>+HH:MM), busiest:DURATION or peak-concurrency:DURATION; empty: the whole trace",
        metavar="WINDOW",
    ),
    OptionSpec(
        "--burstgpt-models",
        "",
        "Only these trace models, comma-separated (ChatGPT,GPT-4); empty: all",
        metavar="LIST",
    ),
    OptionSpec(
        "--burstgpt-log-types",
        "",
        "Only these log types, comma-separated (conversation,api); empty: all",
        metavar="LIST",
    ),
    OptionSpec(
        "--burstgpt-failed",
        "skip",
        "Trace rows with 0 response tokens (failed in the source): skip or send",
        choices=("skip", "send"),
    ),
    OptionSpec(
        "--burstgpt-speedup",
        1.0,
        "Divide arrival and think times by this factor (service times are the server's own)",
        type=float,
        metavar="S",
    ),
    OptionSpec(
        "--burstgpt-rate-scale",
        1.0,
        "Multiply the mean request rate by thinning (<1) or superposing "
        "time-shifted copies (>1) of whole conversations",
        type=float,
        metavar="X",
    ),
    OptionSpec(
        "--burstgpt-headroom",
        1.25,
        "Users = ceil(trace concurrency x headroom), so replies slower than "
        "the trace's recorded ones still find a free user",
        type=float,
        metavar="H",
    ),
    OptionSpec(
        "--burstgpt-arrival",
        "trace",
        "trace: conversations start at their (scaled) trace times, open "
        "loop; saturate: every user replays back to back with no idle time",
        choices=("trace", "saturate"),
    ),
    OptionSpec(
        "--burstgpt-endpoint",
        "chat",
        "OpenAI endpoint: chat (/v1/chat/completions) or completions (/v1/completions)",
        choices=("chat", "completions"),
    ),
    OptionSpec(
        "--burstgpt-model-map",
        "",
        "Trace model to served model, e.g. ChatGPT=llama-8b,GPT-4=llama-70b; "
        "unmapped models go to the first model the server lists at /v1/models",
        metavar="MAP",
    ),
    OptionSpec(
        "--burstgpt-tokenizer",
        "auto",
        "Prompt token counting: auto, server (/tokenize), fallback "
        "(calibrated from usage), simpletok (the embedded simulator's), or local:PATH (tokenizer.json "
        "or HF model dir)",
        metavar="BACKEND",
    ),
    OptionSpec(
        "--burstgpt-server-kind",
        "auto",
        "How to force exact output lengths: auto (from /v1/models and "
        "/tokenize), vllm (ignore_eos+min_tokens), llamacpp (ignore_eos), openai (max_tokens only)",
        choices=("auto", "vllm", "llamacpp", "sglang", "openai", "sim"),
    ),
    OptionSpec(
        "--burstgpt-transport",
        "raw",
        "HTTP client: raw (SSE over geventhttpclient, cheapest) or openai "
        "(the official openai client)",
        choices=("raw", "openai"),
    ),
    OptionSpec("--burstgpt-connect-timeout", 10.0, "Seconds to connect", type=float, metavar="S"),
    OptionSpec(
        "--burstgpt-ttft-timeout",
        120.0,
        "Seconds from send to the first token before the request is "
        "recorded as timeout_before_first_token",
        type=float,
        metavar="S",
    ),
    OptionSpec(
        "--burstgpt-idle-timeout",
        60.0,
        "Longest gap between stream chunks before the request is recorded as timeout_mid_stream",
        type=float,
        metavar="S",
    ),
    OptionSpec(
        "--burstgpt-drain-timeout",
        30.0,
        "When the window ends or the test stops, seconds to let "
        "requests in flight finish before they are recorded as cancelled",
        type=float,
        metavar="S",
    ),
    OptionSpec(
        "--burstgpt-retry",
        0,
        "Resend a request answered 429 or 503 (before any token) up to N times, "
        "after its Retry-After (1 s when absent, at most 60 s); every attempt is recorded. 0: off, a real "
        "user sees the failure",
        type=int,
        metavar="N",
    ),
    OptionSpec(
        "--burstgpt-reassign-lost",
        False,
        "Distributed runs: when a worker is lost, replay its "
        "conversations that had not started on the surviving workers (none is sent twice) instead of "
        "failing the run's trust check",
        type=bool,
    ),
    OptionSpec(
        "--burstgpt-api-key",
        "",
        "API key (default: $OPENAI_API_KEY); never logged or written to reports",
        secret=True,
        metavar="KEY",
    ),
    OptionSpec(
        "--burstgpt-insecure",
        False,
        "Do not verify TLS certificates (self-signed test servers only)",
        type=bool,
    ),
    OptionSpec(
        "--burstgpt-seed", 0, "Seed for prompt text and rate scaling", type=int, metavar="N"
    ),
    OptionSpec(
        "--burstgpt-sim-profile",
        "",
        "Simulator profile when no --host is given (empty: the default GPU-like profile)",
        metavar="NAME",
    ),
    OptionSpec(
        "--burstgpt-server-metrics",
        "",
        "Prometheus URL scraped every second into the timeline and "
        "charts (vLLM and llama.cpp names); empty: <host>/metrics; off: do not scrape",
        metavar="URL",
    ),
    OptionSpec(
        "--burstgpt-report",
        "",
        "Directory for the run report (requests.jsonl, timeline.csv, summary.json)",
        metavar="DIR",
    ),
    OptionSpec(
        "--burstgpt-slo",
        "",
        "SLO gates, e.g. ttft_p99<=2s,tpot_p99<=80ms,goodput>=0.95; a miss exits with code 3",
        metavar="SPEC",
    ),
)

BY_DEST = {o.dest: o for o in OPTIONS}


def add_to_parser(parser: Any) -> None:
    """Register every option on Locust's (configargparse) parser, in a group of its own.

    Locust's web-UI keywords (include_in_web_ui, is_secret) are only understood by the parser's own
    ``add_argument``, so they are set on the actions of the group directly.
    """
    group = parser.add_argument_group(
        "locust-burstgpt", "BurstGPT trace replay (see `burstgpt options`)"
    )
    for o in OPTIONS:
        kwargs: dict[str, Any] = {"default": o.default, "help": o.help}
        if o.type is bool:
            kwargs["action"] = "store_true"
        else:
            kwargs["type"] = o.type
            kwargs["metavar"] = o.metavar
        if o.choices:
            kwargs["choices"] = list(o.choices)
        kwargs["env_var"] = o.env_var or "LOCUST_" + o.dest.upper()
        action = group.add_argument(o.flag, **kwargs)
        action.include_in_web_ui = o.web_ui
        action.is_secret = o.secret
        action.is_required = False
        action.is_multiple = False
    action = group.add_argument(
        "--burstgpt-help",
        action=_HelpAction,
        nargs=0,
        help="List the locust-burstgpt options and exit",
    )
    action.include_in_web_ui = False


class _HelpAction(argparse.Action):
    def __call__(self, parser, namespace, values, option_string=None):  # noqa: ANN001
        print(format_help())
        parser.exit(0)


def format_help() -> str:
    """A plain-text table of the options (the same text as ``burstgpt options``)."""
    lines = [
        "locust-burstgpt options (all also settable as LOCUST_BURSTGPT_* environment variables):",
        "",
    ]
    for o in OPTIONS:
        value = "" if o.type is bool else f" {o.metavar or o.type.__name__.upper()}"
        default = "off" if o.type is bool else repr(o.default) if o.default != "" else "''"
        choices = f" {{{','.join(o.choices)}}}" if o.choices else ""
        lines.append(f"  {o.flag}{value}{choices}")
        lines.append(f"      {o.help} [default: {default}]")
    return "\n".join(lines)


def format_markdown_table() -> str:
    """The options as a Markdown table (kept in the README)."""
    rows = ["| option | default | meaning |", "|---|---|---|"]
    for o in OPTIONS:
        default = "off" if o.type is bool else f"`{o.default}`" if o.default != "" else "(empty)"
        choices = f" One of: {', '.join(o.choices)}." if o.choices else ""
        rows.append(f"| `{o.flag}` | {default} | {o.help}.{choices} |")
    return "\n".join(rows)
