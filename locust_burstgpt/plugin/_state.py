"""The plugin's state for one Locust environment, held on the environment (``environment.burstgpt``).

Why on the environment and not in a module: Locust's own idiom (runtime state hangs on the
``Environment``), and one interpreter may hold several environments (tests, or a library user).
"""

from __future__ import annotations

from typing import Any

from locust_burstgpt.plugin._roles import ReportingRole, Role, SendingRole
from locust_burstgpt.plugin._simulator import EmbeddedSimulator
from locust_burstgpt.plugin._workload import WorkloadSource
from locust_burstgpt.replay import RequestHooks

ATTRIBUTE = "burstgpt"


class PluginState:
    """Options and workload, the embedded simulator, the user class's hooks, and this process's role."""

    def __init__(self, environment: Any) -> None:
        self.environment = environment
        self.secrets: dict[str, str] = {}  # real values of secret options (the web UI masks them)
        self.source = WorkloadSource(self.secrets)
        self.simulator = EmbeddedSimulator()
        self._role: Role | None = None

    @property
    def role(self) -> Role:
        """This process's role, by its runner (a ``LocalRole`` while there is no runner)."""
        if self._role is None:
            from locust.runners import MasterRunner, WorkerRunner

            from locust_burstgpt.plugin._local import LocalRole
            from locust_burstgpt.plugin._master import MasterRole
            from locust_burstgpt.plugin._worker import WorkerRole

            runner = self.environment.runner
            if isinstance(runner, MasterRunner):
                self._role = MasterRole(self)
            elif isinstance(runner, WorkerRunner):
                self._role = WorkerRole(self)
            else:
                self._role = LocalRole(self)
        return self._role

    @property
    def reporting(self) -> ReportingRole | None:
        """The role that reports the run (local or master), None on a worker."""
        role = self.role
        return role if isinstance(role, ReportingRole) else None

    @property
    def sending(self) -> SendingRole | None:
        """The role that sends (local or worker), None on a master."""
        role = self.role
        return role if isinstance(role, SendingRole) else None

    def user_class(self) -> Any:
        """The first active ``BurstGPTUser`` subclass (its hooks apply to the whole process)."""
        from locust_burstgpt.plugin.users import BurstGPTUser

        classes = getattr(self.environment, "user_classes", None) or []
        return next((c for c in classes if issubclass(c, BurstGPTUser)), None)

    def request_hooks(self) -> RequestHooks:
        cls = self.user_class()
        if cls is None:
            return RequestHooks()
        return RequestHooks(
            extra_headers=dict(getattr(cls, "extra_headers", None) or {}),
            prepare_request=getattr(cls, "prepare_request", None),
        )


def state_of(environment: Any) -> PluginState:
    """The plugin's state for ``environment`` (made on first use)."""
    state = getattr(environment, ATTRIBUTE, None)
    if state is None:
        state = PluginState(environment)
        setattr(environment, ATTRIBUTE, state)
    return state
