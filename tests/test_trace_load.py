"""Loading the genuine BurstGPT slices and the supported file formats."""

from __future__ import annotations

import gzip
import hashlib
import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from locust_burstgpt.trace import DEFAULT_TRACE, load_trace
from tests.conftest import BURSTGPT_1_7DAYS, BURSTGPT_3_400
from tests.trace_support import HEADER_8, read_plain, row8, write_csv


def test_seven_day_slice_facts():
    # Facts published for this slice (data/NOTICE.md, burstgpt-stats): rows, failures, mix.
    raw = load_trace(BURSTGPT_1_7DAYS)
    df = raw.df
    assert raw.rows == 19_431
    assert raw.failed_rows == 1_538
    assert (df["response_tokens"] == 0).sum() == 1_538
    assert df["model"].value_counts().to_dict() == {"ChatGPT": 12_845, "GPT-4": 6_586}
    assert df["log_type"].value_counts().to_dict() == {"Conversation log": 19_120, "API log": 311}
    assert raw.has_sessions is False and raw.has_elapsed is False
    assert df["session_id"].isna().all() and df["elapsed"].isna().all()
    assert raw.total_mismatch_rows == 0 and raw.extra_columns == []
    assert raw.sha256 == "68130aef7579045f0e8cedefe9fccd288f2008c5821ff979d92c11995b14a1b6"
    assert df["timestamp"].iloc[0] == 5 and df["timestamp"].iloc[-1] == 604_758


def test_burstgpt3_slice_facts():
    raw = load_trace(BURSTGPT_3_400)
    df = raw.df
    assert raw.rows == 400
    assert df["session_id"].nunique() == 135
    assert (df["log_type"] == "API log").sum() == 6
    # Session ID is present on exactly the Conversation-log rows.
    assert (df["session_id"].notna() == (df["log_type"] == "Conversation log")).all()
    assert raw.has_sessions and raw.has_elapsed
    assert raw.sha256 == hashlib.sha256(BURSTGPT_3_400.read_bytes()).hexdigest()


def test_normalized_frame_matches_an_independent_reader():
    raw = load_trace(BURSTGPT_3_400)
    df = raw.df
    plain = read_plain(BURSTGPT_3_400)
    assert list(df.columns) == [
        "timestamp",
        "session_id",
        "elapsed",
        "model",
        "request_tokens",
        "response_tokens",
        "total_tokens",
        "log_type",
    ]
    assert df["timestamp"].dtype == np.float64 and df["elapsed"].dtype == np.float64
    for col in ("request_tokens", "response_tokens", "total_tokens"):
        assert df[col].dtype == np.int64
    assert isinstance(df["model"].dtype, pd.CategoricalDtype)
    assert isinstance(df["log_type"].dtype, pd.CategoricalDtype)
    assert list(df.index) == list(range(1, 401))  # 1-based data rows
    for r in plain:
        got = df.loc[r.row]
        assert got["timestamp"] == r.ts and got["elapsed"] == r.elapsed
        assert (None if pd.isna(got["session_id"]) else got["session_id"]) == r.sid
        assert (got["model"], got["log_type"]) == (r.model, r.log)
        assert (got["request_tokens"], got["response_tokens"], got["total_tokens"]) == (
            r.req,
            r.resp,
            r.total,
        )


def test_default_trace_is_the_bundled_burstgpt3_slice():
    raw = load_trace()
    assert raw.path == str(DEFAULT_TRACE)
    assert raw.rows == 400 and raw.has_sessions


def test_columns_are_read_by_name_in_any_order(tmp_path):
    src = pd.read_csv(BURSTGPT_3_400)
    shuffled = src[
        [
            "Log Type",
            "Total tokens",
            "Model",
            "Timestamp",
            "Response tokens",
            "Elapsed time",
            "Request tokens",
            "Session ID",
        ]
    ]
    path = tmp_path / "shuffled.csv"
    shuffled.to_csv(path, index=False)
    a, b = load_trace(BURSTGPT_3_400).df, load_trace(path).df
    pd.testing.assert_frame_equal(
        a.astype({"model": str, "log_type": str}), b.astype({"model": str, "log_type": str})
    )


def test_csv_gz_and_parquet_give_the_same_rows(tmp_path):
    gz = tmp_path / "trace.csv.gz"
    with open(BURSTGPT_3_400, "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    parquet = tmp_path / "trace.parquet"
    pq.write_table(pa.Table.from_pandas(pd.read_csv(BURSTGPT_3_400), preserve_index=False), parquet)
    want = load_trace(BURSTGPT_3_400).df.astype({"model": str, "log_type": str})
    for path in (gz, parquet):
        got = load_trace(path)
        pd.testing.assert_frame_equal(want, got.df.astype({"model": str, "log_type": str}))
        assert got.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_parquet_with_text_numbers_and_categories(tmp_path):
    df = pd.read_csv(BURSTGPT_1_7DAYS, nrows=50)
    df["Request tokens"] = df["Request tokens"].astype(str)
    df["Model"] = df["Model"].astype("category")
    path = tmp_path / "t.parquet"
    df.to_parquet(path)
    raw = load_trace(path)
    assert (
        raw.df["request_tokens"].tolist()
        == pd.read_csv(BURSTGPT_1_7DAYS, nrows=50)["Request tokens"].tolist()
    )
    assert raw.df["model"].astype(str).tolist() == df["Model"].astype(str).tolist()


def test_extra_columns_are_kept_and_reported(tmp_path):
    path = tmp_path / "extra.csv"
    rows = [row8(10, "s1", 2, 5, 7) + ["a", 1.5], row8(11, None, 1, 3, 4) + ["b", 2.5]]
    write_csv(path, HEADER_8 + ["note", "score"], rows)
    raw = load_trace(path)
    assert raw.extra_columns == ["note", "score"]
    assert list(raw.df.columns[-2:]) == ["note", "score"]
    assert raw.df["note"].tolist() == ["a", "b"] and raw.df["score"].tolist() == [1.5, 2.5]
    assert any("note, score" in w for w in raw.warnings)


def test_total_mismatch_is_counted_not_fatal(tmp_path):
    path = tmp_path / "mismatch.csv"
    rows = [row8(10, None, 2, 5, 7), row8(11, None, 1, 3, 4), row8(12, None, 1, 3, 4)]
    rows[1][6] = 99
    rows[2][6] = 0
    write_csv(path, HEADER_8, rows)
    raw = load_trace(path)
    assert raw.total_mismatch_rows == 2
    assert any(w.startswith("2 rows have Total tokens") for w in raw.warnings)
    assert raw.df["total_tokens"].tolist() == [12, 99, 0]


def test_header_names_tolerate_case_and_spacing(tmp_path):
    path = tmp_path / "case.csv"
    header = [
        "timestamp",
        "session_id",
        " Elapsed Time",
        "MODEL",
        "request tokens",
        "Response_tokens",
        "Total tokens",
        "log type",
    ]
    write_csv(path, header, [row8(1, "a", 1, 2, 3), row8(2, "a", 1, 4, 5)])
    raw = load_trace(path)
    assert raw.df["request_tokens"].tolist() == [2, 4] and raw.has_elapsed


def test_decimal_token_counts_and_blank_elapsed_are_accepted(tmp_path):
    path = tmp_path / "decimal.csv"
    write_csv(
        path,
        HEADER_8,
        [
            [1.0, "", "", "ChatGPT", "5.0", "7.0", "12.0", "API log"],
            [2.5, "s", 3, "GPT-4", 1, 2, 3, "Conversation log"],
        ],
    )
    raw = load_trace(path)
    assert raw.df["request_tokens"].dtype == np.int64
    assert raw.df["request_tokens"].tolist() == [5, 1]
    assert np.isnan(raw.df["elapsed"].iloc[0]) and raw.df["elapsed"].iloc[1] == 3
    assert any("no Elapsed time" in w for w in raw.warnings)


def test_progress_is_written_to_stderr_when_asked(capsys):
    load_trace(BURSTGPT_3_400, progress=True)
    err = capsys.readouterr().err
    assert "400 rows" in err and BURSTGPT_3_400.name in err


def test_no_progress_by_default_off_a_terminal(capsys):
    load_trace(BURSTGPT_3_400)
    assert capsys.readouterr().err == ""
