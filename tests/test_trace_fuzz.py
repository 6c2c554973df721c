"""Bad trace input, property-based: random corruptions of genuine BurstGPT slices either load (and
prepare) or raise ``TraceError`` naming the file, and the row and column when it names them; never
any other exception."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from locust_burstgpt.trace import TraceError, load_trace, prepare
from tests.conftest import BURSTGPT_1_7DAYS, BURSTGPT_3_400

ROWS = 30


def _slice(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [next(f).rstrip("\n") for _ in range(ROWS + 1)]


SLICES = {"BurstGPT_3": _slice(BURSTGPT_3_400), "BurstGPT_1": _slice(BURSTGPT_1_7DAYS)}
BAD_VALUES = [
    "",
    "abc",
    "-1",
    "-0.5",
    "1e309",
    "NaN",
    "inf",
    "0x10",
    "1,5",
    " 12 ",
    "\u0661\u0662",
    "9" * 40,
    "1e300",
    "3.7",
    "true",
    '"7"',
    "None",
    "\x00",
]


@st.composite
def corrupted(draw) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(SLICES)))
    lines = list(SLICES[name])
    header, rows = lines[0], lines[1:]
    ops = draw(
        st.lists(
            st.sampled_from(
                [
                    "cut_row",
                    "drop_rows",
                    "bad_number",
                    "swap_columns",
                    "swap_values",
                    "bom",
                    "crlf",
                    "empty",
                    "header_only",
                    "huge",
                    "unsorted",
                    "duplicate_header",
                    "duplicate_column",
                    "extra_field",
                    "missing_field",
                    "blank_lines",
                    "no_final_newline",
                ]
            ),
            min_size=1,
            max_size=3,
        )
    )
    for op in ops:
        if op == "cut_row" and rows:
            i = draw(st.integers(0, len(rows) - 1))
            rows[i] = rows[i][: draw(st.integers(0, len(rows[i])))]
        elif op == "drop_rows" and rows:
            k = draw(st.integers(1, len(rows)))
            rows = rows[:-k] if draw(st.booleans()) else rows[k:]
        elif op in ("bad_number", "huge") and rows:
            i = draw(st.integers(0, len(rows) - 1))
            fields = rows[i].split(",")
            j = draw(st.integers(0, len(fields) - 1))
            fields[j] = (
                draw(st.sampled_from(BAD_VALUES))
                if op == "bad_number"
                else draw(st.sampled_from(["9" * 25, "1e300", "18446744073709551617", "-9" * 20]))
            )
            rows[i] = ",".join(fields)
        elif op == "swap_columns":
            names = header.split(",")
            a, b = draw(st.integers(0, len(names) - 1)), draw(st.integers(0, len(names) - 1))
            names[a], names[b] = names[b], names[a]
            header = ",".join(names)
        elif op == "swap_values" and rows:
            i = draw(st.integers(0, len(rows) - 1))
            fields = rows[i].split(",")
            a, b = draw(st.integers(0, len(fields) - 1)), draw(st.integers(0, len(fields) - 1))
            fields[a], fields[b] = fields[b], fields[a]
            rows[i] = ",".join(fields)
        elif op == "bom":
            header = "\ufeff" + header
        elif op == "empty":
            header, rows = "", []
        elif op == "header_only":
            rows = []
        elif op == "unsorted" and rows:
            rows = draw(st.permutations(rows))
        elif op == "duplicate_header" and rows:
            rows.insert(draw(st.integers(0, len(rows))), header)
        elif op == "duplicate_column":
            names = header.split(",")
            names[draw(st.integers(0, len(names) - 1))] = names[
                draw(st.integers(0, len(names) - 1))
            ]
            header = ",".join(names)
        elif op == "extra_field" and rows:
            i = draw(st.integers(0, len(rows) - 1))
            rows[i] += ",extra"
        elif op == "missing_field" and rows:
            i = draw(st.integers(0, len(rows) - 1))
            rows[i] = ",".join(rows[i].split(",")[:-1])
        elif op == "blank_lines" and rows:
            rows.insert(draw(st.integers(0, len(rows))), "")
    newline = "\r\n" if "crlf" in ops else "\n"
    text = newline.join([header, *rows]) if header or rows else ""
    if text and "no_final_newline" not in ops:
        text += newline
    return name, text


def _check_error(e: TraceError, path: Path, text: str) -> None:
    assert e.file == str(path) and str(path) in str(e), str(e)
    data_rows = max(0, len(text.splitlines()) - 1)
    if e.row is not None:
        assert 1 <= e.row <= max(1, data_rows), (e.row, data_rows, str(e))
        assert f"row {e.row}" in str(e)
    if e.column is not None:
        assert repr(e.column) in str(e) or e.column in str(e), str(e)


@settings(
    max_examples=250, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(corrupted())
def test_corrupted_trace_loads_or_raises_trace_error(case):
    name, text = case
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / f"{name}.csv"
        path.write_bytes(text.encode("utf-8"))
        try:
            raw = load_trace(path)
        except TraceError as e:
            _check_error(e, path, text)
            return
        # it loaded: every value is what the schema promises, so a replay can be prepared from it
        assert raw.rows <= ROWS + 1
        df = raw.df
        for column in ("request_tokens", "response_tokens", "total_tokens"):
            assert (df[column] >= 0).all(), (
                column,
                df[column].min(),
            )  # never a wrapped-around huge value
        assert np.isfinite(df["timestamp"]).all() and (df["timestamp"] >= 0).all()
        elapsed = df["elapsed"].dropna()
        assert np.isfinite(elapsed).all() and (elapsed >= 0).all()
        try:
            workload = prepare(raw)
        except TraceError as e:
            _check_error(e, path, text)
            return
        assert workload.n_requests <= raw.rows
