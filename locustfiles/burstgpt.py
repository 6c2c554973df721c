"""Replay BurstGPT against an OpenAI-compatible server:

    locust -f locustfiles/burstgpt.py --host http://127.0.0.1:8000      # web UI
    locust -f locustfiles/burstgpt.py --headless                        # embedded simulator

Options: `burstgpt options` or `locust -f locustfiles/burstgpt.py --burstgpt-help`.
"""

from locust_burstgpt.plugin import BurstGPTShape, BurstGPTUser


class BurstGPTReplayUser(BurstGPTUser):
    """Replays BurstGPT conversations turn by turn (see locust_burstgpt.plugin.users)."""


class BurstGPTConcurrencyShape(BurstGPTShape):
    """User count follows the trace's per-second concurrency curve."""
