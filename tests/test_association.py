"""Association: both adapters on a synthetic network with known events, midnight handling, config checks.

Synthetic arrivals use straight rays in a homogeneous medium (the velocities below), so PyOcto
0D, PyOcto 1D with a one-layer model and GaMMA all share the truth's physics.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pyproj import Geod

from quakesnake.association import DEFAULTS, associate_day, picks_around_day, resolve_config
from quakesnake.evaluation import epicentral_distance_km, match_events
from quakesnake.tabular import ASSIGNMENT_COLUMNS, EVENT_COLUMNS, read_reference

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OGS = SHARED / "data" / "ogs"
VP, VS = 5.85, 3.28
HOMOGENEOUS_LAYERS = pd.DataFrame({"depth_km": [0.0], "vp_km_s": [VP], "vs_km_s": [VS], "rho_g_cm3": [2.6]})
DAY = "2024-03-28"


def make_stations(n: int = 14, seed: int = 0, half_width_km: float = 45.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dx, dy = rng.uniform(-half_width_km, half_width_km, (2, n))
    lat0, lon0 = 46.0, 12.5
    return pd.DataFrame({
        "network": "XX", "station": [f"S{i:03d}" for i in range(n)], "location": "",
        "latitude": lat0 + dy / 111.19, "longitude": lon0 + dx / (111.19 * np.cos(np.radians(lat0))),
        "elevation_m": rng.uniform(0, 1500, n),
    })


def make_events(times: list[str], seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = len(times)
    return pd.DataFrame({
        "event_id": [f"E{i}" for i in range(n)],
        "time": pd.to_datetime(times, format="ISO8601"),
        "latitude": 46.0 + rng.uniform(-0.25, 0.25, n),
        "longitude": 12.5 + rng.uniform(-0.35, 0.35, n),
        "depth_km": rng.uniform(3, 15, n),
    })


def make_arrivals(stations: pd.DataFrame, events: pd.DataFrame, jitter_s: float = 0.05, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    geod = Geod(ellps="WGS84")
    rows = []
    for event in events.itertuples():
        _, _, metres = geod.inv(np.full(len(stations), event.longitude), np.full(len(stations), event.latitude),
                                stations["longitude"].to_numpy(), stations["latitude"].to_numpy())
        distance = np.hypot(metres / 1000, event.depth_km + stations["elevation_m"].to_numpy() / 1000)
        for phase, velocity in (("P", VP), ("S", VS)):
            delay = distance / velocity + rng.normal(0, jitter_s, len(stations))
            rows.append(pd.DataFrame({
                "network": stations["network"], "station": stations["station"], "location": "", "phase": phase,
                "time": event.time + pd.to_timedelta(delay, unit="s"), "probability": 0.9, "picker": "synthetic",
                "truth": event.event_id,
            }))
    return pd.concat(rows, ignore_index=True)


def make_false_picks(stations: pd.DataFrame, real: pd.DataFrame, fraction: float = 0.3, seed: int = 2) -> pd.DataFrame:
    """False picks within ±30 s of real ones on random stations and phases (uniform ones test nothing)."""
    rng = np.random.default_rng(seed)
    n = int(len(real) * fraction)
    near = real["time"].to_numpy()[rng.integers(0, len(real), n)]
    return pd.DataFrame({
        "network": "XX", "station": rng.choice(stations["station"].to_numpy(), n), "location": "",
        "phase": rng.choice(["P", "S"], n), "time": near + pd.to_timedelta(rng.uniform(-30, 30, n), unit="s").to_numpy(),
        "probability": 0.5, "picker": "synthetic", "truth": "false",
    })


CONFIGS = {
    "pyocto-0d": {"type": "pyocto", "velocity_model": "0d"},
    "pyocto-1d": {"type": "pyocto", "velocity_model": "1d"},
    "gamma": {"type": "gamma"},
}


def run(picks, stations, day, key, tmp_path, name=None):
    cfg = dict(CONFIGS[key])
    if cfg["type"] == "pyocto":
        cfg["table_dir"] = str(tmp_path / "tables")
    return associate_day(picks.drop(columns="truth"), stations, day, cfg, HOMOGENEOUS_LAYERS, name=name or key)


@pytest.fixture(scope="module")
def scenario():
    stations = make_stations()
    events = make_events([f"{DAY}T01:00:00", f"{DAY}T01:00:25", f"{DAY}T05:30:00", f"{DAY}T12:00:00", f"{DAY}T18:00:00"])
    real = make_arrivals(stations, events)
    picks = pd.concat([real, make_false_picks(stations, real)], ignore_index=True).sort_values("time", ignore_index=True)
    return stations, events, picks


@pytest.mark.parametrize("key", list(CONFIGS))
def test_recovers_synthetic_events_and_leaves_false_picks(scenario, key, tmp_path):
    stations, truth, picks = scenario
    events, assignments = run(picks, stations, DAY, key, tmp_path)

    assert list(events.columns[: len(EVENT_COLUMNS)]) == EVENT_COLUMNS
    assert list(assignments.columns) == ASSIGNMENT_COLUMNS
    matches = match_events(events, truth, time_tolerance_s=1.0, distance_tolerance_km=3.0)
    assert len(matches) == len(truth) == len(events)
    # depth is the weakly constrained coordinate (PyOcto's octree locator is coarse): bound it loosely
    assert matches["depth_error_km"].abs().median() < 3.0
    assert matches["depth_error_km"].abs().max() < 8.0

    labelled = assignments.merge(picks[["station", "phase", "time", "truth"]], on=["station", "phase", "time"])
    n_false = int((picks["truth"] == "false").sum())
    assert (labelled["truth"] == "false").sum() <= 0.1 * n_false
    # every event is built from the right picks
    for match in matches.itertuples():
        labels = labelled.loc[labelled["event_id"] == match.pred_event_id, "truth"]
        assert (labels == truth.at[match.ref_index, "event_id"]).mean() > 0.9
    assert (events["n_picks"] == events["n_p"] + events["n_s"]).all()
    assert events["n_picks"].sum() == len(assignments)
    assert assignments["residual_s"].abs().max() < 1.5


def test_pyocto_residuals_are_observed_minus_predicted(scenario, tmp_path):
    stations, _, picks = scenario
    events, assignments = run(picks, stations, DAY, "pyocto-0d", tmp_path)
    joined = assignments.merge(events, on="event_id", suffixes=("", "_event"))
    station = stations.set_index("station").loc[joined["station"]]
    epicentral = epicentral_distance_km(joined["latitude"], joined["longitude"], station["latitude"], station["longitude"])
    hypocentral = np.hypot(epicentral, joined["depth_km"].to_numpy() + station["elevation_m"].to_numpy() / 1000)
    predicted = joined["time_event"] + pd.to_timedelta(hypocentral / np.where(joined["phase"] == "P", VP, VS), unit="s")
    observed_minus_predicted = (joined["time"] - predicted).dt.total_seconds()
    # the tmerc projection and geodesic distances differ by metres here: a few ms
    assert np.allclose(observed_minus_predicted, joined["residual_s"], atol=0.02)


@pytest.mark.parametrize("key", ["pyocto-0d", "gamma"])
def test_event_at_midnight_is_kept_exactly_once(key, tmp_path):
    stations = make_stations()
    truth = make_events(["2024-03-28T23:59:59.8", "2024-03-28T22:00:00", "2024-03-29T03:00:00"])
    picks = make_arrivals(stations, truth)
    pad = pd.Timedelta(minutes=10)
    found = []
    for day in ("2024-03-28", "2024-03-29"):
        start = pd.Timestamp(day)
        window = picks[(picks["time"] >= start - pad) & (picks["time"] < start + pd.Timedelta(days=1) + pad)]
        events, _ = run(window, stations, day, key, tmp_path)
        assert ((events["time"] >= start) & (events["time"] < start + pd.Timedelta(days=1))).all()
        found.append(events)
    everything = pd.concat(found, ignore_index=True)
    assert everything["event_id"].is_unique
    matches = match_events(everything, truth, time_tolerance_s=1.0, distance_tolerance_km=3.0)
    assert len(everything) == len(truth) == len(matches)


def test_event_ids_are_deterministic_and_name_the_day(scenario, tmp_path):
    stations, _, picks = scenario
    first, first_assignments = run(picks, stations, DAY, "gamma", tmp_path, name="gamma-test")
    second, second_assignments = run(picks, stations, DAY, "gamma", tmp_path, name="gamma-test")
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first_assignments, second_assignments)
    assert all(re.fullmatch(r"gamma-test-20240328-\d{5}", event_id) for event_id in first["event_id"])
    assert first["event_id"].is_unique
    assert first["time"].is_monotonic_increasing
    assert (first["associator"] == "gamma-test").all()


@pytest.mark.parametrize("key", list(CONFIGS))
def test_empty_input_gives_empty_tables_with_the_contract_columns(key, tmp_path):
    stations = make_stations()
    no_picks = make_arrivals(stations, make_events([f"{DAY}T01:00:00"])).iloc[:0]
    events, assignments = run(no_picks, stations, DAY, key, tmp_path)
    assert events.empty and assignments.empty
    assert list(events.columns[: len(EVENT_COLUMNS)]) == EVENT_COLUMNS
    assert list(assignments.columns) == ASSIGNMENT_COLUMNS
    assert events["time"].dtype == "datetime64[ns]" and assignments["time"].dtype == "datetime64[ns]"


def test_picks_on_stations_without_coordinates_are_dropped_and_counted(scenario, tmp_path, caplog):
    stations, truth, picks = scenario
    ghost = picks.iloc[:7].assign(station="GHOST")
    with caplog.at_level(logging.WARNING, logger="quakesnake.association"):
        events, assignments = run(pd.concat([picks, ghost]), stations, DAY, "pyocto-0d", tmp_path)
    assert "dropped 7 of" in caplog.text and "XX.GHOST" in caplog.text
    assert "GHOST" not in set(assignments["station"])
    assert len(events) == len(truth)


def test_events_outside_the_day_are_left_to_their_own_day(scenario, tmp_path):
    stations, _, picks = scenario
    events, assignments = run(picks, stations, "2024-03-27", "pyocto-0d", tmp_path)
    assert events.empty and assignments.empty


def test_unknown_keys_and_types_are_rejected():
    with pytest.raises(ValueError, match="'n_pick'"):
        resolve_config({"type": "pyocto", "n_pick": 5})
    with pytest.raises(ValueError, match="'dbscan_eps'"):
        resolve_config({"type": "gamma", "dbscan_eps": 5})  # the key is dbscan_eps_s
    with pytest.raises(ValueError, match="unknown associator type 'real'"):
        resolve_config({"type": "real"})
    with pytest.raises(ValueError, match="'type'"):
        resolve_config({"n_picks": 5})
    with pytest.raises(ValueError, match="velocity_model"):
        resolve_config({"type": "pyocto", "velocity_model": "3d"})


def test_defaults_are_the_documented_ones():
    cfg = resolve_config({"type": "pyocto"})
    assert (cfg["velocity_model"], cfg["tolerance_s"], cfg["p_velocity_km_s"], cfg["s_velocity_km_s"], cfg["n_picks"],
            cfg["n_p_picks"], cfg["n_s_picks"], cfg["n_p_and_s_picks"], cfg["time_before_s"], cfg["zlim_km"]) == (
        "1d", 1.5, 5.85, 3.28, 6, 3, 3, 3, 300.0, [0.0, 40.0])
    cfg = resolve_config({"type": "gamma"})
    assert (cfg["vp_km_s"], cfg["vs_km_s"], cfg["dbscan_eps_s"], cfg["dbscan_min_samples"], cfg["min_picks_per_eq"],
            cfg["min_p_picks_per_eq"], cfg["min_s_picks_per_eq"], cfg["max_sigma11_s"], cfg["method"],
            cfg["use_amplitude"], cfg["ncpu"]) == (5.85, 3.28, 8.1, 3, 5, 3, 2, 1.5, "BGMM", False, 1)
    assert set(DEFAULTS) == {"pyocto", "gamma"}


def test_inconsistent_settings_are_warned_about(caplog):
    with caplog.at_level(logging.WARNING, logger="quakesnake.association"):
        resolve_config({"type": "pyocto", "n_p_picks": 4, "n_s_picks": 4, "n_picks": 6})
    assert caplog.text == ""  # P + S minima above n_picks is fine: the larger count applies
    with caplog.at_level(logging.WARNING, logger="quakesnake.association"):
        resolve_config({"type": "pyocto", "n_p_and_s_picks": 4, "n_picks": 10})
    assert "n_p_and_s_picks (4) exceeds min(n_p_picks, n_s_picks) = 3" in caplog.text


def test_1d_model_needs_layers(scenario):
    stations, _, picks = scenario
    with pytest.raises(ValueError, match="needs layers"):
        associate_day(picks.drop(columns="truth"), stations, DAY, {"type": "pyocto"}, None, name="p")


@pytest.mark.shared
@pytest.mark.skipif(not OGS.is_dir(), reason=f"OGS reference data not found at {OGS} (../shared beside the checkout)")
def test_replay_of_the_busiest_ogs_day_with_pyocto_1d(tmp_path):
    """2024-03-28 holds 32 OGS events; replay its manual picks (± 10 min) through PyOcto with the OGS 1D model."""
    ref_events, ref_picks, stations = read_reference(OGS)
    layers = pd.read_csv(OGS / "velocity_1d.csv")
    network = stations.drop_duplicates("station").set_index("station")["network"]
    picks = ref_picks.assign(network=ref_picks["station"].map(network), location="", probability=1.0, picker="manual")
    day = pd.Timestamp("2024-03-28")
    pad = pd.Timedelta(minutes=10)
    window = picks[(picks["time"] >= day - pad) & (picks["time"] < day + pd.Timedelta(days=1) + pad)]

    events, assignments = associate_day(
        window, stations, "2024-03-28", {"type": "pyocto", "velocity_model": "1d", "table_dir": str(tmp_path)},
        layers, name="pyocto",
    )
    reference = ref_events[(ref_events["time"] >= day) & (ref_events["time"] < day + pd.Timedelta(days=1))]
    matches = match_events(events, reference)
    assert len(reference) == 32
    assert len(matches) / len(reference) >= 0.7  # measured: 32 of 32
    assert len(matches) / len(events) >= 0.9


def test_picks_around_day_keeps_the_padded_window():
    frame = pd.DataFrame({
        "network": "XX", "station": "S000", "location": "", "phase": "P", "probability": 0.9, "picker": "test",
        "time": pd.to_datetime(["2024-03-27T23:49:00", "2024-03-27T23:51:00", "2024-03-28T12:00:00",
                                "2024-03-29T00:09:59", "2024-03-29T00:10:00"]),
    })
    picks = picks_around_day([frame.iloc[3:], frame.iloc[:3]], "2024-03-28", pad_s=600)
    assert picks["time"].dt.strftime("%H:%M:%S").tolist() == ["23:51:00", "12:00:00", "00:09:59"]



def test_gamma_with_amplitudes_estimates_magnitudes():
    stations = make_stations()
    truth = make_events([f"{DAY}T01:00:00", f"{DAY}T05:00:00"])
    picks = make_arrivals(stations, truth)
    magnitude = picks["truth"].map({"E0": 2.0, "E1": 3.0}).to_numpy()
    event = truth.set_index("event_id").loc[picks["truth"]]
    station = stations.set_index("station").loc[picks["station"]]
    epicentral = epicentral_distance_km(event["latitude"], event["longitude"], station["latitude"], station["longitude"])
    hypocentral = np.hypot(epicentral, event["depth_km"].to_numpy() + station["elevation_m"].to_numpy() / 1000)
    # GaMMA's attenuation relation: log10(A / cm/s) = 1.08 + 0.93 (M - 3.5) - 1.68 log10(R / km)
    picks["amplitude"] = 10 ** (1.08 + 0.93 * (magnitude - 3.5) - 1.68 * np.log10(hypocentral)) / 100

    events, _ = associate_day(picks.drop(columns="truth"), stations, DAY, {"type": "gamma", "use_amplitude": True}, name="g")

    assert events["magnitude"].tolist() == pytest.approx([2.0, 3.0], abs=0.1)
    with pytest.raises(ValueError, match="'amplitude' column"):
        associate_day(picks.drop(columns=["truth", "amplitude"]), stations, DAY, {"type": "gamma", "use_amplitude": True}, name="g")
