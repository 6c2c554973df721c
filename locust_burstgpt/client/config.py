"""Client settings: where to send, how, and how long to wait for each phase of a stream.

The API key comes from the ``api_key`` argument or ``OPENAI_API_KEY``; it is excluded from
``repr`` so it never reaches a log line or a report.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

Transport = Literal["raw", "openai"]
Endpoint = Literal["chat", "completions"]


class ClientConfigError(ValueError):
    """A client setting that cannot work, named with the value that was given."""


@dataclass
class ClientConfig:
    """How the one per-process client talks to the server."""

    base_url: str  # server root, e.g. http://127.0.0.1:8000 (a trailing /v1 is accepted)
    api_key: str | None = field(default=None, repr=False)
    transport: Transport = "raw"
    endpoint: Endpoint = "chat"
    connect_timeout_s: float = 10.0
    first_token_timeout_s: float | None = 300.0  # send -> first content token (queueing + prefill)
    idle_timeout_s: float | None = 60.0  # longest silence allowed once tokens flow
    total_timeout_s: float | None = None  # send -> last byte
    pool_size: int = 1024  # keep above the peak number in flight: a full pool hides lateness
    verify_tls: bool = True
    extra_headers: dict[str, str] = field(default_factory=dict)
    timeout_check_interval_s: float = 0.05  # deadline resolution (one watchdog timer per client)
    max_error_body_bytes: int = 4096  # how much of a non-200 body is kept in ``record.error``
    # top-level fields of content chunks to keep per chunk in ``record.extra[name]`` (e.g. a
    # server's own send timestamp, to check the client's timing against it); none by default
    chunk_fields: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.api_key is None:
            self.api_key = os.environ.get("OPENAI_API_KEY") or None
        url = urlsplit(self.base_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ClientConfigError(
                f"base_url must be an http(s) URL with a host, got {self.base_url!r}"
            )
        if self.transport not in ("raw", "openai"):
            raise ClientConfigError(f"transport must be 'raw' or 'openai', got {self.transport!r}")
        if self.endpoint not in ("chat", "completions"):
            raise ClientConfigError(
                f"endpoint must be 'chat' or 'completions', got {self.endpoint!r}"
            )
        if self.pool_size < 1:
            raise ClientConfigError(f"pool_size must be >= 1, got {self.pool_size}")
        for name in (
            "connect_timeout_s",
            "first_token_timeout_s",
            "idle_timeout_s",
            "total_timeout_s",
            "timeout_check_interval_s",
        ):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ClientConfigError(f"{name} must be > 0 (or None for no limit), got {value}")

    @property
    def root_url(self) -> str:
        """The server root without a trailing slash or ``/v1``."""
        root = self.base_url.rstrip("/")
        return root[: -len("/v1")] if root.endswith("/v1") else root

    @property
    def path(self) -> str:
        """The streaming endpoint's path."""
        return "/v1/chat/completions" if self.endpoint == "chat" else "/v1/completions"

    def auth_headers(self) -> dict[str, str]:
        """Headers every request carries (Authorization only when a key is set)."""
        headers = dict(self.extra_headers)
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        return headers
