"""``requests.jsonl``: one JSON line per scheduled request, written as the run goes.

Lines are buffered and flushed at least once a second, so a crash loses at most the last second.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS | orjson.OPT_APPEND_NEWLINE


def _fallback(value: Any) -> Any:
    """Anything else a custom user put in an entry: its plain value if it has one, else its text
    (a line is never lost to a value orjson cannot encode)."""
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):  # e.g. a numpy array orjson declined: more than one value
            pass
    return str(value)


def encode_line(entry: dict[str, Any]) -> bytes:
    """One JSON line (compact, UTF-8, newline-terminated); orjson, since every request writes one."""
    return orjson.dumps(entry, default=_fallback, option=_OPTIONS)


class RequestsLog:
    def __init__(self, path: Path, flush_interval_s: float = 1.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "wb")  # noqa: SIM115 - kept open for the run, closed in close()
        self._interval = flush_interval_s
        self._last_flush = time.monotonic()
        self.lines = 0

    def write(self, entry: dict[str, Any]) -> None:
        self._f.write(encode_line(entry))
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
