"""Server-sent events of an OpenAI-style completion stream, read from raw bytes as they arrive.

Why bytes and not text lines: decoding blocks of bytes before a line is complete corrupts UTF-8
characters that straddle two reads, and waiting for a full read block delays every token. This
reader takes whatever bytes arrived, handles every complete line at once with the arrival time
of its bytes, and keeps the incomplete tail for the next read. Both transports feed it, so they
parse identically.

Fields used: ``choices[0].delta.content`` (chat) or ``choices[0].text`` (completions) as content;
``delta.reasoning_content``/``delta.reasoning`` count as tokens for timing but are not part of
the reply text; ``finish_reason``; ``usage`` (``prompt_tokens``, ``completion_tokens``,
``prompt_tokens_details.cached_tokens``); an ``error`` object ends the stream as a server error.
"""

from __future__ import annotations

from typing import Any

import orjson

from locust_burstgpt.client.records import RequestRecord

_DONE = b"[DONE]"


class SSEProtocolError(Exception):
    """The body is not the SSE/JSON an OpenAI-compatible stream must be."""


class SSEServerError(Exception):
    """The server reported an error inside the stream (``{"error": ...}``)."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


class StreamReader:
    """Consumes SSE bytes and fills one record's token times, text, finish reason and usage."""

    __slots__ = (
        "record",
        "chat",
        "done",
        "_data",
        "_data_t",
        "_event",
        "_parts",
        "_times",
        "_fields",
    )

    def __init__(self, record: RequestRecord, chat: bool, fields: tuple[str, ...] = ()) -> None:
        self.record = record
        self.chat = chat
        self._fields = fields  # chunk fields to keep per content chunk (record.extra[name])
        self.done = False  # saw ``data: [DONE]``
        self._data: bytes | None = None  # data of the event being assembled
        self._data_t = 0.0  # arrival time of that event's first data line
        self._event: bytes | None = None
        self._parts: list[str] = []
        self._times = record.chunk_times

    def consume(self, buf: bytearray, now: float) -> bool:
        """Handle every complete line in ``buf`` (bytes that arrived at ``now``), drop them.

        Returns True once ``[DONE]`` has been seen.
        """
        nl = buf.find(b"\n")
        if nl < 0:
            return self.done
        end = len(buf) - 2
        if (
            nl == end
            and self._data is None
            and self._event is None
            and buf[end + 1] == 10
            and buf[:6] == b"data: "
        ):
            # the usual read: exactly one event of one data line ("data: {...}\n\n")
            value = bytes(buf[6:end])
            del buf[:]
            self._dispatch(value, now, None)
            return self.done
        data = bytes(buf)  # one copy; lines are sliced from it
        find = data.find
        start = 0
        while nl >= 0:
            line = data[start:nl]
            start = nl + 1
            nl = find(b"\n", start)
            if line[-1:] == b"\r":
                line = line[:-1]
            if not line:
                if self._data is not None:
                    self._flush()
            elif line[:5] == b"data:":
                value = line[6:] if line[5:6] == b" " else line[5:]
                if self._data is None:
                    self._data = value
                    self._data_t = now
                else:
                    self._data += b"\n" + value
            elif line[:1] == b":":
                pass  # comment / keep-alive
            elif line[:6] == b"event:":
                self._event = line[6:].strip()
            # other fields (id:, retry:) carry nothing we use
        if start:
            del buf[:start]
        return self.done

    def finish(self) -> None:
        """End of body: dispatch a last event that lacked its blank line, store the reply text."""
        if self._data is not None and not self.done:
            self._flush()
        self.record.reply_text = "".join(self._parts)

    @property
    def saw_finish(self) -> bool:
        return self.record.finish_reason is not None

    # -- one event -------------------------------------------------------------------------
    def _flush(self) -> None:
        """Dispatch the event assembled from the lines so far."""
        data, event = self._data, self._event
        self._data = None
        self._event = None
        self._dispatch(data, self._data_t, event)  # type: ignore[arg-type]

    def _dispatch(self, data: bytes, t: float, event: bytes | None) -> None:
        if data == _DONE:
            self.done = True
            return
        if self.done:
            return  # nothing after [DONE] counts
        try:
            obj = orjson.loads(data)  # every chunk is parsed: ~5x cheaper than json.loads
        except ValueError:
            raise SSEProtocolError(f"SSE data is not JSON: {_clip(data)}") from None
        if type(obj) is not dict:
            raise SSEProtocolError(f"SSE data is not a JSON object: {_clip(data)}")
        if event == b"error" or obj.get("error") or obj.get("object") == "error":
            raise _server_error(obj)
        choices = obj.get("choices")
        if choices:
            c = choices[0]
            if self.chat:
                delta = c.get("delta")
                text = delta.get("content") if delta else None
                # reasoning text times a token too, but is not part of the reply
                counted = text or (
                    delta and (delta.get("reasoning_content") or delta.get("reasoning"))
                )
            else:
                counted = text = c.get("text")
            if counted:
                rec = self.record
                if rec.first_token_at is None:
                    rec.first_token_at = t
                self._times.append(t)
                if text:
                    self._parts.append(text)
                if self._fields:
                    extra = rec.extra
                    for name in self._fields:
                        extra.setdefault(name, []).append(obj.get(name))
            fr = c.get("finish_reason")
            if fr:
                self.record.finish_reason = fr
        usage = obj.get("usage")
        if usage:
            _read_usage(self.record, usage)


def _read_usage(rec: RequestRecord, usage: Any) -> None:
    if not isinstance(usage, dict):
        raise SSEProtocolError(f"usage is not an object: {usage!r:.200}")
    p, c = usage.get("prompt_tokens"), usage.get("completion_tokens")
    if p is not None:
        rec.prompt_tokens = int(p)
    if c is not None:
        rec.completion_tokens = int(c)
    details = usage.get("prompt_tokens_details")
    if isinstance(details, dict) and details.get("cached_tokens") is not None:
        rec.cached_tokens = int(details["cached_tokens"])


def _server_error(obj: dict[str, Any]) -> SSEServerError:
    err = obj.get("error", obj)
    message, code = str(err), None
    if isinstance(err, dict):
        message = str(err.get("message") or err)
        code = err.get("code")
    elif obj.get("object") == "error":
        message, code = str(obj.get("message") or obj), obj.get("code")
    status = code if isinstance(code, int) and 400 <= code <= 599 else None
    return SSEServerError(f"error in stream: {message[:300]}", status)


def _clip(data: bytes, n: int = 200) -> str:
    text = data[:n].decode("utf-8", "replace")
    return repr(text) + ("..." if len(data) > n else "")
