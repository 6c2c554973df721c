"""Small queries to the server beside the load: models, props, tokenize, metrics.

Why one helper: these calls need the same authentication, TLS verification, timeouts and error
messages as the load itself, and before each caller set them up its own way over its own HTTP
stack. Here they go over one small cooperative keep-alive pool (geventhttpclient: cooperative
under gevent without monkey patching, and apart from the load's own connection pool).

Rules that hold for every call:

* the API key goes only to the origin (scheme, host, port) the channel was made for; a redirect is
  followed only within that origin (a query's answer from elsewhere is an error, never a request
  carrying the key to another host);
* a URL's user:password part is never printed;
* a common ``/v1`` suffix of the server URL is accepted (``http://h:8000/v1`` means the server root);
* every call has a deadline; a keep-alive connection the server closed just before the query (uvicorn
  closes idle ones after 5 s) is retried on a fresh one, since these calls are queries.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import gevent
from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPConnectionClosed

from locust_burstgpt.client.raw import tls_context_factory

log = logging.getLogger("locust_burstgpt")

_REDIRECTS = (301, 302, 303, 307, 308)


class SideChannelError(RuntimeError):
    """A query got no usable answer; the message names the request (without credentials)."""


def redact_url(url: str) -> str:
    """``url`` without its user:password part (the rest unchanged)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def server_root(base_url: str) -> str:
    """The server root: no trailing slash, no ``/v1`` suffix, no user:password."""
    root = redact_url(base_url.strip()).rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def same_origin(a: str, b: str) -> bool:
    """Same scheme, host and port (default ports filled in)."""
    pa, pb = urlsplit(a), urlsplit(b)

    def key(p: Any) -> tuple[str, str, int]:
        return (
            p.scheme,
            (p.hostname or "").lower(),
            p.port or (443 if p.scheme == "https" else 80),
        )

    return key(pa) == key(pb)


class SideChannel:
    """JSON and text queries to one server origin, with its auth, TLS and timeouts."""

    STALE_RETRIES = 2
    MAX_REDIRECTS = 3

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        verify_tls: bool = True,
        timeout_s: float = 30.0,
        concurrency: int = 16,
    ) -> None:
        root = server_root(base_url)
        url = urlsplit(root)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise SideChannelError(f"server URL must be http(s)://host[:port], got {root!r}")
        self.root = root
        self._prefix = url.path.rstrip("/")
        self.timeout_s = timeout_s
        headers = {"Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._headers = headers
        origin = urlunsplit((url.scheme, url.netloc, "", "", ""))
        tls = (
            {"ssl_context_factory": tls_context_factory(verify_tls)}
            if url.scheme == "https"
            else {}
        )
        self._http = HTTPClient.from_url(
            origin,
            concurrency=concurrency,
            connection_timeout=min(timeout_s, 10.0),
            network_timeout=timeout_s,
            insecure=not verify_tls,
            **tls,
        )

    # -- queries -----------------------------------------------------------------------------
    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, parsed JSON or None); raises SideChannelError when there is no answer."""
        status, raw = self._exchange(method, path, body)
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return status, parsed

    def get_json(self, path: str) -> tuple[int, Any]:
        return self.request("GET", path)

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("POST", path, body)

    def get_text(self, path: str) -> tuple[int, str]:
        """(status, body as text), e.g. a Prometheus ``/metrics`` page."""
        status, raw = self._exchange("GET", path, None)
        return status, raw.decode("utf-8", "replace")

    def close(self) -> None:
        self._http.close()

    # -- one exchange, with its redirects and stale-connection retries -----------------------
    def _exchange(self, method: str, path: str, body: Any) -> tuple[int, bytes]:
        data = json.dumps(body).encode() if body is not None else None
        headers = dict(self._headers)
        if data is not None:
            headers["Content-Type"] = "application/json"
        target = self._prefix + path
        shown = f"{method} {self.root}{path}"
        try:
            with gevent.Timeout(self.timeout_s):
                for _ in range(self.MAX_REDIRECTS + 1):
                    status, location, raw = self._once(method, target, data, headers)
                    if status not in _REDIRECTS or not location:
                        return status, raw
                    absolute = urljoin(self.root + target, location)
                    if not same_origin(absolute, self.root):
                        raise SideChannelError(
                            f"{shown}: redirected ({status}) to another origin, "
                            f"{redact_url(absolute)}; not followed, so credentials stay with "
                            f"{self.root}"
                        )
                    parts = urlsplit(absolute)
                    target = parts.path + (f"?{parts.query}" if parts.query else "")
                    if status == 303:
                        method, data = "GET", None
                raise SideChannelError(f"{shown}: more than {self.MAX_REDIRECTS} redirects")
        except gevent.Timeout:
            raise SideChannelError(f"{shown}: no answer in {self.timeout_s:g} s") from None
        except SideChannelError:
            raise
        except Exception as e:  # noqa: BLE001 - every transport failure becomes one message
            raise SideChannelError(f"{shown}: {type(e).__name__}: {e}") from None

    def _once(
        self, method: str, target: str, data: bytes | None, headers: dict[str, str]
    ) -> tuple[int, str | None, bytes]:
        for attempt in range(self.STALE_RETRIES + 1):
            try:
                resp = self._http.request(method, target, body=data, headers=headers)
                break
            except (HTTPConnectionClosed, ConnectionResetError, BrokenPipeError):
                if attempt == self.STALE_RETRIES:
                    raise
        try:
            raw = resp.read()
        finally:
            resp.release()
        location = resp.get("location")
        return resp.status_code, location if isinstance(location, str) else None, raw
