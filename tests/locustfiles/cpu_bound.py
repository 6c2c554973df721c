"""A locustfile whose load process is CPU-bound: every request costs BURSTGPT_TEST_BURN_S seconds
of busy CPU in the request hook, blocking the event loop (a stand-in for a generator that is
asked for more than one core can do)."""

import os
import time

from locust_burstgpt.plugin import BurstGPTShape, BurstGPTUser

BURN_S = float(os.environ.get("BURSTGPT_TEST_BURN_S", "0.06"))


class CpuBoundUser(BurstGPTUser):
    @classmethod
    def prepare_request(cls, body: dict) -> dict:
        end = time.perf_counter() + BURN_S
        while time.perf_counter() < end:
            pass
        return body


class Shape(BurstGPTShape):
    pass
