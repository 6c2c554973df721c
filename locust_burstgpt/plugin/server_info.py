"""What the target server is: served models, kind (for exact-length switches) and context length.

Asked once per process before load starts (``GET /v1/models``, and llama.cpp's ``/props``), so
requests can carry the right model name and length controls without per-request probing.
"""

from __future__ import annotations

import json
import logging
import ssl
import urllib.request
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("locust_burstgpt")

OWNER_KINDS = {"vllm": "vllm", "llamacpp": "llamacpp", "sglang": "sglang", "burstgpt-sim": "sim"}


class ServerInfoError(RuntimeError):
    """The server could not be asked what it serves."""


@dataclass
class ServerInfo:
    models: list[str]
    kind: str
    max_model_len: int | None
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

    @classmethod
    def discover(cls, base_url: str, settings: Any, client: Any = None) -> ServerInfo:
        models_json = _get_json(base_url + "/v1/models", settings)
        data = models_json.get("data") or []
        models = [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]
        owner = next((str(m.get("owned_by", "")) for m in data if isinstance(m, dict)), "")
        kind = settings.server_kind
        if kind == "auto":
            kind = OWNER_KINDS.get(owner.lower(), "openai")
        max_len = next(
            (
                int(m["max_model_len"])
                for m in data
                if isinstance(m, dict) and isinstance(m.get("max_model_len"), int)
            ),
            None,
        )
        if max_len is None and kind == "llamacpp":
            try:
                props = _get_json(base_url + "/props", settings)
                n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx")
                max_len = int(n_ctx) if n_ctx else None
            except ServerInfoError:
                max_len = None
        unknown = [
            served for served in settings.model_map.values() if models and served not in models
        ]
        if unknown:
            log.warning(
                "--burstgpt-model-map names models the server does not list: %s (it lists %s)",
                ", ".join(unknown),
                ", ".join(models),
            )
        info = cls(
            models=models, kind=kind, max_model_len=max_len, model_map=dict(settings.model_map)
        )
        log.info(
            "Server %s: models %s, kind %s, context %s",
            base_url,
            ", ".join(models) or "(none listed)",
            kind,
            max_len or "unknown",
        )
        return info


def _get_json(url: str, settings: Any) -> dict[str, Any]:
    req = urllib.request.Request(url, headers={"Accept": "application/json"})
    if getattr(settings, "api_key", None):
        req.add_header("Authorization", f"Bearer {settings.api_key}")
    ctx = None
    if url.startswith("https://"):
        ctx = ssl.create_default_context()
        if getattr(settings, "insecure", False):
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(
            req, timeout=getattr(settings, "connect_timeout_s", 10.0) + 20, context=ctx
        ) as resp:
            return json.loads(resp.read().decode("utf-8"))
    except Exception as e:  # noqa: BLE001 - every failure becomes one clear message
        raise ServerInfoError(f"GET {url} failed: {type(e).__name__}: {e}") from None
