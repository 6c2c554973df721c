"""Byte templates for HTTP responses and OpenAI SSE chunks (vLLM's shapes), built once per request.

Why it exists: the simulator streams tens of thousands of chunks per second from one core, so a
token chunk is two byte concatenations around a pre-escaped word, never a ``json.dumps``.

Chat stream, in order: one role chunk (``delta: {"role": "assistant", "content": ""}``), one
content chunk per token, one final chunk (``delta: {}``, ``finish_reason``), the usage chunk
(``choices: []``) when ``stream_options.include_usage``, then ``data: [DONE]``. Completions
streams are the same without the role chunk and with ``text`` instead of ``delta``.
"""

from __future__ import annotations

import json
import time

REASONS = {
    100: "Continue",
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}
DONE = b"data: [DONE]\n\n"
CHUNKED_END = b"0\r\n\r\n"


def response_head(
    status: int, content_type: str, length: int, close: bool, extra: dict[str, str] | None = None
) -> bytes:
    """Status line and headers of a Content-Length response."""
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}",
        f"content-type: {content_type}",
        f"content-length: {length}",
    ]
    if close:
        lines.append("connection: close")
    for k, v in (extra or {}).items():
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def sse_head(chunked: bool, close: bool) -> bytes:
    """Head of a streamed response (HTTP/1.0 clients get no chunking and a close)."""
    lines = [
        "HTTP/1.1 200 OK",
        "content-type: text/event-stream; charset=utf-8",
        "cache-control: no-cache",
    ]
    if chunked:
        lines.append("transfer-encoding: chunked")
    if close or not chunked:
        lines.append("connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def frame(event: bytes) -> bytes:
    """One HTTP/1.1 chunk holding ``event``."""
    return b"%x\r\n%b\r\n" % (len(event), event)


def usage_dict(prompt: int, completion: int, cached: int) -> dict[str, object]:
    return {
        "prompt_tokens": prompt,
        "total_tokens": prompt + completion,
        "completion_tokens": completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


class ChunkTemplates:
    """All SSE events of one streamed response."""

    __slots__ = (
        "chat",
        "rid",
        "created",
        "model",
        "send_times",
        "_prefix",
        "head",
        "tail",
        "base_len",
        "_obj",
    )

    def __init__(self, chat: bool, rid: str, created: int, model: str, send_times: bool) -> None:
        self.chat = chat
        self.rid = rid
        self.created = created
        self.model = model
        self.send_times = send_times
        self._obj = "chat.completion.chunk" if chat else "text_completion"
        self._prefix = (
            f'data: {{"id":"{rid}","object":"{self._obj}","created":{created},'
            f'"model":{json.dumps(model)},"choices":['
        ).encode()
        if chat:
            self.head = self._prefix + b'{"index":0,"delta":{"content":"'
            self.tail = b'"},"logprobs":null,"finish_reason":null}]'
        else:
            self.head = self._prefix + b'{"index":0,"text":"'
            self.tail = b'","logprobs":null,"finish_reason":null}]'
        self.base_len = len(self.head) + len(self.tail) + 3  # + "}\n\n"

    def _end(self) -> bytes:
        if self.send_times:
            return b',"sim_sent_at":%.6f}\n\n' % time.time()
        return b"}\n\n"

    def token(self, frag: bytes, chunked: bool) -> bytes:
        """One content event for a pre-escaped token (framed as an HTTP chunk if ``chunked``)."""
        if self.send_times:
            ev = self.head + frag + self.tail + self._end()
            return b"%x\r\n%b\r\n" % (len(ev), ev) if chunked else ev
        if chunked:
            return b"%x\r\n%b%b%b}\n\n\r\n" % (
                self.base_len + len(frag),
                self.head,
                frag,
                self.tail,
            )
        return self.head + frag + self.tail + b"}\n\n"

    def role(self) -> bytes:
        return (
            self._prefix + b'{"index":0,"delta":{"role":"assistant","content":""},'
            b'"logprobs":null,"finish_reason":null}]' + self._end()
        )

    def final(self, finish_reason: str) -> bytes:
        fr = finish_reason.encode()
        if self.chat:
            return (
                self._prefix
                + b'{"index":0,"delta":{},"logprobs":null,"finish_reason":"%b"}]' % fr
                + self._end()
            )
        return (
            self._prefix
            + b'{"index":0,"text":"","logprobs":null,"finish_reason":"%b"}]' % fr
            + self._end()
        )

    def usage(self, prompt: int, completion: int, cached: int) -> bytes:
        u = json.dumps(usage_dict(prompt, completion, cached), separators=(",", ":")).encode()
        return self._prefix + b'],"usage":' + u + self._end()

    def malformed(self) -> bytes:
        """A ``data:`` event whose JSON is cut off (the malformed_sse fault)."""
        return self._prefix + b'{"index":0,"delta":{"content":\n\n'


def full_response(
    chat: bool,
    rid: str,
    created: int,
    model: str,
    text: str,
    finish_reason: str,
    prompt: int,
    completion: int,
    cached: int,
) -> bytes:
    """Body of a non-streaming response."""
    if chat:
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": None,
            "finish_reason": finish_reason,
        }
        obj = "chat.completion"
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
        obj = "text_completion"
    return json.dumps(
        {
            "id": rid,
            "object": obj,
            "created": created,
            "model": model,
            "choices": [choice],
            "usage": usage_dict(prompt, completion, cached),
        },
        separators=(",", ":"),
    ).encode()
