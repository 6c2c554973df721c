"""Shared fixtures: bundled trace paths and real servers started (and stopped) by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from locust_burstgpt.sim import SimulatorProcess, run_in_thread
from tests.servers.managed import ManagedServer, llamacpp_server, vllm_paths
from tests.servers.managed import vllm_server as make_vllm_server
from tests.servers.recording_proxy import RecordingProxy

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "locust_burstgpt" / "data"
SHARED = ROOT.parent / "shared" / "data" / "burstgpt"
ARTIFACTS = ROOT / "test-artifacts"

BURSTGPT_1_7DAYS = DATA / "BurstGPT_1_first7days_rows0000001-0019431.csv"
BURSTGPT_3_400 = DATA / "BurstGPT_3_first400rows_gitm.csv"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def llama_server(artifacts_dir: Path):
    """A real llama.cpp server (SmolLM2-135M) on a free 127.0.0.1 port for the whole session."""
    server: ManagedServer = llamacpp_server(artifacts_dir / "logs")
    server.start(timeout_s=60)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def vllm_server(artifacts_dir: Path):
    """A real vLLM server (CPU, SmolLM2-135M as ``smollm2``) on a free 127.0.0.1 port.

    ~3.5 GiB RSS: started only by test runs that use it; always stopped with its whole process group.
    """
    server: ManagedServer = make_vllm_server(artifacts_dir / "logs")
    try:
        server.start(timeout_s=300)  # ~20-30 s on an idle 2-core machine; much more under load
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def smollm2_tokenizer_json() -> Path:
    """SmolLM2's tokenizer.json (from the GGUF, written by tests/servers/install_vllm.sh)."""
    path = Path(vllm_paths()["tokenizer_json"])
    if not path.is_file():
        raise RuntimeError(f"{path} missing: rerun `bash tests/servers/install_vllm.sh`")
    return path


@pytest.fixture(scope="module")
def sim_fast():
    """The simulator's ``fast`` profile in a child process, shared by the tests of one module
    (safe next to Locust and gevent; its numbers describe nothing but the simulator)."""
    with SimulatorProcess(profile="fast") as sim:
        yield sim


@pytest.fixture(scope="module")
def sim_fast_thread():
    """The ``fast`` simulator in a thread of the test process, for tests that inspect its insides."""
    handle = run_in_thread(profile="fast")
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture()
def simulator():
    """Start simulators for one test: ``simulator(profile="fast", config={...})`` returns a
    running ``SimulatorProcess``; every one started is stopped when the test ends."""
    started: list[SimulatorProcess] = []

    def start(profile: str = "fast", config: dict | None = None) -> SimulatorProcess:
        sim = SimulatorProcess(profile=profile, config=config).start()
        started.append(sim)
        return sim

    try:
        yield start
    finally:
        for sim in started:
            sim.stop()


@pytest.fixture(scope="module")
def sim_proxy(sim_fast):
    """The simulator's fast profile behind a recording proxy that logs every request it is sent."""
    host, port = sim_fast.base_url.rsplit("//", 1)[1].split(":")
    proxy = RecordingProxy(host, int(port)).start()
    try:
        yield proxy
    finally:
        proxy.stop()


def pytest_collection_finish(session: pytest.Session) -> None:
    """Importing Locust monkey-patches the whole interpreter (gevent), which breaks every test that
    uses threads or asyncio (the simulator, the recording proxy). Tests that need Locust run it in a
    subprocess (tests/plugin_runs.py); fail fast, with the reason, if a test module imported it."""
    import sys

    from gevent import monkey

    if monkey.is_module_patched("socket"):

        def imports_locust(mod: object) -> bool:
            for value in list(getattr(mod, "__dict__", {}).values()):
                origin = getattr(value, "__module__", None) or getattr(value, "__name__", "") or ""
                if isinstance(origin, str) and (
                    origin == "locust" or origin.startswith(("locust.", "locust_burstgpt.plugin"))
                ):
                    return True
            return False

        culprits = [
            name
            for name, mod in list(sys.modules.items())
            if name.startswith("tests.") and imports_locust(mod)
        ]
        raise pytest.UsageError(
            "gevent monkey patching is active after collection (a test module imported locust in-process; "
            f"suspects: {', '.join(culprits) or 'unknown'}). Run Locust in a subprocess instead."
        )
