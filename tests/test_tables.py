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
