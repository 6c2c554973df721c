"""The books travel from workers to the master as dicts and are summed there, per class too."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from locust_burstgpt.replay import Ledger


def test_ledger_round_trip_and_sum_keep_sends_per_class() -> None:
    a = Ledger(
        scheduled=5,
        sent=3,
        outcomes=Counter(ok=3),
        not_sent=Counter(window_ended=2),
        sent_by_class=Counter({"ChatGPT conversation": 2, "GPT-4 API": 1}),
    )
    b = Ledger.from_dict(json.loads(json.dumps(a.to_dict())))
    assert b == a
    total = a.add(
        Ledger(scheduled=1, sent=1, outcomes=Counter(ok=1), sent_by_class=Counter({"GPT-4 API": 1}))
    )
    assert total.sent_by_class == Counter({"ChatGPT conversation": 2, "GPT-4 API": 2})
    assert sum(total.sent_by_class.values()) == total.sent and total.balances()
    assert Ledger.from_dict({"scheduled": 1}).sent_by_class == Counter()  # an older worker's books


def test_not_sent_reasons_are_checked() -> None:
    led = Ledger(scheduled=3)
    led.count_not_sent("prompt_failed")
    led.count_not_sent("window_ended", 2)
    assert led.not_sent == Counter(prompt_failed=1, window_ended=2) and led.balances()
    with pytest.raises(ValueError, match="unknown not-sent reason 'windowended'"):
        led.count_not_sent("windowended")
