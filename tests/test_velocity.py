"""Layer tables and the TauP travel-time grid."""
from __future__ import annotations

import multiprocessing
import numpy as np
import pandas as pd
import pytest
from obspy.taup import TauPyModel
from obspy.taup.taup_create import build_taup_model

from quakesnake.velocity import DEFAULT_LAYERS, TAUP_PHASES, TravelTimeTable, layers_to_nd, read_layers

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


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    return TravelTimeTable(DEFAULT_LAYERS, max_distance_km=200, max_depth_km=40, cache_dir=tmp_path_factory.mktemp("tt"))


def test_interpolated_times_match_direct_taup(table, tmp_path):
    nd = tmp_path / "default.nd"
    nd.write_text(layers_to_nd(DEFAULT_LAYERS))
    build_taup_model(str(nd), output_folder=str(tmp_path), verbose=False)
    taup = TauPyModel(str(nd.with_suffix(".npz")))
    rng = np.random.default_rng(3)
    distances, depths = rng.uniform(0, 150, 40), rng.uniform(0, 30, 40)
    for phase in ("P", "S"):
        direct = [
            min(a.time for a in taup.get_travel_times(z, x / 111.19492664455873, TAUP_PHASES[phase]))
            for x, z in zip(distances, depths)
        ]
        error = np.abs(table.time(phase, distances, depths) - np.array(direct))
        assert error.max() < 0.05, f"{phase}: max interpolation error {error.max():.3f} s"


def test_time_is_vectorised_and_handles_elevation_and_limits(table):
    grid = table.time("P", np.array([[0.0, 10.0], [50.0, 100.0]]), 10.0)
    assert grid.shape == (2, 2) and np.all(np.diff(grid.ravel()) > 0)
    assert table.time("P", 0.0, 0.0) == pytest.approx(0.0, abs=1e-9)
    assert table.time("s", 30.0, 5.0, elevation_km=1.0) == pytest.approx(table.time("S", 30.0, 5.0) + 1.0 / 3.15)
    assert np.isnan(table.time("P", 250.0, 5.0)) and np.isnan(table.time("P", 50.0, 45.0))
    assert table.time("S", 60.0, 8.0) / table.time("P", 60.0, 8.0) == pytest.approx(5.5 / 3.15, rel=0.05)
    with pytest.raises(ValueError, match="phase"):
        table.time("Pg", 10.0, 5.0)


def test_horizontal_slowness_is_between_mantle_and_surface_speeds(table):
    slowness = table.horizontal_slowness("P", np.array([30.0, 80.0, 180.0]), 10.0)
    assert np.all(slowness > 1 / 8.1) and np.all(slowness < 1 / 5.5)


def test_grid_is_cached_on_disk(tmp_path, monkeypatch):
    first = TravelTimeTable(DEFAULT_LAYERS, max_distance_km=50, max_depth_km=10, cache_dir=tmp_path)
    assert len(list(tmp_path.glob("traveltimes-*.npz"))) == 1

    def no_rebuild(self):
        raise AssertionError("the cached grid should have been used")

    monkeypatch.setattr(TravelTimeTable, "_build", no_rebuild)
    second = TravelTimeTable(DEFAULT_LAYERS, max_distance_km=50, max_depth_km=10, cache_dir=tmp_path)
    assert second.time("S", 20.0, 5.0) == first.time("S", 20.0, 5.0)
    other = DEFAULT_LAYERS.assign(vp_km_s=DEFAULT_LAYERS["vp_km_s"] * 1.01)
    with pytest.raises(AssertionError, match="cached grid"):
        TravelTimeTable(other, max_distance_km=50, max_depth_km=10, cache_dir=tmp_path)


def _build_in_process(cache_dir: str) -> float:
    return float(TravelTimeTable(DEFAULT_LAYERS, max_distance_km=60, max_depth_km=10, cache_dir=cache_dir).time("P", 40.0, 5.0))


def test_two_processes_building_the_same_grid_agree(tmp_path):
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        results = pool.map(_build_in_process, [str(tmp_path)] * 2)
    assert results[0] == results[1]
    assert len(list(tmp_path.glob("traveltimes-*.npz"))) == 1
    assert not list(tmp_path.glob("*.part"))


def test_unreadable_cache_file_is_rebuilt(tmp_path):
    table = TravelTimeTable(DEFAULT_LAYERS, max_distance_km=50, max_depth_km=10, cache_dir=tmp_path)
    path = tmp_path / f"traveltimes-{table.cache_key}.npz"
    path.write_bytes(b"not a zip file")
    again = TravelTimeTable(DEFAULT_LAYERS, max_distance_km=50, max_depth_km=10, cache_dir=tmp_path)
    assert again.time("P", 30.0, 5.0) == table.time("P", 30.0, 5.0)
    with np.load(path) as cached:
        assert set(cached.files) == {"P", "S"}
