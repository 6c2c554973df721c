"""Named server profiles: the scheduling limits and step-time coefficients of a simulated GPU server.

Why it exists: the simulator's behaviour under load (queueing, TTFT spikes, inter-token latency
growing with the batch) is entirely set by these numbers, so they live in one place, are named,
and can be overridden field by field from a config. Every coefficient of every profile is
**illustrative**: chosen to look like the order of magnitude of a real deployment, not measured
on one and not a prediction of any real hardware.

Step time (seconds) of one engine step, see ``Profile.step_time``::

    step = step_base_s
         + prefill_token_s * (prompt tokens computed in the step)
         + decode_seq_s    * (sequences decoding one token in the step)
         + context_token_s * (context tokens those decoding sequences attend to)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    """Limits and per-step time coefficients of one simulated server (all illustrative)."""

    name: str
    description: str
    max_num_seqs: int  # running sequences at most (vLLM --max-num-seqs)
    max_num_batched_tokens: int  # tokens computed per step at most (vLLM --max-num-batched-tokens)
    kv_cache_tokens: int  # KV-cache capacity in tokens (rounded down to whole blocks)
    block_size: int  # KV-cache block size in tokens; prefix caching works on full blocks
    max_model_len: int  # prompt + completion tokens per request at most
    step_base_s: float  # fixed cost of every step (weights read once per step)
    prefill_token_s: float  # cost per prompt token computed
    decode_seq_s: float  # cost per decoding sequence
    context_token_s: float  # cost per context token attended to by decoding sequences
    enable_prefix_caching: bool = True

    def __post_init__(self) -> None:
        for f in ("max_num_seqs", "max_num_batched_tokens", "block_size", "max_model_len"):
            if getattr(self, f) < 1:
                raise ValueError(f"profile {self.name!r}: {f} must be >= 1, got {getattr(self, f)}")
        if self.kv_cache_tokens < self.block_size:
            raise ValueError(
                f"profile {self.name!r}: kv_cache_tokens ({self.kv_cache_tokens}) must hold at "
                f"least one block of {self.block_size} tokens"
            )
        if self.kv_cache_tokens < self.max_model_len + self.block_size:
            raise ValueError(
                f"profile {self.name!r}: kv_cache_tokens ({self.kv_cache_tokens}) must hold one "
                f"request of max_model_len ({self.max_model_len}) plus one block"
            )
        for f in ("step_base_s", "prefill_token_s", "decode_seq_s", "context_token_s"):
            if getattr(self, f) < 0:
                raise ValueError(f"profile {self.name!r}: {f} must be >= 0, got {getattr(self, f)}")

    @property
    def num_blocks(self) -> int:
        return self.kv_cache_tokens // self.block_size

    def step_time(self, prefill_tokens: int, decode_seqs: int, context_tokens: int) -> float:
        """Duration of one step that computes this much work."""
        return (
            self.step_base_s
            + self.prefill_token_s * prefill_tokens
            + self.decode_seq_s * decode_seqs
            + self.context_token_s * context_tokens
        )

    def with_overrides(self, overrides: Mapping[str, object], source: str = "config") -> Profile:
        """A copy with some fields replaced; unknown field names are an error naming ``source``."""
        known = {f.name: f for f in dataclasses.fields(self)}
        clean: dict[str, object] = {}
        for key, value in overrides.items():
            if key not in known or key == "name":
                raise ValueError(
                    f"{source}: unknown profile field {key!r}; known: "
                    + ", ".join(sorted(k for k in known if k != "name"))
                )
            ftype = known[key].type
            if ftype in ("int", int):
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ValueError(
                        f"{source}: profile field {key!r} must be an integer, got {value!r}"
                    )
            elif ftype in ("float", float):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(
                        f"{source}: profile field {key!r} must be a number, got {value!r}"
                    )
                value = float(value)
            elif ftype in ("bool", bool):
                if not isinstance(value, bool):
                    raise ValueError(
                        f"{source}: profile field {key!r} must be true/false, got {value!r}"
                    )
            elif ftype in ("str", str) and not isinstance(value, str):
                raise ValueError(f"{source}: profile field {key!r} must be a string, got {value!r}")
            clean[key] = value
        return dataclasses.replace(self, **clean)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="fast",
            description="almost no modelled compute time: a fixed 1 ms step, one token per "
            "running sequence per step (for client and plugin tests)",
            max_num_seqs=4096,
            max_num_batched_tokens=1_048_576,
            kv_cache_tokens=4 * 1024 * 1024,  # bounds the prefix cache's memory (~50 MB)
            block_size=16,
            max_model_len=131_072,
            # A tiny fixed step rather than none: the cadence is deterministic (one token per
            # sequence per millisecond) and an idle-ish simulator does not spin a core that the
            # load generator on the same machine needs.
            step_base_s=0.001,
            prefill_token_s=0.0,
            decode_seq_s=0.0,
            context_token_s=0.0,
        ),
        Profile(
            name="a100-7b",
            description="illustrative: a 7B fp16 model on one 80 GB datacenter GPU",
            max_num_seqs=256,
            max_num_batched_tokens=8192,
            kv_cache_tokens=120_000,
            block_size=16,
            max_model_len=32_768,
            step_base_s=0.008,
            prefill_token_s=0.00006,
            decode_seq_s=0.00004,
            context_token_s=0.0000003,
        ),
        Profile(
            name="l4-8b",
            description="illustrative: an 8B fp16 model on one 24 GB inference GPU (small KV cache)",
            max_num_seqs=64,
            max_num_batched_tokens=2048,
            kv_cache_tokens=40_000,
            block_size=16,
            max_model_len=32_768,
            step_base_s=0.030,
            prefill_token_s=0.00020,
            decode_seq_s=0.00010,
            context_token_s=0.0000010,
        ),
    )
}

DEFAULT_PROFILE = "fast"
#: The profile the Locust plugin uses for its embedded server when no --host is given.
DEMO_PROFILE = "l4-8b"


def load_profile(name: str, overrides: Mapping[str, object] | None = None) -> Profile:
    """A built-in profile by name, optionally with some fields overridden."""
    try:
        profile = PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown simulator profile {name!r}; known: {', '.join(sorted(PROFILES))}"
        ) from None
    return profile.with_overrides(overrides) if overrides else profile
