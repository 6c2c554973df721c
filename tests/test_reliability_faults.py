"""The fault matrix, end to end through Locust: the simulator's fault modes and a hand-written
misbehaving server, one faulty conversation between healthy ones. Each faulty request ends with its
one right outcome, every other request is untouched, the run goes on, and the books and report files
(requests.jsonl, summary.json, timeline.csv) reconcile."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from tests.plugin_runs import LocustRun, run_locust
from tests.servers.misbehaving import MisbehavingServer
from tests.support import write_trace

OUTPUT_TOKENS = 20
TTFT_TIMEOUT = "2"
IDLE_TIMEOUT = "1.5"

# behaviour of the faulty conversation -> (outcome, HTTP status, text in the error)
MATRIX = {
    "sim:http_500": ("http_error", 500, "HTTP 500"),
    "sim:http_429; retry_after=1": ("http_error", 429, "HTTP 429"),
    "sim:http_503": ("http_error", 503, "HTTP 503"),
    "sim:stall_before_first_token; seconds=6": (
        "timeout_before_first_token",
        200,
        "first_token deadline",
    ),
    "sim:stall_mid_stream; after=3; seconds=6": ("timeout_mid_stream", 200, "idle deadline"),
    "sim:cut_mid_stream; after=3": ("stream_cut", 200, "before [DONE]"),
    "sim:malformed_sse; after=2": ("protocol_error", 200, "not JSON"),
    "malformed_json": ("protocol_error", 200, "not JSON"),
    "missing_done": ("ok", 200, None),  # finish_reason and usage arrived and the body ended cleanly
    "huge_chunk": ("ok", 200, None),  # a 10 MB SSE event is legal; it must not break the reader
    "slow_drip": ("timeout_before_first_token", None, "first_token deadline"),
    "reset_mid_stream": ("stream_cut", 200, "ECONNRESET"),
    "reset_before_response": ("connection_error", None, "ECONNRESET"),
    "wrong_content_type": ("protocol_error", 200, "text/html"),
}
SEPARATE = {"wrong_content_type"}  # asserted in a test of its own (see below)


def _api_rows(n: int, step: float, start: float = 100.0) -> list[str]:
    return [
        f"{start + i * step:.3f},,1,ChatGPT,40,{OUTPUT_TOKENS},{40 + OUTPUT_TOKENS},API log\n"
        for i in range(n)
    ]


def _lines(report: Path) -> list[dict]:
    return [json.loads(x) for x in (report / "requests.jsonl").read_text().splitlines()]


def _books_reconcile(run: LocustRun, report: Path, scheduled: int) -> dict:
    """scheduled = sent + not sent; sent = sum of outcomes; in the process, summary.json and the files."""
    ledger = run.ledger()
    assert ledger["scheduled"] == scheduled
    assert ledger["scheduled"] == ledger["sent"] + sum(ledger["not_sent"].values())
    assert ledger["sent"] == sum(ledger["outcomes"].values())
    summary = json.loads((report / "summary.json").read_text())
    rec = summary["reconciliation"]
    assert (
        rec["balances"] and rec["scheduled"] == scheduled and rec["outcomes"] == ledger["outcomes"]
    )
    lines = _lines(report)
    assert len(lines) == scheduled == rec["entries"]["entries"]
    counted: dict[str, int] = {}
    for x in lines:
        counted[x["outcome"]] = counted.get(x["outcome"], 0) + 1
    assert counted == ledger["outcomes"], (counted, ledger["outcomes"])
    with open(report / "timeline.csv") as f:
        rows = list(csv.DictReader(f))
    for outcome, n in ledger["outcomes"].items():
        assert sum(int(r[f"outcome_{outcome}"] or 0) for r in rows) == n, outcome
    assert "Reconciliation" in run.output and "balances" in run.output
    return summary


@pytest.fixture(scope="module")
def matrix_run(sim_fast, tmp_path_factory):
    """One run: 14 faulty conversations, each followed by a healthy one, 4 requests a second."""
    tmp = tmp_path_factory.mktemp("matrix")
    plan = {f"row-{2 * k + 1}": behaviour for k, behaviour in enumerate(MATRIX)}
    write_trace(tmp / "trace.csv", _api_rows(2 * len(MATRIX), 0.25))
    report = tmp / "report"
    with MisbehavingServer(sim_fast.base_url, plan) as server:
        run = run_locust(
            tmp,
            server.base_url,
            "--burstgpt-trace",
            str(tmp / "trace.csv"),
            "--burstgpt-window",
            "100+9s",
            "--burstgpt-ttft-timeout",
            TTFT_TIMEOUT,
            "--burstgpt-idle-timeout",
            IDLE_TIMEOUT,
            "--burstgpt-report",
            str(report),
        )
        arrivals = list(server.seen)
    by_conv = {r["conversation"]: r for r in run.records}
    lines = (
        {x["conversation"]: x for x in _lines(report)}
        if (report / "requests.jsonl").exists()
        else {}
    )
    return run, report, plan, by_conv, lines, arrivals


def test_each_fault_gives_its_outcome_and_the_run_goes_on(matrix_run):
    run, report, plan, by_conv, lines, _ = matrix_run
    assert run.returncode == 1, run.output[-3000:]  # Locust's own code: some requests failed
    assert len(by_conv) == 2 * len(MATRIX)
    for conv, behaviour in plan.items():
        if behaviour in SEPARATE:
            continue
        outcome, status, text = MATRIX[behaviour]
        rec, line = by_conv[conv], lines[conv]
        assert (rec["outcome"], rec["http_status"]) == (outcome, status), (behaviour, rec)
        assert line["outcome"] == outcome and line["http_status"] == status, (behaviour, line)
        if text:
            assert text in line["error"], (behaviour, line["error"])
        if outcome == "ok":
            assert line["completion_tokens"] == OUTPUT_TOKENS, (behaviour, line)
    assert lines[next(c for c, b in plan.items() if "429" in b)]["retry_after_s"] == 1.0


def test_other_requests_are_untouched(matrix_run):
    run, _, plan, by_conv, lines, _ = matrix_run
    healthy = [c for c in by_conv if c not in plan]
    assert len(healthy) == len(MATRIX)
    for conv in healthy:
        rec = by_conv[conv]
        assert rec["outcome"] == "ok" and rec["completion_tokens"] == OUTPUT_TOKENS, rec
        # a neighbour stalled for 6 s (or dripping for longer) holds nobody back: sent on time and
        # answered fast (bounds far below the faults' seconds, loose enough for a busy machine)
        assert rec["sent"] - rec["scheduled"] < 0.5, rec
        assert rec["e2e"] < 1.5, rec
    # the last request of the run, after every fault, is sent on time and answered
    last = max(by_conv.values(), key=lambda r: r["scheduled"])
    assert last["conversation"] in healthy and last["outcome"] == "ok"


def test_matrix_books_reconcile_in_every_report_file(matrix_run):
    run, report, *_ = matrix_run
    summary = _books_reconcile(run, report, 2 * len(MATRIX))
    assert summary["verdict"]["trusted"], summary["verdict"]
    assert "UNTRUSTWORTHY" not in run.output


def test_retries_are_off_by_default(matrix_run):
    _, _, plan, _, lines, arrivals = matrix_run
    for conv, behaviour in plan.items():
        if behaviour.startswith("sim:http_"):
            rid = lines[conv]["request_id"]
            assert [a.request_id for a in arrivals].count(rid) == 1, behaviour
            assert "retries" not in lines[conv]
    assert (
        json.loads((matrix_run[1] / "summary.json").read_text())["reconciliation"]["retries"] == 0
    )


def test_wrong_content_type_is_a_protocol_error(matrix_run):
    """A 200 answer that is an HTML page (a login gateway, a proxy's error page) is not a stream."""
    _, _, plan, _, lines, _ = matrix_run
    conv = next(c for c, b in plan.items() if b == "wrong_content_type")
    outcome, status, text = MATRIX["wrong_content_type"]
    line = lines[conv]
    assert (line["outcome"], line["http_status"]) == (outcome, status), line
    assert text in (line["error"] or ""), line


def test_server_down_for_a_while_then_back(sim_fast, tmp_path):
    """Connections are refused for 1.5 s mid-run: requests sent then fail at once, the rest succeed.

    Prompts are sized by the calibrated fallback here: with the server's own /tokenize (the default
    against the simulator) a turn due while the server is down cannot even be built, and is counted
    as not sent (prompt_failed) rather than as a connection error.
    """
    rows = _api_rows(24, 0.25)
    write_trace(tmp_path / "trace.csv", rows)
    report = tmp_path / "report"
    with MisbehavingServer(sim_fast.base_url, {"row-8": "down:1.5"}) as server:
        run = run_locust(
            tmp_path,
            server.base_url,
            "--burstgpt-trace",
            str(tmp_path / "trace.csv"),
            "--burstgpt-window",
            "100+8s",
            "--burstgpt-tokenizer",
            "fallback",
            "--burstgpt-report",
            str(report),
        )
        outage = server.outages[0]
    assert run.returncode == 1, run.output[-3000:]
    assert outage.up_at is not None and outage.up_at - outage.down_at >= 1.5
    lines = _lines(report)
    trigger = next(x for x in lines if x["conversation"] == "row-8")
    assert trigger["outcome"] == "connection_error"
    refused = [
        x for x in lines if x["outcome"] == "connection_error" and "ECONNREFUSED" in x["error"]
    ]
    assert len(refused) >= 4, [(x["conversation"], x["outcome"], x.get("error")) for x in lines]
    for x in lines:
        if x["conversation"] == "row-8":
            continue
        if outage.down_at + 0.02 < x["sent_at"] < outage.up_at - 0.02:
            assert x["outcome"] == "connection_error" and "ECONNREFUSED" in x["error"], x
        elif (
            x["sent_at"] > outage.up_at + 0.05
            or (x["last_byte_at"] or x["sent_at"]) < outage.down_at
        ):
            assert x["outcome"] == "ok", x  # before the outage and once the server is back
    after = [x for x in lines if x["sent_at"] > outage.up_at + 0.05]
    assert len(after) >= 4 and all(x["outcome"] == "ok" for x in after)
    _books_reconcile(run, report, 24)


def test_retry_option_resends_429_and_503_after_retry_after(sim_fast, tmp_path):
    plan = {
        "row-2": "once:sim:http_429; retry_after=1",
        "row-4": "once:sim:http_503",
        "row-6": "sim:http_429; retry_after=1",
        "row-8": "sim:http_500",
    }
    write_trace(tmp_path / "trace.csv", _api_rows(12, 0.25))
    report = tmp_path / "report"
    with MisbehavingServer(sim_fast.base_url, plan) as server:
        run = run_locust(
            tmp_path,
            server.base_url,
            "--burstgpt-trace",
            str(tmp_path / "trace.csv"),
            "--burstgpt-window",
            "100+6s",
            "--burstgpt-retry",
            "1",
            "--burstgpt-report",
            str(report),
        )
        arrivals = list(server.seen)
    assert run.returncode == 1, run.output[
        -3000:
    ]  # row-6 fails twice, row-8 once: Locust counts failures
    lines = {x["conversation"]: x for x in _lines(report)}

    def wire(conv: str) -> list:
        return [a for a in arrivals if a.request_id and f"-{conv}-0" in a.request_id]

    for conv, status, final in (
        ("row-2", 429, "ok"),
        ("row-4", 503, "ok"),
        ("row-6", 429, "http_error"),
    ):
        line = lines[conv]
        assert line["outcome"] == final, line
        assert len(line["retries"]) == 1 and line["retries"][0]["http_status"] == status, line
        first, second = wire(conv)
        assert second.request_id == first.request_id + ".r1" == line["request_id"]
        # honours Retry-After (1 s from the 429; 1 s by default for the 503 without one)
        assert second.wall - first.wall >= 0.95, (conv, second.wall - first.wall)
        assert line["retries"][0]["request_id"] == first.request_id
    assert (
        len(wire("row-8")) == 1 and lines["row-8"]["outcome"] == "http_error"
    )  # 500 is not retried
    summary = _books_reconcile(run, report, 12)
    rec = summary["reconciliation"]
    assert rec["retries"] == 3 and rec["sent"] == 12  # attempts are not requests of their own
    assert rec["outcomes"] == {"ok": 10, "http_error": 2}
    assert "Retries: 3 extra attempts" in run.output


def test_turn_whose_prompt_cannot_be_built_is_not_sent_with_the_reason(sim_fast, tmp_path):
    """Prompts sized by the server's /tokenize: turns due while the server refuses connections cannot
    be built, so they are booked once as not sent (prompt_failed) and their entries say why."""
    write_trace(tmp_path / "trace.csv", _api_rows(24, 0.25))
    report = tmp_path / "report"
    with MisbehavingServer(sim_fast.base_url, {"row-8": "down:1.5"}) as server:
        run = run_locust(
            tmp_path,
            server.base_url,
            "--burstgpt-trace",
            str(tmp_path / "trace.csv"),
            "--burstgpt-window",
            "100+8s",
            "--burstgpt-tokenizer",
            "server",
            "--burstgpt-report",
            str(report),
        )
    ledger = run.ledger()
    assert ledger["scheduled"] == 24 == ledger["sent"] + sum(ledger["not_sent"].values()), ledger
    assert ledger["not_sent"].get("prompt_failed", 0) >= 2, (ledger, run.output[-3000:])
    failed = [x for x in _lines(report) if x.get("not_sent_reason") == "prompt_failed"]
    assert len(failed) == ledger["not_sent"]["prompt_failed"]
    for x in failed:
        assert (
            x["outcome"] == "not_sent" and "/tokenize" in x["error"] and "refused" in x["error"]
        ), x
    assert "not sent" in run.output and "prompt_failed" in run.output
