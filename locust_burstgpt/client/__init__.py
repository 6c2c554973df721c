"""OpenAI-compatible streaming client: one per process, never raises for a server fault.

    client = make_client(ClientConfig(base_url="http://127.0.0.1:8000"))
    record = client.send({"model": "m", "messages": [...], "max_tokens": 64},
                         RequestRecord(request_id="r1", scheduled_at=t))
    record.outcome, record.ttft, record.itls, record.completion_tokens

Nothing here imports Locust.
"""

from __future__ import annotations

from typing import Any, Protocol

from locust_burstgpt.client.config import ClientConfig, ClientConfigError
from locust_burstgpt.client.records import WALL_ANCHOR, Outcome, RequestRecord


class LLMClient(Protocol):
    """What every transport offers."""

    name: str
    cfg: ClientConfig

    def send(
        self, body: dict[str, Any], record: RequestRecord, headers: dict[str, str] | None = None
    ) -> RequestRecord:
        """Stream one completion; fill ``record`` in place (exactly one outcome) and return it.

        ``body`` is the OpenAI JSON body without ``stream``/``stream_options`` (the client adds
        them); ``headers`` are extra headers for this request only. Every request carries
        ``X-Request-Id: <record.request_id>``. Server and network faults become outcomes. If
        the calling greenlet is killed mid-request the record gets CANCELLED (keeping the times
        seen so far) and the exception is re-raised.
        """
        ...

    def close(self) -> None:
        """Close pooled connections."""
        ...


def make_client(cfg: ClientConfig) -> LLMClient:
    """The transport ``cfg.transport`` names. Create it once per process, before load starts."""
    if cfg.transport == "raw":
        from locust_burstgpt.client.raw import RawTransport

        return RawTransport(cfg)
    if cfg.transport == "openai":
        from locust_burstgpt.client.oai import OpenAITransport

        return OpenAITransport(cfg)
    raise ClientConfigError(f"unknown transport {cfg.transport!r}; use 'raw' or 'openai'")


__all__ = [
    "WALL_ANCHOR",
    "ClientConfig",
    "ClientConfigError",
    "LLMClient",
    "Outcome",
    "RequestRecord",
    "make_client",
]
