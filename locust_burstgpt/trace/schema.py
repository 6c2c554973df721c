"""BurstGPT column names: the two published schemas, matched by name, and their normalized names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One known trace column: its name in BurstGPT files and in ``RawTrace.df``."""

    source: str
    name: str
    numeric: bool
    required: bool


COLUMNS: tuple[Column, ...] = (
    Column("Timestamp", "timestamp", numeric=True, required=True),
    Column("Session ID", "session_id", numeric=False, required=False),
    Column("Elapsed time", "elapsed", numeric=True, required=False),
    Column("Model", "model", numeric=False, required=True),
    Column("Request tokens", "request_tokens", numeric=True, required=True),
    Column("Response tokens", "response_tokens", numeric=True, required=True),
    Column("Total tokens", "total_tokens", numeric=True, required=True),
    Column("Log Type", "log_type", numeric=False, required=True),
)

NORMALIZED: tuple[str, ...] = tuple(c.name for c in COLUMNS)
SCHEMA_6 = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type"
SCHEMA_8 = (
    "Timestamp,Session ID,Elapsed time,Model,Request tokens,Response tokens,Total tokens,Log Type"
)


def _key(name: str) -> str:
    """Match header names ignoring case, surrounding blanks and ``_``/space differences."""
    return " ".join(name.replace("_", " ").split()).casefold()


_BY_KEY = {_key(c.source): c for c in COLUMNS}


def match_columns(header: list[str]) -> tuple[dict[str, Column], list[str]]:
    """Map the file's header names to known columns; return (known, extra) with file spellings.

    Raises ``KeyError`` with the first duplicated known column (e.g. both ``Model`` and ``model``).
    """
    known: dict[str, Column] = {}
    extra: list[str] = []
    seen: set[str] = set()
    for name in header:
        col = _BY_KEY.get(_key(name))
        if col is None:
            extra.append(name)
            continue
        if col.name in seen:
            raise KeyError(name)
        seen.add(col.name)
        known[name] = col
    return known, extra
