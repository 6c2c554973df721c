"""``requests.jsonl``: one JSON line per scheduled request, written as the run goes.

Lines are buffered and flushed at least once a second, so a crash loses at most the last second.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class RequestsLog:
    def __init__(self, path: Path, flush_interval_s: float = 1.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "w", encoding="utf-8")
        self._interval = flush_interval_s
        self._last_flush = time.monotonic()
        self.lines = 0

    def write(self, entry: dict[str, Any]) -> None:
        self._f.write(json.dumps(entry, separators=(",", ":"), default=str))
        self._f.write("\n")
        self.lines += 1
        if time.monotonic() - self._last_flush >= self._interval:
            self.flush()

    def flush(self) -> None:
        if not self._f.closed:
            self._f.flush()
        self._last_flush = time.monotonic()

    def close(self) -> None:
        if not self._f.closed:
            self._f.flush()
            self._f.close()
