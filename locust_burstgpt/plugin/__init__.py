"""Locust glue for locust-burstgpt. Importing this package activates the plugin (its options and
event listeners); the classes here are abstract until a locustfile subclasses them."""

from locust_burstgpt.plugin import lifecycle as _lifecycle  # noqa: F401  (registers listeners)
from locust_burstgpt.plugin.shape import BurstGPTShape
from locust_burstgpt.plugin.users import BurstGPTUser

__all__ = ["BurstGPTShape", "BurstGPTUser"]
