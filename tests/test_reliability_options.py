"""Every invalid ``--burstgpt-*`` value: one clear line naming the option, exit code 2, no traceback,
and nothing sent anywhere (the error comes before any load starts)."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.plugin_runs import ROOT
from tests.servers.misbehaving import MisbehavingServer

LOCUSTFILE = ROOT / "locustfiles" / "burstgpt.py"

# option -> invalid values (each gets its own run)
INVALID: dict[str, list[str]] = {
    "--burstgpt-trace": ["/nonexistent/trace.csv", "{dir}"],
    "--burstgpt-window": ["busiest:soon", "0+0s", "d9+25:00+1h"],
    "--burstgpt-models": ["NoSuchModel"],
    "--burstgpt-log-types": ["bogus"],
    "--burstgpt-failed": ["maybe"],
    "--burstgpt-speedup": ["-3", "0", "abc", "nan", "inf"],
    "--burstgpt-rate-scale": ["0", "-1"],
    "--burstgpt-headroom": ["0.5", "x"],
    "--burstgpt-arrival": ["sometimes"],
    "--burstgpt-endpoint": ["embeddings"],
    "--burstgpt-model-map": ["ChatGPT", "=x", "ChatGPT="],
    "--burstgpt-tokenizer": ["magic", "local:/nonexistent/tokenizer.json"],
    "--burstgpt-server-kind": ["tgi"],
    "--burstgpt-transport": ["curl"],
    "--burstgpt-connect-timeout": ["-1"],
    "--burstgpt-ttft-timeout": ["0"],
    "--burstgpt-idle-timeout": ["soon"],
    "--burstgpt-drain-timeout": ["-5"],
    "--burstgpt-retry": ["-1", "99", "twice"],
    "--burstgpt-reassign-lost": ["=yes"],
    "--burstgpt-strict-curve": ["=yes"],
    "--burstgpt-overrun": ["-1", "soon", "nan"],
    "--burstgpt-api-key": ["bad key\x01"],
    "--burstgpt-insecure": ["=1"],
    "--burstgpt-seed": ["abc"],
    "--burstgpt-sim-profile": ["nosuch"],
    "--burstgpt-server-metrics": ["ftp://127.0.0.1/metrics"],
    "--burstgpt-report": ["{file}"],
    "--burstgpt-slo": ["ttft_p99<=banana", "speed>=3"],
}
NEEDS_NO_HOST = {"--burstgpt-sim-profile"}  # only read when the embedded simulator starts


def _cases() -> list[tuple[str, str]]:
    return [(flag, value) for flag, values in INVALID.items() for value in values]


def test_every_option_has_invalid_cases():
    """A new option must come with invalid values here."""
    from locust_burstgpt.options import OPTIONS

    assert {o.flag for o in OPTIONS} == set(INVALID)


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> dict[tuple[str, str], tuple[int, str, list]]:
    tmp = tmp_path_factory.mktemp("options")
    (tmp / "a_file").write_text("not a directory\n")
    (tmp / "a_dir").mkdir()

    def run(case: tuple[str, str]) -> tuple[tuple[str, str], tuple[int, str, list]]:
        flag, value = case
        value = value.format(dir=tmp / "a_dir", file=tmp / "a_file")
        arg = [flag + value] if value.startswith("=") else [flag, value]
        with MisbehavingServer() as server:  # answers anything; must see nothing
            host = [] if flag in NEEDS_NO_HOST else ["--host", server.base_url]
            proc = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "locust",
                    "-f",
                    str(LOCUSTFILE),
                    "--headless",
                    "--only-summary",
                    *host,
                    "--burstgpt-window",
                    "busiest:10m",
                    "--burstgpt-speedup",
                    "60",
                    *arg,
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            seen = list(server.seen)
        return case, (proc.returncode, proc.stdout + proc.stderr, seen)

    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(pool.map(run, _cases()))


@pytest.mark.parametrize("flag,value", _cases())
def test_invalid_value_gives_one_clear_line_and_exit_2(results, flag, value):
    code, output, seen = results[(flag, value)]
    assert code == 2, output[-2000:]
    assert "Traceback" not in output, output[-3000:]
    named = [line for line in output.splitlines() if flag in line and ("error" in line.lower())]
    assert len(named) == 1, output[-3000:]
    assert "Starting Locust" not in output or "Shape test starting" not in output, output[-3000:]
    assert seen == [], f"requests reached the server: {[a.path for a in seen]}"
