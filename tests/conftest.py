"""Shared fixtures: bundled trace paths and real servers started (and stopped) by the tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.servers.managed import ManagedServer, llamacpp_server

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
