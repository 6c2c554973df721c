"""Locust glue for locust-burstgpt. Importing this package activates the plugin (its options and
event listeners); the classes here are abstract until a locustfile subclasses them.

Per-request results, for your own code: ``events.burstgpt_request`` fires once per scheduled request
on the process that sent it, with ``result`` (a ``locust_burstgpt.replay.TurnResult``: the trace turn,
the client's record with every timestamp, or why it was not sent) and ``environment``::

    from locust import events

    @events.burstgpt_request.add_listener
    def on_request(result, environment, **kw):
        ...

``state(environment)`` gives the plugin's state for an environment (read it, don't change it); see
docs/architecture.md.
"""

from locust_burstgpt.plugin import _listeners  # noqa: F401  (registers listeners)
from locust_burstgpt.plugin._state import PluginState
from locust_burstgpt.plugin._state import state_of as state
from locust_burstgpt.plugin.shape import BurstGPTShape
from locust_burstgpt.plugin.users import BurstGPTUser

__all__ = ["BurstGPTShape", "BurstGPTUser", "PluginState", "state"]
