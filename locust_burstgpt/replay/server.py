"""What the target server is: served models, kind (for exact-length switches), context length.

Asked once per process before load starts (``GET /v1/models``, and llama.cpp's ``/props``) over
the side channel, so requests can carry the right model name and length controls without
per-request probing, and the prompt builder need not ask again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from locust_burstgpt.client.sidechannel import SideChannel, SideChannelError
from locust_burstgpt.server_kinds import ServerKind, kind_for_owner, parse_kind

log = logging.getLogger("locust_burstgpt")


class ServerInfoError(RuntimeError):
    """The server could not be asked what it serves."""


@dataclass
class ServerInfo:
    models: list[str]
    kind: ServerKind
    max_model_len: int | None
    owner: str | None = None  # ``owned_by`` of the first model
    model_map: dict[str, str] = field(default_factory=dict)

    @property
    def default_model(self) -> str:
        return self.models[0] if self.models else "default"

    def model_for(self, trace_model: str) -> str:
        return self.model_map.get(trace_model, self.default_model)

    def clip(self, prompt_tokens: int, output_tokens: int) -> tuple[int, int]:
        """Fit a turn into the model's context (the caller counts when the result differs)."""
        limit = self.max_model_len
        if limit is None or prompt_tokens + output_tokens <= limit:
            return prompt_tokens, output_tokens
        output = min(output_tokens, max(1, limit // 4))
        return max(1, min(prompt_tokens, limit - output)), output


def discover(side: SideChannel, server_kind: str, model_map: Mapping[str, str]) -> ServerInfo:
    """Ask the server what it serves; ``server_kind`` "auto" reads the kind from ``owned_by``."""
    data = _get(side, "/v1/models").get("data") or []
    entries = [m for m in data if isinstance(m, dict)]
    models = [str(m["id"]) for m in entries if m.get("id")]
    owner = next((str(m.get("owned_by")) for m in entries if m.get("owned_by") is not None), None)
    kind = kind_for_owner(owner) if server_kind == "auto" else parse_kind(server_kind)
    max_len = next(
        (int(m["max_model_len"]) for m in entries if isinstance(m.get("max_model_len"), int)), None
    )
    if max_len is None and kind is ServerKind.LLAMACPP:
        try:
            props = _get(side, "/props")
            n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx")
            max_len = int(n_ctx) if n_ctx else None
        except (ServerInfoError, TypeError, ValueError):
            max_len = None
    unknown = [served for served in model_map.values() if models and served not in models]
    if unknown:
        log.warning(
            "--burstgpt-model-map names models the server does not list: %s (it lists %s)",
            ", ".join(unknown),
            ", ".join(models),
        )
    info = ServerInfo(models, kind, max_len, owner=owner, model_map=dict(model_map))
    log.info(
        "Server %s: models %s, kind %s, context %s",
        side.root,
        ", ".join(models) or "(none listed)",
        kind.value,
        max_len or "unknown",
    )
    return info


def _get(side: SideChannel, path: str) -> dict:
    try:
        status, data = side.get_json(path)
    except SideChannelError as e:
        raise ServerInfoError(str(e)) from None
    if status != 200:
        raise ServerInfoError(f"GET {side.root}{path} answered HTTP {status}")
    if not isinstance(data, dict):
        raise ServerInfoError(f"GET {side.root}{path} did not answer a JSON object")
    return data
