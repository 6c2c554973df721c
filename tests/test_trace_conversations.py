"""Conversations: grouping by Session ID, turn records, think times, failed rows, filters."""

from __future__ import annotations

import pytest

from locust_burstgpt.trace import Conversation, Turn, load_trace, prepare
from locust_burstgpt.trace.service_model import COEFFICIENTS
from tests.conftest import BURSTGPT_1_7DAYS, BURSTGPT_3_400
from tests.trace_support import HEADER_8, brute_schedule, read_plain, row8, write_csv


def test_burstgpt3_slice_groups_into_sessions_and_single_api_rows():
    wl = prepare(load_trace(BURSTGPT_3_400), failed="send")
    plain = read_plain(BURSTGPT_3_400)
    sessions = {r.sid for r in plain if r.sid}
    assert len(sessions) == 135
    assert wl.n_conversations == 135 + 6 and wl.n_requests == 400
    convs = list(wl.conversations())
    assert sorted(c.id for c in convs if not c.id.startswith("row-")) == sorted(sessions)
    assert max(len(c.turns) for c in convs) == 24
    # every row appears exactly once, and a session's turns are its rows in time order
    assert sorted(t.row for c in convs for t in c.turns) == list(range(1, 401))
    by_sid = {}
    for r in plain:
        if r.sid:
            by_sid.setdefault(r.sid, []).append(r.row)
    for c in convs:
        if not c.id.startswith("row-"):
            assert [t.row for t in c.turns] == by_sid[c.id]
            assert [t.index for t in c.turns] == list(range(len(c.turns)))


def test_conversations_match_the_product_definition_exactly():
    raw = load_trace(BURSTGPT_3_400)
    wl = prepare(raw, failed="send")
    plain = read_plain(BURSTGPT_3_400)
    want = brute_schedule(plain, wl.window.start, 1.0, lambda r: r.elapsed)
    assert len(want) == wl.n_conversations
    assert list(wl.start_offsets) == [c[0][0] for c in want]
    for conv, exp in zip(wl.conversations(), want, strict=True):
        assert isinstance(conv, Conversation) and isinstance(conv.turns[0], Turn)
        assert conv.start_s == exp[0][0]
        assert conv.model == exp[0][2].model and conv.log_type == exp[0][2].log
        assert list(conv.scheduled_offsets) == pytest.approx([e[0] for e in exp])
        for turn, (_, el, r, think) in zip(conv.turns, exp, strict=True):
            assert turn.row == r.row
            assert turn.trace_offset_s == r.ts - wl.window.start
            assert (turn.request_tokens, turn.response_tokens) == (r.req, r.resp)
            assert turn.elapsed_s == el and turn.elapsed_estimated is False
            assert turn.think_s == pytest.approx(think)
            assert turn.failed == (r.resp == 0)
            assert turn.model == r.model


def test_think_time_and_speedup(tmp_path):
    # turn 0 at 100 takes 10 s; turn 1 at 130 (think 20 s); turn 2 at 135 although turn 1
    # takes 8 s (recorded overlap: think clamps to 0).
    rows = [row8(100, "s", 10, 5, 5), row8(130, "s", 8, 20, 5), row8(135, "s", 3, 40, 5)]
    path = write_csv(tmp_path / "t.csv", HEADER_8, rows)
    raw = load_trace(path)
    conv = prepare(raw, window="100+60").conversation(0)
    assert [t.think_s for t in conv.turns] == [20.0, 0.0, 0.0]
    assert conv.scheduled_offsets == (0.0, 30.0, 38.0)
    fast = prepare(raw, window="100+60", speedup=4).conversation(0)
    assert [t.think_s for t in fast.turns] == [5.0, 0.0, 0.0]
    assert [t.elapsed_s for t in fast.turns] == [10.0, 8.0, 3.0]  # service time never scaled
    assert [t.trace_offset_s for t in fast.turns] == [0.0, 7.5, 8.75]
    assert fast.scheduled_offsets == (0.0, 15.0, 23.0)


def test_failed_rows_skip_or_send(tmp_path):
    rows = [
        row8(1, "s", 2, 5, 5),
        row8(10, "s", 0, 0, 0),
        row8(20, "s", 2, 9, 5),
        row8(30, None, 1, 0, 0),
    ]
    raw = load_trace(write_csv(tmp_path / "t.csv", HEADER_8, rows))
    skip = prepare(raw)
    assert skip.meta["failed_rows"] == 2 and skip.meta["failed"] == "skip"
    assert skip.n_conversations == 1 and [t.row for t in skip.conversation(0).turns] == [1, 3]
    assert skip.conversation(0).turns[0].think_s == 17.0  # 20 - (1 + 2): the failed turn is gone
    send = prepare(raw, failed="send")
    assert send.meta["failed_rows"] == 2 and send.n_requests == 4
    assert [t.failed for c in send.conversations() for t in c.turns] == [False, True, False, True]
    with pytest.raises(ValueError):
        prepare(raw, failed="drop")


def test_model_and_log_type_filters():
    raw = load_trace(BURSTGPT_1_7DAYS)
    plain = [r for r in read_plain(BURSTGPT_1_7DAYS) if r.resp > 0]
    wl = prepare(raw, models=["gpt-4"], log_types=["API log"])
    assert wl.n_requests == sum(1 for r in plain if r.model == "GPT-4" and r.log == "API log")
    assert {(c.model, c.log_type) for c in wl.conversations()} == {("GPT-4", "API log")}
    with pytest.raises(ValueError, match="not in the trace"):
        prepare(raw, models=["Llama-3"])
    both = prepare(raw, models="gpt-4, ChatGPT")  # a comma-separated string works too
    assert both.meta["filters"]["models"] == ["gpt-4", "ChatGPT"] and both.n_requests == len(plain)


def test_six_column_trace_has_one_turn_conversations_with_estimated_service():
    wl = prepare(load_trace(BURSTGPT_1_7DAYS))
    assert wl.n_conversations == wl.n_requests == 19_431 - 1_538
    c = wl.conversation(0)
    a, b = COEFFICIENTS["ChatGPT"]
    assert c.id == "row-1" and len(c.turns) == 1
    assert c.turns[0].elapsed_estimated and c.turns[0].elapsed_s == pytest.approx(a + b * 18)
    assert wl.elapsed_estimated and wl.curves.estimated and wl.meta["elapsed_estimated"]
    assert any("17,893 of 17,893 requests are ESTIMATED" in w for w in wl.meta["warnings"])


def test_session_cut_by_the_window_starts_at_its_first_turn_inside(tmp_path):
    rows = [row8(0, "s", 1, 5, 5), row8(50, "s", 1, 10, 5), row8(70, "s", 1, 20, 5)]
    raw = load_trace(write_csv(tmp_path / "t.csv", HEADER_8, rows))
    wl = prepare(raw, window="40+100")
    assert wl.n_conversations == 1
    conv = wl.conversation(0)
    assert [t.row for t in conv.turns] == [2, 3] and conv.start_s == 10.0


def test_conversation_index_out_of_range():
    wl = prepare(load_trace(BURSTGPT_3_400))
    with pytest.raises(IndexError):
        wl.conversation(wl.n_conversations)


def test_meta_is_json_serializable_and_complete():
    import json

    wl = prepare(
        load_trace(BURSTGPT_3_400), window="busiest:1h", speedup=2.0, rate_scale=1.5, seed=3
    )
    meta = json.loads(json.dumps(wl.meta))
    for key in (
        "file",
        "sha256",
        "window",
        "filters",
        "speedup",
        "rate_scale",
        "seed",
        "rows_in",
        "rows_used",
        "failed_rows",
        "failed",
        "conversations",
        "requests",
        "elapsed_estimated",
        "warnings",
    ):
        assert key in meta
    assert meta["window"]["end"] - meta["window"]["start"] == 3600
    assert meta["requests"] == wl.n_requests and meta["conversations"] == wl.n_conversations


@pytest.mark.parametrize(
    "options",
    [
        {"failed": "send"},
        {"window": "busiest:1h", "rate_scale": 2.5, "seed": 3},  # copies of conversations
        {"window": "busiest:1h", "rate_scale": 0.4, "seed": 3},  # a sample of them
    ],
)
def test_class_turns_count_each_conversations_requests_under_its_first_turns_class(options):
    """The web UI's per-class scheduled counts: vectorised, equal to walking every conversation."""
    wl = prepare(load_trace(BURSTGPT_3_400), **options)
    walked: dict[tuple[str, str], int] = {}
    for c in wl.conversations():
        walked[(c.model, c.log_type)] = walked.get((c.model, c.log_type), 0) + len(c.turns)
    assert wl.class_turns() == walked
    assert sum(walked.values()) == wl.n_requests and len(walked) >= 2
