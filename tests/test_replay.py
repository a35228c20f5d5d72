"""Catalog replay: a small synthetic catalog in the shared layout, false picks, the CLI, the OGS study window.

The synthetic catalog reuses the homogeneous-medium generators of test_association (straight
rays at VP/VS), so PyOcto 0D and a one-layer relocation share the truth's physics.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from quakesnake.cli import main
from quakesnake.config import SCHEMA_PATH, load_config
from quakesnake.tabular import read_reference
from quakesnake.replay import false_picks, picks_on_located_stations, replay_catalog
from test_association import HOMOGENEOUS_LAYERS, make_arrivals, make_events, make_stations

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
OGS = SHARED / "data" / "ogs"
ASSOCIATORS_YAML = ROOT / "config" / "ogs-associators.yaml"
SCHEMA = SCHEMA_PATH
PYOCTO_0D = {"type": "pyocto", "velocity_model": "0d"}
N_GHOST_PICKS = 3


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory) -> Path:
    """Five events over two days (one 0.3 s before midnight) in the shared layout, plus a
    station GHOST listed without coordinates and carrying three picks."""
    stations = make_stations()
    events = make_events([
        "2024-03-28T01:00:00", "2024-03-28T09:30:00", "2024-03-28T23:59:59.7", "2024-03-29T04:00:00", "2024-03-29T16:45:00",
    ])
    arrivals = make_arrivals(stations, events, jitter_s=0.02)
    ghost = arrivals.iloc[:N_GHOST_PICKS].assign(station="GHOST")
    picks = pd.concat([arrivals, ghost], ignore_index=True).rename(columns={"truth": "event_id"})
    directory = tmp_path_factory.mktemp("catalog")
    time_format = "%Y-%m-%dT%H:%M:%S.%fZ"
    events.assign(time=events["time"].dt.strftime(time_format)).to_csv(directory / "events.csv", index=False)
    picks.assign(time=picks["time"].dt.strftime(time_format), weight=0)[["event_id", "station", "phase", "time", "weight"]].to_csv(
        directory / "picks.csv", index=False)
    listed = pd.concat([stations, pd.DataFrame({"network": ["XX"], "station": ["GHOST"]})], ignore_index=True)
    listed[["station", "network", "latitude", "longitude", "elevation_m"]].to_csv(directory / "stations.csv", index=False)
    HOMOGENEOUS_LAYERS.to_csv(directory / "velocity_1d.csv", index=False)
    return directory


def test_replay_recovers_every_synthetic_event_and_counts_dropped_picks(catalog_dir):
    events, picks, stations = read_reference(catalog_dir)

    metrics, found, assignments = replay_catalog(events, picks, stations, PYOCTO_0D)

    assert metrics["events"]["recall"] == 1.0 and metrics["events"]["precision"] == 1.0
    assert metrics["events"]["epicentral_mae_km"] < 1.5
    assert metrics["replay"]["days"] == {"first": "2024-03-28", "last": "2024-03-29", "count": 2}
    assert metrics["replay"]["picks"]["without_station_coordinates"] == N_GHOST_PICKS
    assert metrics["replay"]["picks"]["fed"] == len(picks) - N_GHOST_PICKS
    assert metrics["dropped"]["ref_picks_without_station_coordinates"] == N_GHOST_PICKS
    assert found["event_id"].is_unique and len(found) == 5  # the midnight event once
    # the associated picks are scored as predicted picks: every real pick lands in an event
    assert metrics["picks"]["P"]["recall"] == 1.0 and metrics["picks"]["S"]["precision"] == 1.0
    assert {"events", "picks", "tolerances", "window", "dropped"} <= set(metrics)
    assert "GHOST" not in set(assignments["station"])


def test_false_picks_are_seeded_and_sit_near_real_picks(catalog_dir):
    events, picks, stations = read_reference(catalog_dir)
    real, _ = picks_on_located_stations(picks, stations)

    first, again, other = false_picks(real, 0.3, seed=4), false_picks(real, 0.3, seed=4), false_picks(real, 0.3, seed=5)

    pd.testing.assert_frame_equal(first, again)
    assert not first["time"].equals(other["time"])
    assert len(first) == round(0.3 * len(real))
    gap_s = np.abs(first["time"].to_numpy()[:, None] - real["time"].to_numpy()[None, :]).min(axis=1) / np.timedelta64(1, "s")
    assert gap_s.max() <= 30.0
    assert set(first["station"]) <= set(real["station"]) and set(first["phase"]) == {"P", "S"}
    assert (first["picker"] == "false").all() and (first["network"] == "XX").all()


def test_replay_with_false_picks_and_relocation_reports_both_locations(catalog_dir):
    events, picks, stations = read_reference(catalog_dir)

    metrics, found, _ = replay_catalog(events, picks, stations, PYOCTO_0D, HOMOGENEOUS_LAYERS, false_pick_rate=0.3, seed=1,
                                       relocate=True)

    assert metrics["replay"]["picks"]["false"] == round(0.3 * metrics["replay"]["picks"]["fed"] / 1.3)
    assert metrics["events"]["recall"] == 1.0 and metrics["events_before_relocation"]["recall"] == 1.0
    assert metrics["relocation"]["n_relocated"] == len(found) == 5
    assert metrics["events"]["epicentral_mae_km"] < 0.5
    assert {"latitude_assoc", "depth_km_assoc", "erh_km", "erz_km", "time_std_s"} <= set(found.columns)


def test_cli_replay_writes_metrics_and_prints_a_table(catalog_dir, tmp_path, capsys):
    config = tmp_path / "associators.yaml"
    config.write_text(yaml.safe_dump({"associators": {"octo-0d": PYOCTO_0D}}))
    out = tmp_path / "metrics.json"

    code = main(["replay", "--catalog-dir", str(catalog_dir), "--associator", "octo-0d", "--config", str(config),
                 "--relocate", "--false-pick-rate", "0.2", "--seed", "3", "--out", str(out), "--events-out", str(tmp_path / "events.csv")])

    assert code == 0
    metrics = json.loads(out.read_text())
    assert metrics["events"]["recall"] == 1.0 and "events_before_relocation" in metrics
    assert (metrics["replay"]["associator"], metrics["replay"]["seed"], metrics["replay"]["false_pick_rate"]) == ("octo-0d", 3, 0.2)
    assert len(pd.read_csv(tmp_path / "events.csv")) == 5
    table = capsys.readouterr().out
    assert "3 dropped: station without coordinates" in table and "relocated" in table and "events" in table


@pytest.mark.parametrize("arguments, message", [
    (["--associator", "gamma"], "picks.csv: file not found"),
    (["--associator", "octo"], "unknown associator 'octo'"),
    (["--associator", "pyocto", "--false-pick-rate", "-1"], "--false-pick-rate must be >= 0"),
])
def test_cli_replay_rejects_bad_input_with_exit_code_2(catalog_dir, tmp_path, capsys, arguments, message):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("events.csv", "stations.csv"):
        (broken / name).write_text((catalog_dir / name).read_text())

    code = main(["replay", "--catalog-dir", str(broken), *arguments, "--out", str(tmp_path / "metrics.json")])

    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "metrics.json").exists()


def test_cli_replay_names_the_associators_a_config_holds(catalog_dir, tmp_path, capsys):
    config = tmp_path / "associators.yaml"
    config.write_text(yaml.safe_dump({"associators": {"octo-0d": PYOCTO_0D}}))
    code = main(["replay", "--catalog-dir", str(catalog_dir), "--associator", "gamma", "--config", str(config), "--out", str(tmp_path / "m.json")])
    assert code == 2
    assert "no associator 'gamma' (has: octo-0d)" in capsys.readouterr().err


@pytest.mark.skipif(not SCHEMA.exists(), reason=f"no workflow config schema at {SCHEMA}")
def test_tuned_associator_settings_are_a_valid_workflow_config_fragment():
    config = load_config(ASSOCIATORS_YAML, SCHEMA)
    kinds = {name: entry["type"] for name, entry in yaml.safe_load(ASSOCIATORS_YAML.read_text())["associators"].items()}
    assert set(kinds.values()) == {"pyocto", "gamma"}
    assert set(config["associators"]) == set(kinds)


@pytest.mark.shared
@pytest.mark.skipif(not OGS.is_dir(), reason=f"OGS reference data not found at {OGS} (../shared beside the checkout)")
def test_replay_of_three_ogs_days_with_pyocto_1d(tmp_path):
    """2024-03-27..29 hold 59 OGS events; PyOcto with the OGS 1D model (thesis settings) on their manual picks."""
    events, picks, stations = read_reference(OGS)
    cfg = {"type": "pyocto", "velocity_model": "1d", "table_dir": str(tmp_path)}

    metrics, found, _ = replay_catalog(events, picks, stations, cfg, OGS / "velocity_1d.csv",
                                       days=["2024-03-27", "2024-03-28", "2024-03-29"], relocate=True)

    assert metrics["events"]["n_ref"] == 59
    assert metrics["replay"]["picks"]["without_station_coordinates"] > 0  # OGS picks on stations without coordinates
    # measured: recall 0.966 and precision 0.966 before relocation, epicentral MAE 0.86 km -> 0.52 km after
    assert metrics["events_before_relocation"]["recall"] >= 0.9 and metrics["events"]["precision"] >= 0.9
    assert metrics["events"]["epicentral_mae_km"] < metrics["events_before_relocation"]["epicentral_mae_km"]
    assert found["relocated"].mean() > 0.9
