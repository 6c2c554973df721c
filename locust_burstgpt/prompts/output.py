"""Request fields that make a server generate exactly the asked number of output tokens.

``max_tokens`` caps the length; ``ignore_eos`` stops the model from ending early at its
end-of-sequence token (vLLM, SGLang, llama.cpp, the embedded simulator); ``min_tokens`` also
forbids stop tokens before the target where the server supports it (vLLM, the simulator;
llama.cpp silently ignores it, so it is not sent there). Unknown servers get ``max_tokens``
only, since strict servers reject unknown fields; their realized lengths may be shorter. The
realized count is always read from ``usage``.
"""

from __future__ import annotations

from typing import Any

_IGNORE_EOS_AND_MIN = frozenset({"vllm", "sim", "simulator", "burstgpt-sim"})
_IGNORE_EOS = frozenset({"llamacpp", "llama.cpp", "sglang"})


def output_controls(target: int, server_kind: str | None = None) -> dict[str, Any]:
    """Body fields for ``target`` output tokens on a server of ``server_kind``."""
    n = int(target)
    if n < 1:
        raise ValueError(f"output target must be >= 1 token, got {target!r}")
    kind = (server_kind or "").strip().lower()
    body: dict[str, Any] = {"max_tokens": n}
    if kind in _IGNORE_EOS_AND_MIN:
        body["ignore_eos"] = True
        body["min_tokens"] = n
    elif kind in _IGNORE_EOS:
        body["ignore_eos"] = True
    return body
