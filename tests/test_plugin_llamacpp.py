"""Headless replay of the genuine BurstGPT_3 slice against a real llama.cpp server (SmolLM2-135M)."""

from __future__ import annotations

import pytest

from tests.plugin_runs import run_locust

pytestmark = pytest.mark.llamacpp


def test_sixty_second_replay_against_llamacpp(llama_server, tmp_path):
    # The slice's busiest hour at 60x is 60 s of replay; thinned to a quarter of its conversations so
    # the 135M model on one CPU thread (about 200 output tokens/s) can keep up with most of it.
    run = run_locust(
        tmp_path, llama_server.base_url,
        "--burstgpt-window", "busiest:1h", "--burstgpt-speedup", "60", "--burstgpt-rate-scale", "0.25",
        "--burstgpt-report", str(tmp_path / "report"), "--burstgpt-drain-timeout", "60",
        timeout=300,
    )
    assert run.returncode == 0, run.output[-4000:]
    local = run.by_role("local")[0]
    ledger = local["ledger"]
    # every scheduled request is accounted: sent (with one outcome) or not sent (with a reason)
    assert ledger["scheduled"] == ledger["sent"] + sum(ledger["not_sent"].values())
    assert ledger["sent"] == sum(ledger["outcomes"].values())
    assert set(ledger["not_sent"]) <= {"window_ended"}
    ok = [r for r in run.records if r["outcome"] == "ok"]
    assert len(ok) >= 10 and len(ok) == ledger["outcomes"].get("ok", 0)
    assert "Prompt token counting: server" in run.output  # llama.cpp's own /tokenize
    exact_prompt = sum(r["prompt_tokens"] == r["prompt_target"] for r in ok) / len(ok)
    assert exact_prompt >= 0.99, [(r["prompt_tokens"], r["prompt_target"]) for r in ok
                                  if r["prompt_tokens"] != r["prompt_target"]]
    assert all(r["completion_tokens"] == r["output_target"] for r in ok)
    assert (tmp_path / "report" / "summary.json").exists()
