"""``burstgpt fit`` and ``params.json``: what is fitted, the schema round trip, errors, presets."""

from __future__ import annotations

import json

import numpy as np
import pytest

from locust_burstgpt.cli.main import main
from locust_burstgpt.provision.fit import FitOptions, fit_trace
from locust_burstgpt.provision.params import Params, ParamsError, load_params, save_params
from locust_burstgpt.provision.presets import FITTED, fit_preset, load_preset
from locust_burstgpt.trace import TraceError, load_trace
from tests.conftest import BURSTGPT_1_7DAYS, BURSTGPT_3_400
from tests.support import HEADER_1, trace_text


@pytest.fixture(scope="module")
def fit3() -> Params:
    return fit_trace(BURSTGPT_3_400)


def test_fit_matches_the_source_class_by_class(fit3):
    df = load_trace(BURSTGPT_3_400).df
    assert {(c.log_type, c.model) for c in fit3.classes} == {
        ("API log", "ChatGPT"),
        ("API log", "GPT-4"),
        ("Conversation log", "ChatGPT"),
        ("Conversation log", "GPT-4"),
    }
    assert sum(c.rows for c in fit3.classes) == len(df) == fit3.source.rows
    assert fit3.mean_rate == pytest.approx(400 / fit3.source.duration_s)
    sessions = df[df["session_id"].notna()]
    first = sessions.groupby("session_id", sort=False).first()
    sizes = sessions.groupby("session_id", sort=False).size()
    conv = [c for c in fit3.classes if c.log_type == "Conversation log"]
    assert sum(c.conversations_count for c in conv) == sessions["session_id"].nunique() == 135
    for c in conv:
        mine = sizes[(first["model"] == c.model).to_numpy()]
        assert c.conversations.turns.mean() == pytest.approx(mine.mean(), rel=1e-5)
        assert c.conversations.think_s is not None and c.lengths.increment is not None
    api = [c for c in fit3.classes if c.log_type == "API log"]
    assert all(c.conversations.turns.mean() == 1 and c.conversations_count == c.rows for c in api)
    assert fit3.source.has_sessions and fit3.source.has_elapsed
    assert (
        fit3.start_s == 110.0
    )  # the slice starts at 00:01:50 of day 225; synth at 00:01:50 of day 0


def test_fit_week_failures_lengths_and_default_service_model():
    params = fit_trace(BURSTGPT_1_7DAYS)
    df = load_trace(BURSTGPT_1_7DAYS).df
    for c in params.classes:
        rows = df[(df["log_type"] == c.log_type) & (df["model"] == c.model)]
        assert c.rows == len(rows)
        assert c.failures.rate == pytest.approx((rows["response_tokens"] == 0).mean())
        ok = rows[rows["response_tokens"] > 0]
        assert c.lengths.first_request.quantile(0.5) == pytest.approx(
            np.median(
                rows.loc[
                    ~((rows["request_tokens"] == 0) & (rows["response_tokens"] == 0)),
                    "request_tokens",
                ]
            )
        )
        assert c.lengths.max_request == rows["request_tokens"].max()
        assert c.elapsed.source.startswith("default")
        if len(ok) >= 800:  # enough rows for several response buckets
            assert len(c.lengths.response.dists) >= 2
    big = max(params.classes, key=lambda c: c.rows)
    med = [d.quantile(0.5) for d in big.lengths.response.dists]
    assert med[-1] > med[0]  # longer requests, longer responses (the paper's positive relation)
    assert len(big.arrivals.day_levels) == 7
    assert any("Session" in n for n in params.notes)


def test_window_is_selected_by_the_trace_package():
    params = fit_trace(BURSTGPT_1_7DAYS, window="d1+00:00+1d")
    df = load_trace(BURSTGPT_1_7DAYS).df
    day1 = df[(df["timestamp"] >= 86400) & (df["timestamp"] < 172800)]
    assert (params.source.window_start_s, params.source.window_end_s) == (86400.0, 172800.0)
    assert params.source.rows == len(day1) == sum(c.rows for c in params.classes)
    assert all(len(c.arrivals.day_levels) == 1 for c in params.classes)
    assert params.source.window == "d1+00:00+1d"


def test_params_round_trip_through_json(fit3, tmp_path):
    path = tmp_path / "p.json"
    save_params(fit3, path)
    again = load_params(path)
    assert again.to_dict() == fit3.to_dict()
    data = json.loads(path.read_text())
    assert data["format"] == "locust-burstgpt-params" and data["version"] == 1
    cls = data["classes"][0]
    assert (
        len(cls["arrivals"]["rate_per_s"])
        == len(cls["arrivals"]["shape"])
        == len(cls["arrivals"]["scale_s"])
        == 72
    )
    assert "\n" not in path.read_text().split('"shape": ')[1].split("]")[0]  # one line per profile


def test_stored_presets_are_exactly_what_fit_produces():
    for name in FITTED:
        fresh = fit_preset(name).to_dict()
        stored = load_preset(name).to_dict()
        fresh.pop("generator")
        stored.pop("generator")
        assert fresh == stored, f"preset {name} is stale: re-run burstgpt fit on its bundled trace"


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.update(format="other"), "format"),
        (lambda d: d.update(bin_s=7), "bin_s"),
        (
            lambda d: d["classes"][0]["arrivals"]["rate_per_s"].pop(),
            r"classes\[0\].arrivals.rate_per_s",
        ),
        (
            lambda d: d["classes"][0]["arrivals"]["shape"].__setitem__(3, -1),
            r"classes\[0\].arrivals.shape\[3\]",
        ),
        (lambda d: d["classes"][0]["failures"].update(rate=1.5), r"classes\[0\].failures.rate"),
        (lambda d: d["classes"][0]["lengths"]["first_request"].update(x=[5, 3]), "never decrease"),
        (
            lambda d: d["classes"][0]["conversation"]["turns"].update(probs=[0.5]),
            r"conversation.turns",
        ),
        (
            lambda d: d["classes"][0]["lengths"]["response_by_request"].update(
                edges=[1, 2, 3, 4, 5, 6]
            ),
            "response_by_request.edges",
        ),
        (lambda d: d.update(classes=[]), "classes"),
    ],
)
def test_invalid_params_name_the_field(fit3, tmp_path, edit, message):
    data = fit3.to_dict()
    edit(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ParamsError, match=message) as err:
        load_params(path)
    assert "bad.json" in str(err.value)


def test_unreadable_params_files(tmp_path):
    with pytest.raises(ParamsError, match="no such file"):
        load_params(tmp_path / "none.json")
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": ')
    with pytest.raises(ParamsError, match="line 1"):
        load_params(broken)


def test_bad_fit_input_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(trace_text(["5,ChatGPT,x,1,2,API log\n"], HEADER_1))
    with pytest.raises(TraceError, match="bad.csv"):
        fit_trace(bad)
    with pytest.raises(ValueError, match="divid"):
        fit_trace(BURSTGPT_3_400, options=FitOptions(bin_s=7))
    with pytest.raises(ValueError, match="window"):
        fit_trace(BURSTGPT_3_400, window="sometimes")
    with pytest.raises(ValueError, match="no rows"):
        fit_trace(BURSTGPT_3_400, window="0+10")


def test_cli_fit_prints_a_summary_and_writes_params(tmp_path, capsys):
    out = tmp_path / "params.json"
    assert main(["fit", str(BURSTGPT_1_7DAYS), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    for word in (
        "Conversation log / ChatGPT",
        "gamma shape",
        "day levels",
        "turns",
        "failed",
        str(out),
    ):
        assert word in text
    assert load_params(out).source.rows == 19431
    assert main(["fit", str(tmp_path / "missing.csv"), "-o", str(out)]) == 2
    assert "missing.csv" in capsys.readouterr().err
    assert main(["fit", str(BURSTGPT_3_400), "--window", "nonsense", "-o", str(out)]) == 2
    assert main(["fit", "--shape-estimator", "mle", "--quiet", "-o", str(out)]) == 0
    assert load_params(out).classes[0].arrivals.shape_estimator == "mle"


def test_paper_demo_survives_params_json_and_cli(tmp_path, capsys):
    from locust_burstgpt.provision.presets import paper_demo

    path = tmp_path / "demo.json"
    save_params(paper_demo(), path)
    loaded = load_params(path)
    assert loaded.to_dict() == paper_demo().to_dict()
    assert loaded.classes[0].lengths.first_request.to_dict() == {
        "kind": "zipf",
        "theta": 1.1,
        "low": 1,
        "high": 1023,
    }
    out = tmp_path / "demo.csv"
    assert main(["synth", "--params", str(path), "--duration", "600", "-o", str(out)]) == 0
    assert load_trace(out).rows > 400


def test_importing_provision_does_not_import_locust():
    import subprocess
    import sys

    code = "import sys, locust_burstgpt.provision; print('locust' in sys.modules, 'gevent' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
