"""The heap-reuse helper is re-entrant and leaves no state behind; results do not depend on it."""

from __future__ import annotations

import numpy as np

from locust_burstgpt.trace import heap, load_trace, prepare
from tests.conftest import BURSTGPT_3_400


def test_nested_use_restores_state():
    with heap.reuse_freed_memory():
        with heap.reuse_freed_memory():
            assert heap._depth == (2 if heap._LIBC is not None else 0)
        a = np.ones(5_000_000)
        assert a.sum() == 5_000_000
    assert heap._depth == 0


def test_prepare_gives_the_same_curves_with_heap_reuse():
    raw = load_trace(BURSTGPT_3_400)
    plain = prepare(raw, window="busiest:1h", speedup=2.5)
    with heap.reuse_freed_memory():
        reused = prepare(raw, window="busiest:1h", speedup=2.5)
    for name in ("concurrency", "arrivals", "in_flight"):
        assert np.array_equal(getattr(plain.curves, name), getattr(reused.curves, name))
