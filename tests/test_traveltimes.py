"""Layer tables, the exact layered first arrivals, their cached grid and its interpolation."""
from __future__ import annotations

import multiprocessing
import struct

import numpy as np
import pandas as pd
import pytest

from quakesnake.traveltimes import (
    DEFAULT_LAYERS, TravelTimes, configured_layers, layered_first_arrival_times, read_travel_time_grid, read_layers,
    travel_time_grid, travel_times_reaching,
)

def test_read_layers_from_list_fills_density():
    layers = read_layers([{"depth_km": 0, "vp_km_s": 5.0, "vs_km_s": 2.9}, {"depth_km": 15, "vp_km_s": 6.5, "vs_km_s": 3.7}])
    assert list(layers.columns) == ["depth_km", "vp_km_s", "vs_km_s", "rho_g_cm3"]
    assert layers["rho_g_cm3"].between(2.3, 3.0).all()


def test_read_layers_from_csv(tmp_path):
    path = tmp_path / "model.csv"
    DEFAULT_LAYERS.to_csv(path, index=False)
    pd.testing.assert_frame_equal(read_layers(path), DEFAULT_LAYERS)


@pytest.mark.shared
def test_read_layers_ogs_model_collapses_repeated_depth(shared_dir):
    layers = read_layers(shared_dir / "data" / "ogs" / "velocity_1d.csv")
    assert layers["depth_km"].is_monotonic_increasing and layers["depth_km"].is_unique
    assert layers.loc[layers["depth_km"] == 40.0, "vs_km_s"].item() == pytest.approx(4.48486)


@pytest.mark.parametrize(
    "rows, message",
    [
        ([{"depth_km": 0, "vp_km_s": 5.0, "vs_km_s": 3.0}, {"depth_km": -1, "vp_km_s": 6.0, "vs_km_s": 3.5}], "increase"),
        ([{"depth_km": 0, "vp_km_s": -5.0, "vs_km_s": 3.0}], "positive"),
        ([{"depth_km": 0, "vp_km_s": 5.0, "vs_km_s": 5.0}], "smaller than vp"),
        ([{"depth_km": 2, "vp_km_s": 5.0, "vs_km_s": 3.0}], "depth_km 0"),
        ([{"depth_km": 0, "vp_km_s": 5.0}], "missing column"),
    ],
)
def test_read_layers_rejects_bad_models(rows, message):
    with pytest.raises(ValueError, match=message) as error:
        read_layers(rows)
    assert "velocity model list" in str(error.value)


def test_read_layers_error_names_the_file(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text("depth_km,vp_km_s,vs_km_s\n0,5,3\n10,-6,3.5\n")
    with pytest.raises(ValueError, match="broken.csv"):
        read_layers(path)


def test_read_layers_names_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match="velocity model .*absent.csv: file not found"):
        read_layers(tmp_path / "absent.csv")


def test_configured_layers_prefer_the_rule_input_file(tmp_path):
    path = tmp_path / "model.csv"
    DEFAULT_LAYERS.assign(vp_km_s=DEFAULT_LAYERS["vp_km_s"] + 0.1).to_csv(path, index=False)
    assert configured_layers([str(path)], None)["vp_km_s"].iloc[0] == pytest.approx(5.6)
    assert configured_layers([], None).equals(DEFAULT_LAYERS)
    assert configured_layers([], [{"depth_km": 0, "vp_km_s": 5.0, "vs_km_s": 2.9}])["vp_km_s"].tolist() == [5.0]


def test_layered_travel_times_match_closed_forms():
    x = np.arange(0, 200.1, 0.5)
    z = np.arange(0, 40.1, 0.5)
    homogeneous = layered_first_arrival_times(np.array([0.0]), np.array([6.0]), x, z)
    assert np.allclose(homogeneous, np.hypot(x[:, None], z[None, :]) / 6.0, atol=1e-5)

    # 20 km of 6 km/s over 8 km/s: at the surface the head wave overtakes beyond the crossover
    two_layers = layered_first_arrival_times(np.array([0.0, 20.0]), np.array([6.0, 8.0]), x, z)
    delay = 2 * 20.0 * np.sqrt(1 / 6.0**2 - 1 / 8.0**2)
    assert np.allclose(two_layers[:, 0], np.minimum(x / 6.0, x / 8.0 + delay), atol=1e-6)
    depth = 10.0  # inside the top layer the head wave climbs back only 10 km
    iz = int(depth / 0.5)
    expected = np.minimum(np.hypot(x, depth) / 6.0, x / 8.0 + (2 * 20.0 - depth) * np.sqrt(1 / 6.0**2 - 1 / 8.0**2))
    assert np.allclose(two_layers[:, iz], expected, atol=1e-5)


def test_direct_wave_through_two_layers_matches_a_shot_ray():
    """A source 15 km down under 10 km of 5 km/s over 7 km/s: the ray of slowness p reaches the
    surface at X(p) after T(p), both sums over the layers crossed."""
    tops, velocities = np.array([0.0, 10.0]), np.array([5.0, 7.0])
    thickness = np.array([10.0, 5.0])
    for p in (0.02, 0.08, 0.13):
        cosines = np.sqrt(1 - (p * velocities) ** 2)
        offset = float(np.sum(thickness * p * velocities / cosines))
        time = float(np.sum(thickness / (velocities * cosines)))
        found = layered_first_arrival_times(tops, velocities, np.array([offset]), np.array([15.0]))[0, 0]
        assert found == pytest.approx(time, abs=1e-4)


def test_grid_file_has_pyocto_layout(tmp_path):
    layers = pd.DataFrame({"depth_km": [0.0, 20.0], "vp_km_s": [6.0, 8.0], "vs_km_s": [3.5, 4.6]})
    path = travel_time_grid(layers, 1.0, 50.0, 30.0, tmp_path)
    raw = path.read_bytes()
    nx, nz, delta = struct.unpack("iid", raw[:16])
    assert (nx, nz, delta) == (51, 31, 1.0)
    times = np.frombuffer(raw[16:], dtype=np.float64).reshape(2, nx, nz)
    assert times[0, 0, 0] == 0.0 and times[1, 0, 0] == 0.0
    assert times[0, 30, 5] == pytest.approx(np.hypot(30, 5) / 6.0)
    assert times[1, 30, 5] == pytest.approx(np.hypot(30, 5) / 3.5)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return TravelTimes(DEFAULT_LAYERS, max_distance_km=200, max_depth_km=40, cache_dir=tmp_path_factory.mktemp("tt"))


def test_interpolated_times_and_derivatives_match_the_exact_times(table):
    rng = np.random.default_rng(3)
    distances, depths = rng.uniform(0, 190, 40), rng.uniform(0, 38, 40)
    tops = DEFAULT_LAYERS["depth_km"].to_numpy()
    # derivatives where t is smooth: off the interfaces (10, 20, 32 km) and head-wave crossovers,
    # where dt/dz jumps and the spline rounds the corner over about one grid step
    smooth_x, smooth_z = np.array([0.3, 5.2, 37.7, 88.1, 140.4]), np.array([0.7, 11.9, 4.4, 25.3, 16.0])
    step = 0.01
    for phase, column in (("P", "vp_km_s"), ("S", "vs_km_s")):
        velocities = DEFAULT_LAYERS[column].to_numpy()
        exact = np.array([layered_first_arrival_times(tops, velocities, np.array([x]), np.array([z]))[0, 0]
                          for x, z in zip(distances, depths)])
        error = np.abs(table.time(phase, distances, depths) - exact)
        assert error.max() < 0.01, f"{phase}: max interpolation error {error.max():.4f} s"
        _, d_distance, d_depth = table.time_and_derivatives(phase, smooth_x, smooth_z)
        for i, (x, z) in enumerate(zip(smooth_x, smooth_z)):  # against central differences of the exact times
            along = layered_first_arrival_times(tops, velocities, np.array([x + step, x - step]), np.array([z]))[:, 0]
            assert d_distance[i] == pytest.approx((along[0] - along[1]) / (2 * step), abs=0.01)
            down = layered_first_arrival_times(tops, velocities, np.array([x]), np.array([z + step, z - step]))[0]
            assert d_depth[i] == pytest.approx((down[0] - down[1]) / (2 * step), abs=0.01)


def test_time_is_vectorised_and_handles_elevation_and_limits(table):
    grid = table.time("P", np.array([[0.0, 10.0], [50.0, 100.0]]), 10.0)
    assert grid.shape == (2, 2) and np.all(np.diff(grid.ravel()) > 0)
    assert table.time("P", 0.0, 0.0) == pytest.approx(0.0, abs=1e-5)
    assert table.time("s", 30.0, 5.0, elevation_km=1.0) == pytest.approx(table.time("S", 30.0, 5.0) + 1.0 / 3.15)
    assert np.isnan(table.time("P", 250.0, 5.0)) and np.isnan(table.time("P", 50.0, 45.0))
    assert table.time("P", 20.0, -1.0) == table.time("P", 20.0, 0.0)  # above sea level: taken at 0
    assert table.time("S", 60.0, 8.0) / table.time("P", 60.0, 8.0) == pytest.approx(5.5 / 3.15, rel=0.05)
    with pytest.raises(ValueError, match="phase"):
        table.time("Pg", 10.0, 5.0)


def test_horizontal_slowness_is_between_mantle_and_surface_speeds(table):
    slowness = table.horizontal_slowness("P", np.array([30.0, 80.0, 180.0]), 10.0)
    assert np.all(slowness > 1 / 8.1) and np.all(slowness < 1 / 5.5)
    # beyond the crossover the first P is the Moho head wave: slowness 1 / 8 km/s
    assert slowness[-1] == pytest.approx(1 / 8.0, abs=1e-3)


def test_grid_is_cached_on_disk_and_keyed_by_the_model(tmp_path, monkeypatch):
    first = TravelTimes(DEFAULT_LAYERS, max_distance_km=50, max_depth_km=10, cache_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]

    def no_rebuild(*args):
        raise AssertionError("the cached grid should have been used")

    monkeypatch.setattr("quakesnake.traveltimes.layered_first_arrival_times", no_rebuild)
    second = TravelTimes(DEFAULT_LAYERS, max_distance_km=50, max_depth_km=10, cache_dir=tmp_path)
    assert second.time("S", 20.0, 5.0) == first.time("S", 20.0, 5.0)
    other = DEFAULT_LAYERS.assign(vp_km_s=DEFAULT_LAYERS["vp_km_s"] * 1.01)
    with pytest.raises(AssertionError, match="cached grid"):
        TravelTimes(other, max_distance_km=50, max_depth_km=10, cache_dir=tmp_path)


def _build_in_process(cache_dir: str) -> float:
    return float(TravelTimes(DEFAULT_LAYERS, max_distance_km=60, max_depth_km=10, cache_dir=cache_dir).time("P", 40.0, 5.0))


def test_two_processes_building_the_same_grid_agree(tmp_path):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(_build_in_process, [str(tmp_path)] * 2)
    assert results[0] == results[1]
    assert len(list(tmp_path.glob("tt-*.bin"))) == 1
    assert not list(tmp_path.glob("*.part"))


def test_truncated_cache_file_is_rebuilt(tmp_path):
    table = TravelTimes(DEFAULT_LAYERS, max_distance_km=50, max_depth_km=10, cache_dir=tmp_path)
    table.path.write_bytes(table.path.read_bytes()[:1000])
    again = TravelTimes(DEFAULT_LAYERS, max_distance_km=50, max_depth_km=10, cache_dir=tmp_path)
    assert again.time("P", 30.0, 5.0) == table.time("P", 30.0, 5.0)
    spacing, grids = read_travel_time_grid(table.path)
    assert spacing == 0.25 and grids["P"].shape == (201, 41)


def test_travel_times_reaching_shares_one_table_for_nearby_extents(tmp_path):
    near = travel_times_reaching(DEFAULT_LAYERS, 120.0, 33.0, tmp_path)
    assert travel_times_reaching(DEFAULT_LAYERS, 140.0, 38.0, tmp_path) is near
    assert (near.max_distance_km, near.max_depth_km) == (150.0, 40.0)
