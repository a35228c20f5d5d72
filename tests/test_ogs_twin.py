"""config/ogs-twin.yaml: the synthetic twin of the OGS network plans the whole DAG on the real stations,
and its scores against the real bulletin cover the run's days only."""
from __future__ import annotations

import pandas as pd
from pathlib import Path

import pytest
import yaml
from workflow_runs import ROOT, planned_jobs, snakemake

from quakesnake.evaluation import score_catalog
from quakesnake.tabular import read_reference, read_stations
from quakesnake.shards import day_range

CONFIG = ROOT / "config" / "ogs-twin.yaml"


@pytest.fixture
def twin() -> dict:
    return yaml.safe_load(CONFIG.read_text())


@pytest.fixture
def ogs_dir(shared_dir):
    directory = shared_dir / "data" / "ogs"
    if not directory.is_dir():
        pytest.skip(f"needs the OGS bulletin {directory} (events.csv, picks.csv, stations.csv, velocity_1d.csv)")
    return directory


def test_twin_paths_name_the_shared_ogs_files(twin, ogs_dir):
    # relative to the checkout, the config's documented working directory
    paths = [twin["stations_file"], twin["velocity_model"], twin["reference"], twin["synthetic"]["catalog_dir"]]
    assert [(ROOT / p).resolve() for p in paths] == [
        path.resolve() for path in (ogs_dir / "stations.csv", ogs_dir / "velocity_1d.csv", ogs_dir, ogs_dir)
    ]  # resolved on both sides: ../shared may be a symlink


def test_twin_dry_run_plans_every_station_day_picker_and_associator(tmp_path, twin, ogs_dir):
    # A working directory with ../shared beside it, as the checkout has: the config runs unchanged.
    (tmp_path / "shared").symlink_to(ogs_dir.parents[1], target_is_directory=True)
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    result = snakemake(workdir, "-n", "--cores", "2", "--configfile", str(CONFIG))
    jobs = planned_jobs(result.stdout + result.stderr)
    rules = [job["rule"] for job in jobs]
    n_stations = len(read_stations(ogs_dir / "stations.csv"))
    days = day_range(twin["days"]["start"], twin["days"]["end"])
    pickers, associators = len(twin["pickers"]), len(twin["associators"])
    assert n_stations == 81 and len(days) == 2
    assert rules.count("scenario") == 1
    assert rules.count("download") == len(days)  # one job per day for the 81 station-days
    assert rules.count("pick") == len(days) * pickers
    assert rules.count("associate") == rules.count("magnitude") == pickers * associators * len(days)
    assert rules.count("evaluate") == pickers * associators
    planned_stations = {Path(path).name.split(".")[1] for job in jobs if job["rule"] == "download"
                        for path in job["output"] if path.endswith(".mseed")}
    assert planned_stations == set(read_stations(ogs_dir / "stations.csv")["station"])


def test_scores_against_the_bulletin_cover_the_run_days_only(twin, ogs_dir):
    events, picks, stations = read_reference(ogs_dir)
    days = day_range(twin["days"]["start"], twin["days"]["end"])
    start, end = pd.Timestamp(days[0]), pd.Timestamp(days[-1]) + pd.Timedelta(days=1)
    inside_events = events[(events["time"] >= start) & (events["time"] < end)]
    inside_picks = picks[(picks["time"] >= start) & (picks["time"] < end)]
    # the bulletin scored against itself, restricted to the run's days
    score = score_catalog(inside_events, inside_picks, events, picks, stations, start=start, end=end)
    metrics = score.metrics
    assert 0 < len(inside_events) < len(events)
    assert metrics["events"]["n_ref"] == len(inside_events)
    assert metrics["events"]["recall"] == metrics["events"]["precision"] == 1.0
    assert metrics["dropped"]["ref_events_outside_window"] == len(events) - len(inside_events)
    assert metrics["dropped"]["ref_picks_outside_window"] == len(picks) - len(inside_picks)
    for phase in ("P", "S"):
        assert metrics["picks"][phase]["recall"] == 1.0
