"""Run reports and SLO gates: files that agree with each other and with the run, and CI exit codes."""

from __future__ import annotations

import csv
import json
import math

import pytest

from locust_burstgpt.slo import SLOSpecError, parse_slo
from tests.plugin_runs import run_locust

WINDOW = ["--burstgpt-window", "19440110+70000s", "--burstgpt-speedup", "5000"]


@pytest.fixture(scope="module")
def reported_run(sim_fast, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reported")
    run = run_locust(
        tmp,
        sim_fast.base_url,
        *WINDOW,
        "--burstgpt-report",
        str(tmp / "report"),
        "--csv",
        str(tmp / "locust"),
        "--html",
        str(tmp / "locust.html"),
        "--json-file",
        str(tmp / "locust"),
    )
    assert run.returncode == 0, run.output[-3000:]
    return run, tmp


# -- SLO spec ---------------------------------------------------------------------------------------
def test_slo_spec_parses_units_percentiles_and_ratios():
    spec = parse_slo(
        "ttft_p99<=2s, tpot_p99<=80ms,e2e_p90<=20s,goodput>=0.95,lateness_p99.9<=50ms,"
        "fail_ratio<=0.01,itl_p50<500us"
    )
    by_key = {g.key: g for g in spec.gates}
    assert by_key["ttft_p99"].threshold == 2.0 and by_key["ttft_p99"].op == "<="
    assert by_key["tpot_p99"].threshold == pytest.approx(0.08)
    assert by_key["lateness_p99.9"].percentile == 99.9
    assert by_key["itl_p50"].threshold == pytest.approx(0.0005) and by_key["itl_p50"].op == "<"
    assert by_key["goodput"].threshold == 0.95 and by_key["goodput"].percentile is None
    # latency gates double as the per-request limits that define goodput
    assert spec.per_request_limits() == {
        "ttft": 2.0,
        "tpot": pytest.approx(0.08),
        "e2e": 20.0,
        "itl": pytest.approx(0.0005),
    }
    assert parse_slo("").gates == ()


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("ttft<=2s", "needs a percentile"),
        ("ttft_p99<=2", "give a unit"),
        ("ttft_p99<=2h", "give a unit"),
        ("ttft_p0<=2s", "percentile must be in (0, 100]"),
        ("ttft_p101<=2s", "percentile must be in (0, 100]"),
        ("goodput>=1.5", "fraction between 0 and 1"),
        ("goodput_p99>=0.5", "plain number"),
        ("latency_p99<=2s", "unknown metric 'latency'"),
        ("ttft_p99=2s", "cannot read 'ttft_p99=2s'"),
        ("ttft_p99<=fast", "cannot read"),
    ],
)
def test_slo_spec_errors_name_the_item(text, fragment):
    with pytest.raises(SLOSpecError) as e:
        parse_slo(f"goodput>=0.9,{text}")
    assert fragment in str(e.value) and str(e.value).startswith("--burstgpt-slo:")


def test_invalid_slo_option_exits_2(tmp_path):
    run = run_locust(tmp_path, None, "--burstgpt-slo", "ttft_p99<=2", timeout=60)
    assert run.returncode == 2 and "give a unit" in run.output and "Traceback" not in run.output


# -- exit codes ------------------------------------------------------------------------------------
def test_slo_miss_exits_3_and_says_by_how_much(sim_fast, tmp_path):
    run = run_locust(
        tmp_path, sim_fast.base_url, *WINDOW, "--burstgpt-slo", "ttft_p99<=1us,goodput>=0.5"
    )
    assert run.returncode == 3, run.output[-2000:]
    assert "SLO MISS: ttft_p99<=1us: measured" in run.output and "over the limit" in run.output


def test_slo_pass_exits_0(sim_fast, tmp_path):
    run = run_locust(
        tmp_path,
        sim_fast.base_url,
        *WINDOW,
        "--burstgpt-slo",
        "ttft_p99<=30s,e2e_p99<=60s,goodput>=0.99,fail_ratio<=0.01",
    )
    assert run.returncode == 0, run.output[-2000:]
    assert run.output.count("SLO PASS") == 4


# -- report files ------------------------------------------------------------------------------------
def test_reports_reconcile_with_each_other_and_the_run(reported_run):
    run, tmp = reported_run
    report = tmp / "report"
    lines = [json.loads(x) for x in (report / "requests.jsonl").read_text().splitlines()]
    summary = json.loads((report / "summary.json").read_text())
    books = summary["reconciliation"]
    ledger = run.by_role("local")[0]["ledger"]
    # one line per scheduled request, each with exactly one outcome
    assert len(lines) == books["scheduled"] == ledger["scheduled"]
    assert len({x["request_id"] for x in lines}) == len(lines)
    outcomes: dict[str, int] = {}
    for x in lines:
        outcomes[x["outcome"]] = outcomes.get(x["outcome"], 0) + 1
    assert (
        {k: v for k, v in outcomes.items() if k != "not_sent"}
        == books["outcomes"]
        == ledger["outcomes"]
    )
    assert outcomes.get("not_sent", 0) == sum(books["not_sent"].values())
    assert books["balances"] is True
    # summary metrics agree with the lines
    ok_lines = [x for x in lines if x["outcome"] == "ok"]
    all_metrics = summary["metrics"]["All"]
    assert all_metrics["ok"] == len(ok_lines)
    assert all_metrics["completion_tokens"] == sum(x["completion_tokens"] for x in ok_lines)
    ttfts = sorted(x["ttft"] for x in ok_lines)
    assert all_metrics["ttft"]["min"] == pytest.approx(ttfts[0], abs=1e-4)
    assert all_metrics["ttft"]["max"] == pytest.approx(ttfts[-1], abs=1e-4)
    # every line carries the trace identity of its turn
    assert all(x["trace_row"] >= 1 and x["trace_model"] in ("ChatGPT", "GPT-4") for x in lines)
    # the timeline sums to the same books
    with open(report / "timeline.csv") as f:
        rows = list(csv.DictReader(f))
    assert sum(int(r["sent"]) for r in rows) == books["sent"]
    # turns never reached have no scheduled time (it depends on the replies before them)
    unplaced = sum(1 for x in lines if x["scheduled_offset_s"] is None)
    assert sum(int(r["scheduled"]) for r in rows) == books["scheduled"] - unplaced
    assert sum(int(r["outcome_ok"]) for r in rows) == books["outcomes"]["ok"]
    assert sum(int(r["output_tokens"]) for r in rows) == all_metrics["completion_tokens"]
    assert (report / "report.png").stat().st_size > 10_000
    # settings are recorded, secrets are not
    assert summary["settings"]["speedup"] == 5000 and "api_key" not in summary["settings"]
    assert summary["trace"]["sha256"]


def test_locust_own_reports_keep_working(reported_run):
    run, tmp = reported_run
    with open(tmp / "locust_stats.csv") as f:
        rows = {r["Name"]: r for r in csv.DictReader(f)}
    summary = json.loads((tmp / "report" / "summary.json").read_text())
    assert (
        int(rows["ChatGPT conversation"]["Request Count"])
        == summary["metrics"]["ChatGPT conversation"]["ok"]
    )
    assert "GPT-4 conversation" in rows
    assert (tmp / "locust.html").read_text().count("ChatGPT conversation") >= 1
    stats = json.loads((tmp / "locust.json").read_text())
    classes = set(summary["metrics"]) - {"All"}
    assert (
        {s["name"] for s in stats}
        == classes
        >= {"ChatGPT conversation", "GPT-4 conversation", "ChatGPT API"}
    )
    # Locust's E2E average agrees with the exact store's mean within Locust's own precision
    entry = next(s for s in stats if s["name"] == "ChatGPT conversation")
    locust_mean_ms = entry["total_response_time"] / entry["num_requests"]
    exact_mean_ms = summary["metrics"]["ChatGPT conversation"]["e2e"]["mean"] * 1000
    assert math.isclose(locust_mean_ms, exact_mean_ms, rel_tol=0.01, abs_tol=0.05)
