"""``burstgpt inspect``: JSON keys, text output, plot, errors, and no Locust import."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from locust_burstgpt.cli.main import main
from tests.conftest import BURSTGPT_1_7DAYS, BURSTGPT_3_400

REQUIRED = {
    "rows": None,
    "failed_rows": None,
    "span_s": None,
    "models": None,
    "log_types": None,
    "conversations": None,
    "turns_per_conversation": {"mean", "p50", "p90", "max"},
    "think_time_s": {"p10", "p50", "p90"},
    "arrivals_per_s": {"mean", "p99", "max"},
    "interarrival_s": {"mean", "cv", "gamma_shape", "gamma_scale"},
    "index_of_dispersion_1s": None,
    "request_tokens": {"mean", "p50", "p90", "p99", "max"},
    "response_tokens": {"mean", "p50", "p90", "p99", "max"},
    "concurrency": {"mean", "p99", "max", "estimated"},
}


def _json(capsys, *argv) -> dict:
    assert main(["inspect", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_has_every_required_key(capsys):
    out = _json(capsys, str(BURSTGPT_1_7DAYS))
    for key, sub in REQUIRED.items():
        assert key in out, key
        if sub:
            assert sub <= set(out[key]), key
    assert out["rows"] == 19_431 and out["failed_rows"] == 1_538
    assert out["models"] == {"ChatGPT": 12_845, "GPT-4": 6_586}
    assert out["log_types"] == {"Conversation log": 19_120, "API log": 311}
    assert out["concurrency"]["estimated"] is True
    assert 0 < out["interarrival_s"]["gamma_shape"] < 1  # bursty: shape below 1
    assert out["interarrival_s"]["gamma_shape"] * out["interarrival_s"][
        "gamma_scale"
    ] == pytest.approx(out["interarrival_s"]["mean"], rel=0.1)


def test_default_trace_is_inspected_without_arguments(capsys):
    out = _json(capsys)
    assert out["file"].endswith("BurstGPT_3_first400rows_gitm.csv")
    assert out["rows"] == 400 and out["log_types"]["API log"] == 6
    assert out["concurrency"]["estimated"] is False and out["think_time_s"]["p50"] > 0


def test_window_and_speedup_options(capsys):
    out = _json(capsys, str(BURSTGPT_3_400), "--window", "busiest:10m", "--speedup", "2")
    assert out["window"]["length_s"] == 600 and out["duration_s"] == 300
    assert out["rows"] <= 400 and out["speedup"] == 2


def test_text_summary_is_readable(capsys):
    assert main(["inspect", str(BURSTGPT_1_7DAYS)]) == 0
    text = capsys.readouterr().out
    assert "19,431 in window, 1,538 failed" in text
    assert "ChatGPT 12,845" in text and "GPT-4 6,586" in text
    assert "ESTIMATED service times" in text


def test_plot_writes_a_png(tmp_path, capsys):
    import matplotlib.image

    out = tmp_path / "trace.png"
    assert main(["inspect", str(BURSTGPT_3_400), "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    img = matplotlib.image.imread(out)
    assert img.shape[0] > 500 and img.shape[1] > 1000
    assert f"wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["/no/such/trace.csv"], "no such file"),
        ([str(BURSTGPT_3_400), "--window", "lunchtime"], "window 'lunchtime'"),
        ([str(BURSTGPT_3_400), "--model", "GPT-5"], "not in the trace"),
    ],
)
def test_errors_exit_2_with_a_message(capsys, argv, needle):
    assert main(["inspect", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("burstgpt inspect: error:") and needle in err


def test_console_script_runs_without_importing_locust_or_gevent():
    code = (
        "import sys, json; from locust_burstgpt.cli.main import main; "
        f"rc = main(['inspect', {str(BURSTGPT_3_400)!r}, '--json']); "
        "assert rc == 0; bad = [m for m in ('locust', 'gevent') if m in sys.modules]; "
        "print('IMPORTED', bad, file=sys.stderr); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["rows"] == 400


def test_model_filter_applies_to_the_row_counts(capsys):
    from tests.trace_support import read_plain

    gpt4 = [r for r in read_plain(BURSTGPT_1_7DAYS) if r.model == "GPT-4"]
    out = _json(capsys, str(BURSTGPT_1_7DAYS), "--model", "GPT-4")
    assert out["rows"] == len(gpt4) == 6_586 and out["models"] == {"GPT-4": 6_586}
    assert out["failed_rows"] == sum(1 for r in gpt4 if r.resp == 0)
    assert out["rows_used"] == out["requests"] == sum(1 for r in gpt4 if r.resp > 0)
    assert out["span_s"] == gpt4[-1].ts - gpt4[0].ts
