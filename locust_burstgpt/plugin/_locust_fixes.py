"""Work-arounds for Locust behaviour that breaks an open-loop replay, each measured.

``default_args_dict``: on every spawn message, Locust's worker filters the master's options with
``k not in argument_parser.default_args_dict()`` inside a comprehension over every option
(``runners.py``, WorkerRunner.handle_message), so it builds its whole argument parser once per
option: with this plugin's options about 0.3 s of CPU with the event loop blocked, after every
change of the user count. Every request due in that time was sent late, on every worker, in a
pattern of late sends 0.1-0.4 s after each tick (measured: lateness p99 265 ms with
``--processes 2`` where one process had 2 ms). The defaults cannot change in a running process, so
they are computed once; each call still gets its own copy.
"""

from __future__ import annotations

from typing import Any


def cache_default_args() -> None:
    """Compute Locust's default options once per process (idempotent)."""
    from locust import argument_parser

    original = argument_parser.default_args_dict
    if getattr(original, "burstgpt_cached", False):
        return
    defaults: dict[str, Any] | None = None

    def default_args_dict() -> dict:
        nonlocal defaults
        if defaults is None:
            defaults = original()
        return dict(defaults)

    default_args_dict.burstgpt_cached = True  # type: ignore[attr-defined]
    default_args_dict.__doc__ = original.__doc__
    argument_parser.default_args_dict = default_args_dict
