"""requests.jsonl lines: compact JSON that json.loads reads back exactly, whatever a custom user adds,
and chunk offsets that rebuild the client's chunk times to 0.01 ms."""

from __future__ import annotations

import json
from array import array
from decimal import Decimal

import numpy as np

from locust_burstgpt.replay.results import TurnResult, chunk_offsets_ms
from locust_burstgpt.report.requests_log import RequestsLog, encode_line


def test_lines_read_back_with_the_standard_json_module(tmp_path):
    entries = [
        {
            "request_id": "a-1",
            "ttft": 0.123456789,
            "chunk_ms": [1.25, 2.5, 1000.01],
            "error": None,
            "text": 'héllo "quoted" \n',
            "retries": [{"http_status": 429}],
        },
        {
            "request_id": "a-2",
            "n": np.int64(7),
            "x": np.float64(0.5),
            "arr": np.array([1.5, 2.0]),
            3: "int key",
            "d": Decimal("1.10"),
        },
    ]
    log = RequestsLog(tmp_path / "requests.jsonl")
    for e in entries:
        log.write(e)
    log.close()
    lines = (tmp_path / "requests.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 == log.lines
    assert json.loads(lines[0]) == entries[0]
    assert json.loads(lines[1]) == {
        "request_id": "a-2",
        "n": 7,
        "x": 0.5,
        "arr": [1.5, 2.0],
        "3": "int key",
        "d": "1.10",
    }
    assert encode_line(entries[0]).endswith(b"\n") and b" " not in encode_line({"a": [1, 2]})


def test_chunk_offsets_round_trip_to_a_hundredth_of_a_millisecond():
    rng = np.random.default_rng(5)
    sent = 12345.678901
    times = array("d", (sent + np.cumsum(rng.exponential(0.02, 300))).tolist())
    offsets = chunk_offsets_ms(times, sent)
    # each offset is the true one rounded to 0.01 ms
    assert (
        max(abs(a - (t - sent) * 1000.0) for a, t in zip(offsets, times, strict=True))
        <= 0.005 + 1e-9
    )
    assert all(round(a, 2) == a for a in offsets)
    record = TurnResult.from_json(
        {"request_id": "r", "sent_at": sent, "chunk_ms": offsets, "outcome": "ok"}
    ).record
    assert len(record.chunk_times) == 300
    assert max(abs(a - b) for a, b in zip(record.chunk_times, times, strict=True)) <= 0.5e-5 + 1e-9
    assert chunk_offsets_ms(array("d"), sent) == [] and chunk_offsets_ms(times, None) == []


def test_a_value_orjson_cannot_encode_is_written_as_its_text():
    odd = np.array([[1, 2], [3, 4]])[:, 0]  # not contiguous: orjson declines it, .item() refuses it
    line = json.loads(encode_line({"request_id": "a-3", "odd": odd}))
    assert line == {"request_id": "a-3", "odd": str(odd)}
