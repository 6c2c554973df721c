"""Token counts from the target server's own ``/tokenize`` (llama.cpp and vLLM shapes).

* llama.cpp: ``POST /tokenize {"content", "add_special", "parse_special"} -> {"tokens": [...]}``;
  chat prompts are rendered first with ``POST /apply-template {"messages"} -> {"prompt"}``.
* vLLM (and servers copying its API): ``POST /tokenize {"model", "prompt",
  "add_special_tokens"}`` or ``{"model", "messages", "add_generation_prompt": true}``
  ``-> {"count", "tokens", ...}``: the server renders its own chat template.

The calls go over a small cooperative keep-alive pool of their own, so counting never competes
with the load's connection pool.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import gevent
from geventhttpclient import HTTPClient
from geventhttpclient.response import HTTPConnectionClosed

from locust_burstgpt.client.raw import tls_context_factory
from locust_burstgpt.prompts.counters import Message, PromptBackendError, content_text

log = logging.getLogger("locust_burstgpt.prompts")


class JsonHttp:
    """Minimal JSON-over-HTTP helper (cooperative under gevent, no monkey patching needed)."""

    STALE_RETRIES = 2

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        verify_tls: bool = True,
        timeout_s: float = 30.0,
        concurrency: int = 64,
    ) -> None:
        root = base_url.rstrip("/")
        root = root[:-3] if root.endswith("/v1") else root
        url = urlsplit(root)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise PromptBackendError(f"server URL must be http(s)://host[:port], got {base_url!r}")
        self.root = root
        self._prefix = url.path.rstrip("/")
        self.timeout_s = timeout_s
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        self._headers = headers
        tls = (
            {"ssl_context_factory": tls_context_factory(verify_tls)}
            if url.scheme == "https"
            else {}
        )
        self._http = HTTPClient.from_url(
            root,
            concurrency=concurrency,
            connection_timeout=min(timeout_s, 10.0),
            network_timeout=timeout_s,
            insecure=not verify_tls,
            **tls,
        )

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, parsed JSON or None); raises PromptBackendError when there is no answer.

        Every call here is a query (tokenize, apply a template, list models), so a request that
        met a keep-alive connection the server had just closed (uvicorn closes idle ones after
        5 s) is sent again on a fresh one, up to ``STALE_RETRIES`` times."""
        data = json.dumps(body).encode() if body is not None else None
        try:
            with gevent.Timeout(self.timeout_s):
                for attempt in range(self.STALE_RETRIES + 1):
                    try:
                        resp = self._http.request(
                            method, self._prefix + path, body=data, headers=self._headers
                        )
                        break
                    except (HTTPConnectionClosed, ConnectionResetError, BrokenPipeError):
                        if attempt == self.STALE_RETRIES:
                            raise
                try:
                    raw = resp.read()
                finally:
                    resp.release()
        except gevent.Timeout:
            raise PromptBackendError(
                f"{method} {self.root}{path}: no answer in {self.timeout_s:g} s"
            ) from None
        except Exception as e:  # noqa: BLE001 - every transport failure becomes one message
            raise PromptBackendError(
                f"{method} {self.root}{path}: {type(e).__name__}: {e}"
            ) from None
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        return resp.status_code, parsed

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request("POST", path, body)

    def close(self) -> None:
        self._http.close()


class LlamaCppCounter:
    """llama.cpp ``/tokenize`` + ``/apply-template``."""

    shape = "llamacpp"

    def __init__(self, http: JsonHttp, has_template: bool) -> None:
        self.http = http
        self.has_template = has_template
        self.name = "server:llamacpp"

    def _tokens(self, text: str, add_special: bool, parse_special: bool) -> int:
        status, data = self.http.post(
            "/tokenize",
            {"content": text, "add_special": add_special, "parse_special": parse_special},
        )
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("tokens"), list):
            raise PromptBackendError(
                f"POST {self.http.root}/tokenize answered {status}: {data!r:.200}"
            )
        return len(data["tokens"])

    def count_texts(self, texts: Sequence[str]) -> list[int]:
        return [self._tokens(t, False, False) for t in texts]

    def count_chat(self, messages: Sequence[Message]) -> int | None:
        if not self.has_template:
            return None
        msgs = [
            {"role": m.get("role"), "content": content_text(m.get("content"))} for m in messages
        ]
        status, data = self.http.post("/apply-template", {"messages": msgs})
        if status != 200 or not isinstance(data, dict) or not isinstance(data.get("prompt"), str):
            raise PromptBackendError(
                f"POST {self.http.root}/apply-template answered {status}: {data!r:.200}"
            )
        return self._tokens(data["prompt"], True, True)

    def count_completion(self, prompt: str) -> int:
        return self._tokens(prompt, True, True)


class VllmCounter:
    """vLLM-style ``/tokenize`` (the server applies its own chat template)."""

    shape = "vllm"

    def __init__(self, http: JsonHttp, model: str) -> None:
        self.http = http
        self.model = model
        self.has_template = True
        self.name = "server:vllm"

    def _count(self, body: dict[str, Any]) -> int:
        status, data = self.http.post("/tokenize", {"model": self.model, **body})
        if status != 200 or not isinstance(data, dict):
            raise PromptBackendError(
                f"POST {self.http.root}/tokenize answered {status}: {data!r:.200}"
            )
        if isinstance(data.get("count"), int):
            return data["count"]
        if isinstance(data.get("tokens"), list):
            return len(data["tokens"])
        raise PromptBackendError(f"POST {self.http.root}/tokenize: no count in {data!r:.200}")

    def count_texts(self, texts: Sequence[str]) -> list[int]:
        return [self._count({"prompt": t, "add_special_tokens": False}) for t in texts]

    def count_chat(self, messages: Sequence[Message]) -> int | None:
        msgs = [
            {"role": m.get("role"), "content": content_text(m.get("content"))} for m in messages
        ]
        return self._count({"messages": msgs, "add_generation_prompt": True})

    def count_completion(self, prompt: str) -> int:
        return self._count({"prompt": prompt, "add_special_tokens": True})


def detect_server_counter(
    http: JsonHttp, model: str | None
) -> LlamaCppCounter | VllmCounter | None:
    """Which ``/tokenize`` shape the server answers, or None when it has none that works."""
    try:
        status, data = http.post("/tokenize", {"content": "hello world", "add_special": False})
        if status == 200 and isinstance(data, dict) and isinstance(data.get("tokens"), list):
            st, tpl = http.post(
                "/apply-template", {"messages": [{"role": "user", "content": "hi"}]}
            )
            has_template = (
                st == 200 and isinstance(tpl, dict) and isinstance(tpl.get("prompt"), str)
            )
            return LlamaCppCounter(http, has_template)
        model = model or first_model(http)
        if model:
            status, data = http.post(
                "/tokenize", {"model": model, "prompt": "hello world", "add_special_tokens": False}
            )
            if (
                status == 200
                and isinstance(data, dict)
                and (isinstance(data.get("count"), int) or isinstance(data.get("tokens"), list))
            ):
                return VllmCounter(http, model)
    except PromptBackendError as e:
        log.info("server /tokenize not usable: %s", e)
    return None


def first_model(http: JsonHttp) -> str | None:
    """The first model id ``/v1/models`` lists, if any."""
    return served_model(http)[0]


def served_model(http: JsonHttp) -> tuple[str | None, str | None]:
    """(id, owned_by) of the first model ``/v1/models`` lists; (None, None) if it lists none."""
    try:
        status, data = http.request("GET", "/v1/models")
    except PromptBackendError:
        return None, None
    if status == 200 and isinstance(data, dict):
        for m in data.get("data") or []:
            if isinstance(m, dict) and m.get("id"):
                owner = m.get("owned_by")
                return str(m["id"]), str(owner) if owner is not None else None
    return None, None
