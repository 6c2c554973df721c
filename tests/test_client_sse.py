"""The SSE reader gives the same record however the bytes are split across reads.

The reader has a fast path for the usual read (exactly one ``data:`` event) and a general line
parser for everything else; feeding each stream whole, in every two-part split and byte by byte
checks that both paths agree, including the event times (a chunk is timed by the read that
completed its data line).
"""

from __future__ import annotations

import pytest

from locust_burstgpt.client.records import RequestRecord
from locust_burstgpt.client.sse import SSEProtocolError, SSEServerError, StreamReader


def chunk(text: str, finish: str | None = None) -> bytes:
    fr = "null" if finish is None else f'"{finish}"'
    return b'data: {"choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":%s}]}\n\n' % (
        text.encode(),
        fr.encode(),
    )


USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}}\n\n'
DONE = b"data: [DONE]\n\n"

STREAMS = {
    "plain": chunk("a") + chunk(" b") + chunk(" c", "length") + USAGE + DONE,
    "crlf": (chunk("a") + chunk("b", "stop") + USAGE + DONE).replace(b"\n", b"\r\n"),
    "comments and ids": b": keep-alive\n\n"
    + b"id: 1\n"
    + chunk("x")
    + b": ping\n\n"
    + chunk("y", "stop")
    + DONE,
    "no space after colon": b'data:{"choices":[{"delta":{"content":"q"}}]}\n\n' + DONE,
    "multi-line data": b'data: {"choices":[{"delta":\ndata: {"content":"m"}}]}\n\n' + DONE,
    "reasoning then content": (
        b'data: {"choices":[{"delta":{"reasoning_content":"think"}}]}\n\n'
        + chunk("answer", "stop")
        + DONE
    ),
    "named message event": b"event: message\n" + chunk("e") + DONE,
    "empty deltas": b'data: {"choices":[{"delta":{}}]}\n\n'
    + chunk("z")
    + b'data: {"choices":[{"delta":{"content":""}}]}\n\n'
    + DONE,
    "after done": chunk("a") + DONE + chunk("ignored"),
}


def read(pieces: list[bytes]) -> RequestRecord:
    """Feed ``pieces`` as successive reads; the n-th read arrives at time n."""
    record = RequestRecord("r")
    reader = StreamReader(record, chat=True)
    buf = bytearray()
    for n, piece in enumerate(pieces, start=1):
        buf.extend(piece)
        reader.consume(buf, float(n))
    reader.finish()
    return record


def summary(record: RequestRecord) -> tuple:
    return (
        record.reply_text,
        record.finish_reason,
        record.prompt_tokens,
        record.completion_tokens,
        record.cached_tokens,
        len(record.chunk_times),
    )


def splits(data: bytes) -> list[list[bytes]]:
    return [[data[:i], data[i:]] for i in range(1, len(data))]


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_every_split_reads_the_same_stream(name: str) -> None:
    data = STREAMS[name]
    whole = read([data])
    assert whole.chunk_times.tolist() == [1.0] * len(whole.chunk_times)
    events = [e + b"\n\n" for e in data.split(b"\n\n") if e]  # one event per read: the fast path
    for pieces in [events, *splits(data), [bytes([b]) for b in data]]:
        assert summary(read(pieces)) == summary(whole), pieces


def test_fields_read_from_the_plain_stream() -> None:
    r = read([STREAMS["plain"]])
    assert summary(r) == ("a b c", "length", 7, 3, 4, 3)
    assert summary(read([STREAMS["reasoning then content"]]))[0] == "answer"
    assert (
        len(read([STREAMS["reasoning then content"]]).chunk_times) == 2
    )  # reasoning times a token
    assert summary(read([STREAMS["empty deltas"]]))[5] == 1


def test_each_event_is_timed_by_the_read_that_completed_its_data_line() -> None:
    one, two, three = chunk("a"), chunk("b"), chunk("c")
    # read 3 completes two's data line and three's (but not three's blank line)
    r = read([one, two[:10], two[10:] + three[:-1], three[-1:]])
    assert r.chunk_times.tolist() == [1.0, 3.0, 3.0]
    assert r.first_token_at == 1.0


def test_error_event_split_from_its_data_is_still_an_error() -> None:
    # the event name arrives in one read, its data in the next: the data alone must not pass as a chunk
    with pytest.raises(SSEServerError):
        read([b"event: error\n", b'data: {"message":"overloaded","code":503}\n\n'])
    with pytest.raises(SSEServerError) as e:
        read([b'data: {"error":{"message":"bad","code":400}}\n\n'])
    assert e.value.code == 400


def test_data_that_is_not_json_is_a_protocol_error() -> None:
    with pytest.raises(SSEProtocolError, match="not JSON"):
        read([b"data: {not json\n\n"])
    with pytest.raises(SSEProtocolError, match="not a JSON object"):
        read([b"data: [1, 2]\n\n"])
