"""locust-burstgpt: replay the BurstGPT LLM workload trace against OpenAI-compatible servers with Locust.

Importing this package is cheap and does not import Locust (so ``burstgpt inspect`` never
monkey-patches). The Locust classes are loaded on first access, e.g.
``from locust_burstgpt import BurstGPTShape``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> module that defines it; resolved lazily so trace tools stay free of Locust/gevent.
_LAZY = {
    "TraceError": "locust_burstgpt.trace.errors",
    "load_trace": "locust_burstgpt.trace.load",
    "BurstGPTShape": "locust_burstgpt.plugin.shape",
    "BurstGPTUser": "locust_burstgpt.plugin.users",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'locust_burstgpt' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = ["__version__", *_LAZY]
