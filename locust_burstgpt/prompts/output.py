"""Request fields that make a server generate exactly the asked number of output tokens.

``max_tokens`` caps the length; ``ignore_eos`` stops the model from ending early at its
end-of-sequence token where the server honours it, and ``min_tokens`` also forbids stop tokens
before the target where the server supports it (see ``server_kinds``). Unknown servers get
``max_tokens`` only, since strict servers reject unknown fields; their realized lengths may be
shorter. The realized count is always read from ``usage``.
"""

from __future__ import annotations

from typing import Any

from locust_burstgpt.server_kinds import ServerKind, parse_kind


def output_controls(target: int, server_kind: str | ServerKind | None = None) -> dict[str, Any]:
    """Body fields for ``target`` output tokens on a server of ``server_kind``."""
    n = int(target)
    if n < 1:
        raise ValueError(f"output target must be >= 1 token, got {target!r}")
    kind = parse_kind(server_kind)
    body: dict[str, Any] = {"max_tokens": n}
    if kind.ignores_eos:
        body["ignore_eos"] = True
    if kind.has_min_tokens:
        body["min_tokens"] = n
    return body
