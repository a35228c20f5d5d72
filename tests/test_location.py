"""Relocation: perturbed starts converge back to the true hypocentres on synthetic 1D picks.

Arrival times are the exact first arrivals of a three-layer crust with a head wave
(traveltimes.layered_first_arrival_times at each station distance), plus the vertical path
through the top layer for the station elevation.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyproj import Geod

from quakesnake.evaluation import epicentral_distance_km
from quakesnake.location import relocate, relocate_with_residuals, resolve_options
from quakesnake.traveltimes import layered_first_arrival_times
from test_association import make_stations

LAYERS = pd.DataFrame({"depth_km": [0.0, 12.0, 30.0], "vp_km_s": [5.6, 6.3, 8.0], "vs_km_s": [3.2, 3.6, 4.5]})
LAT0, LON0 = 46.0, 12.5
_GEOD = Geod(ellps="WGS84")


def make_events(n: int = 6, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "event_id": [f"E{i}" for i in range(n)],
        "time": pd.Timestamp("2024-03-28T01:00:00") + pd.to_timedelta(np.arange(n) * 600.0, unit="s"),
        "latitude": LAT0 + rng.uniform(-0.3, 0.3, n),
        "longitude": LON0 + rng.uniform(-0.4, 0.4, n),
        "depth_km": rng.uniform(2, 25, n),
    })


def layered_arrivals(stations: pd.DataFrame, events: pd.DataFrame) -> pd.DataFrame:
    tops = LAYERS["depth_km"].to_numpy()
    rows = []
    for event in events.itertuples():
        distance = epicentral_distance_km(event.latitude, event.longitude, stations["latitude"], stations["longitude"])
        for phase, column in (("P", "vp_km_s"), ("S", "vs_km_s")):
            velocities = LAYERS[column].to_numpy()
            travel = layered_first_arrival_times(tops, velocities, distance, np.array([event.depth_km]))[:, 0]
            travel = travel + stations["elevation_m"].to_numpy() / 1000.0 / velocities[0]
            rows.append(pd.DataFrame({
                "event_id": event.event_id, "network": stations["network"], "station": stations["station"],
                "location": "", "phase": phase, "time": event.time + pd.to_timedelta(travel, unit="s"),
            }))
    return pd.concat(rows, ignore_index=True)


def perturbed(events: pd.DataFrame, seed: int = 5) -> pd.DataFrame:
    """Start locations 3-6 km off in each horizontal direction, 4 km in depth and 0.8 s in time."""
    rng = np.random.default_rng(seed)
    n = len(events)
    azimuth, distance = rng.uniform(0, 360, n), rng.uniform(3, 6, n) * np.sqrt(2)
    lon, lat, _ = _GEOD.fwd(events["longitude"].to_numpy(), events["latitude"].to_numpy(), azimuth, distance * 1000)
    return events.assign(
        latitude=lat, longitude=lon,
        depth_km=np.clip(events["depth_km"] + rng.choice([-4.0, 4.0], n), 0.5, None),
        time=events["time"] + pd.to_timedelta(rng.choice([-0.8, 0.8], n), unit="s"),
        rms_residual_s=9.9,
    )


def hypocentral_error_km(located: pd.DataFrame, truth: pd.DataFrame) -> np.ndarray:
    epicentral = epicentral_distance_km(located["latitude"], located["longitude"], truth["latitude"], truth["longitude"])
    return np.hypot(epicentral, located["depth_km"].to_numpy() - truth["depth_km"].to_numpy())


@pytest.fixture(scope="module")
def scenario():
    stations = make_stations(n=16, half_width_km=60.0)
    truth = make_events()
    return stations, truth, layered_arrivals(stations, truth)


def test_perturbed_starts_converge_to_the_true_hypocentres(scenario):
    stations, truth, picks = scenario
    start = perturbed(truth)
    assert (hypocentral_error_km(start, truth) > 4).all()

    located = relocate(start, picks, stations, LAYERS)

    assert located["relocated"].all()
    assert hypocentral_error_km(located, truth).max() < 0.5
    assert (located["time"] - truth["time"]).dt.total_seconds().abs().max() < 0.05
    # the associator location is kept beside the relocation
    pd.testing.assert_series_equal(located["latitude_assoc"], start["latitude"], check_names=False)
    pd.testing.assert_series_equal(located["time_assoc"], start["time"], check_names=False)
    assert (located["rms_residual_s_assoc"] == 9.9).all() and (located["rms_residual_s"] < 0.05).all()
    for column in ("erh_km", "erz_km", "time_std_s"):
        assert located[column].between(0, 2).all(), column


def test_uncertainties_grow_with_pick_noise_and_outliers_are_down_weighted(scenario):
    stations, truth, picks = scenario
    rng = np.random.default_rng(11)
    noisy = picks.assign(time=picks["time"] + pd.to_timedelta(rng.normal(0, 0.3, len(picks)), unit="s"))
    clean = relocate(perturbed(truth), picks, stations, LAYERS)
    located = relocate(perturbed(truth), noisy, stations, LAYERS)
    assert (located["erh_km"] > clean["erh_km"]).all() and (located["rms_residual_s"] > 0.15).all()
    assert hypocentral_error_km(located, truth).max() < 5.0

    # one P pick per event 3 s late (a wrongly associated pick): the robust loss keeps its pull small
    late = picks.copy()
    first_p = late[late["phase"] == "P"].groupby("event_id").head(1).index
    late.loc[first_p, "time"] += pd.Timedelta(seconds=3)
    located = relocate(perturbed(truth), late, stations, LAYERS)
    assert hypocentral_error_km(located, truth).max() < 1.0


def test_events_with_too_few_picks_keep_the_associator_location(scenario):
    stations, truth, picks = scenario
    start = perturbed(truth)
    sparse = picks[(picks["event_id"] != "E0") | (picks["station"].isin(["S000", "S001"]))]
    located = relocate(start, sparse, stations, LAYERS)
    first = located.iloc[0]
    assert not first["relocated"] and np.isnan(first["erh_km"])
    assert (first["latitude"], first["depth_km"], first["time"]) == (start.at[0, "latitude"], start.at[0, "depth_km"], start.at[0, "time"])
    assert located["relocated"].iloc[1:].all()


def test_empty_events_get_the_new_columns(scenario):
    stations, truth, picks = scenario
    located = relocate(truth.iloc[:0], picks.iloc[:0], stations, LAYERS)
    assert located.empty
    assert {"erh_km", "erz_km", "time_std_s", "relocated", "latitude_assoc", "depth_km_assoc"} <= set(located.columns)



def test_residuals_of_relocated_events_are_recomputed_and_others_kept(scenario):
    stations, truth, picks = scenario
    assigned = picks.assign(residual_s=7.0)
    sparse = assigned[(assigned["event_id"] != "E0") | (assigned["station"].isin(["S000", "S001"]))]
    located, residuals = relocate_with_residuals(perturbed(truth), sparse, stations, LAYERS)
    assert residuals.index.equals(sparse.index)
    kept = residuals["event_id"] == "E0"  # too few picks: not relocated, the associator's residuals stay
    assert (residuals.loc[kept, "residual_s"] == 7.0).all()
    # exact synthetic times: the relocated hypocentre predicts every other pick to a few ms
    assert residuals.loc[~kept, "residual_s"].abs().max() < 0.05
    rms = residuals[~kept].groupby("event_id")["residual_s"].apply(lambda r: np.sqrt(np.mean(r ** 2)))
    np.testing.assert_allclose(located.set_index("event_id").loc[rms.index, "rms_residual_s"], rms)


@pytest.mark.parametrize("options, message", [
    ({"max_iterations": 3}, "unknown key.*max_iterations"),
    ({"pick_sigma_s": {"P": 0.0}}, "positive P and S"),
    ({"pick_sigma_s": {"Pg": 0.1}}, "positive P and S"),
    ({"min_picks": 3}, "at least 4"),
    ({"max_depth_km": 0}, "max_depth_km must be positive"),
])
def test_bad_relocation_options_are_rejected_by_name(options, message):
    with pytest.raises(ValueError, match=message):
        resolve_options(options)
