"""Small helpers the tests share: BurstGPT trace files written by hand, and waiting for a condition.

Why here: a trace's header and a polling loop were copied into many test files; one copy keeps
the schemas the tests write equal to the ones the loader reads, and every wait bounded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from pathlib import Path

#: BurstGPT_3's columns (conversation logs carry a Session ID and the source's Elapsed time).
HEADER_3 = (
    "Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type"
)
#: BurstGPT_1/_2's columns.
HEADER_1 = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"


def trace_text(rows: Iterable[str], header: str = HEADER_3) -> str:
    """A trace file's text: the header line, then ``rows`` (each ending with a newline)."""
    return header + "\n" + "".join(rows)


def write_trace(path: Path, rows: Iterable[str], header: str = HEADER_3) -> Path:
    """Write a small trace file (rows as CSV lines ending with a newline); returns ``path``."""
    path.write_text(trace_text(rows, header))
    return path


def wait_until(
    condition: Callable[[], object],
    timeout: float = 10.0,
    what: str = "the condition",
    interval: float = 0.02,
    ignore: tuple[type[BaseException], ...] = (),
) -> None:
    """Poll ``condition()`` until it is true; fail naming ``what`` after ``timeout`` seconds.

    ``ignore``: exceptions that mean "not yet" (a server that is still starting, say)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except ignore:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


def result_of(line: dict):  # noqa: ANN201 - replay.TurnResult
    """A ``TurnResult`` from the few fields a test cares about (wall-clock times, as in
    ``requests.jsonl``): ``sent_at``, ``lateness``, ``ttft``, ``last_byte_at``, ``outcome``,
    ``completion_tokens``, ``scheduled_offset_s``."""
    from locust_burstgpt.replay import TurnResult

    d = {"request_id": "r", "conversation": "c", "class": "ChatGPT API", **line}
    sent = d.get("sent_at")
    if sent is not None:
        if d.get("lateness") is not None:
            d.setdefault("scheduled_at", sent - d["lateness"])
        if d.get("ttft") is not None:
            d.setdefault("first_token_at", sent + d["ttft"])
    d.setdefault("outcome", "ok" if sent is not None else "not_sent")
    return TurnResult.from_json(d)
