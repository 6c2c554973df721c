"""``synth`` output: the exact BurstGPT_3 schema, conversations, scheduling, presets, options, CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from locust_burstgpt.cli.main import main
from locust_burstgpt.cli.synth_cmd import parse_rate, parse_start_option
from locust_burstgpt.provision.params import ParamsError
from locust_burstgpt.provision.presets import load_preset, paper_demo, preset_names
from locust_burstgpt.provision.synth import HEADER, synthesize, write_trace
from locust_burstgpt.trace import load_trace, prepare
from tests.support import HEADER_3


@pytest.fixture(scope="module")
def slice3_params():
    return load_preset("burstgpt3-slice")


@pytest.fixture(scope="module")
def week_params():
    return load_preset("burstgpt1-week1")


def written(trace, tmp_path: Path, name: str = "t.csv") -> Path:
    out = tmp_path / name
    write_trace(trace, out)
    return out


def test_csv_is_the_exact_burstgpt3_schema(slice3_params, tmp_path):
    trace = synthesize(slice3_params, seed=3)
    out = written(trace, tmp_path)
    first = out.read_text().splitlines()[0]
    assert first == HEADER == HEADER_3
    df = pd.read_csv(out, keep_default_na=False)
    assert list(df.columns) == HEADER.split(",")
    assert len(df) == trace.rows
    conv = df["Log Type"] == "Conversation log"
    assert conv.any() and (~conv).any()
    assert (
        df.loc[conv, "Session ID"].str.fullmatch(
            r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
        )
    ).all()
    assert (df.loc[~conv, "Session ID"] == "").all()
    assert (df["Total tokens"] == df["Request tokens"] + df["Response tokens"]).all()
    assert (np.diff(df["Timestamp"].to_numpy()) >= 0).all()
    assert (df["Elapsed time"] >= 0).all() and df["Elapsed time"].dtype.kind == "i"
    assert set(df["Model"]) <= {"ChatGPT", "GPT-4"}
    assert not list(tmp_path.glob("*.tmp"))


def test_output_loads_and_prepares_like_a_real_trace(slice3_params, tmp_path):
    trace = synthesize(slice3_params, seed=5)
    raw = load_trace(written(trace, tmp_path))
    assert raw.has_sessions and raw.has_elapsed
    assert raw.rows == trace.rows
    assert not [w for w in raw.warnings if "Total tokens" in w]
    wl = prepare(raw, failed="send")
    assert wl.n_requests == trace.rows
    assert wl.n_conversations == trace.conversations
    wl_busy = prepare(raw, window="busiest:10m")
    assert 0 < wl_busy.n_requests < trace.rows


def test_turns_follow_each_other_cumulatively(slice3_params, tmp_path):
    """Turn k+1 is sent after turn k's service time plus a think time: never before it ends."""
    df = load_trace(written(synthesize(slice3_params, seed=7), tmp_path)).df
    s = df[df["session_id"].notna()].copy()
    s["k"] = s.groupby("session_id").cumcount()
    s = s.sort_values(["session_id", "k"])
    nxt = s.groupby("session_id")["timestamp"].shift(-1)
    ends = s["timestamp"] + s["elapsed"]
    has_next = nxt.notna()
    assert has_next.sum() > 100
    assert (nxt[has_next] >= ends[has_next] - 1e-3).all()
    multi = s.groupby("session_id").size()
    assert (multi > 1).mean() > 0.3


def test_same_seed_same_bytes_other_seed_other_trace(slice3_params, tmp_path):
    a = written(synthesize(slice3_params, seed=11), tmp_path, "a.csv").read_bytes()
    b = written(synthesize(slice3_params, seed=11), tmp_path, "b.csv").read_bytes()
    c = written(synthesize(slice3_params, seed=12), tmp_path, "c.csv").read_bytes()
    assert a == b
    assert a != c


def test_paper_demo_schedules_cumulatively_with_the_paper_parameters():
    """The paper's refactored generator slept each gap from time 0 (most requests fired in the
    first seconds); here request i is at the sum of the gaps before it."""
    duration = 4 * 3600.0
    trace = synthesize(paper_demo(), duration_s=duration, seed=1)
    ts = trace.timestamp
    assert abs(trace.rows / duration - 1.0) < 0.05  # mean gap 1 s
    assert (ts < 10).sum() < 50  # not front-loaded
    assert ts[-1] > 0.99 * duration and ts[0] < 30
    per_hour = np.bincount((ts // 3600).astype(int), minlength=4)
    assert per_hour.min() > 0.85 * per_hour.mean()  # spread evenly over the hours
    gaps = np.diff(ts)
    assert abs(gaps.std() / gaps.mean() - np.sqrt(2.0)) < 0.12  # Gamma shape 0.5: CV = 1/sqrt(0.5)
    req = trace.request_tokens
    assert req.min() >= 1 and req.max() <= 1023
    # Zipf(1.1) truncated to [1, 1023]: P(1) = 0.18, median 12
    assert abs((req == 1).mean() - 0.18) < 0.02
    assert 9 <= np.median(req) <= 15
    assert (trace.session < 0).all()  # independent API-style requests
    assert (trace.response_tokens > 0).all()


def test_rate_duration_start_and_tail_options(slice3_params):
    kept = synthesize(
        slice3_params, rate=0.5, duration_s=1800, start_s=10 * 3600, seed=2, tail="keep"
    )
    assert kept.timestamp.min() >= 36000
    assert abs(kept.rows / 1800 / 0.5 - 1) < 0.15  # rate = requests / window length
    assert kept.timestamp.max() >= 37800  # later turns are not cut
    cut = synthesize(
        slice3_params, rate=0.5, duration_s=1800, start_s=10 * 3600, seed=2, tail="cut"
    )
    assert cut.timestamp.min() >= 36000 and cut.timestamp.max() < 37800
    inside = (kept.timestamp < 37800).sum()
    assert cut.rows == inside  # same trace, rows after the end dropped


def test_day_levels_cycle_reproduces_the_weekly_dip(week_params):
    days = 14 * 86400.0
    cycle = synthesize(week_params, duration_s=days, seed=0)
    flat = synthesize(week_params, duration_s=days, seed=0, day_levels="flat")
    per_day_cycle = np.bincount((cycle.timestamp // 86400).astype(int), minlength=14)[:14]
    per_day_flat = np.bincount((flat.timestamp // 86400).astype(int), minlength=14)[:14]
    # day 3 of the source week was quiet (level about 0.5): it comes back on days 3 and 10
    assert per_day_cycle[3] < 0.8 * np.median(per_day_cycle)
    assert per_day_cycle[10] < 0.8 * np.median(per_day_cycle)
    assert per_day_flat.std() / per_day_flat.mean() < per_day_cycle.std() / per_day_cycle.mean()


def test_bad_arguments_are_clear_errors(slice3_params):
    with pytest.raises(ValueError, match="rate"):
        synthesize(slice3_params, rate=0)
    with pytest.raises(ValueError, match="duration"):
        synthesize(slice3_params, duration_s=-5)
    with pytest.raises(ValueError, match="day levels"):
        synthesize(slice3_params, day_levels="weekly")
    with pytest.raises(ValueError, match="tail"):
        synthesize(slice3_params, tail="trim")
    bad = paper_demo()
    bad.classes[0].model = "GPT,4"
    with pytest.raises(ValueError, match="commas"):
        synthesize(bad)
    with pytest.raises(ParamsError, match="paper-demo"):
        load_preset("nope")
    assert (
        parse_rate("10x", 0.5) == 5.0 and parse_rate("2.5", 9) == 2.5 and parse_rate(None, 3) == 3
    )
    for text in ("0", "-1", "fast", "x"):
        with pytest.raises(ValueError, match="rate"):
            parse_rate(text, 1.0)
    assert (
        parse_start_option("9h")
        == parse_start_option("32400")
        == parse_start_option("d0+09:00")
        == 32400
    )
    assert parse_start_option("d1") == 86400
    with pytest.raises(ValueError, match="start 'nine'"):
        parse_start_option("nine")


def test_every_preset_synthesizes():
    for name in preset_names():
        trace = synthesize(load_preset(name), duration_s=3600, seed=0)
        assert trace.rows > 0, name


def test_cli_synth(tmp_path, capsys):
    out = tmp_path / "demo.csv"
    rc = main(
        [
            "synth",
            "--preset",
            "paper-demo",
            "--duration",
            "10m",
            "--rate",
            "2",
            "--seed",
            "4",
            "-o",
            str(out),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "requests" in text and str(out) in text
    df = pd.read_csv(out)
    assert abs(len(df) / 1200 - 1) < 0.15
    assert main(["synth", "--preset", "nope", "-o", str(out)]) == 2
    assert "expected one of" in capsys.readouterr().err
    assert main(["synth", "--preset", "paper-demo", "--rate", "fast", "-o", str(out)]) == 2
    assert main(["synth", "--preset", "paper-demo"]) == 2
    assert main(["synth", "--params", str(tmp_path / "missing.json"), "-o", str(out)]) == 2
    assert "missing.json" in capsys.readouterr().err
    assert main(["synth", "--list-presets"]) == 0
    assert "burstgpt1-week1" in capsys.readouterr().out
