"""Progress lines on stderr for long trace loads (a terminal only, unless asked for)."""

from __future__ import annotations

import io
import sys
import time
from typing import Any, TextIO

#: Files at least this big show progress on a terminal when the caller leaves it to us.
AUTO_MIN_BYTES = 20 * 1024 * 1024


def wanted(progress: bool | None, size: int, stream: TextIO | None = None) -> bool:
    """Decide whether to show progress: explicit choice, else only for big files on a TTY."""
    if progress is not None:
        return progress
    stream = stream or sys.stderr
    try:
        return size >= AUTO_MIN_BYTES and stream.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """Rewrites one status line on stderr, at most every ``interval`` seconds."""

    def __init__(
        self, label: str, total_bytes: int, stream: TextIO | None = None, interval: float = 0.25
    ) -> None:
        self.label = label
        self.total = max(1, total_bytes)
        self.stream = stream or sys.stderr
        self.interval = interval
        self._t0 = time.monotonic()
        self._last = 0.0
        self._done = 0

    def advance(self, nbytes: int) -> None:
        self._done += nbytes
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            pct = min(100.0, 100.0 * self._done / self.total)
            self._write(f"reading {self.label}: {pct:5.1f}% of {self.total / 1e6:,.0f} MB")

    def stage(self, text: str) -> None:
        self._write(f"{self.label}: {text}")

    def finish(self, text: str) -> None:
        self._write(f"{self.label}: {text} ({time.monotonic() - self._t0:.1f} s)")
        self.stream.write("\n")
        self.stream.flush()

    def _write(self, line: str) -> None:
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()


class CountingReader(io.RawIOBase):
    """A read-only file wrapper that reports how many bytes were consumed to a ``Progress``."""

    def __init__(self, raw: Any, progress: Progress) -> None:
        self._raw = raw
        self._progress = progress

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = self._raw.readinto(buffer)
        if n:
            self._progress.advance(n)
        return n or 0

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        if data:
            self._progress.advance(len(data))
        return data

    def close(self) -> None:
        self._raw.close()
        super().close()
