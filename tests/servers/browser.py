"""Headless Debian ``chromium`` driven by Playwright, for tests that look at pages as a person would.

Playwright's own browser downloads are not used: the tests drive the distribution's chromium
(installed by tests/run.sh) through ``executable_path``, with flags that keep it offline and quiet.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class ChromiumMissing(RuntimeError):
    """Raised when no ``chromium`` executable is on PATH."""


def chromium_path() -> str:
    """Absolute path of the ``chromium`` executable, or a clear error saying how to install it."""
    path = shutil.which("chromium")
    if path is None:
        raise ChromiumMissing(
            "Debian chromium not found on PATH: run `bash tests/run.sh` "
            "or `apt-get install chromium`"
        )
    return path


@contextmanager
def launch_chromium(timeout_ms: float = 60_000) -> Iterator[Browser]:
    """A headless chromium ``Browser``; closed (with its processes) when the block exits."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=executable, headless=True, args=list(CHROMIUM_FLAGS), timeout=timeout_ms
        )
        try:
            yield browser
        finally:
            browser.close()


def screenshot(url: str, out: Path, width: int = 1280, height: int = 800) -> Path:
    """Load ``url`` until the network is idle and save a PNG of the viewport to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with launch_chromium() as browser:
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto(url, wait_until="networkidle")
        page.screenshot(path=str(out))
    return out
