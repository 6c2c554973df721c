"""BurstGPTUser: a Locust user that replays BurstGPT conversations, one at a time.

A user takes the next conversation the process's dispatcher released and holds it from its first
turn's submission to its last turn's completion, as the concurrency curve counts it. The HTTP work
runs in a greenlet the dispatcher owns (see ``replay.dispatcher``), so removing users never loses a
request.
"""

from __future__ import annotations

from locust import User, constant, task
from locust.exception import StopUser

from locust_burstgpt.plugin._state import state_of


class BurstGPTUser(User):
    """Abstract base: a locustfile declares ``class Replay(BurstGPTUser): pass`` to activate it.

    Customising: set ``extra_headers`` (sent with every request) or override the classmethod
    ``prepare_request(body)`` to change each JSON body before it is sent (e.g. add sampling fields).
    The first active subclass's settings apply to the whole process. Every request's result is
    also an event: ``events.burstgpt_request`` (see ``locust_burstgpt.plugin``).
    """

    abstract = True
    wait_time = constant(0)
    extra_headers: dict[str, str] = {}

    @classmethod
    def prepare_request(cls, body: dict) -> dict:
        """Hook: return the body to send (default: unchanged)."""
        return body

    _idle = False  # waiting for a conversation: holds nothing

    def stop(self, force: bool = False) -> bool:
        """Locust's stop; a user that waits for a conversation stops at once even when Locust would
        let it finish its task (``--stop-timeout``): there is nothing to finish."""
        return super().stop(force=force or self._idle)

    @task
    def replay_conversation(self) -> None:
        role = state_of(self.environment).sending
        if role is None:
            raise StopUser()
        if role.replay is None:
            # the replay is built in test_start; a user spawned before it has nothing to replay yet
            if not role.replay_ready.wait(timeout=5):
                return
            if role.replay is None:
                raise StopUser()
        dispatcher = role.replay.dispatcher
        # blocks without a timeout: a pool sized for a slow trace can hold hundreds of idle users,
        # and waking each of them every second only to wait again costs CPU the replay needs
        self._idle = True
        try:
            state = dispatcher.take()
        finally:
            self._idle = False
        if state is None:
            return
        dispatcher.run_for_user(state)
