"""Evaluation on hand-made tables whose answers are known."""
import json

import numpy as np
import pandas as pd
import pytest

from quakesnake.evaluation import (
    epicentral_distance_km, evaluate, headline_table, match_events, match_picks, score_catalog, station_code_map,
)

T0 = pd.Timestamp("2024-03-28T00:00:00")


def at(seconds: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(seconds=seconds)


def pick_table(rows) -> pd.DataFrame:
    return pd.DataFrame([{"station": s, "phase": p, "time": at(t)} for s, p, t in rows])


def event_table(rows, magnitude_column="magnitude") -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["event_id", "seconds", "latitude", "longitude", "depth_km", magnitude_column])
    return frame.assign(time=frame.pop("seconds").map(at))


# --------------------------------------------------------------------------- picks

def test_maximum_matching_beats_greedy_nearest():
    # greedy would give x the nearer B (0.2 s) and leave y unmatched; the maximum matching pairs both
    ref = pick_table([("AAAA", "P", 0.0), ("AAAA", "P", 0.5)])
    pred = pick_table([("AAAA", "P", 0.3), ("AAAA", "P", 0.7)])
    matches = match_picks(pred, ref, tolerance_s=0.5)
    assert sorted(zip(matches["pred_index"], matches["ref_index"])) == [(0, 0), (1, 1)]
    assert matches["residual_s"].tolist() == pytest.approx([0.3, 0.2])


def test_a_pick_between_two_references_matches_only_one():
    ref = pick_table([("AAAA", "P", 0.0), ("AAAA", "P", 0.4)])
    pred = pick_table([("AAAA", "P", 0.25)])
    matches = match_picks(pred, ref, tolerance_s=0.5)
    assert len(matches) == 1
    assert matches.loc[0, "ref_index"] == 1  # the nearer one
    assert matches["pred_index"].is_unique and matches["ref_index"].is_unique


def test_picks_match_only_on_same_station_and_phase_within_tolerance():
    ref = pick_table([("AAAA", "P", 10.0), ("AAAA", "S", 20.0), ("BBBB", "P", 30.0)])
    pred = pick_table([
        ("AAAA", "S", 10.0),   # wrong phase
        ("CCCC", "P", 10.0),   # wrong station
        ("AAAA", "S", 20.5),   # at the tolerance: counts
        ("BBBB", "P", 30.51),  # just beyond
    ])
    matches = match_picks(pred, ref, tolerance_s=0.5)
    assert matches[["pred_index", "ref_index"]].values.tolist() == [[2, 1]]
    assert matches.loc[0, "residual_s"] == pytest.approx(0.5)


def test_full_station_codes_match_truncated_reference_codes():
    assert station_code_map(["FUORN", "AAAA", "XYZ12"], ["FUOR", "AAAA"]) == {"FUORN": "FUOR", "AAAA": "AAAA"}
    # an exact code wins; its longer namesake is not matched rather than guessed
    assert station_code_map(["ABCD", "ABCDE"], ["ABCD"]) == {"ABCD": "ABCD"}
    # two long codes with one prefix: ambiguous, neither is matched
    assert station_code_map(["ABCDE", "ABCDF"], ["ABCD"]) == {}
    ref = pick_table([("FUOR", "P", 1.0)])
    pred = pick_table([("FUORN", "P", 1.1)])
    assert match_picks(pred, ref).loc[0, "station"] == "FUOR"


def test_empty_pick_inputs_give_empty_matches():
    ref = pick_table([("AAAA", "P", 1.0)])
    assert match_picks(ref.iloc[:0], ref).empty
    assert match_picks(ref, ref.iloc[:0]).empty


# --------------------------------------------------------------------------- events

def test_events_match_within_time_and_distance_one_to_one():
    ref = event_table([("R1", 100.0, 46.0, 12.0, 10.0, 2.0), ("R2", 200.0, 46.0, 12.0, 10.0, 1.0)])
    pred = event_table([
        ("P1", 101.0, 46.0, 12.05, 10.0, np.nan),  # 1 s, ~3.9 km: match
        ("P2", 100.5, 46.0, 12.0, 10.0, np.nan),   # closer to R1: takes it, P1 then stays unmatched
        ("P3", 201.0, 46.1, 12.0, 10.0, np.nan),   # 1 s but 11 km: no
        ("P4", 203.0, 46.0, 12.0, 10.0, np.nan),   # 3 s: no
    ])
    matches = match_events(pred, ref, time_tolerance_s=2.0, distance_tolerance_km=8.0)
    assert matches[["pred_event_id", "ref_event_id"]].values.tolist() == [["P2", "R1"]]
    assert matches.loc[0, "time_error_s"] == pytest.approx(0.5)
    assert np.isnan(matches.loc[0, "magnitude_error"])


def test_epicentral_distance_is_geodesic():
    assert epicentral_distance_km(46.0, 12.0, 47.0, 12.0) == pytest.approx(111.2, abs=0.1)
    assert epicentral_distance_km([46.0], [12.0], [46.0], [12.0]).tolist() == [0.0]


# --------------------------------------------------------------------------- evaluate

@pytest.fixture
def catalog():
    ref_stations = pd.DataFrame({
        "station": ["AAAA", "BBBB", "CCCC", "DDDD"], "network": "XX",
        "latitude": [46.0, 46.1, 46.2, np.nan], "longitude": [12.0, 12.1, 12.2, np.nan],
    })
    ref_events = event_table([
        ("R1", 100.0, 46.0, 12.0, 10.0, 2.0),
        ("R2", 200.0, 46.1, 12.1, 5.0, 1.0),
        ("R3", 300.0, 46.2, 12.2, 8.0, 1.5),
        ("R4", 86400.0 + 100, 46.2, 12.2, 8.0, 1.5),  # the next day: outside the window
    ], magnitude_column="ML")
    pred_events = event_table([
        ("P1", 100.5, 46.0, 12.02, 12.0, 2.3),  # R1: +0.5 s, ~1.55 km, +2 km deep, +0.3
        ("P2", 199.0, 46.1, 12.1, 4.0, 0.9),    # R2: -1 s, 0 km, -1 km, -0.1
        ("P3", 500.0, 46.1, 12.1, 4.0, 0.9),    # false
    ])
    ref_picks = pick_table([
        ("AAAA", "P", 102.0), ("AAAA", "S", 104.0), ("BBBB", "P", 103.0), ("CCCC", "P", 202.0),
        ("DDDD", "P", 103.5),  # station without coordinates
        ("EEEE", "P", 103.5),  # station missing from the table
    ])
    pred_picks = pick_table([
        ("AAAA", "P", 102.1),   # +0.1
        ("AAAA", "S", 103.8),   # -0.2
        ("BBBB", "P", 103.7),   # 0.7 s off: unmatched
        ("CCCC", "P", 202.05),  # +0.05
        ("CCCC", "S", 300.0),   # false
        ("ZZZZ", "P", 150.0),   # station unknown to the reference network
        ("AAAA", "P", -10.0),   # before the window
    ])
    return pred_events, pred_picks, ref_events, ref_picks, ref_stations


def test_evaluate_gives_the_hand_computed_metrics(catalog):
    metrics = evaluate(*catalog, start=T0, end=T0 + pd.Timedelta(days=1))

    p, s, events = metrics["picks"]["P"], metrics["picks"]["S"], metrics["events"]
    assert (p["n_ref"], p["n_pred"], p["tp"]) == (3, 3, 2)
    assert p["recall"] == pytest.approx(2 / 3) and p["precision"] == pytest.approx(2 / 3)
    assert p["residual_median_s"] == pytest.approx(0.075) and p["residual_mad_s"] == pytest.approx(0.025)
    assert (s["n_ref"], s["n_pred"], s["tp"], s["recall"], s["precision"]) == (1, 2, 1, 1.0, 0.5)
    assert s["residual_median_s"] == pytest.approx(-0.2) and s["residual_mad_s"] == 0.0

    assert (events["n_ref"], events["n_pred"], events["tp"], events["fn"], events["fp"]) == (3, 3, 2, 1, 1)
    assert events["recall"] == pytest.approx(2 / 3) and events["precision"] == pytest.approx(2 / 3)
    assert events["origin_time_mae_s"] == pytest.approx(0.75)
    assert events["origin_time_bias_s"] == pytest.approx(-0.25)
    one_epicentre = epicentral_distance_km(46.0, 12.0, 46.0, 12.02)
    assert events["epicentral_mae_km"] == pytest.approx(one_epicentre / 2)
    assert events["epicentral_rmse_km"] == pytest.approx(one_epicentre / np.sqrt(2))
    assert events["depth_mae_km"] == pytest.approx(1.5)
    assert events["depth_rmse_km"] == pytest.approx(np.sqrt(2.5))
    assert events["depth_bias_km"] == pytest.approx(0.5)
    assert events["magnitude_bias"] == pytest.approx(0.1)
    assert events["magnitude_mae"] == pytest.approx(0.2)

    assert (events["fp_real"], events["fp_false"], events["precision_real"]) == (None, None, None)
    assert events["n_unmatched"] == 1 and "candidates for review" in events["precision_real_reason"]
    assert metrics["dropped"] == {
        "ref_events_outside_window": 1, "pred_events_outside_window": 0,
        "ref_picks_outside_window": 0, "pred_picks_outside_window": 1,
        "ref_picks_without_station_coordinates": 2, "pred_picks_on_unknown_stations": 1,
    }
    assert metrics["tolerances"] == {"pick_s": 0.5, "event_time_s": 2.0, "event_distance_km": 8.0}
    json.dumps(metrics, allow_nan=False)


def test_processed_stations_restrict_the_reference_picks(catalog):
    metrics = evaluate(*catalog, start=T0, end=T0 + pd.Timedelta(days=1), processed_stations=["AAAA", "CCCC"])
    assert metrics["dropped"]["ref_picks_on_unprocessed_stations"] == 1
    assert (metrics["picks"]["P"]["n_ref"], metrics["picks"]["P"]["recall"]) == (2, 1.0)


def test_undefined_metrics_are_null_not_nan(catalog):
    pred_events, pred_picks, ref_events, ref_picks, ref_stations = catalog
    metrics = evaluate(
        pred_events.drop(columns="magnitude").iloc[:0], pred_picks.iloc[:0], ref_events.drop(columns="ML"),
        ref_picks, ref_stations, start=T0, end=T0 + pd.Timedelta(days=1),
    )
    events = metrics["events"]
    assert events["recall"] == 0.0 and events["precision"] is None
    assert events["origin_time_mae_s"] is None and events["magnitude_bias"] is None and events["magnitude_mae"] is None
    assert metrics["picks"]["P"]["residual_median_s"] is None
    text = json.dumps(metrics, allow_nan=False)
    assert "NaN" not in text


def test_generated_events_split_unmatched_detections_into_real_and_false(catalog):
    pred_events, pred_picks, ref_events, ref_picks, ref_stations = catalog
    extra = event_table([("P4", 700.0, 46.05, 12.05, 3.0, 0.4), ("P5", 701.0, 46.05, 12.06, 3.0, 0.4)])
    pred_events = pd.concat([pred_events, extra], ignore_index=True)
    generated = pd.concat([ref_events.drop(columns="ML"), event_table([
        ("G1", 500.8, 46.1, 12.12, 4.0, 0.5),   # P3 at +0.8 s, 1.5 km: real, not catalogued
        ("G2", 700.2, 46.05, 12.05, 3.0, 0.3),  # P4; P5 is a second detection of it: false
        ("G3", 900.0, 46.0, 12.0, 3.0, 0.2),    # nobody found it
    ])], ignore_index=True)
    score = score_catalog(pred_events, pred_picks, ref_events, ref_picks, ref_stations, start=T0,
                          end=T0 + pd.Timedelta(days=1), generated_events=generated)
    events = score.metrics["events"]
    assert (events["tp"], events["fp_real"], events["fp_false"]) == (2, 2, 1)
    assert events["precision"] == pytest.approx(2 / 5) and events["precision_real"] == pytest.approx(4 / 5)
    outcome = dict(zip(score.detections["event_id"], score.detections["outcome"]))
    assert outcome == {"P1": "matched", "P2": "matched", "P3": "fp_real", "P4": "fp_real", "P5": "fp_false"}
    assert dict(zip(score.detections["event_id"], score.detections["generated_event_id"]))["P3"] == "G1"
    # a catalogued event found twice is no new event: the second detection of R1 stays false
    again = pd.concat([pred_events, event_table([("P6", 101.0, 46.0, 12.01, 10.0, 2.0)])], ignore_index=True)
    score = score_catalog(again, pred_picks, ref_events, ref_picks, ref_stations, start=T0,
                          end=T0 + pd.Timedelta(days=1), generated_events=generated)
    assert score.detections.set_index("event_id").at["P6", "outcome"] == "fp_false"
    assert score.reference.set_index("event_id")["found"].to_dict() == {"R1": True, "R2": True, "R3": False}


def test_nothing_to_score_against_is_null_with_a_reason_never_zero(catalog):
    pred_events, pred_picks, ref_events, ref_picks, ref_stations = catalog
    metrics = evaluate(pred_events, pred_picks, ref_events, ref_picks.iloc[:0], ref_stations,
                       start=T0, end=T0 + pd.Timedelta(days=1))
    for phase in ("P", "S"):
        block = metrics["picks"][phase]
        assert block["n_pred"] > 0 and block["precision"] is None and block["recall"] is None
        assert "no %s picks" % phase in block["reason"]
    assert metrics["events"]["precision"] == pytest.approx(2 / 3) and metrics["events"]["reason"] is None
    metrics = evaluate(pred_events, pred_picks, ref_events.iloc[:0], ref_picks, ref_stations,
                       start=T0, end=T0 + pd.Timedelta(days=1))
    assert metrics["events"]["precision"] is None and "no events" in metrics["events"]["reason"]


def test_plots_are_written(catalog, tmp_path):
    from quakesnake.report_figures import plot_event_map, plot_pick_residuals

    ref_stations = catalog[-1]
    score = score_catalog(*catalog, start=T0, end=T0 + pd.Timedelta(days=1))
    plot_event_map(score.detections, score.reference, ref_stations, tmp_path / "map.png")
    plot_pick_residuals(score.pick_matches, tmp_path / "residuals.png")
    for name in ("map.png", "residuals.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_files_writes_metrics_and_tables_and_summary_reads_them(catalog, tmp_path):
    from quakesnake.evaluation import evaluate_files, summary_table
    from quakesnake.tabular import read_table, write_table

    pred_events, pred_picks, ref_events, ref_picks, ref_stations = catalog
    reference = tmp_path / "reference"
    write_table(ref_events.rename(columns={"ML": "magnitude"}), reference / "events.csv")
    write_table(ref_picks.assign(event_id="R1"), reference / "picks.csv")
    write_table(ref_stations, reference / "stations.csv")
    write_table(pred_events, tmp_path / "catalog.csv")
    write_table(pred_picks.iloc[:3], tmp_path / "2024-03-28.csv")
    write_table(pred_picks.iloc[3:], tmp_path / "2024-03-29.csv")
    run = tmp_path / "results" / "evaluation" / "stalta" / "gamma"

    metrics = evaluate_files(
        tmp_path / "catalog.csv", [tmp_path / "2024-03-28.csv", tmp_path / "2024-03-29.csv"], reference,
        ["2024-03-28"], run / "metrics.json", run / "detections.parquet", run / "reference_events.parquet",
        run / "pick_matches.parquet", pick_tolerance_s=0.5, event_time_tolerance_s=2.0, event_distance_tolerance_km=8.0,
    )

    assert metrics == json.loads((run / "metrics.json").read_text())
    assert metrics == evaluate(*catalog, start=T0, end=T0 + pd.Timedelta(days=1))
    detections = read_table(run / "detections.parquet")
    assert detections.set_index("event_id")["outcome"].to_dict() == {"P1": "matched", "P2": "matched", "P3": "unmatched"}
    assert read_table(run / "reference_events.parquet")["found"].tolist() == [True, True, False]
    matches = read_table(run / "pick_matches.parquet")
    # every reference pick here names R1: AAAA lies at its epicentre, CCCC ~27 km from it
    distance = matches.set_index(["station", "phase"])["epicentral_distance_km"]
    assert distance[("AAAA", "P")] == pytest.approx(0.0)
    assert distance[("CCCC", "P")] == pytest.approx(epicentral_distance_km(46.0, 12.0, 46.2, 12.2))
    summary = summary_table([run / "metrics.json"])
    assert summary.loc[0, ["picker", "associator"]].tolist() == ["stalta", "gamma"]
    assert summary.loc[0, "event_recall"] == pytest.approx(2 / 3)
    assert summary.loc[0, "s_precision"] == 0.5
    assert "candidates for review" in summary.loc[0, "notes"]
    headline = headline_table(summary)
    assert headline.loc[0, "found"] == "2 of 3" and headline.loc[0, "real"] == "n/a"
