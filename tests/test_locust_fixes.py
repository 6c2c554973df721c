"""Work-arounds for Locust behaviour that broke the open loop (see plugin/_locust_fixes.py)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.plugin_runs import ROOT

# Locust monkey-patches the interpreter when imported, so this runs in a child process.
CHECK = """
import json
from locust import argument_parser as ap
original = ap.default_args_dict()
builds = []
real = ap.get_empty_argument_parser
ap.get_empty_argument_parser = lambda *a, **k: builds.append(1) or real(*a, **k)
from locust_burstgpt.plugin._locust_fixes import cache_default_args
cache_default_args()
cache_default_args()  # idempotent
# what Locust's worker does with a spawn message: one lookup per option of the master's
options = {f"opt_{i}": i for i in range(100)}
kept = {k: v for k, v in options.items() if k not in ap.default_args_dict()}
first = ap.default_args_dict()
first["host"] = "changed by a caller"
print(json.dumps({"builds": len(builds), "same": ap.default_args_dict() == original,
                  "kept": len(kept)}))
"""


def test_the_default_options_are_computed_once_per_process():
    out = subprocess.run(
        [sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    # one parser built for 102 calls (Locust's comprehension built one per call); the same answer,
    # and a caller changing its copy changes nothing for the next
    assert got == {"builds": 1, "same": True, "kept": 100}
