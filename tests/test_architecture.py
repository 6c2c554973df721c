"""The layering holds: the replay core imports no Locust, and the package has no import cycle.

Why a test: both are easy to break by one import line, and both matter. The core is driven in-process
by tests and tools without Locust's monkey patching, and a cycle makes import order decide what works.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "locust_burstgpt"

CORE = [
    "locust_burstgpt.replay",
    "locust_burstgpt.trace",
    "locust_burstgpt.client",
    "locust_burstgpt.client.sidechannel",
    "locust_burstgpt.prompts",
    "locust_burstgpt.metrics",
    "locust_burstgpt.report.run_report",
    "locust_burstgpt.report.timeline",
    "locust_burstgpt.report.compare",
    "locust_burstgpt.generator_health",
    "locust_burstgpt.settings",
    "locust_burstgpt.sim",
]


def test_the_replay_core_imports_no_locust() -> None:
    code = (
        "import importlib, json, sys\n"
        f"for name in {CORE!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(m for m in sys.modules if m == 'locust' or m.startswith('locust.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports_at_load(path: Path, name: str) -> set[str]:
    """Modules of the package that ``path`` imports when it is loaded (module level, outside
    ``if TYPE_CHECKING:``); imports inside functions run later and cannot form a load-time cycle."""
    tree = ast.parse(path.read_text())
    is_package = path.name == "__init__.py"
    out: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If):
                test = node.test
                if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                    visit(node.orelse)
                    continue
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".")
                    base = base if is_package else base[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    mod = ".".join(base + ([node.module] if node.module else []))
                else:
                    mod = node.module or ""
                out.add(mod)
                out.update(f"{mod}.{a.name}" for a in node.names)

    visit(tree.body)
    return {m for m in out if m.startswith("locust_burstgpt")}


def test_no_import_cycle() -> None:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    # an edge to an ancestor package is no edge: Python loads a package before its submodules, so
    # ``from . import sibling`` only needs the package object, which exists
    graph = {
        name: {
            m
            for m in _imports_at_load(path, name)
            if m in files and m != name and not name.startswith(m + ".")
        }
        for name, path in files.items()
    }
    cycles = []
    state: dict[str, int] = {}

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                walk(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [])
    assert cycles == [], "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)
