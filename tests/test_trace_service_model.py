"""The service-time estimate used when a trace has no Elapsed time column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from locust_burstgpt.trace import load_trace
from locust_burstgpt.trace.service_model import COEFFICIENTS, estimate, fit, unknown_models
from tests.conftest import BURSTGPT_3_400
from tests.trace_support import read_plain


def test_stored_coefficients_are_the_least_squares_fit_of_the_bundled_burstgpt3_rows():
    # Independent fit with numpy.polyfit on rows read by the csv module.
    rows = [r for r in read_plain(BURSTGPT_3_400) if r.resp > 0]
    for model in ("ChatGPT", "GPT-4"):
        mine = [r for r in rows if r.model == model]
        b, a = np.polyfit([r.resp for r in mine], [r.elapsed for r in mine], 1)
        assert COEFFICIENTS[model] == pytest.approx((a, b), rel=1e-6)
    refit = fit(load_trace(BURSTGPT_3_400).df)
    assert set(refit) == set(COEFFICIENTS)
    for model, coef in refit.items():
        assert coef == pytest.approx(COEFFICIENTS[model], rel=1e-6)


def test_estimate_is_per_model_with_a_fallback():
    models = pd.Categorical(["ChatGPT", "GPT-4", "gpt-4o", "ChatGPT"])
    got = estimate(models, np.array([100, 100, 100, 0]))
    a1, b1 = COEFFICIENTS["ChatGPT"]
    a2, b2 = COEFFICIENTS["GPT-4"]
    assert got.tolist() == pytest.approx([a1 + 100 * b1, a2 + 100 * b2, a1 + 100 * b1, a1])
    assert unknown_models(models) == ["gpt-4o"]


def test_estimate_tracks_recorded_elapsed_on_average():
    df = load_trace(BURSTGPT_3_400).df
    ok = df[df["response_tokens"] > 0]
    est = estimate(ok["model"].array, ok["response_tokens"].to_numpy())
    # least squares with an intercept reproduces the mean of each model's recorded time
    for model in ("ChatGPT", "GPT-4"):
        sel = (ok["model"] == model).to_numpy()
        assert est[sel].mean() == pytest.approx(ok["elapsed"].to_numpy()[sel].mean(), rel=1e-6)
