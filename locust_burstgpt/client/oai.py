"""The second transport: the official ``openai`` client, for endpoints that need its auth or quirks.

Requests are built, authenticated and sent by the SDK, and the stream is decoded by the SDK's
own ``openai.Stream`` into typed chunk objects, exactly as an application using the SDK sees
it (its SSE decoder, its error events, its pydantic models). Two things are added around it:

* arrival times come from the bytes, not from when the SDK finishes building a chunk object:
  the response is wrapped so every block of body bytes is stamped as it arrives, and each chunk
  gets the stamp of the bytes that completed it;
* the SDK closes the response at ``[DONE]`` before the chunked body has ended, which discards
  the connection (a new TCP connection per request); the wrapper reads the rest of the body
  first, so keep-alive connections are reused.

The SDK's sockets are only cooperative under gevent's monkey patching (Locust applies it). Its
client is built once per process here: building one blocks the gevent hub for milliseconds.
Typed chunks cost several times the CPU of the raw transport (see benchmarks/client_cpu.py).
"""

from __future__ import annotations

from contextlib import ExitStack
from time import perf_counter
from typing import Any

import gevent

from locust_burstgpt.client.config import ClientConfig
from locust_burstgpt.client.deadlines import FIRST_TOKEN, IDLE, Deadline, DeadlineExceeded, Watchdog
from locust_burstgpt.client.records import Outcome, RequestRecord

_REQUIRED = {"chat": ("model", "messages"), "completions": ("model", "prompt")}
_DRAIN_S = 0.2  # how long to wait for the end of a body after [DONE] before giving up reuse


class _TimedResponse:
    """An ``httpx2.Response`` whose body blocks are time-stamped and that drains before closing."""

    def __init__(self, response: Any, deadline: Deadline) -> None:
        self._r = response
        self._dl = deadline
        self._it: Any = None
        self.last = 0.0  # arrival of the latest body bytes
        self.exhausted = False  # the body ended before the SDK stopped reading

    def __getattr__(self, name: str) -> Any:
        return getattr(self._r, name)

    def iter_bytes(self, chunk_size: int | None = None) -> Any:
        self._it = self._r.iter_bytes(chunk_size)
        dl = self._dl
        for data in self._it:
            now = perf_counter()
            self.last = dl.last = now
            yield data
        self.exhausted = True

    def close(self) -> None:
        if self._it is not None and not self.exhausted and not self._r.is_closed:
            try:
                with gevent.Timeout(_DRAIN_S, False):
                    for _ in self._it:
                        pass
            except Exception:  # noqa: BLE001 - a broken tail only costs the connection
                pass
        self._r.close()


class OpenAITransport:
    """Streams completions through ``openai.OpenAI``; one instance per process."""

    name = "openai"

    def __init__(self, cfg: ClientConfig) -> None:
        import httpx2
        import openai
        from openai.types import Completion
        from openai.types.chat import ChatCompletionChunk

        self.cfg = cfg
        self._openai = openai
        read = max(cfg.first_token_timeout_s or 0.0, cfg.idle_timeout_s or 0.0) or None
        self._http = openai.DefaultHttpxClient(
            limits=httpx2.Limits(
                max_connections=cfg.pool_size, max_keepalive_connections=cfg.pool_size
            ),
            timeout=httpx2.Timeout(
                connect=cfg.connect_timeout_s, read=read, write=cfg.connect_timeout_s, pool=None
            ),
            verify=cfg.verify_tls,
        )
        self._client = openai.OpenAI(
            base_url=cfg.root_url + "/v1",
            api_key=cfg.api_key or "EMPTY",
            http_client=self._http,
            max_retries=0,
            default_headers=dict(cfg.extra_headers) or None,
        )
        self._chat = cfg.endpoint == "chat"
        resource = self._client.chat.completions if self._chat else self._client.completions
        self._create = resource.with_streaming_response.create
        self._chunk_type = ChatCompletionChunk if self._chat else Completion
        self._watchdog = Watchdog(cfg.timeout_check_interval_s)

    def send(
        self, body: dict[str, Any], record: RequestRecord, headers: dict[str, str] | None = None
    ) -> RequestRecord:
        kwargs = self._kwargs(body)
        extra = {"X-Request-Id": record.request_id} if record.request_id else {}
        if headers:
            extra.update(headers)
        if extra:
            kwargs["extra_headers"] = extra
        start = perf_counter()
        record.sent_at = start
        record.attempts = 1
        cfg = self.cfg
        dl = Deadline(start, cfg.first_token_timeout_s, cfg.idle_timeout_s, cfg.total_timeout_s)
        self._watchdog.watch(dl)
        parts: list[str] = []
        timed: _TimedResponse | None = None
        openai = self._openai
        try:
            with ExitStack() as stack:
                for attempt in (1, 2):
                    try:
                        resp = stack.enter_context(self._create(**kwargs))
                        break
                    except openai.APIConnectionError as e:
                        if attempt == 2 or not _dropped_unanswered(e):
                            raise
                        record.attempts = 2  # a kept-alive connection the server had just closed
                dl.last = perf_counter()
                record.http_status = resp.status_code
                timed = _TimedResponse(resp.http_response, dl)
                stream = openai.Stream(
                    cast_to=self._chunk_type, response=timed, client=self._client
                )
                for chunk in stream:
                    self._take(chunk, timed.last, record, parts)
                    if not dl.streaming and record.first_token_at is not None:
                        dl.streaming = True
                if not timed.exhausted:  # the SDK stopped at [DONE]
                    record.last_byte_at = timed.last
                    record.outcome = Outcome.OK
            if record.outcome is not Outcome.OK:
                if record.finish_reason is not None:  # a body that ends without [DONE]
                    record.last_byte_at = timed.last if timed else None
                    record.outcome = Outcome.OK
                else:
                    _fail(record, Outcome.STREAM_CUT, "stream ended before [DONE]")
        except DeadlineExceeded as e:
            if record.outcome is not Outcome.OK:  # a stall after [DONE] only costs the connection
                late = e.kind == IDLE or (
                    e.kind != FIRST_TOKEN and record.first_token_at is not None
                )
                _fail(
                    record,
                    Outcome.TIMEOUT_MID_STREAM if late else Outcome.TIMEOUT_BEFORE_FIRST_TOKEN,
                    str(e),
                )
        except openai.APIStatusError as e:
            record.http_status = e.status_code
            retry_after = e.response.headers.get("retry-after")
            try:
                record.retry_after_s = float(retry_after) if retry_after else None
            except ValueError:
                pass
            _fail(record, Outcome.HTTP_ERROR, f"HTTP {e.status_code}: {str(e.message)[:300]}")
        except openai.APITimeoutError as e:
            if timed is None and "Connect" in type(e.__cause__).__name__:
                _fail(record, Outcome.CONNECTION_ERROR, "connect timeout")
            elif record.first_token_at is None:
                _fail(record, Outcome.TIMEOUT_BEFORE_FIRST_TOKEN, f"read timeout: {e.__cause__!r}")
            else:
                _fail(record, Outcome.TIMEOUT_MID_STREAM, f"read timeout: {e.__cause__!r}")
        except openai.APIConnectionError as e:
            cause = f"{type(e.__cause__).__name__}: {e.__cause__}"
            if timed is None:
                _fail(record, Outcome.CONNECTION_ERROR, cause)
            elif "incomplete" in cause or "closed" in cause or "Read" in cause:
                _fail(record, Outcome.STREAM_CUT, cause)
            else:
                _fail(record, Outcome.PROTOCOL_ERROR, cause)
        except openai.APIError as e:  # an error event inside the stream
            code = e.body.get("code") if isinstance(e.body, dict) else None
            if isinstance(code, int) and 400 <= code <= 599:
                record.http_status = code
            _fail(record, Outcome.HTTP_ERROR, f"error in stream: {str(e.message)[:300]}")
        except ValueError as e:  # the SDK's json.loads of an event
            _fail(record, Outcome.PROTOCOL_ERROR, f"SSE data is not JSON: {e}")
        except Exception as e:  # noqa: BLE001 - a server fault must never escape as an exception
            if record.outcome is not Outcome.OK:
                kind = (
                    Outcome.STREAM_CUT
                    if timed is not None and "Read" in type(e).__name__
                    else Outcome.PROTOCOL_ERROR
                )
                _fail(record, kind, f"unexpected {type(e).__name__}: {e}")
        except BaseException as e:  # GreenletExit, the caller's own Timeout, KeyboardInterrupt
            record.outcome = Outcome.CANCELLED
            record.error = f"cancelled by {type(e).__name__}"
            raise
        finally:
            self._watchdog.unwatch(dl)
            record.reply_text = "".join(parts)
            if record.last_byte_at is None and timed is not None and timed.last:
                record.last_byte_at = timed.last
        return record

    def close(self) -> None:
        self._watchdog.close()
        self._client.close()

    def _take(self, chunk: Any, t: float, record: RequestRecord, parts: list[str]) -> None:
        """Copy what a typed chunk says into the record (``t``: arrival of its bytes)."""
        choices = chunk.choices
        if choices:
            c = choices[0]
            reasoning = None
            if self._chat:
                delta = c.delta
                text = delta.content if delta is not None else None
                if delta is not None and delta.model_extra:
                    reasoning = delta.model_extra.get("reasoning_content") or delta.model_extra.get(
                        "reasoning"
                    )
            else:
                text = c.text
            if text or reasoning:
                if record.first_token_at is None:
                    record.first_token_at = t
                record.chunk_times.append(t)
                if text:
                    parts.append(text)
                for name in self.cfg.chunk_fields:
                    record.extra.setdefault(name, []).append((chunk.model_extra or {}).get(name))
            if c.finish_reason:
                record.finish_reason = c.finish_reason
        usage = chunk.usage
        if usage is not None:
            record.prompt_tokens = usage.prompt_tokens
            record.completion_tokens = usage.completion_tokens
            details = usage.prompt_tokens_details
            if details is not None and details.cached_tokens is not None:
                record.cached_tokens = details.cached_tokens

    def _kwargs(self, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise TypeError(f"request body must be a dict, got {type(body).__name__}")
        required = _REQUIRED["chat" if self._chat else "completions"]
        missing = [k for k in required if k not in body]
        if missing:
            raise ValueError(f"request body lacks {', '.join(missing)}")
        rest = {
            k: v
            for k, v in body.items()
            if k not in required and k not in ("stream", "stream_options")
        }
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        kwargs = {k: body[k] for k in required}
        kwargs.update(stream=True, stream_options=options, extra_body=rest)
        return kwargs


def _dropped_unanswered(e: BaseException) -> bool:
    """The server closed the connection on the request without a byte of answer: on a kept-alive
    connection, the race with its idle timeout (uvicorn: 5 s), so one resend is due."""
    cause = e.__cause__
    return type(cause).__name__ == "RemoteProtocolError" and "without sending a response" in str(
        cause
    )


def _fail(record: RequestRecord, outcome: Outcome, error: str) -> None:
    record.outcome = outcome
    record.error = error
