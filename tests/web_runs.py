"""Run Locust with its web UI in a subprocess (autostarted, bound to 127.0.0.1) and read its pages."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tests.plugin_runs import INSTRUMENTED, ROOT
from tests.support import wait_until


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebRun:
    """``locust --autostart --autoquit N`` with the web UI on a free port; output goes to ``log``."""

    def __init__(
        self,
        tmp: Path,
        host: str,
        *args: str,
        locustfile: Path = INSTRUMENTED,
        autoquit_s: int = 5,
        env: dict | None = None,
    ) -> None:
        self.port = free_port()
        self.log = tmp / "locust.log"
        self._out = open(self.log, "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "locust",
                "-f",
                str(locustfile),
                "--autostart",
                "--autoquit",
                str(autoquit_s),
                "--web-host",
                "127.0.0.1",
                "--web-port",
                str(self.port),
                "--host",
                host,
                "--loglevel",
                "INFO",
                *args,
            ],
            cwd=ROOT,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env={
                **os.environ,
                "PYTHONUNBUFFERED": "1",
                "BURSTGPT_TEST_DUMP": str(tmp / "dump"),
                **(env or {}),
            },
        )

    def get(self, path: str, timeout: float = 10.0) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}{path}", timeout=timeout
            ) as resp:
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode("utf-8", "replace")

    def wait_until(self, predicate, timeout: float, what: str) -> None:
        """Poll ``predicate()`` (page reads may fail while the UI starts) until true, or fail,
        at once if Locust exited first."""

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"locust exited ({self.proc.returncode}) before {what}:\n{self.output()[-3000:]}"
                )
            return bool(predicate())

        try:
            wait_until(ready, timeout, what, interval=0.2, ignore=(OSError, ValueError))
        except AssertionError as e:
            if "timed out" not in str(e):
                raise
            raise AssertionError(f"{e}:\n{self.output()[-3000:]}") from None

    def wait(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)
        self._out.close()

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")
