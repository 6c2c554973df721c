"""``load_trace``: read a BurstGPT file, validate every row, and normalize it into ``RawTrace``."""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from .errors import TraceError
from .heap import BIG_INPUT_ROWS, reuse_freed_memory
from .progress import Progress, wanted
from .readers import STRING, read_frame
from .schema import NORMALIZED, Column

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
#: Largest token count accepted (2**53: every whole number up to it is exact as a float).
MAX_TOKENS = 2**53
#: The bundled default trace: BurstGPT_3 data rows 1-400 (all eight columns, 135 sessions).
DEFAULT_TRACE = DATA_DIR / "BurstGPT_3_first400rows_gitm.csv"


@dataclass
class RawTrace:
    """A validated trace file: every row, in file order, with normalized column names.

    ``df`` columns: timestamp (float64 s from 00:00 of the trace's day 0), session_id (string,
    <NA> on rows without one and on every row of 6-column files), elapsed (float64, NaN when
    absent), model (category), request_tokens, response_tokens, total_tokens (int64), log_type
    (category), then any extra columns under their own names. The index is the 1-based data row.
    """

    path: str
    sha256: str
    df: pd.DataFrame
    has_sessions: bool
    has_elapsed: bool
    extra_columns: list[str] = field(default_factory=list)
    total_mismatch_rows: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.df)

    @cached_property
    def session_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """(code per row, -1 without a Session ID; the distinct Session IDs by code)."""
        values = self.df["session_id"].array
        codes = np.full(len(values), -1, dtype=np.int32)
        present = np.flatnonzero(~np.asarray(values.isna()))
        if present.size == 0:
            return codes, np.empty(0, dtype=object)
        arrow = pc.drop_null(
            pa.chunked_array(pa.array(values))
        )  # encode only the rows that have one
        encoded = pc.dictionary_encode(arrow).combine_chunks()
        codes[present] = encoded.indices.to_numpy(zero_copy_only=False)
        return codes, np.asarray(encoded.dictionary.to_pylist(), dtype=object)

    @property
    def failed_rows(self) -> int:
        """Rows with zero response tokens (BurstGPT's definition of a failed request)."""
        return int((self.df["response_tokens"].to_numpy() == 0).sum())


def load_trace(
    path: str | os.PathLike[str] | None = None, *, progress: bool | None = None
) -> RawTrace:
    """Read and validate a trace; ``None`` loads the bundled default (a BurstGPT_3 slice).

    Raises ``TraceError`` naming the file, row and column of the first problem found.
    ``progress=None`` shows progress on stderr only for big files on a terminal.
    """
    p = Path(path) if path is not None else DEFAULT_TRACE
    name = str(path) if path is not None else str(p)
    if not p.is_file():
        what = "it is a directory" if p.is_dir() else "no such file"
        raise TraceError(
            name, f"cannot read the file: {what}; expected a .csv, .csv.gz or .parquet trace"
        )
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise TraceError(name, f"cannot read the file: {exc}") from None
    if size == 0:
        raise TraceError(
            name, "empty file: expected a header line naming the columns, then one row per request"
        )
    if not os.access(p, os.R_OK):
        raise TraceError(name, "cannot read the file: permission denied")
    bar = Progress(p.name, size) if wanted(progress, size) else None

    digest = _Sha256(p)
    digest.start()
    try:
        with reuse_freed_memory(size >= 40 * BIG_INPUT_ROWS):  # ~40 bytes per BurstGPT row
            frame, known, extra = read_frame(p, bar)
            if bar is not None:
                bar.stage("validating")
            df, mismatches, warnings = _normalize(name, frame, known, extra)
            del frame
    finally:
        sha = digest.result()
    if bar is not None:
        bar.finish(f"{len(df):,} rows")
    return RawTrace(
        path=name,
        sha256=sha,
        df=df,
        has_sessions=any(c.name == "session_id" for c in known.values()),
        has_elapsed=any(c.name == "elapsed" for c in known.values()),
        extra_columns=extra,
        total_mismatch_rows=mismatches,
        warnings=warnings,
    )


class _Sha256(threading.Thread):
    """Hash the file on a second thread while it is parsed (hashlib releases the GIL)."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True, name="trace-sha256")
        self._path = path
        self._hash = hashlib.sha256()
        self._error: OSError | None = None

    def run(self) -> None:
        try:
            with open(self._path, "rb") as fh:
                while chunk := fh.read(4 << 20):
                    self._hash.update(chunk)
        except OSError as exc:
            self._error = exc

    def result(self) -> str:
        self.join()
        if self._error is not None:
            raise TraceError(str(self._path), f"cannot read the file: {self._error}")
        return self._hash.hexdigest()


def _normalize(
    name: str, frame: pd.DataFrame, known: dict[str, Column], extra: list[str]
) -> tuple[pd.DataFrame, int, list[str]]:
    n = len(frame)
    by_norm = {col.name: src for src, col in known.items()}
    warnings: list[str] = []
    cols: dict[str, object] = {}

    ts = _numbers(frame, by_norm["timestamp"])
    _check(name, by_norm["timestamp"], ts, allow_nan=False, whole=False)
    drops = np.flatnonzero(ts[1:] < ts[:-1])
    if drops.size:
        i = int(drops[0]) + 1
        raise TraceError(
            name,
            f"timestamp {ts[i]:.15g} is earlier than the previous row's {ts[i - 1]:.15g}; "
            "expected timestamps that never decrease (rows in time order)",
            row=i + 1,
            column=by_norm["timestamp"],
        )
    cols["timestamp"] = ts

    if "session_id" in by_norm:
        sid = frame[by_norm["session_id"]]
        cols["session_id"] = sid.array if sid.dtype == STRING else sid.astype(STRING).array
    else:
        cols["session_id"] = pd.array(pa.nulls(n, pa.string()), dtype=STRING)

    if "elapsed" in by_norm:
        el = _numbers(frame, by_norm["elapsed"])
        _check(name, by_norm["elapsed"], el, allow_nan=True, whole=False)
        missing = int(np.isnan(el).sum())
        if missing:
            warnings.append(
                f"{missing:,} rows have no Elapsed time; their service time is estimated"
            )
        cols["elapsed"] = el
    else:
        cols["elapsed"] = np.full(n, np.nan)

    cols["model"] = _category(name, frame, by_norm["model"], "a model name such as 'ChatGPT'")
    tokens = {}
    for key in ("request_tokens", "response_tokens", "total_tokens"):
        values = frame[by_norm[key]].to_numpy()
        if values.dtype != np.int64:
            values = values.astype(np.float64, copy=False)
            _check(name, by_norm[key], values, allow_nan=False, whole=True)
            values = values.astype(np.int64)
        else:
            _check_ints(name, by_norm[key], values)
        tokens[key] = values
        cols[key] = values
    cols["log_type"] = _category(
        name, frame, by_norm["log_type"], "'Conversation log' or 'API log'"
    )

    mismatches = _count_mismatches(
        tokens["request_tokens"], tokens["response_tokens"], tokens["total_tokens"]
    )
    if mismatches:
        warnings.append(
            f"{mismatches:,} rows have Total tokens != Request tokens + Response tokens "
            "(kept; Request and Response tokens are used)"
        )
    if extra:
        warnings.append(f"extra columns kept but not used: {', '.join(extra)}")
        for src in extra:
            cols[src] = frame[src].array

    df = pd.DataFrame(cols, index=pd.RangeIndex(1, n + 1, name="row"), copy=False)
    assert tuple(df.columns[: len(NORMALIZED)]) == NORMALIZED
    return df, mismatches, warnings


def _numbers(frame: pd.DataFrame, src: str) -> np.ndarray:
    values = frame[src]
    if values.dtype == np.float64:
        return values.to_numpy()  # no copy
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _count_mismatches(
    req: np.ndarray, resp: np.ndarray, total: np.ndarray, chunk: int = 1 << 20
) -> int:
    """Rows where Total != Request + Response (chunked: no row-sized temporaries)."""
    buf = np.empty(min(chunk, req.size), dtype=np.int64)
    count = 0
    for lo in range(0, req.size, chunk):
        b = buf[: min(chunk, req.size - lo)]
        np.add(req[lo : lo + chunk], resp[lo : lo + chunk], out=b)
        count += int(np.count_nonzero(b != total[lo : lo + chunk]))
    return count


def _check(name: str, src: str, values: np.ndarray, *, allow_nan: bool, whole: bool) -> None:
    """Raise on the first missing, non-finite, negative or (for token counts) fractional value."""
    if values.size == 0:
        return
    if allow_nan:
        lo, hi = np.fmin.reduce(values), np.fmax.reduce(values)  # ignore NaN (all-NaN gives NaN)
        ok = bool((lo >= 0 and hi < np.inf) or np.isnan(lo))
    else:
        ok = bool(values.min() >= 0 and values.max() < np.inf)  # NaN fails both comparisons
    if ok and whole:
        ok = bool((values == np.floor(values)).all()) and values.max() <= MAX_TOKENS
    if ok:
        return
    bad = ~(values >= 0)
    if allow_nan:
        bad &= ~np.isnan(values)
    bad |= np.isinf(values)
    if whole:
        bad |= (values != np.floor(values)) | (values > MAX_TOKENS)
    if not bad.any():
        return
    i = int(bad.argmax())
    v = values[i]
    if np.isnan(v):
        msg = "missing value; expected a number"
    elif np.isinf(v):
        msg = f"expected a finite number, found {v}"
    elif v < 0:
        msg = f"expected a number >= 0, found {v:g}"
    elif whole and v > MAX_TOKENS:
        msg = f"expected a token count up to {MAX_TOKENS:,}, found {v:g}"
    else:
        msg = f"expected a whole number of tokens, found {v:g}"
    raise TraceError(name, msg, row=i + 1, column=src)


def _check_ints(name: str, src: str, values: np.ndarray) -> None:
    if values.size and values.min() < 0:
        i = int(np.argmax(values < 0))
        raise TraceError(
            name, f"expected a number >= 0, found {int(values[i])}", row=i + 1, column=src
        )
    if values.size and values.max() > MAX_TOKENS:
        i = int(np.argmax(values > MAX_TOKENS))
        raise TraceError(
            name,
            f"expected a token count up to {MAX_TOKENS:,}, found {int(values[i])}",
            row=i + 1,
            column=src,
        )


def _category(name: str, frame: pd.DataFrame, src: str, expected: str) -> pd.Categorical:
    """Encode a text column as a pandas Categorical (via Arrow: fast on millions of rows)."""
    values = frame[src]
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.array
        codes = np.asarray(cat.codes)
    else:
        arrow = (
            pa.chunked_array([pa.array(values.array, type=pa.string(), from_pandas=True)])
            if not isinstance(values.array, pd.arrays.ArrowStringArray)
            else pa.chunked_array(pa.array(values.array))
        )
        encoded = pc.dictionary_encode(arrow).combine_chunks()
        codes = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        cat = pd.Categorical.from_codes(
            codes, categories=[str(c) for c in encoded.dictionary.to_pylist()]
        )
    if codes.size and codes.min() < 0:
        i = int(np.argmax(codes < 0))
        raise TraceError(name, f"missing value; expected {expected}", row=i + 1, column=src)
    if not all(isinstance(c, str) for c in cat.categories):
        cat = cat.rename_categories([str(c) for c in cat.categories])
    return cat
