"""ExactHistogram: percentiles within 0.05 ms of NumPy's, bounded memory, lossless merging."""

from __future__ import annotations

import json

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locust_burstgpt.metrics import PERCENTILES, ExactHistogram

HALF_RES = 0.5e-4 + 1e-12  # rounding to the nearest 0.1 ms moves a value by at most 0.05 ms


def numpy_percentiles(x: np.ndarray, qs=PERCENTILES) -> dict[float, float]:
    return {q: float(np.percentile(x, q)) for q in qs}


@pytest.mark.parametrize("dist", ["lognormal", "itl", "bimodal", "negative"])
def test_percentiles_match_numpy_within_half_resolution(dist: str) -> None:
    rng = np.random.default_rng(42)
    x = {
        "lognormal": rng.lognormal(-1.0, 1.5, 200_001),  # TTFT/E2E-like, up to minutes
        "itl": rng.gamma(4.0, 0.005, 300_000),  # ITL-like, milliseconds
        "bimodal": np.concatenate([rng.normal(0.02, 0.001, 5000), rng.normal(30.0, 2.0, 50)]),
        "negative": rng.normal(0.0, 0.002, 10_000),  # lateness can be slightly negative
    }[dist]
    h = ExactHistogram()
    h.add_many(x.tolist())
    qs = (0.0, 1.0, 25.0, *PERCENTILES, 100.0)
    got = h.percentiles(qs)
    want = numpy_percentiles(x, qs)
    for q in qs:
        assert abs(got[q] - want[q]) <= HALF_RES, (q, got[q], want[q])
    assert h.count == len(x) and h.mean == pytest.approx(float(x.mean()), rel=1e-9)
    assert h.min == float(x.min()) and h.max == float(x.max())  # extremes are exact


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(min_value=-5.0, max_value=500.0, allow_nan=False), min_size=1, max_size=300),
    st.floats(min_value=0.0, max_value=100.0),
)
def test_any_sample_any_percentile(values: list[float], q: float) -> None:
    h = ExactHistogram()
    h.add_many(values)
    want = float(np.percentile(np.array(values), q))
    assert abs(h.percentile(q) - want) <= HALF_RES + 1e-9 * max(1.0, abs(want))


def test_memory_is_bounded_by_distinct_bins_not_samples() -> None:
    rng = np.random.default_rng(0)
    h = ExactHistogram()
    h.add_many(rng.uniform(0.0, 0.5, 1_000_000).tolist())  # 0..500 ms: at most 5,001 bins
    assert h.count == 1_000_000
    assert h.distinct <= 5001
    assert len(json.dumps(h.to_dict())) < 60_000  # what a worker sends to the master


def test_merge_equals_one_histogram_of_everything() -> None:
    rng = np.random.default_rng(7)
    parts = [rng.exponential(0.05 * (i + 1), 20_000) for i in range(4)]
    merged = ExactHistogram()
    for p in parts:
        h = ExactHistogram()
        h.add_many(p.tolist())
        # through msgpack, as worker reports travel
        merged.merge(msgpack.unpackb(msgpack.packb(h.to_dict())))
    whole = ExactHistogram()
    whole.add_many(np.concatenate(parts).tolist())
    assert merged.to_dict()["k"] == whole.to_dict()["k"]
    assert merged.to_dict()["c"] == whole.to_dict()["c"]
    assert merged.percentiles() == whole.percentiles()
    assert merged.count == whole.count and merged.total == pytest.approx(whole.total)


def test_round_trip_and_errors() -> None:
    h = ExactHistogram()
    h.add_many([0.1, 0.2, -0.003, 7.5])
    again = ExactHistogram.from_dict(json.loads(json.dumps(h.to_dict())))
    assert again.percentiles() == h.percentiles() and again.min == -0.003 and again.max == 7.5
    assert ExactHistogram().percentile(50) is None
    assert ExactHistogram.from_dict(ExactHistogram().to_dict()).count == 0
    with pytest.raises(ValueError, match="non-finite"):
        h.add(float("nan"))
    with pytest.raises(ValueError, match="0..100"):
        h.percentile(101)
    with pytest.raises(ValueError, match="not a serialized"):
        ExactHistogram.from_dict(
            {"res": 1e-4, "n": 5, "sum": 0, "min": 0, "max": 0, "k": [1], "c": [1]}
        )
    with pytest.raises(ValueError, match="resolution"):
        ExactHistogram(1e-4).merge(
            ExactHistogram(1e-3).to_dict()
            | {"n": 1, "k": [1], "c": [1], "min": 0.001, "max": 0.001, "sum": 0.001}
        )


def test_locust_rounding_would_fail_this() -> None:
    """The reason for this module: sub-millisecond ITLs keep their values here."""
    h = ExactHistogram()
    h.add_many([0.00031, 0.00042, 0.00044, 0.00058, 0.00069])
    assert h.percentile(50) == pytest.approx(0.00044, abs=0.5e-4)
    assert h.percentile(100) == 0.00069


def test_add_array_fills_the_same_bins_as_add():
    rng = np.random.default_rng(3)
    values = np.concatenate(
        [rng.exponential(0.01, 5000), rng.uniform(0, 30, 500), [0.0, 0.00005, 0.00015]]
    )
    one, many = ExactHistogram(), ExactHistogram()
    for v in values:
        one.add(float(v))
    many.add_array(values)
    assert many._counts == one._counts
    assert (many.count, many.min, many.max) == (one.count, one.min, one.max)
    assert many.total == pytest.approx(one.total, rel=1e-12)
    assert many.percentiles() == one.percentiles()
    with pytest.raises(ValueError, match="non-finite"):
        many.add_array(np.array([0.1, np.nan]))
    assert many.count == one.count  # a rejected array records nothing
