"""A custom locustfile: subclass the plugin's user to add a header and sampling fields.

    locust -f examples/custom_user.py --host http://127.0.0.1:8000 --headless

The plugin's options (``burstgpt options``) work unchanged.
"""

from locust_burstgpt.plugin import BurstGPTShape, BurstGPTUser


class TaggedReplayUser(BurstGPTUser):
    # sent with every request, e.g. for routing or tenant accounting on a gateway
    extra_headers = {"X-Tenant": "load-test"}

    @classmethod
    def prepare_request(cls, body: dict) -> dict:
        # every request body passes through here just before it is sent
        return {**body, "temperature": 0.7, "top_p": 0.95}


class Shape(BurstGPTShape):
    pass
