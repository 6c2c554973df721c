"""The plugin's options: validation (one clear line each), help output, and the README's table."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest

from locust_burstgpt.options import OPTIONS, format_markdown_table
from locust_burstgpt.settings import OptionError, settings_from_options
from tests.plugin_runs import ROOT


def _opts(**overrides):
    values = {o.dest: o.default for o in OPTIONS}
    values.update(overrides)
    return SimpleNamespace(**values)


def test_defaults_are_valid_and_secret_stays_out_of_public_dict(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-secret")
    s = settings_from_options(_opts())
    assert s.api_key == "sk-env-secret" and s.speedup == 1.0 and s.arrival == "trace"
    assert "sk-env-secret" not in repr(s) and "sk-env-secret" not in str(s.public_dict())
    assert s.public_dict()["api_key_set"] is True
    s = settings_from_options(_opts(burstgpt_api_key="sk-option"))
    assert s.api_key == "sk-option"


def test_lists_and_maps_are_parsed():
    s = settings_from_options(
        _opts(
            burstgpt_models="ChatGPT, GPT-4",
            burstgpt_log_types="conversation,api",
            burstgpt_model_map="ChatGPT=llama-8b,GPT-4=llama-70b",
            burstgpt_server_metrics="off",
        )
    )
    assert s.models == ("ChatGPT", "GPT-4")
    assert s.log_types == ("Conversation log", "API log")
    assert s.model_map == {"ChatGPT": "llama-8b", "GPT-4": "llama-70b"}
    assert s.server_metrics is None


@pytest.mark.parametrize(
    "dest, value, fragment",
    [
        ("burstgpt_speedup", "-2", "--burstgpt-speedup: expected a number > 0"),
        ("burstgpt_speedup", "fast", "--burstgpt-speedup: expected a number"),
        ("burstgpt_rate_scale", "0", "--burstgpt-rate-scale: expected a number > 0"),
        ("burstgpt_headroom", "0.5", "--burstgpt-headroom: expected a factor >= 1"),
        ("burstgpt_trace", "/nonexistent/trace.csv", "--burstgpt-trace: file not found"),
        (
            "burstgpt_tokenizer",
            "magic",
            "--burstgpt-tokenizer: expected auto, server, fallback, simpletok or local:PATH",
        ),
        ("burstgpt_tokenizer", "local:/nonexistent/tok.json", "local tokenizer not found"),
        ("burstgpt_log_types", "chat", "unknown log type 'chat'"),
        ("burstgpt_model_map", "ChatGPT", "expected TRACE_MODEL=SERVED_MODEL"),
        (
            "burstgpt_arrival",
            "uniform",
            "--burstgpt-arrival: expected one of trace, poisson, saturate",
        ),
        ("burstgpt_seed", "x", "--burstgpt-seed: expected an integer"),
        ("burstgpt_ttft_timeout", "0", "--burstgpt-ttft-timeout: expected a number > 0"),
        ("burstgpt_server_metrics", "localhost:9090", "expected an http(s) URL or off"),
        ("burstgpt_slo", "ttft_p99<2", "give a unit"),
    ],
)
def test_each_bad_value_gets_one_line_naming_the_option(dest, value, fragment):
    with pytest.raises(OptionError) as e:
        settings_from_options(_opts(**{dest: value}))
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_burstgpt_options_and_locust_help_list_every_option():
    out = subprocess.run(
        [sys.executable, "-m", "locust_burstgpt.cli.main", "options"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    via_locust = subprocess.run(
        [sys.executable, "-m", "locust", "-f", "locustfiles/burstgpt.py", "--burstgpt-help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert via_locust.returncode == 0
    for o in OPTIONS:
        assert o.flag in out and o.flag in via_locust.stdout


def test_readme_options_table_matches_the_code():
    readme = (ROOT / "README.md").read_text()
    assert format_markdown_table() in readme, (
        "README's options table is stale: paste `burstgpt options --markdown`"
    )


def test_every_setting_comes_from_one_option():
    """The settings are derived from the option table: one option per field, no field without one."""
    from dataclasses import fields

    from locust_burstgpt.settings import ReplaySettings

    derived = {"slo_spec"}  # computed from --burstgpt-slo
    assert sorted(o.field for o in OPTIONS) == sorted(
        f.name for f in fields(ReplaySettings) if f.name not in derived
    )


def test_a_secret_sent_back_masked_by_the_web_form_keeps_its_value(monkeypatch):
    from locust_burstgpt.settings import SECRET_PLACEHOLDER

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    secrets: dict[str, str] = {}
    first = settings_from_options(_opts(burstgpt_api_key="sk-one"), secrets)
    again = settings_from_options(_opts(burstgpt_api_key=SECRET_PLACEHOLDER), secrets)
    assert first.api_key == again.api_key == "sk-one"
    other: dict[str, str] = {}  # another environment keeps its own
    assert settings_from_options(_opts(burstgpt_api_key=SECRET_PLACEHOLDER), other).api_key is None
