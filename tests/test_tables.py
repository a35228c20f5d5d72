"""Table I/O with pandas extension dtypes: the "string" dtype is pandas 3's default for text."""
from __future__ import annotations

import pandas as pd

from quakesnake import tabular


def test_tables_with_string_dtype_columns_write_and_read_back(tmp_path):
    picks = pd.DataFrame({
        "network": pd.Series(["SY", "SY"], dtype="string"),
        "station": pd.Series(["S001", "S002"], dtype="string"),
        "location": pd.Series(["", ""], dtype="string"),
        "phase": pd.Series(["P", "S"], dtype="string"),
        "time": pd.to_datetime(["2024-01-01T00:00:01.5", "2024-01-01T00:00:03.25"]),
        "probability": [0.9, 0.8],
        "picker": pd.Series(["stalta", "stalta"], dtype="string"),
    })
    for name in ("picks.csv", "picks.parquet"):
        tabular.write_table(picks, tmp_path / name)
        back = tabular.read_table(tmp_path / name, tabular.PICK_COLUMNS)
        assert back["time"].tolist() == picks["time"].tolist()
        assert back["station"].astype(str).tolist() == ["S001", "S002"]
    # ISO times of mixed precision in a "string" column parse one by one
    text_times = pd.Series(["2024-01-01T00:00:01.5Z", "2024-01-01T00:00:03Z"], dtype="string")
    assert tabular.to_datetime64(text_times).tolist() == [pd.Timestamp("2024-01-01T00:00:01.5"), pd.Timestamp("2024-01-01T00:00:03")]


def test_phase_names_reduce_to_their_letter_whatever_the_dtype():
    for dtype in (object, "string"):
        phases = pd.Series(["Pg", "sn", "P", "Sg", "pP"], dtype=dtype)
        assert tabular.phase_letters(phases).tolist() == ["P", "S", "P", "S", "P"]
        assert tabular.phase_letters(phases).dtype == object


def test_times_convert_to_obspy_and_back_to_the_nanosecond():
    from obspy import UTCDateTime

    stamp = pd.Timestamp("2024-03-20T23:59:59.123456789")
    utc = tabular.to_utcdatetime(stamp)
    assert utc == UTCDateTime("2024-03-20T23:59:59.123456789") and utc.ns == stamp.value
    assert tabular.to_datetime64(utc) == stamp
    assert tabular.to_utcdatetime("2024-03-20T23:59:59.123456789Z") == utc
    assert tabular.to_utcdatetime(stamp.to_datetime64()) == utc
