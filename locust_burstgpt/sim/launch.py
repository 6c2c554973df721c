"""Start the simulator: as a child process (``SimulatorProcess``), in a thread, or as a program.

Why it exists: the Locust plugin runs under gevent monkey-patching, where an asyncio server in
the same process would fight the gevent hub; so it starts the simulator as a separate Python
process, learns its port from the one line the child prints, waits for ``/health``, and makes
sure the child never outlives it (the child exits when its stdin reaches EOF, i.e. when the
parent closes it or dies, and when its parent process id changes). Tests that are not
monkey-patched can use ``run_in_thread`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from locust_burstgpt.sim.config import SimConfig
from locust_burstgpt.sim.runtime import SimServer, new_event_loop

_URL_RE = re.compile(r"(http://[^\s]+)")
BANNER = "burstgpt-sim listening on {url} profile={profile} model={model} pid={pid}"


def _wait_healthy(base_url: str, deadline: float, alive: Any = None) -> None:
    last: Exception | None = None
    while time.monotonic() < deadline:
        if alive is not None and not alive():
            raise RuntimeError("simulator process exited before it became healthy")
        try:
            with urllib.request.urlopen(base_url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError as e:
            last = e
        time.sleep(0.05)
    raise RuntimeError(f"simulator at {base_url} not healthy in time (last error: {last})")


class SimulatorProcess:
    """The simulator in a child process; use as a context manager.

    ``profile`` names the base profile, ``config`` is a dict or a JSON/TOML file path (see
    ``SimConfig``). ``base_url`` is set and ``/health`` answers when ``start``/``__enter__`` returns.
    """

    def __init__(
        self,
        profile: str | None = "fast",
        config: Mapping[str, Any] | str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        loop: str = "auto",
        startup_timeout: float = 30.0,
        log_file: str | Path | None = None,
    ) -> None:
        self.config = SimConfig.load(
            profile, config
        )  # fail here, with the file named, not in the child
        self.profile = self.config.profile.name
        self.host = host
        self.port = port
        self.loop = loop
        self.startup_timeout = startup_timeout
        self.log_file = log_file
        self._config_arg = config
        self._profile_arg = profile
        self.proc: subprocess.Popen[bytes] | None = None
        self.base_url = ""
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "locust_burstgpt.sim",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--loop",
            self.loop,
            "--watch-parent",
        ]
        if self._profile_arg:
            cmd += ["--profile", self._profile_arg]
        if isinstance(self._config_arg, Mapping):
            cmd += ["--config-json", json.dumps(self._config_arg)]
        elif self._config_arg is not None:
            cmd += ["--config", str(self._config_arg)]
        return cmd

    def start(self) -> SimulatorProcess:
        if self.proc is not None:
            raise RuntimeError("simulator already started")
        stderr: Any = None
        if self.log_file is not None:
            self._log = open(self.log_file, "ab")
            stderr = self._log
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            close_fds=True,
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + self.startup_timeout
        try:
            line = self._read_banner(deadline)
            m = _URL_RE.search(line)
            if m is None:
                raise RuntimeError(f"unexpected first line from the simulator: {line!r}")
            self.base_url = m.group(1)
            self.port = int(self.base_url.rsplit(":", 1)[1])
            _wait_healthy(
                self.base_url,
                deadline,
                alive=lambda: self.proc is not None and self.proc.poll() is None,
            )
        except BaseException:
            self.stop()
            raise
        return self

    def _read_banner(self, deadline: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        data = b""
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(
                    f"simulator did not report its address within {self.startup_timeout}s"
                )
            ready, _, _ = select.select([fd], [], [], min(left, 0.5))
            if not ready:
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        f"simulator exited with code {self.proc.returncode} before starting"
                    )
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                self.proc.wait(timeout=5)
                raise RuntimeError(
                    f"simulator exited with code {self.proc.returncode} before starting"
                )
            data += chunk
        return data.split(b"\n", 1)[0].decode("utf-8", "replace")

    def stop(self, timeout: float = 10.0) -> None:
        """Ask the child to exit (stdin EOF), then terminate, then kill; idempotent."""
        proc = self.proc
        if proc is not None:
            try:
                atexit.unregister(self.stop)
            except Exception:
                pass
            if proc.poll() is None:
                try:
                    if proc.stdin is not None:
                        proc.stdin.close()
                except OSError:
                    pass
                try:
                    proc.wait(timeout=timeout / 2)
                except subprocess.TimeoutExpired:
                    proc.terminate()
                    try:
                        proc.wait(timeout=timeout / 2)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(timeout=5)
            for f in (proc.stdin, proc.stdout):
                try:
                    if f is not None:
                        f.close()
                except OSError:
                    pass
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> SimulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ThreadedSimulator:
    """A simulator running its event loop in a background thread of this process."""

    def __init__(self, config: SimConfig, host: str, port: int, loop: str) -> None:
        self.config = config
        self._host, self._port, self._loop_kind = host, port, loop
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server: SimServer | None = None
        self.base_url = ""
        self.port = 0
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="burstgpt-sim", daemon=True)

    def _run(self) -> None:
        loop = new_event_loop(self._loop_kind)
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main())
        except BaseException as e:  # reported to the starting thread
            self._error = e
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self.server = SimServer(self.config)
        self.port = await self.server.start(self._host, self._port)
        self.base_url = f"http://{self._host}:{self.port}"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self.server.close()

    def start(self, timeout: float = 10.0) -> ThreadedSimulator:
        self._thread.start()
        if not self._ready.wait(timeout) or self._error is not None:
            raise RuntimeError(f"simulator thread failed to start: {self._error!r}")
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop is not None and self._stop is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)

    def __enter__(self) -> ThreadedSimulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_in_thread(
    profile: str | None = "fast",
    config: Mapping[str, Any] | str | Path | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    loop: str = "asyncio",
) -> ThreadedSimulator:
    """Start a simulator in a background thread; returns once it listens (``.base_url``, ``.stop()``).

    Not for gevent-monkey-patched processes (use ``SimulatorProcess`` there).
    """
    if "gevent" in sys.modules:
        from gevent import monkey

        if monkey.is_module_patched("threading") or monkey.is_module_patched("select"):
            raise RuntimeError(
                "run_in_thread cannot run under gevent monkey-patching; use SimulatorProcess"
            )
    return ThreadedSimulator(SimConfig.load(profile, config), host, port, loop).start()


# ---- the program (python -m locust_burstgpt.sim, and `burstgpt sim`) ---------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8000, help="port (0 picks a free one; default 8000)"
    )
    parser.add_argument(
        "--profile",
        default=None,
        help="server profile: fast, a100-7b, l4-8b (default: the config's, else fast)",
    )
    parser.add_argument("--config", default=None, help="JSON or TOML config file")
    parser.add_argument(
        "--loop",
        default="auto",
        choices=("auto", "asyncio", "uvloop"),
        help="event loop (auto: uvloop when installed)",
    )


def serve(args: argparse.Namespace) -> int:
    """Serve until SIGINT/SIGTERM (or, with --watch-parent, until the parent goes away)."""
    raw: Any = args.config
    if getattr(args, "config_json", None):
        raw = json.loads(args.config_json)
    try:
        config = SimConfig.load(args.profile, raw)
    except ValueError as e:
        print(f"burstgpt sim: {e}", file=sys.stderr)
        return 2
    _raise_open_files_limit()
    loop = new_event_loop(args.loop)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_serve_main(config, args))
    finally:
        loop.close()


def _raise_open_files_limit(want: int = 65536) -> None:
    """Thousands of concurrent streams need as many sockets; lift the soft limit if allowed."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            pass


async def _serve_main(config: SimConfig, args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    srv = SimServer(config)
    try:
        port = await srv.start(args.host, args.port)
    except OSError as e:
        print(
            f"burstgpt sim: cannot listen on {args.host}:{args.port}: {e.strerror}", file=sys.stderr
        )
        return 1
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(
        BANNER.format(
            url=f"http://{host}:{port}",
            profile=config.profile.name,
            model=config.model,
            pid=os.getpid(),
        ),
        flush=True,
    )
    watcher = None
    if getattr(args, "watch_parent", False):
        watcher = loop.create_task(_watch_parent(stop))
    try:
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        await srv.close()
    return 0


async def _watch_parent(stop: asyncio.Event) -> None:
    """Stop when stdin reaches EOF (parent closed it or died) or the parent pid changes."""
    loop = asyncio.get_running_loop()
    ppid = os.getppid()
    fd = sys.stdin.fileno()

    def on_stdin() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if not data:
            loop.remove_reader(fd)
            stop.set()

    try:
        loop.add_reader(fd, on_stdin)
    except (OSError, ValueError, NotImplementedError):
        pass  # stdin is not pollable (e.g. /dev/null): rely on the parent pid check
    try:
        while not stop.is_set():
            if os.getppid() != ppid:
                stop.set()
            await asyncio.sleep(1.0)
    finally:
        try:
            loop.remove_reader(fd)
        except (ValueError, OSError):
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m locust_burstgpt.sim",
        description="The embedded OpenAI-compatible LLM server simulator.",
    )
    add_arguments(parser)
    parser.add_argument("--config-json", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--watch-parent",
        action="store_true",
        help="exit when stdin closes or the parent process exits",
    )
    return serve(parser.parse_args(argv))
