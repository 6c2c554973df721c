"""The embedded simulator: started when no ``--host`` is given, stopped when Locust quits."""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("locust_burstgpt")


class EmbeddedSimulator:
    """At most one simulator child process per Locust process (the master's, or the only one)."""

    def __init__(self) -> None:
        self.process: Any = None  # sim.SimulatorProcess

    def ensure_host(self, environment: Any, profile: str | None) -> None:
        """No ``--host``: start the simulator and point the run at it."""
        if environment.host:
            return
        from locust_burstgpt.sim import DEMO_PROFILE, SimulatorProcess

        profile = profile or DEMO_PROFILE
        self.process = SimulatorProcess(profile=profile).start()
        environment.host = self.process.base_url
        log.info(
            "No --host given: running against the embedded LLM server simulator (profile %s) at %s. "
            "Numbers describe the simulator, not a real GPU server.",
            profile,
            self.process.base_url,
        )

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None
