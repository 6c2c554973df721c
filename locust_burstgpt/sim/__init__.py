"""The embedded OpenAI-compatible LLM server simulator (continuous batching, faults, vLLM metrics).

Public API::

    from locust_burstgpt.sim import SimulatorProcess, SimConfig, load_profile, run_in_thread

    with SimulatorProcess(profile="fast") as sim:      # a child process; safe under gevent
        sim.base_url                                   # "http://127.0.0.1:<port>", healthy
    handle = run_in_thread(profile="fast")             # in-process, for non-gevent tests
    handle.base_url; handle.stop()

The scheduling model itself (``engine``) is pure and can be replayed in virtual time
(``virtual.replay``).
"""

from __future__ import annotations

from locust_burstgpt.sim.config import SimConfig
from locust_burstgpt.sim.launch import SimulatorProcess, ThreadedSimulator, run_in_thread
from locust_burstgpt.sim.profiles import (
    DEFAULT_PROFILE,
    DEMO_PROFILE,
    PROFILES,
    Profile,
    load_profile,
)

__all__ = [
    "DEFAULT_PROFILE",
    "DEMO_PROFILE",
    "PROFILES",
    "Profile",
    "SimConfig",
    "SimulatorProcess",
    "ThreadedSimulator",
    "load_profile",
    "run_in_thread",
]
