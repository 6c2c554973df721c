"""Locust's events, routed to this process's role (``_state.PluginState.role``).

Importing this module registers the listeners on ``locust.events`` and adds the plugin's own event,
``events.burstgpt_request``, fired once per scheduled request on the process that sent it (or did not
send it) with ``result`` (``replay.TurnResult``) and ``environment``.
"""

from __future__ import annotations

import logging
from typing import Any

from locust import events
from locust.event import EventHook

from locust_burstgpt import options
from locust_burstgpt.plugin._locust_fixes import cache_default_args
from locust_burstgpt.plugin._roles import exit_on_bad_options
from locust_burstgpt.plugin._state import state_of
from locust_burstgpt.settings import OptionError
from locust_burstgpt.trace import TraceError

log = logging.getLogger("locust_burstgpt")

if not hasattr(events, "burstgpt_request"):
    events.burstgpt_request = EventHook()


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_kw: Any) -> None:
    options.add_to_parser(parser)


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    cache_default_args()
    if not hasattr(environment.events, "burstgpt_request"):  # an Environment with its own Events
        environment.events.burstgpt_request = EventHook()
    state = state_of(environment)
    role = state.role
    role.init()
    if state.reporting is None or environment.parsed_options is None:
        return  # a worker loads its options at test_start; a bare Environment has none
    try:
        state.source.ensure(environment.parsed_options)
    except (OptionError, TraceError) as e:
        exit_on_bad_options(str(e))
    state.simulator.ensure_host(environment, state.source.settings.sim_profile)
    if getattr(environment.parsed_options, "run_time", None):
        log.info(
            "locust-burstgpt applies --run-time itself: the test ends at the window's end or after "
            "%s s, whichever comes first",
            environment.parsed_options.run_time,
        )
    from locust_burstgpt.plugin import webui

    webui.install(environment)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_kw: Any) -> None:
    state_of(environment).role.test_start()


@events.test_stopping.add_listener
def _on_test_stopping(environment: Any, **_kw: Any) -> None:
    state_of(environment).role.test_stopping()


@events.test_stop.add_listener
def _on_test_stop(environment: Any, **_kw: Any) -> None:
    state_of(environment).role.test_stop()


@events.quitting.add_listener
def _on_quitting(environment: Any, **_kw: Any) -> None:
    state_of(environment).simulator.stop()
