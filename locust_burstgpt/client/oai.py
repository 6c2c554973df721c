"""The second transport: the official ``openai`` client, for endpoints that need its auth or quirks.

The SDK builds, authenticates and sends the request (its headers, base-URL handling, TLS,
connection pool); the response bytes go through the same SSE reader as the raw transport, so
both transports measure identically. Why not the SDK's typed ``Stream``: it builds a pydantic
object per chunk (several times the CPU of the raw transport) and closes the response at
``[DONE]`` before the chunked body ends, which opens a new TCP connection for every request;
``with_streaming_response`` plus reading the body to its end keeps connections alive.

The SDK's sockets are only cooperative under gevent's monkey patching (Locust applies it). Its
client is built once per process here: building one blocks the gevent hub for milliseconds.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from locust_burstgpt.client.config import ClientConfig
from locust_burstgpt.client.deadlines import FIRST_TOKEN, IDLE, Deadline, DeadlineExceeded, Watchdog
from locust_burstgpt.client.records import Outcome, RequestRecord
from locust_burstgpt.client.sse import SSEProtocolError, SSEServerError, StreamReader

_REQUIRED = {"chat": ("model", "messages"), "completions": ("model", "prompt")}


class OpenAITransport:
    """Streams completions through ``openai.OpenAI``; one instance per process."""

    name = "openai"

    def __init__(self, cfg: ClientConfig) -> None:
        import httpx2
        import openai

        self.cfg = cfg
        self._httpx = httpx2
        self._openai = openai
        read = max(cfg.first_token_timeout_s or 0.0, cfg.idle_timeout_s or 0.0) or None
        self._http = openai.DefaultHttpxClient(
            limits=httpx2.Limits(max_connections=cfg.pool_size,
                                 max_keepalive_connections=cfg.pool_size),
            timeout=httpx2.Timeout(connect=cfg.connect_timeout_s, read=read,
                                   write=cfg.connect_timeout_s, pool=None),
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
        self._watchdog = Watchdog(cfg.timeout_check_interval_s)

    def send(self, body: dict[str, Any], record: RequestRecord) -> RequestRecord:
        kwargs = self._kwargs(body)
        if record.request_id:
            kwargs["extra_headers"] = {"X-Request-Id": record.request_id}
        start = perf_counter()
        record.sent_at = start
        record.attempts = 1
        cfg = self.cfg
        dl = Deadline(start, cfg.first_token_timeout_s, cfg.idle_timeout_s, cfg.total_timeout_s)
        self._watchdog.watch(dl)
        reader = StreamReader(record, self._chat)
        phase = "connect"
        last_rx = 0.0
        httpx2, openai = self._httpx, self._openai
        try:
            with self._create(**kwargs) as resp:
                now = perf_counter()
                dl.last = now
                record.http_status = resp.status_code
                phase = "body"
                buf = bytearray()
                consume = reader.consume
                for data in resp.iter_bytes():
                    now = perf_counter()
                    last_rx = dl.last = now
                    if reader.done:
                        continue  # read the body to its end so the connection is reused
                    buf += data
                    if consume(buf, now):
                        record.last_byte_at = now
                        record.outcome = Outcome.OK
                    elif not dl.streaming and record.first_token_at is not None:
                        dl.streaming = True
            if record.outcome is not Outcome.OK:
                reader.finish()
                if reader.saw_finish:
                    record.last_byte_at = last_rx
                    record.outcome = Outcome.OK
                else:
                    _fail(record, Outcome.STREAM_CUT, "stream ended before [DONE]")
        except DeadlineExceeded as e:
            if record.outcome is not Outcome.OK:  # a stall after [DONE] only costs the connection
                late = e.kind == IDLE or (e.kind != FIRST_TOKEN and record.first_token_at is not None)
                _fail(record, Outcome.TIMEOUT_MID_STREAM if late
                      else Outcome.TIMEOUT_BEFORE_FIRST_TOKEN, str(e))
        except openai.APIStatusError as e:
            record.http_status = e.status_code
            retry_after = e.response.headers.get("retry-after")
            try:
                record.retry_after_s = float(retry_after) if retry_after else None
            except ValueError:
                pass
            _fail(record, Outcome.HTTP_ERROR, f"HTTP {e.status_code}: {str(e.message)[:300]}")
        except openai.APITimeoutError as e:
            if isinstance(e.__cause__, httpx2.ConnectTimeout):
                _fail(record, Outcome.CONNECTION_ERROR, "connect timeout")
            else:
                _fail(record, Outcome.TIMEOUT_BEFORE_FIRST_TOKEN, f"read timeout: {e.__cause__!r}")
        except openai.APIConnectionError as e:
            _fail(record, Outcome.CONNECTION_ERROR, f"{type(e.__cause__).__name__}: {e.__cause__}")
        except SSEServerError as e:
            if e.code is not None:
                record.http_status = e.code
            _fail(record, Outcome.HTTP_ERROR, str(e))
        except SSEProtocolError as e:
            _fail(record, Outcome.PROTOCOL_ERROR, str(e))
        except httpx2.TimeoutException as e:
            if record.outcome is not Outcome.OK:
                late = record.first_token_at is not None
                _fail(record, Outcome.TIMEOUT_MID_STREAM if late
                      else Outcome.TIMEOUT_BEFORE_FIRST_TOKEN, f"{type(e).__name__}: {e}")
        except httpx2.RemoteProtocolError as e:
            if record.outcome is not Outcome.OK:
                cut = "incomplete" in str(e) or "closed" in str(e)
                _fail(record, Outcome.STREAM_CUT if cut else Outcome.PROTOCOL_ERROR,
                      f"{type(e).__name__}: {e}")
        except (httpx2.TransportError, OSError) as e:
            if record.outcome is not Outcome.OK:
                _fail(record, Outcome.STREAM_CUT if phase == "body" else Outcome.CONNECTION_ERROR,
                      f"{type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001 - a server fault must never escape as an exception
            if record.outcome is not Outcome.OK:
                _fail(record, Outcome.PROTOCOL_ERROR, f"unexpected {type(e).__name__}: {e}")
        except BaseException as e:  # GreenletExit, the caller's own Timeout, KeyboardInterrupt
            record.outcome = Outcome.CANCELLED
            record.error = f"cancelled by {type(e).__name__}"
            raise
        finally:
            self._watchdog.unwatch(dl)
            try:
                reader.finish()
            except Exception:  # noqa: BLE001
                pass
            if record.last_byte_at is None and last_rx:
                record.last_byte_at = last_rx
        return record

    def close(self) -> None:
        self._watchdog.close()
        self._client.close()

    def _kwargs(self, body: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise TypeError(f"request body must be a dict, got {type(body).__name__}")
        required = _REQUIRED["chat" if self._chat else "completions"]
        missing = [k for k in required if k not in body]
        if missing:
            raise ValueError(f"request body lacks {', '.join(missing)}")
        rest = {k: v for k, v in body.items()
                if k not in required and k not in ("stream", "stream_options")}
        options = dict(body.get("stream_options") or {})
        options["include_usage"] = True
        kwargs = {k: body[k] for k in required}
        kwargs.update(stream=True, stream_options=options, extra_body=rest)
        return kwargs


def _fail(record: RequestRecord, outcome: Outcome, error: str) -> None:
    record.outcome = outcome
    record.error = error
