"""Arrival fitting recovers a known process: time-of-day rate, day levels and Gamma shape."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from locust_burstgpt.provision.fit import FitOptions, _rank1_poisson, fit_arrivals, fit_trace
from locust_burstgpt.provision.presets import paper_demo
from locust_burstgpt.provision.synth import synthesize, write_trace


def known_model(shape: float, mean_rate: float, levels: list[float]):
    """paper-demo with a day/night profile (busy 08:00-20:00 at 4x the night rate)."""
    params = paper_demo()
    arr = params.classes[0].arrivals
    hours = np.arange(72) / 3
    profile = np.where((hours >= 8) & (hours < 20), 4.0, 1.0)
    profile = profile / profile.mean() * mean_rate
    arr.rate_per_s = [float(r) for r in profile]
    arr.shape = [shape] * 72
    arr.day_levels = levels
    return params, profile


@pytest.mark.parametrize("estimator", ["moments", "mle"])
def test_recovers_profile_levels_and_shape_of_a_gamma_process(tmp_path, estimator):
    levels = [1.2, 1.0, 0.8, 1.1, 0.9, 1.3, 0.7]
    params, profile = known_model(0.5, 0.05, levels)
    trace = synthesize(params, rate=0.05, duration_s=14 * 86400, seed=3)
    path = tmp_path / "known.csv"
    write_trace(trace, path)
    fitted = fit_trace(path, options=FitOptions(shape_estimator=estimator))
    (cls,) = fitted.classes
    rates = np.array(cls.arrivals.rate_per_s, dtype=float)
    assert np.corrcoef(rates, profile)[0, 1] > 0.95
    assert abs(cls.arrivals.mean_rate() / 0.05 - 1) < 0.05
    got_levels = np.array(cls.arrivals.day_levels)
    assert got_levels.size == 14
    want = np.array(levels * 2) / np.mean(levels)
    assert np.max(np.abs(got_levels - want)) < 0.12
    shape = np.median(cls.arrivals.shape)
    assert abs(shape / 0.5 - 1) < 0.2, shape
    assert min(cls.arrivals.gaps) >= 50


def test_whole_second_timestamps_do_not_bias_the_shape(tmp_path):
    """At 1 req/s, a third of 1-s gaps are 0; spreading starts within their second keeps shape ~1."""
    params, _ = known_model(1.0, 0.5, [1.0])
    trace = synthesize(params, rate=1.0, duration_s=86400, seed=9)
    df = pd.DataFrame(
        {
            "Timestamp": np.floor(trace.timestamp),
            "Model": "ChatGPT",
            "Request tokens": 10,
            "Response tokens": 5,
            "Total tokens": 15,
            "Log Type": "API log",
        }
    )
    path = tmp_path / "whole.csv"
    df.to_csv(path, index=False)
    (cls,) = fit_trace(path).classes
    assert (np.diff(df["Timestamp"]) == 0).mean() > 0.25
    assert abs(np.median(cls.arrivals.shape) - 1.0) < 0.15


def test_rank1_poisson_is_exact_on_separable_counts():
    rate = np.array([1.0, 4.0, 2.0, 0.5])
    level = np.array([0.5, 1.5, 1.0])
    exposure = np.full((3, 4), 100.0)
    exposure[0, 0] = 40.0  # a partial first bin
    counts = np.outer(level, rate) * exposure
    got_rate, got_level = _rank1_poisson(counts, exposure)
    assert np.allclose(np.outer(got_level, got_rate) * exposure, counts)
    expected = exposure @ got_rate
    assert np.isclose(got_level @ expected / expected.sum(), 1.0)  # an average day has level 1


def test_partial_window_marks_uncovered_bins():
    starts = np.arange(3600.0, 3 * 3600.0, 30.0)  # a start every 30 s from 01:00 to 03:00
    arr = fit_arrivals(starts, 3000.0, 3 * 3600.0, FitOptions())  # window 00:50-03:00
    rates = arr.rate_per_s
    assert rates[1] is None and rates[9] is None  # 00:20 and 03:00 bins: never observed
    assert arr.exposure_s[2] == 600.0 and rates[2] == 0.0  # 00:50-01:00 observed, empty
    assert all(r is not None for r in rates[3:9])
    assert abs(rates[4] - 1 / 30) < 1e-9
    assert all(
        abs(r - arr.mean_rate()) < 1e-12
        for r, raw in zip(arr.filled_rates(), rates, strict=True)
        if raw is None
    )
    assert np.median(arr.shape) == 100.0  # perfectly regular gaps: the largest shape


def test_too_few_arrivals_fall_back_to_poisson():
    arr = fit_arrivals(np.array([10.0, 500.0, 4000.0]), 0.0, 86400.0, FitOptions())
    assert set(arr.shape) == {1.0}
    assert set(arr.gaps) == {0}
