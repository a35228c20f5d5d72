"""Relocation: perturbed starts converge back to the true hypocentres on synthetic 1D picks.

Arrival times are the exact first arrivals of a three-layer crust with a head wave
(association.layered_first_arrival_times at each station distance), plus the vertical path
through the top layer for the station elevation.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pyproj import Geod

from quakesnake.association import layered_first_arrival_times
from quakesnake.evaluation import epicentral_distance_km
from quakesnake.location import LayeredTravelTimes, relocate
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


def test_spline_travel_times_match_the_exact_layered_times():
    tables = LayeredTravelTimes(LAYERS, max_distance_km=150.0, max_depth_km=40.0)
    distance = np.array([0.3, 5.2, 37.7, 88.1, 140.4])
    depth = np.array([0.7, 11.9, 4.4, 25.3, 33.0])
    for phase, column in (("P", "vp_km_s"), ("S", "vs_km_s")):
        exact = np.array([
            layered_first_arrival_times(LAYERS["depth_km"].to_numpy(), LAYERS[column].to_numpy(), np.array([d]), np.array([z]))[0, 0]
            for d, z in zip(distance, depth)
        ])
        times, d_distance, d_depth = tables.time(phase, distance, depth)
        assert np.allclose(times, exact, atol=0.03)
        # derivatives against a central difference of the exact times
        step = 0.01
        tops, velocities = LAYERS["depth_km"].to_numpy(), LAYERS[column].to_numpy()
        for i, (d, z) in enumerate(zip(distance, depth)):
            ahead = layered_first_arrival_times(tops, velocities, np.array([d + step, d - step]), np.array([z]))[:, 0]
            assert d_distance[i] == pytest.approx((ahead[0] - ahead[1]) / (2 * step), abs=0.01)
            below = layered_first_arrival_times(tops, velocities, np.array([d]), np.array([z + step, z - step]))[0]
            assert d_depth[i] == pytest.approx((below[0] - below[1]) / (2 * step), abs=0.01)
