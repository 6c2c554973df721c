"""Validated replay settings built from Locust's parsed options.

Why a separate step: every bad ``--burstgpt-*`` value must produce one clear line and exit code 2
*before* any load starts, and the rest of the plugin should only ever see checked values.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from locust_burstgpt.slo import SLOSpec, SLOSpecError, parse_slo

LOG_TYPE_ALIASES = {
    "conversation": "Conversation log",
    "conversation log": "Conversation log",
    "conv": "Conversation log",
    "api": "API log",
    "api log": "API log",
}


MAX_RETRY = 10
#: What the web UI's start form shows for a secret option that is set (Locust would show the value).
SECRET_PLACEHOLDER = "(set, hidden)"
_secrets: dict[str, str] = {}  # the last real value of each secret option, for forms sent back


class OptionError(ValueError):
    """A plugin option has an invalid value; the message is one line naming the option."""


@dataclass(frozen=True)
class ReplaySettings:
    trace: str | None
    window: str | None
    models: tuple[str, ...] | None
    log_types: tuple[str, ...] | None
    failed: str
    speedup: float
    rate_scale: float
    headroom: float
    arrival: str
    endpoint: str
    model_map: dict[str, str]
    tokenizer: str
    server_kind: str
    transport: str
    connect_timeout_s: float
    ttft_timeout_s: float
    idle_timeout_s: float
    drain_timeout_s: float
    insecure: bool
    seed: int
    sim_profile: str | None
    report_dir: str | None
    server_metrics: str | None  # URL, "" for <host>/metrics, None when off
    slo: str | None
    slo_spec: SLOSpec = field(default_factory=lambda: SLOSpec(()))
    retry: int = 0  # resends of a 429/503 answer; 0: off
    reassign_lost: bool = False
    api_key: str | None = field(default=None, repr=False)

    def public_dict(self) -> dict[str, Any]:
        """JSON-able settings without secrets (for reports and logs)."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("api_key", "slo_spec")}
        d["api_key_set"] = bool(self.api_key)
        return d


def _split(value: str) -> tuple[str, ...] | None:
    items = tuple(x.strip() for x in (value or "").split(",") if x.strip())
    return items or None


def _positive(name: str, value: Any, *, allow_zero: bool = False) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise OptionError(f"--{name}: expected a number, got {value!r}") from None
    if math.isnan(v) or math.isinf(v) or v < 0 or (v == 0 and not allow_zero):
        raise OptionError(f"--{name}: expected a number > 0, got {value!r}")
    return v


def parse_model_map(value: str) -> dict[str, str]:
    """``ChatGPT=a,GPT-4=b`` -> {"ChatGPT": "a", "GPT-4": "b"}."""
    out: dict[str, str] = {}
    for item in _split(value) or ():
        key, sep, served = item.partition("=")
        if not sep or not key.strip() or not served.strip():
            raise OptionError(
                f"--burstgpt-model-map: expected TRACE_MODEL=SERVED_MODEL pairs separated by commas, got {item!r}"
            )
        out[key.strip()] = served.strip()
    return out


def parse_log_types(value: str) -> tuple[str, ...] | None:
    items = _split(value)
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


def _server_metrics(value: str) -> str | None:
    value = value.strip()
    if value.lower() == "off":
        return None
    if value and not value.startswith(("http://", "https://")):
        raise OptionError(
            f"--burstgpt-server-metrics: expected an http(s) URL or off, got {value!r}"
        )
    return value


def settings_from_options(opts: Any) -> ReplaySettings:
    """Check every ``burstgpt_*`` attribute of Locust's parsed options; raise OptionError on the first bad one."""
    get = lambda name, default=None: getattr(opts, name, default)  # noqa: E731
    trace = (get("burstgpt_trace") or "").strip() or None
    if trace is not None and not os.path.exists(trace):
        raise OptionError(f"--burstgpt-trace: file not found: {trace}")
    tokenizer = (get("burstgpt_tokenizer") or "auto").strip()
    if tokenizer not in ("auto", "server", "fallback", "simpletok") and not tokenizer.startswith(
        "local:"
    ):
        raise OptionError(
            f"--burstgpt-tokenizer: expected auto, server, fallback, simpletok or local:PATH, got {tokenizer!r}"
        )
    if tokenizer.startswith("local:") and not os.path.exists(tokenizer[len("local:") :]):
        raise OptionError(
            f"--burstgpt-tokenizer: local tokenizer not found: {tokenizer[len('local:') :]}"
        )
    for name, allowed in (
        ("failed", ("skip", "send")),
        ("arrival", ("trace", "saturate")),
        ("endpoint", ("chat", "completions")),
        ("transport", ("raw", "openai")),
    ):
        value = get(f"burstgpt_{name}")
        if value not in allowed:
            raise OptionError(
                f"--burstgpt-{name}: expected one of {', '.join(allowed)}, got {value!r}"
            )
    seed = get("burstgpt_seed", 0)
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise OptionError(f"--burstgpt-seed: expected an integer, got {seed!r}") from None
    retry = get("burstgpt_retry", 0)
    try:
        retry = int(retry)
    except (TypeError, ValueError):
        raise OptionError(
            f"--burstgpt-retry: expected an integer from 0 to {MAX_RETRY}, got {retry!r}"
        ) from None
    if not 0 <= retry <= MAX_RETRY:
        raise OptionError(
            f"--burstgpt-retry: expected an integer from 0 to {MAX_RETRY}, got {retry!r}"
        )
    headroom = _positive("burstgpt-headroom", get("burstgpt_headroom", 1.25))
    if headroom < 1:
        raise OptionError(f"--burstgpt-headroom: expected a factor >= 1, got {headroom!r}")
    slo = (get("burstgpt_slo") or "").strip() or None
    try:
        slo_spec = parse_slo(slo)
    except SLOSpecError as e:
        raise OptionError(str(e)) from None
    api_key = get("burstgpt_api_key") or ""
    if api_key == SECRET_PLACEHOLDER:  # the web UI form sent the masked value back unchanged
        api_key = _secrets.get("burstgpt_api_key", "")
    elif api_key:
        _secrets["burstgpt_api_key"] = api_key
    api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
    if api_key is not None and not all(0x21 <= ord(c) <= 0x7E for c in api_key):
        raise OptionError(
            "--burstgpt-api-key: the key (or $OPENAI_API_KEY) contains spaces or control "
            "characters, which an HTTP header cannot carry (the value is not shown)"
        )
    sim_profile = (get("burstgpt_sim_profile") or "").strip() or None
    if sim_profile is not None:
        from locust_burstgpt.sim.profiles import PROFILES

        if sim_profile not in PROFILES:
            raise OptionError(
                f"--burstgpt-sim-profile: unknown profile {sim_profile!r}; known: "
                f"{', '.join(sorted(PROFILES))}"
            )
    report_dir = (get("burstgpt_report") or "").strip() or None
    if report_dir is not None and os.path.exists(report_dir) and not os.path.isdir(report_dir):
        raise OptionError(f"--burstgpt-report: {report_dir} exists and is not a directory")
    settings = ReplaySettings(
        trace=trace,
        window=(get("burstgpt_window") or "").strip() or None,
        models=_split(get("burstgpt_models") or ""),
        log_types=parse_log_types(get("burstgpt_log_types") or ""),
        failed=get("burstgpt_failed"),
        speedup=_positive("burstgpt-speedup", get("burstgpt_speedup", 1.0)),
        rate_scale=_positive("burstgpt-rate-scale", get("burstgpt_rate_scale", 1.0)),
        headroom=headroom,
        arrival=get("burstgpt_arrival"),
        endpoint=get("burstgpt_endpoint"),
        model_map=parse_model_map(get("burstgpt_model_map") or ""),
        tokenizer=tokenizer,
        server_kind=get("burstgpt_server_kind") or "auto",
        transport=get("burstgpt_transport"),
        connect_timeout_s=_positive(
            "burstgpt-connect-timeout", get("burstgpt_connect_timeout", 10.0)
        ),
        ttft_timeout_s=_positive("burstgpt-ttft-timeout", get("burstgpt_ttft_timeout", 120.0)),
        idle_timeout_s=_positive("burstgpt-idle-timeout", get("burstgpt_idle_timeout", 60.0)),
        drain_timeout_s=_positive(
            "burstgpt-drain-timeout", get("burstgpt_drain_timeout", 30.0), allow_zero=True
        ),
        insecure=bool(get("burstgpt_insecure", False)),
        seed=seed,
        sim_profile=sim_profile,
        report_dir=report_dir,
        server_metrics=_server_metrics(get("burstgpt_server_metrics") or ""),
        slo=slo,
        slo_spec=slo_spec,
        retry=retry,
        reassign_lost=bool(get("burstgpt_reassign_lost", False)),
        api_key=api_key,
    )
    return settings
