"""One completion request on the wire: streams (or collects) its tokens as the engine makes them.

Why it is apart: the HTTP connection knows nothing of tokens and the router nothing of chunks;
this is where SSE framing, usage, the end of a stream and the stream-level faults (cut, stall,
malformed event) happen. The engine loop calls ``on_token`` for every token it produces.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Protocol

from locust_burstgpt.sim import text, wire
from locust_burstgpt.sim.config import SimConfig
from locust_burstgpt.sim.engine import SeqRequest, SeqStatus, Sequence
from locust_burstgpt.sim.faults import Fault
from locust_burstgpt.sim.http_server import HttpConnection
from locust_burstgpt.sim.metrics import WireMetrics
from locust_burstgpt.sim.openai_api import CompletionRequest


class StreamBackend(Protocol):
    """The parts of the running simulator a stream uses: its config, metrics and engine queue."""

    config: SimConfig
    wire_metrics: WireMetrics

    def submit(self, req: SeqRequest, owner: object) -> Sequence: ...

    def abort(self, seq: Sequence) -> None: ...


class Completion:
    """Streams (or collects) one completion request's tokens as the engine produces them."""

    __slots__ = (
        "conn",
        "srv",
        "req",
        "fault",
        "arrival",
        "seq",
        "tpl",
        "rid",
        "created",
        "last_write",
        "cancelled",
        "timer",
        "chunked",
    )

    def __init__(
        self,
        conn: HttpConnection,
        srv: StreamBackend,
        req: CompletionRequest,
        fault: Fault | None,
    ) -> None:
        self.conn = conn
        self.srv = srv
        self.req = req
        self.fault = fault
        self.arrival = time.monotonic()
        self.seq: Sequence | None = None
        self.rid = ("chatcmpl-" if req.chat else "cmpl-") + uuid.uuid4().hex
        self.created = int(time.time())
        self.tpl = wire.ChunkTemplates(
            req.chat, self.rid, self.created, srv.config.model, srv.config.emit_send_times
        )
        self.last_write = 0.0
        self.cancelled = False
        self.timer: asyncio.TimerHandle | None = None
        self.chunked = conn.http11

    # ---- lifecycle --------------------------------------------------------------------------

    def start(self) -> None:
        conn, fault = self.conn, self.fault
        conn.active = self
        if self.req.stream:
            if not self.chunked:
                conn.keep_alive = False
            conn.write(wire.sse_head(self.chunked, close=not conn.keep_alive))
        if fault is not None and fault.kind == "cut_mid_stream" and fault.after == 0:
            self._cut()
            return
        stall_after = None
        stall_s = 0.0
        if fault is not None and fault.kind == "stall_mid_stream":
            stall_after, stall_s = fault.after, fault.seconds
        sreq = SeqRequest(
            self.req.prompt_ids,
            self.req.max_tokens,
            self.req.target_tokens,
            arrival=self.arrival,
            stall_after=stall_after,
            stall_s=stall_s,
        )
        if fault is not None and fault.kind == "stall_before_first_token":
            self.timer = asyncio.get_running_loop().call_later(fault.seconds, self._submit, sreq)
        else:
            self._submit(sreq)

    def _submit(self, sreq: SeqRequest) -> None:
        self.timer = None
        if not self.cancelled:
            self.seq = self.srv.submit(sreq, self)

    def cancel(self) -> None:
        """The client went away: stop generating."""
        self.cancelled = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.seq is not None and self.seq.status in (SeqStatus.WAITING, SeqStatus.RUNNING):
            self.srv.abort(self.seq)

    def _cut(self) -> None:
        """cut_mid_stream: close the socket with no terminator."""
        self.cancel()
        self.conn.active = None
        self.conn.close()

    # ---- called by the engine loop ----------------------------------------------------------

    def on_token(self, seq: Sequence, due: float) -> None:
        if self.cancelled:
            return
        n = seq.num_generated  # this token is number n (1-based)
        now = time.monotonic()
        wm = self.srv.wire_metrics
        wm.send_delay.observe(now - due if now > due else 0.0)
        if n == 1:
            wm.ttft.observe(now - self.arrival)
        else:
            wm.itl.observe(now - self.last_write)
        self.last_write = now
        finished = seq.status is SeqStatus.FINISHED
        fault = self.fault
        if not self.req.stream:
            if (
                fault is not None
                and fault.kind == "cut_mid_stream"
                and (n >= fault.after or finished)
            ):
                self._cut()
            elif finished:
                self._finish_plain(seq)
            return
        wm.streamed_chunks += 1
        w = text.word_index(seq.word_seed, n - 1)
        frag = text.FIRST_JSON[w] if n == 1 else text.NEXT_JSON[w]
        tpl = self.tpl
        if fault is None and n > 1 and not finished:
            self.conn.write(tpl.token(frag, self.chunked))
            return
        parts: list[bytes] = []
        fr = self._frame
        if n == 1:
            if fault is not None and fault.kind == "malformed_sse" and fault.after == 0:
                parts.append(fr(tpl.malformed()))
            if self.req.chat:
                parts.append(fr(tpl.role()))
        parts.append(tpl.token(frag, self.chunked))
        if fault is not None:
            if (
                fault.kind == "malformed_sse"
                and fault.after > 0
                and (n == fault.after or (finished and n < fault.after))
            ):
                parts.append(fr(tpl.malformed()))
            elif fault.kind == "cut_mid_stream" and (n >= fault.after or finished):
                self.conn.write(b"".join(parts))
                self._cut()
                return
        if finished:
            parts.append(fr(tpl.final(seq.finish_reason)))
            if self.req.include_usage:
                parts.append(
                    fr(tpl.usage(seq.prompt_len, seq.num_generated, seq.cached_tokens or 0))
                )
            parts.append(fr(wire.DONE))
            if self.chunked:
                parts.append(wire.CHUNKED_END)
        self.conn.write(b"".join(parts))
        if finished:
            self._complete()

    def _frame(self, event: bytes) -> bytes:
        return wire.frame(event) if self.chunked else event

    def _finish_plain(self, seq: Sequence) -> None:
        body = wire.full_response(
            self.req.chat,
            self.rid,
            self.created,
            self.srv.config.model,
            text.completion_text(seq.word_seed, seq.num_generated),
            seq.finish_reason,
            seq.prompt_len,
            seq.num_generated,
            seq.cached_tokens or 0,
        )
        if self.fault is not None and self.fault.kind == "malformed_sse":
            body = body[: len(body) // 2]
        self.conn.send(200, body)
        self._complete(sent=True)

    def _complete(self, sent: bool = False) -> None:
        self.srv.wire_metrics.e2e.observe(time.monotonic() - self.arrival)
        if not self.req.stream and sent:
            return  # conn.send() already ended the request
        if not self.chunked:
            self.conn.keep_alive = False
        self.conn.done()
