"""Let big temporary arrays reuse freed memory while a trace is loaded and prepared.

Why: glibc hands every allocation above its mmap threshold (at most 32 MB) fresh pages from
the kernel and returns them on free, so a pipeline that creates and drops many multi-megabyte
numpy temporaries pays a zero-filled page fault for every page, every time. On virtual
machines that can cost more than the arithmetic itself (measured on a 5-million-row trace:
``prepare`` spent 0.54 s in the kernel with default settings, 0.01 s with reuse). Inside ``reuse_freed_memory()`` large blocks
come from the heap and stay there when freed, so the next temporary reuses them; on exit the
glibc's default thresholds are set again and the heap is trimmed, so nothing is kept afterwards.

Only glibc (Linux) has these knobs; elsewhere this is a no-op. Setting the mmap threshold
explicitly also turns off glibc's own adaptive threshold for the rest of the process, so the
callers only ask for this on big inputs (millions of rows), where it pays.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_DEFAULT_THRESHOLD = 128 * 1024  # glibc's documented default for both
_BIG = 1 << 30
#: Inputs at least this big (rows; files: about 40 bytes per row) use ``reuse_freed_memory``.
BIG_INPUT_ROWS = 1_000_000
_lock = threading.Lock()
_depth = 0


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt  # noqa: B018 - glibc only
        libc.malloc_trim  # noqa: B018
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


@contextmanager
def reuse_freed_memory(enabled: bool = True) -> Iterator[None]:
    """Raise glibc's mmap and trim thresholds for the duration (re-entrant, thread-safe)."""
    global _depth
    if _LIBC is None or not enabled:
        yield
        return
    with _lock:
        if _depth == 0:
            _LIBC.mallopt(_M_MMAP_THRESHOLD, _BIG)
            _LIBC.mallopt(_M_TRIM_THRESHOLD, _BIG)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                _LIBC.mallopt(_M_MMAP_THRESHOLD, _DEFAULT_THRESHOLD)
                _LIBC.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_THRESHOLD)
                _LIBC.malloc_trim(0)
