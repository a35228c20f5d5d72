"""merge_station_picks: concatenation, exact-duplicate removal, time order, empty input."""
import pandas as pd

from quakesnake.tabular import PICK_COLUMNS, write_table
from quakesnake.merge import merge_station_picks


def picks(station: str, times: list[str], phase: str = "P") -> pd.DataFrame:
    return pd.DataFrame({
        "network": "XX", "station": station, "location": "", "phase": phase,
        "time": pd.to_datetime(times), "probability": 0.8, "picker": "test", "snr": 10.0,
    })[PICK_COLUMNS]


def test_merges_frames_and_files_sorted_by_time_without_exact_duplicates(tmp_path):
    a = picks("AAA", ["2024-03-28T00:00:05", "2024-03-28T00:00:01"])
    b = picks("BBB", ["2024-03-28T00:00:03"])
    write_table(b, tmp_path / "XX.BBB.csv")
    write_table(a, tmp_path / "XX.AAA.csv")
    near_duplicate = a.iloc[:1].assign(probability=0.5)  # same pick time, other probability: kept

    merged = merge_station_picks([tmp_path / "XX.AAA.csv", str(tmp_path / "XX.BBB.csv"), a, near_duplicate])

    assert list(merged.columns) == PICK_COLUMNS
    assert merged["time"].is_monotonic_increasing
    assert len(merged) == 4  # a twice (file and frame) counts once, plus b and the near duplicate
    assert merged["time"].dtype == "datetime64[ns]"
    assert list(merged.index) == list(range(4))


def test_result_does_not_depend_on_input_order():
    a = picks("AAA", ["2024-03-28T00:00:01"])
    b = picks("BBB", ["2024-03-28T00:00:01"], phase="S")
    pd.testing.assert_frame_equal(merge_station_picks([a, b]), merge_station_picks([b, a]))


def test_no_or_empty_inputs_give_an_empty_pick_table():
    for inputs in ([], [picks("AAA", [])]):
        merged = merge_station_picks(inputs)
        assert merged.empty
        assert list(merged.columns) == PICK_COLUMNS
