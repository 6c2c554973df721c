"""Every kind of bad trace input gets a TraceError naming file, row and column."""

from __future__ import annotations

import gzip

import pandas as pd
import pytest

from locust_burstgpt.trace import TraceError, load_trace
from tests.support import HEADER_1
from tests.trace_support import HEADER_6, HEADER_8, row8, write_csv

GOOD = [
    row8(10, "s1", 2, 5, 7),
    row8(11, None, 1, 3, 4),
    row8(12, "s1", 4, 8, 9),
    row8(15, None, 0, 2, 2),
]


def _err(path) -> TraceError:
    with pytest.raises(TraceError) as info:
        load_trace(path)
    e = info.value
    assert isinstance(e, ValueError)
    assert str(path) in str(e) and e.file == str(path)
    return e


def test_missing_required_column(tmp_path):
    path = write_csv(
        tmp_path / "t.csv",
        [h for h in HEADER_6 if h != "Response tokens"],
        [[1, "ChatGPT", 5, 12, "API log"]],
    )
    e = _err(path)
    assert e.column == "Response tokens" and e.row is None
    assert "missing required column" in str(e) and "'Response tokens'" in str(e)


def test_non_numeric_value(tmp_path):
    rows = [list(r) for r in GOOD]
    rows[2][4] = "lots"
    e = _err(write_csv(tmp_path / "t.csv", HEADER_8, rows))
    assert (e.row, e.column) == (3, "Request tokens")
    assert "expected a number" in str(e) and "'lots'" in str(e) and "row 3 (line 4)" in str(e)


def test_non_numeric_timestamp(tmp_path):
    rows = [list(r) for r in GOOD]
    rows[1][0] = "2024-01-01"
    e = _err(write_csv(tmp_path / "t.csv", HEADER_8, rows))
    assert (e.row, e.column) == (2, "Timestamp")


def test_negative_number(tmp_path):
    rows = [list(r) for r in GOOD]
    rows[3][5] = -2
    e = _err(write_csv(tmp_path / "t.csv", HEADER_8, rows))
    assert (e.row, e.column) == (4, "Response tokens") and ">= 0" in str(e)


def test_negative_elapsed(tmp_path):
    rows = [list(r) for r in GOOD]
    rows[0][2] = -1.5
    e = _err(write_csv(tmp_path / "t.csv", HEADER_8, rows))
    assert (e.row, e.column) == (1, "Elapsed time")


def test_fractional_token_count(tmp_path):
    rows = [list(r) for r in GOOD]
    rows[1][6] = 4.5
    e = _err(write_csv(tmp_path / "t.csv", HEADER_8, rows))
    assert (e.row, e.column) == (2, "Total tokens") and "whole number" in str(e)


def test_missing_token_value(tmp_path):
    rows = [list(r) for r in GOOD]
    rows[2][5] = ""
    e = _err(write_csv(tmp_path / "t.csv", HEADER_8, rows))
    assert (e.row, e.column) == (3, "Response tokens") and "missing value" in str(e)


def test_missing_model(tmp_path):
    rows = [list(r) for r in GOOD]
    rows[3][3] = ""
    e = _err(write_csv(tmp_path / "t.csv", HEADER_8, rows))
    assert (e.row, e.column) == (4, "Model") and "missing value" in str(e)


def test_decreasing_timestamps(tmp_path):
    rows = [list(r) for r in GOOD]
    rows[2][0] = 10.5  # after 11
    e = _err(write_csv(tmp_path / "t.csv", HEADER_8, rows))
    assert (e.row, e.column) == (3, "Timestamp")
    assert "10.5 is earlier than the previous row's 11" in str(e) and "never decrease" in str(e)


def test_wrong_number_of_fields(tmp_path):
    path = tmp_path / "t.csv"
    lines = [
        HEADER_1,
        "1,ChatGPT,1,2,3,API log",
        "2,ChatGPT,1,2,3,API log,extra",
        "3,ChatGPT,1,2,3,API log",
    ]
    path.write_text("\n".join(lines) + "\n")
    e = _err(path)
    assert e.row == 2 and "expected 6 comma-separated fields" in str(e)


def test_empty_file(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(b"")
    e = _err(path)
    assert "empty file" in str(e) and e.row is None


def test_header_only(tmp_path):
    e = _err(write_csv(tmp_path / "t.csv", HEADER_8, []))
    assert "no data rows" in str(e)


def test_nonexistent_file(tmp_path):
    e = _err(tmp_path / "nope.csv")
    assert "cannot read the file" in str(e) and "no such file" in str(e)


def test_directory(tmp_path):
    e = _err(tmp_path)
    assert "cannot read the file" in str(e)


def test_corrupt_gzip(tmp_path):
    path = tmp_path / "t.csv.gz"
    path.write_bytes(b"this is not gzip data at all\n" * 10)
    e = _err(path)
    assert "cannot read the file" in str(e)


def test_binary_garbage_csv(tmp_path):
    path = tmp_path / "t.csv"
    path.write_bytes(bytes(range(256)) * 8)
    e = _err(path)
    assert "cannot read" in str(e) or "missing required column" in str(e)


def test_corrupt_parquet(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"PAR1 definitely not a parquet file")
    e = _err(path)
    assert "cannot read the file as Parquet" in str(e)


def test_error_in_gzipped_csv_names_row_and_column(tmp_path):
    rows = [list(r) for r in GOOD]
    rows[1][2] = "slow"
    plain = write_csv(tmp_path / "plain.csv", HEADER_8, rows)
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(plain.read_bytes()))
    e = _err(path)
    assert (e.row, e.column) == (2, "Elapsed time")


def test_error_in_parquet_names_row_and_column(tmp_path):
    df = pd.DataFrame([r for r in GOOD], columns=HEADER_8).astype({"Timestamp": str})
    df.loc[3, "Timestamp"] = "later"
    path = tmp_path / "t.parquet"
    df.to_parquet(path)
    e = _err(path)
    assert (e.row, e.column) == (4, "Timestamp")


def test_negative_value_in_parquet(tmp_path):
    df = pd.DataFrame([r for r in GOOD], columns=HEADER_8)
    df.loc[1, "Request tokens"] = -3
    path = tmp_path / "t.parquet"
    df.to_parquet(path)
    e = _err(path)
    assert (e.row, e.column) == (2, "Request tokens")


@pytest.mark.parametrize("value", ["1e300", "18446744073709551617", "9" * 25])
def test_token_count_too_large_to_be_exact(tmp_path, value):
    rows = [list(r) for r in GOOD]
    rows[1][4] = value
    e = _err(write_csv(tmp_path / "t.csv", HEADER_8, rows))
    assert (e.row, e.column) == (2, "Request tokens") and "token count up to" in str(e)


def test_timestamps_spanning_centuries_are_refused_by_prepare(tmp_path):
    from locust_burstgpt.trace import prepare

    rows = [list(r) for r in GOOD]
    rows[3][0] = 1e300
    raw = load_trace(write_csv(tmp_path / "t.csv", HEADER_8, rows))  # valid numbers, absurd span
    with pytest.raises(TraceError) as info:
        prepare(raw)
    assert info.value.column == "Timestamp" and "per-second curves" in str(info.value)
    assert prepare(raw, window="0+1h").n_requests == 3  # a window still works
