"""The ``--burstgpt-*`` command-line options: one table, used by Locust's parser, the web UI's start
form, the validated settings (``settings.py``), ``burstgpt options`` and ``--burstgpt-help`` (Locust
prints ``--help`` before a locustfile loads, so plugin options never appear there).

Each option says how its raw value becomes a checked setting (``parse``); a bad value raises
``OptionError`` with one line naming the option, before any load starts.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from locust_burstgpt.server_kinds import CHOICES as SERVER_KIND_CHOICES
from locust_burstgpt.slo import SLOSpecError, parse_slo

MAX_RETRY = 10

LOG_TYPE_ALIASES = {
    "conversation": "Conversation log",
    "conversation log": "Conversation log",
    "conv": "Conversation log",
    "api": "API log",
    "api log": "API log",
}


class OptionError(ValueError):
    """A plugin option has an invalid value; the message is one line naming the option."""


Parse = Callable[[Any, "OptionSpec"], Any]


@dataclass(frozen=True)
class OptionSpec:
    """One plugin option; ``dest`` is the attribute on Locust's ``parsed_options`` and ``field``
    the attribute of ``ReplaySettings`` its checked value goes to."""

    flag: str
    default: Any
    help: str
    type: type = str
    choices: tuple[str, ...] | None = None
    secret: bool = False
    env_var: str | None = None
    metavar: str | None = None
    web_ui: bool = True
    parse: Parse | None = None  # raw value -> setting (raises OptionError); None: as given
    setting: str | None = None  # the ReplaySettings field, when it is not named after the flag
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    @property
    def field(self) -> str:
        return self.setting or self.flag[len("--burstgpt-") :].replace("-", "_")

    def value(self, raw: Any) -> Any:
        """The checked setting for a raw option value."""
        if self.choices and raw not in self.choices:
            raise OptionError(
                f"{self.flag}: expected one of {', '.join(self.choices)}, got {raw!r}"
            )
        return self.parse(raw, self) if self.parse is not None else raw


# -- parsers ---------------------------------------------------------------------------------
def _split(value: str) -> tuple[str, ...] | None:
    items = tuple(x.strip() for x in (value or "").split(",") if x.strip())
    return items or None


def _text(value: Any, o: OptionSpec) -> str | None:
    """Stripped text; empty means unset."""
    return (value or "").strip() or None


def _list(value: Any, o: OptionSpec) -> tuple[str, ...] | None:
    return _split(value or "")


def _number(minimum: float, *, above: bool = True) -> Parse:
    """A finite number > ``minimum`` (or >= with ``above=False``)."""

    def parse(value: Any, o: OptionSpec) -> float:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise OptionError(f"{o.flag}: expected a number, got {value!r}") from None
        if math.isnan(v) or math.isinf(v) or v < minimum or (above and v == minimum):
            raise OptionError(f"{o.flag}: expected a number > 0, got {value!r}")
        return v

    return parse


_positive = _number(0.0)
_non_negative = _number(0.0, above=False)


def _headroom(value: Any, o: OptionSpec) -> float:
    v = _positive(value, o)
    if v < 1:
        raise OptionError(f"{o.flag}: expected a factor >= 1, got {v!r}")
    return v


def _integer(value: Any, o: OptionSpec) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise OptionError(f"{o.flag}: expected an integer, got {value!r}") from None


def _retry(value: Any, o: OptionSpec) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if not 0 <= n <= MAX_RETRY:
        raise OptionError(f"{o.flag}: expected an integer from 0 to {MAX_RETRY}, got {value!r}")
    return n


def _trace(value: Any, o: OptionSpec) -> str | None:
    path = _text(value, o)
    if path is not None and not os.path.exists(path):
        raise OptionError(f"{o.flag}: file not found: {path}")
    return path


def _tokenizer(value: Any, o: OptionSpec) -> str:
    backend = (value or "auto").strip()
    if backend not in ("auto", "server", "fallback", "simpletok") and not backend.startswith(
        "local:"
    ):
        raise OptionError(
            f"{o.flag}: expected auto, server, fallback, simpletok or local:PATH, got {backend!r}"
        )
    if backend.startswith("local:") and not os.path.exists(backend[len("local:") :]):
        raise OptionError(f"{o.flag}: local tokenizer not found: {backend[len('local:') :]}")
    return backend


def parse_model_map(value: Any, o: OptionSpec | None = None) -> dict[str, str]:
    """``ChatGPT=a,GPT-4=b`` -> {"ChatGPT": "a", "GPT-4": "b"}."""
    out: dict[str, str] = {}
    for item in _split(value or "") or ():
        key, sep, served = item.partition("=")
        if not sep or not key.strip() or not served.strip():
            raise OptionError(
                "--burstgpt-model-map: expected TRACE_MODEL=SERVED_MODEL pairs separated by "
                f"commas, got {item!r}"
            )
        out[key.strip()] = served.strip()
    return out


def parse_log_types(value: Any, o: OptionSpec | None = None) -> tuple[str, ...] | None:
    items = _split(value or "")
    if items is None:
        return None
    out = []
    for item in items:
        canonical = LOG_TYPE_ALIASES.get(item.lower())
        if canonical is None:
            raise OptionError(
                f"--burstgpt-log-types: unknown log type {item!r}; expected conversation or api"
            )
        out.append(canonical)
    return tuple(dict.fromkeys(out))


def _sim_profile(value: Any, o: OptionSpec) -> str | None:
    name = _text(value, o)
    if name is not None:
        from locust_burstgpt.sim.profiles import PROFILES

        if name not in PROFILES:
            raise OptionError(
                f"{o.flag}: unknown profile {name!r}; known: {', '.join(sorted(PROFILES))}"
            )
    return name


def _server_metrics(value: Any, o: OptionSpec) -> str | None:
    """A URL, "" for <host>/metrics, None when off."""
    text = (value or "").strip()
    if text.lower() == "off":
        return None
    if text and not text.startswith(("http://", "https://")):
        raise OptionError(f"{o.flag}: expected an http(s) URL or off, got {text!r}")
    return text


def _report_dir(value: Any, o: OptionSpec) -> str | None:
    path = _text(value, o)
    if path is not None and os.path.exists(path) and not os.path.isdir(path):
        raise OptionError(f"{o.flag}: {path} exists and is not a directory")
    return path


def _slo(value: Any, o: OptionSpec) -> str | None:
    text = _text(value, o)
    try:
        parse_slo(text)
    except SLOSpecError as e:
        raise OptionError(str(e)) from None
    return text


def _overrun(value: Any, o: OptionSpec) -> float | None:
    """Seconds, or None for the default (the window's length, at least 60 s)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    return _non_negative(value, o)


def _flag(value: Any, o: OptionSpec) -> bool:
    return bool(value)


OPTIONS: tuple[OptionSpec, ...] = (
    OptionSpec(
        "--burstgpt-trace",
        "",
        "BurstGPT trace file (.csv, .csv.gz, .parquet); empty: the bundled "
        "BurstGPT_3 400-row slice",
        metavar="FILE",
        parse=_trace,
    ),
    OptionSpec(
        "--burstgpt-window",
        "",
        "Part of the trace to replay: START+DURATION (START in seconds or "
        "d<day>+HH:MM), busiest:DURATION or peak-concurrency:DURATION; empty: the whole trace",
        metavar="WINDOW",
        parse=_text,
    ),
    OptionSpec(
        "--burstgpt-models",
        "",
        "Only these trace models, comma-separated (ChatGPT,GPT-4); empty: all",
        metavar="LIST",
        parse=_list,
    ),
    OptionSpec(
        "--burstgpt-log-types",
        "",
        "Only these log types, comma-separated (conversation,api); empty: all",
        metavar="LIST",
        parse=parse_log_types,
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
        parse=_positive,
    ),
    OptionSpec(
        "--burstgpt-rate-scale",
        1.0,
        "Multiply the mean request rate by thinning (<1) or superposing "
        "time-shifted copies (>1) of whole conversations",
        type=float,
        metavar="X",
        parse=_positive,
    ),
    OptionSpec(
        "--burstgpt-headroom",
        1.25,
        "Users = ceil(c x headroom), c the larger of the trace's concurrency and the "
        "conversations in progress (plus those starting within the next tick), so a slower server "
        "shows as more users",
        type=float,
        metavar="H",
        parse=_headroom,
    ),
    OptionSpec(
        "--burstgpt-strict-curve",
        False,
        "Cap users at the trace's concurrency x headroom: a conversation due when no user is free "
        "waits for one, and that wait is measured as lateness (default: users grow with the "
        "conversations in progress and none waits)",
        type=bool,
        parse=_flag,
    ),
    OptionSpec(
        "--burstgpt-arrival",
        "trace",
        "trace: conversations start at their (scaled) trace times, open "
        "loop; poisson: the same conversations, starts redrawn as a Poisson process of the same "
        "mean rate (open loop, the trace without its bursts); saturate: every user replays back "
        "to back with no idle time",
        choices=("trace", "poisson", "saturate"),
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
        parse=parse_model_map,
    ),
    OptionSpec(
        "--burstgpt-tokenizer",
        "auto",
        "Prompt token counting: auto, server (/tokenize), fallback "
        "(calibrated from usage), simpletok (the embedded simulator's), or local:PATH (tokenizer.json "
        "or HF model dir)",
        metavar="BACKEND",
        parse=_tokenizer,
    ),
    OptionSpec(
        "--burstgpt-server-kind",
        "auto",
        "How to force exact output lengths: auto (from /v1/models and "
        "/tokenize), vllm (ignore_eos+min_tokens), llamacpp (ignore_eos), openai (max_tokens only)",
        choices=SERVER_KIND_CHOICES,
    ),
    OptionSpec(
        "--burstgpt-transport",
        "raw",
        "HTTP client: raw (SSE over geventhttpclient, cheapest) or openai "
        "(the official openai client)",
        choices=("raw", "openai"),
    ),
    OptionSpec(
        "--burstgpt-connect-timeout",
        10.0,
        "Seconds to connect",
        type=float,
        metavar="S",
        parse=_positive,
        setting="connect_timeout_s",
    ),
    OptionSpec(
        "--burstgpt-ttft-timeout",
        120.0,
        "Seconds from send to the first token before the request is "
        "recorded as timeout_before_first_token",
        type=float,
        metavar="S",
        parse=_positive,
        setting="ttft_timeout_s",
    ),
    OptionSpec(
        "--burstgpt-idle-timeout",
        60.0,
        "Longest gap between stream chunks before the request is recorded as timeout_mid_stream",
        type=float,
        metavar="S",
        parse=_positive,
        setting="idle_timeout_s",
    ),
    OptionSpec(
        "--burstgpt-drain-timeout",
        30.0,
        "When the run ends, seconds to let requests in flight finish before they are recorded "
        "as cancelled",
        type=float,
        metavar="S",
        parse=_non_negative,
        setting="drain_timeout_s",
    ),
    OptionSpec(
        "--burstgpt-overrun",
        "",
        "After the window's end, seconds to go on sending the turns a server slower than the "
        "trace pushed past it; turns still unsent then are recorded as not sent (window_ended); "
        "empty: the window's length, at least 60 s",
        metavar="S",
        parse=_overrun,
        setting="overrun_s",
    ),
    OptionSpec(
        "--burstgpt-retry",
        0,
        "Resend a request answered 429 or 503 (before any token) up to N times, "
        "after its Retry-After (1 s when absent, at most 60 s); every attempt is recorded. 0: off, a real "
        "user sees the failure",
        type=int,
        metavar="N",
        parse=_retry,
    ),
    OptionSpec(
        "--burstgpt-reassign-lost",
        False,
        "Distributed runs: when a worker is lost, replay its "
        "conversations that had not started on the surviving workers (none is sent twice) instead of "
        "failing the run's trust check",
        type=bool,
        parse=_flag,
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
        parse=_flag,
    ),
    OptionSpec(
        "--burstgpt-seed",
        0,
        "Seed for prompt text and rate scaling",
        type=int,
        metavar="N",
        parse=_integer,
    ),
    OptionSpec(
        "--burstgpt-sim-profile",
        "",
        "Simulator profile when no --host is given (empty: the default GPU-like profile)",
        metavar="NAME",
        parse=_sim_profile,
    ),
    OptionSpec(
        "--burstgpt-server-metrics",
        "",
        "Prometheus URL scraped every second into the timeline and "
        "charts (vLLM and llama.cpp names); empty: <host>/metrics; off: do not scrape",
        metavar="URL",
        parse=_server_metrics,
    ),
    OptionSpec(
        "--burstgpt-report",
        "",
        "Directory for the run report (requests.jsonl, timeline.csv, summary.json)",
        metavar="DIR",
        parse=_report_dir,
        setting="report_dir",
    ),
    OptionSpec(
        "--burstgpt-slo",
        "",
        "SLO gates, e.g. ttft_p99<=2s,tpot_p99<=80ms,goodput>=0.95; a miss exits with code 3",
        metavar="SPEC",
        parse=_slo,
    ),
)


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
