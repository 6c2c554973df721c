"""Validated replay settings built from Locust's parsed options, by the option table.

Why a separate step: every bad ``--burstgpt-*`` value must produce one clear line and exit code 2
*before* any load starts, and the rest of the plugin should only ever see checked values. How each
option is checked lives with the option (``options.OPTIONS``); this module only collects them.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from typing import Any

from locust_burstgpt.options import OPTIONS, OptionError
from locust_burstgpt.slo import SLOSpec, parse_slo

__all__ = ["SECRET_PLACEHOLDER", "OptionError", "ReplaySettings", "settings_from_options"]

#: What the web UI's start form shows for a secret option that is set (Locust would show the value).
SECRET_PLACEHOLDER = "(set, hidden)"


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
    strict_curve: bool = False  # users capped at the curve; conversations may wait for one
    overrun_s: float | None = None  # None: the window's length, at least 60 s
    api_key: str | None = field(default=None, repr=False)

    def overrun_for(self, window_s: float) -> float:
        """How long after the window's end turns pushed past it are still sent."""
        return self.overrun_s if self.overrun_s is not None else max(60.0, window_s)

    def public_dict(self) -> dict[str, Any]:
        """JSON-able settings without secrets (for reports and logs)."""
        d = {k: v for k, v in self.__dict__.items() if k not in ("api_key", "slo_spec")}
        d["api_key_set"] = bool(self.api_key)
        return d


def settings_from_options(
    opts: Any, secrets: MutableMapping[str, str] | None = None
) -> ReplaySettings:
    """Check every ``burstgpt_*`` attribute of Locust's parsed options; raise OptionError on the
    first bad one.

    ``secrets``: the real values of secret options, kept by the caller (the web UI's start form
    sends a set secret back as ``SECRET_PLACEHOLDER``, which is replaced by the kept value)."""
    values: dict[str, Any] = {}
    for o in OPTIONS:
        raw = getattr(opts, o.dest, o.default)
        if o.secret:
            raw = _secret(o.dest, raw or "", secrets)
        values[o.field] = o.value(raw)
    values["api_key"] = _api_key(values["api_key"])
    values["slo_spec"] = parse_slo(values["slo"])  # checked by the option's parser
    return ReplaySettings(**values)


def _secret(dest: str, value: str, secrets: MutableMapping[str, str] | None) -> str:
    if secrets is None:
        return "" if value == SECRET_PLACEHOLDER else value
    if value == SECRET_PLACEHOLDER:  # the web UI form sent the masked value back unchanged
        return secrets.get(dest, "")
    if value:
        secrets[dest] = value
    return value


def _api_key(value: str | None) -> str | None:
    key = value or os.environ.get("OPENAI_API_KEY") or None
    if key is not None and not all(0x21 <= ord(c) <= 0x7E for c in key):
        raise OptionError(
            "--burstgpt-api-key: the key (or $OPENAI_API_KEY) contains spaces or control "
            "characters, which an HTTP header cannot carry (the value is not shown)"
        )
    return key
