"""The report's figures and tables from evaluation's tables: the station table's numbers by hand,
every figure written, the shard status in a few lines."""
import json

import numpy as np
import pandas as pd
import pytest

from quakesnake import tabular
from quakesnake.evaluation import evaluate_files
from quakesnake.report_figures import report_figures_files, station_table

T0 = pd.Timestamp("2024-03-28")


def at(seconds):
    return T0 + pd.Timedelta(seconds=seconds)


def test_station_table_counts_picks_use_and_residuals_per_station():
    stations = pd.DataFrame({"network": "XX", "station": ["AAAAA", "BBBB"], "latitude": [46.0, 46.1], "longitude": [12.0, 12.1]})
    picks = pd.DataFrame({
        "network": "XX", "station": ["AAAAA"] * 4 + ["BBBB"] * 2, "phase": ["P", "S", "P", "P", "P", "S"],
        "time": [at(10), at(12), at(86400 + 5), at(86400 + 50), at(11), at(13)],
    })
    assignments = pd.DataFrame({"event_id": "E1", "network": "XX", "station": ["AAAAA", "AAAAA", "BBBB"],
                                "phase": ["P", "S", "P"], "time": [at(10), at(12), at(11)], "residual_s": [0.1, 0.3, -0.2]})
    # the reference abbreviates AAAAA to AAAA (as OGS does); it has 4 picks there, 2 matched
    matches = pd.DataFrame({"station": ["AAAA", "AAAA"], "phase": ["P", "S"], "residual_s": [0.05, -0.15]})
    table = station_table(stations, picks, assignments, matches, pd.Series({"AAAA": 4, "BBBB": 0}), n_days=2).set_index("station")
    assert table.at["AAAAA", "days_with_picks"] == 2
    assert (table.at["AAAAA", "p_picks_per_day"], table.at["AAAAA", "s_picks_per_day"]) == (1.5, 0.5)
    assert table.at["AAAAA", "share_used_by_events"] == pytest.approx(0.5)
    assert table.at["AAAAA", "association_residual_median_s"] == pytest.approx(0.2)
    assert (table.at["AAAAA", "reference_picks"], table.at["AAAAA", "reference_recall"]) == (4, 0.5)
    assert table.at["AAAAA", "reference_residual_median_s"] == pytest.approx(-0.05)
    assert table.at["BBBB", "share_used_by_events"] == 0.5
    assert table.at["BBBB", "reference_picks"] == 0 and np.isnan(table.at["BBBB", "reference_recall"])


def test_report_figures_files_write_every_figure_and_the_station_table(tmp_path):
    reference = tmp_path / "reference"
    stations = pd.DataFrame({"network": "XX", "station": ["AAAA", "BBBB", "CCCC"], "latitude": [46.0, 46.1, 46.2],
                             "longitude": [12.0, 12.1, 12.2], "elevation_m": 0.0})
    rng = np.random.default_rng(0)
    n = 60
    magnitudes = np.round(1.0 + rng.exponential(0.43, n), 2)
    ref_events = pd.DataFrame({"event_id": [f"R{i}" for i in range(n)], "time": [at(600 * i) for i in range(n)],
                               "latitude": 46.1, "longitude": 12.1, "depth_km": 8.0, "ML": magnitudes})
    ref_picks = pd.DataFrame({"event_id": [f"R{i}" for i in range(n)], "station": "AAAA", "phase": "P",
                              "time": [at(600 * i + 3) for i in range(n)]})
    for name, table in (("events", ref_events), ("picks", ref_picks), ("stations", stations)):
        tabular.write_table(table, reference / f"{name}.csv")
    found = ref_events.iloc[::2]
    catalog = pd.DataFrame({"event_id": [f"E{i}" for i in range(len(found))], "time": found["time"].to_numpy() + np.timedelta64(300, "ms"),
                            "latitude": 46.1, "longitude": 12.1, "depth_km": 9.0, "magnitude": found["ML"].to_numpy() + 0.1})
    tabular.write_table(catalog, tmp_path / "catalog.parquet")
    picks = ref_picks.drop(columns="event_id").assign(network="XX", time=ref_picks["time"] + pd.Timedelta(seconds=0.1))
    tabular.write_table(picks, tmp_path / "picks.parquet")
    assignments = picks.iloc[::2].assign(event_id=catalog["event_id"].to_numpy(), residual_s=0.05)
    tabular.write_table(assignments, tmp_path / "assignments.parquet")
    tabular.write_table(stations, tmp_path / "stations.csv")
    run = tmp_path / "evaluation"
    evaluate_files(tmp_path / "catalog.parquet", [tmp_path / "picks.parquet"], reference, ["2024-03-28"], run / "metrics.json",
                   run / "detections.parquet", run / "reference.parquet", run / "matches.parquet")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["magnitude_distribution"]["reference"]["n_events"] == n
    outputs = {name: run / f"{name}.png" for name in ("event_map", "frequency_magnitude", "cumulative_events", "magnitudes", "pick_residuals")}
    outputs["stations"] = run / "stations.csv"
    report_figures_files(run / "metrics.json", run / "detections.parquet", run / "reference.parquet", run / "matches.parquet",
                         tmp_path / "assignments.parquet", [tmp_path / "picks.parquet"], tmp_path / "stations.csv",
                         reference / "picks.csv", ["2024-03-28"], outputs)
    for name, path in outputs.items():
        if path.suffix == ".png":
            assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    table = tabular.read_table(outputs["stations"]).set_index("station")
    assert table.at["AAAA", "p_picks_per_day"] == n and table.at["AAAA", "share_used_by_events"] == pytest.approx(0.5)
    assert table.at["AAAA", "reference_recall"] == 1.0 and table.at["CCCC", "reference_picks"] == 0


def test_shard_status_summary_says_what_yielded_nothing_first():
    table = pd.DataFrame({
        "day": ["2024-01-01", "2024-01-01", "2024-01-02", "2024-01-02", "2024-01-02"],
        "network": "SY", "station": ["S001", "S002", "S001", "S002", "S003"],
        "stage": ["download"] * 3 + ["preprocess"] * 2,
        "status": ["ok", "no_data", "no_data", "ok", "skipped"],
        "reason": ["", "no client holds it", "no client holds it", "", "no vertical channel"],
    })
    summary = tabular.shard_status_summary(table, max_examples=1)
    assert summary[["stage", "status", "n_shards", "n_days"]].values.tolist() == [
        ["download", "no_data", 2, 2], ["preprocess", "skipped", 1, 1], ["download", "ok", 1, 1], ["preprocess", "ok", 1, 1]]
    assert summary.loc[0, "examples"] == "2024-01-01 SY.S002 …"
    assert tabular.shard_status_summary(table.iloc[:0]).empty
