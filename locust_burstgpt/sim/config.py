"""Simulator configuration: a profile plus server options and fault rules, from a dict or a file.

Why it exists: the CLI, the Python API and tests all configure the simulator the same way, and
a typo in a config must fail loudly with the file and key, not be silently ignored.

File format: JSON (``.json``) or, on Python 3.11+, TOML (``.toml``), holding one object::

    {
      "profile": "l4-8b",                       # base profile (the CLI/API argument wins)
      "profile_overrides": {"max_num_seqs": 8}, # any Profile field
      "model": "burstgpt-sim",                  # name served at /v1/models
      "max_waiting": 200,                       # 503 when this many requests already wait
      "emit_send_times": false,                 # add "sim_sent_at" to every streamed chunk
      "natural_tokens_mean": 256,               # reply length without ignore_eos (see docs)
      "seed": 0,                                # fault rates and reply lengths
      "faults": [{"kind": "http_500", "rate": 0.01}]
    }
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locust_burstgpt.sim.faults import FaultError, FaultRule, rule_from_dict
from locust_burstgpt.sim.profiles import DEFAULT_PROFILE, Profile, load_profile

_KEYS = {
    "profile",
    "profile_overrides",
    "model",
    "max_waiting",
    "emit_send_times",
    "natural_tokens_mean",
    "seed",
    "faults",
}


@dataclass
class SimConfig:
    """Everything the simulator server needs to know."""

    profile: Profile = field(default_factory=lambda: load_profile(DEFAULT_PROFILE))
    model: str = "burstgpt-sim"
    max_waiting: int | None = None
    emit_send_times: bool = False
    natural_tokens_mean: int = 256
    seed: int = 0
    faults: list[FaultRule] = field(default_factory=list)

    @classmethod
    def load(
        cls, profile: str | None = None, config: Mapping[str, Any] | str | Path | None = None
    ) -> SimConfig:
        """Build from a profile name and a config dict or file path (either may be None)."""
        if config is None:
            data: Mapping[str, Any] = {}
            where = "simulator config"
        elif isinstance(config, Mapping):
            data = config
            where = "simulator config"
        else:
            data, where = read_config_file(Path(config))
        return cls.from_dict(data, profile=profile, where=where)

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], profile: str | None = None, where: str = "simulator config"
    ) -> SimConfig:
        if not isinstance(data, Mapping):
            raise ValueError(
                f"{where}: expected an object at the top level, got {type(data).__name__}"
            )
        unknown = set(data) - _KEYS
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(_KEYS)}")
        name = profile or data.get("profile") or DEFAULT_PROFILE
        if not isinstance(name, str):
            raise ValueError(f"{where}: 'profile' must be a profile name, got {name!r}")
        overrides = data.get("profile_overrides") or {}
        if not isinstance(overrides, Mapping):
            raise ValueError(f"{where}: 'profile_overrides' must be an object")
        try:
            prof = load_profile(name)
            if overrides:
                prof = prof.with_overrides(overrides, source=f"{where}: profile_overrides")
        except ValueError as e:
            msg = str(e)
            raise ValueError(msg if msg.startswith(where) else f"{where}: {msg}") from None
        model = data.get("model", "burstgpt-sim")
        if not isinstance(model, str) or not model or '"' in model or "\\" in model:
            raise ValueError(
                f"{where}: 'model' must be a non-empty name without quotes, got {model!r}"
            )
        max_waiting = data.get("max_waiting")
        if max_waiting is not None and (not _is_int(max_waiting) or max_waiting < 0):
            raise ValueError(
                f"{where}: 'max_waiting' must be an integer >= 0 or null, got {max_waiting!r}"
            )
        emit = data.get("emit_send_times", False)
        if not isinstance(emit, bool):
            raise ValueError(f"{where}: 'emit_send_times' must be true or false, got {emit!r}")
        mean = data.get("natural_tokens_mean", 256)
        if not _is_int(mean) or mean < 1:
            raise ValueError(
                f"{where}: 'natural_tokens_mean' must be an integer >= 1, got {mean!r}"
            )
        seed = data.get("seed", 0)
        if not _is_int(seed):
            raise ValueError(f"{where}: 'seed' must be an integer, got {seed!r}")
        raw_faults = data.get("faults", [])
        if not isinstance(raw_faults, list):
            raise ValueError(f"{where}: 'faults' must be a list of rules")
        try:
            rules = [rule_from_dict(r, f"{where}: faults[{i}]") for i, r in enumerate(raw_faults)]
        except FaultError as e:
            raise ValueError(str(e)) from None
        return cls(
            profile=prof,
            model=model,
            max_waiting=max_waiting,
            emit_send_times=emit,
            natural_tokens_mean=mean,
            seed=seed,
            faults=rules,
        )


def read_config_file(path: Path) -> tuple[Mapping[str, Any], str]:
    """Parse a JSON or TOML config file; errors name the file (and line for JSON)."""
    where = str(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"{where}: cannot read simulator config: {e.strerror}") from None
    if path.suffix.lower() == ".toml":
        try:
            import tomllib
        except ImportError:  # Python 3.10
            raise ValueError(f"{where}: TOML configs need Python 3.11+; use JSON") from None
        try:
            return tomllib.loads(raw), where
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{where}: invalid TOML: {e}") from None
    try:
        return json.loads(raw), where
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{where}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
        ) from None


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
