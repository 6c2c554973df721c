"""Read a trace file (.csv, .csv.gz, .parquet) into a DataFrame, typed by column name.

CSV goes through pandas' C parser with the columns' types given up front (float64
timestamps, int64 token counts, categories for Model/Log Type): on the 2-core machines this
project targets it is as fast as a plain ``pandas.read_csv`` and faster than Arrow's threaded
reader, and it leaves a core free to hash the file meanwhile. When the strict read fails, the
file is read again with the numeric columns as text, so the error can name the exact row and
column; valid-but-unusual files (``472.0`` token counts, blank Elapsed times) also take that path.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import warnings
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import TraceError
from .progress import CountingReader, Progress
from .schema import COLUMNS, SCHEMA_6, SCHEMA_8, Column, match_columns

STRING = pd.StringDtype("pyarrow")
_ARROW_STRINGS_BY_DEFAULT = int(pd.__version__.split(".")[0]) >= 3
_INT_COLUMNS = ("request_tokens", "response_tokens", "total_tokens")


def file_kind(path: Path) -> str:
    """``parquet`` for .parquet/.pq, ``csv.gz`` for .gz, else ``csv``."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".gz":
        return "csv.gz"
    return "csv"


def read_frame(
    path: Path, progress: Progress | None = None
) -> tuple[pd.DataFrame, dict[str, Column], list[str]]:
    """Return (frame with the file's column names, known columns by file name, extra names).

    Known numeric columns come back as float64 (timestamp, elapsed) and int64 or float64
    (tokens; float64 only when the file writes them as decimals or leaves some blank), text
    columns as strings. Raises ``TraceError``.
    """
    kind = file_kind(path)
    header = _parquet_header(path) if kind == "parquet" else _csv_header(path, kind == "csv.gz")
    known, extra = _match(path, header)
    if kind == "parquet":
        frame = _read_parquet(path, known)
    else:
        frame = _read_csv(path, kind == "csv.gz", header, known, progress)
    if len(frame) == 0:
        raise TraceError(str(path), "no data rows: expected at least one row after the header")
    return frame, known, extra


def _match(path: Path, header: list[str]) -> tuple[dict[str, Column], list[str]]:
    try:
        known, extra = match_columns(header)
    except KeyError as dup:
        raise TraceError(
            str(path),
            "this column appears twice; expected each BurstGPT column once",
            column=str(dup.args[0]),
        ) from None
    present = {c.name for c in known.values()}
    for col in COLUMNS:
        if col.required and col.name not in present:
            raise TraceError(
                str(path),
                "missing required column; expected a header naming the BurstGPT columns, "
                f"either {SCHEMA_6!r} or {SCHEMA_8!r} (found {','.join(header)!r})",
                column=col.source,
            )
    return known, extra


def _open_text(path: Path, gz: bool) -> io.TextIOBase:
    if gz:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def _csv_header(path: Path, gz: bool) -> list[str]:
    try:
        with _open_text(path, gz) as fh:
            first = fh.readline()
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise TraceError(str(path), f"cannot read the file: {exc}") from None
    if not first.strip():
        raise TraceError(
            str(path),
            "empty file: expected a header line naming the columns, "
            f"e.g. {SCHEMA_8!r}, then one row per request",
        )
    return next(csv.reader([first]))


def _parquet_header(path: Path) -> list[str]:
    try:
        return list(pq.read_schema(path).names)
    except (OSError, pa.ArrowException) as exc:
        raise TraceError(str(path), f"cannot read the file as Parquet: {exc}") from None


def _dtypes(known: dict[str, Column], strict: bool) -> dict[str, Any]:
    """Parse types: numbers typed up front, Model/Log Type as categories (the C parser builds
    them for less than encoding strings afterwards), Session ID as Arrow-backed text."""
    types: dict[str, Any] = {}
    for name, col in known.items():
        if col.numeric:
            types[name] = ("int64" if col.name in _INT_COLUMNS else "float64") if strict else object
        elif col.name != "session_id":
            types[name] = "category"
        elif not _ARROW_STRINGS_BY_DEFAULT:
            types[name] = STRING
    return types


def _source(path: Path, gz: bool, progress: Progress | None) -> tuple[IO[bytes] | str, Any]:
    if progress is None:
        return str(path), "infer"
    raw: IO[bytes] = io.BufferedReader(CountingReader(open(path, "rb"), progress), 1 << 20)
    if gz:
        raw = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
    return raw, None


def _read_csv(
    path: Path, gz: bool, header: list[str], known: dict[str, Column], progress: Progress | None
) -> pd.DataFrame:
    try:
        source, compression = _source(path, gz, progress)
        try:
            with (
                warnings.catch_warnings()
            ):  # overflowing numbers warn before they raise; we report them
                warnings.simplefilter("ignore", RuntimeWarning)
                return pd.read_csv(
                    source,
                    dtype=_dtypes(known, strict=True),
                    compression=compression,
                    keep_default_na=False,
                    na_values=[""],
                )
        finally:
            if not isinstance(source, str):
                source.close()
    except (ValueError, TypeError, OverflowError) as exc:
        if isinstance(exc, pd.errors.ParserError):
            raise _locate_parse_error(path, gz, header, str(exc)) from None
        return _read_csv_lenient(path, gz, header, known)
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise TraceError(str(path), f"cannot read the file: {exc}") from None


def _read_csv_lenient(
    path: Path, gz: bool, header: list[str], known: dict[str, Column]
) -> pd.DataFrame:
    """Second try: numeric columns as text, converted one by one to find the offending value."""
    try:
        frame = pd.read_csv(
            path,
            dtype=_dtypes(known, strict=False),
            compression="infer",
            keep_default_na=False,
            na_values=[""],
        )
    except pd.errors.ParserError as exc:
        raise _locate_parse_error(path, gz, header, str(exc)) from None
    except (ValueError, OSError, EOFError, UnicodeDecodeError) as exc:
        raise TraceError(str(path), f"cannot read the file: {exc}") from None
    for name, col in known.items():
        if col.numeric:
            frame[name] = to_numbers(path, name, frame[name])
    return frame


def to_numbers(path: Path, column: str, values: pd.Series) -> np.ndarray:
    """float64 values of a text column; ``TraceError`` at the first present non-number."""
    coerced = pd.to_numeric(values, errors="coerce")
    bad = coerced.isna().to_numpy() & values.notna().to_numpy()
    if bad.any():
        pos = int(bad.argmax())
        raise TraceError(
            str(path), f"expected a number, found {values.iloc[pos]!r}", row=pos + 1, column=column
        )
    return coerced.to_numpy(dtype=np.float64, na_value=np.nan)


_LINE_NO = re.compile(r"line (\d+)")


def _locate_parse_error(path: Path, gz: bool, header: list[str], message: str) -> TraceError:
    """Name the row with the wrong number of fields (or say what the parser said)."""
    try:
        with _open_text(path, gz) as fh:
            for i, fields in enumerate(csv.reader(fh)):
                if i and fields and len(fields) != len(header):
                    return TraceError(
                        str(path),
                        f"expected {len(header)} comma-separated fields "
                        f"as in the header, found {len(fields)}",
                        row=i,
                    )
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        return TraceError(str(path), f"cannot read the file: {exc}")
    m = _LINE_NO.search(message)
    row = int(m.group(1)) - 1 if m else None
    return TraceError(str(path), f"cannot parse the file as CSV: {message}", row=row)


def _read_parquet(path: Path, known: dict[str, Column]) -> pd.DataFrame:
    try:
        frame = pq.read_table(path).to_pandas()
    except (OSError, pa.ArrowException) as exc:
        raise TraceError(str(path), f"cannot read the file as Parquet: {exc}") from None
    for name, col in known.items():
        values = frame[name]
        if col.numeric:
            if not pd.api.types.is_numeric_dtype(values.dtype) or pd.api.types.is_bool_dtype(
                values.dtype
            ):
                frame[name] = to_numbers(path, name, values.astype(object))
            else:
                frame[name] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        elif not isinstance(values.dtype, pd.CategoricalDtype):
            frame[name] = values.astype(STRING)
    return frame
