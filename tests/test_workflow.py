"""The Snakemake workflow on a tiny synthetic scenario: dry runs, a full run, reruns of what changed."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml
from workflow_runs import ROOT, SNAKEMAKE, planned_jobs, snakemake

TINY = {
    "days": {"start": "2024-01-01", "end": "2024-01-02"},
    "synthetic": {"seed": 7, "n_stations": 4, "events_per_day": 15, "swarm_probability_per_day": 0.0,
                  "truth_min_picks": 4},
    "pickers": {"stalta": {"type": "stalta"}, "stalta-strict": {"type": "stalta", "trigger_on": 6.0}},
    "associators": {"pyocto": {"type": "pyocto", "n_picks": 4, "n_p_picks": 2, "n_s_picks": 1, "n_p_and_s_picks": 1}},
}


def run(workdir: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess:
    """Snakemake on 2 cores with ``config`` as the configuration file."""
    return snakemake(workdir, "--cores", "2", *(["--configfile", str(config)] if config else []), *args)


def rules_and_wildcards(result: subprocess.CompletedProcess) -> list[tuple[str, dict]]:
    return [(job["rule"], job["wildcards"]) for job in planned_jobs(result.stdout + result.stderr)]


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def test_default_config_dry_run_shows_the_whole_dag(tmp_path):
    jobs = rules_and_wildcards(run(tmp_path, "-n", config=ROOT / "config" / "config.yaml"))
    rules = [rule for rule, _ in jobs]
    shards = 12 * 2
    assert rules.count("download") == shards
    assert rules.count("preprocess") == shards
    assert rules.count("pick") == 2 * shards  # PhaseNet (shipped weights) and STA/LTA
    assert rules.count("merge") == 2 * 2
    assert rules.count("associate") == rules.count("magnitude") == 2 * 2 * 2
    assert rules.count("evaluate") == 2 * 2


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tiny")
    config = write_config(workdir / "tiny.yaml", TINY)
    run(workdir, config=config)
    return workdir, config


@pytest.mark.slow
def test_tiny_scenario_runs_end_to_end(tiny_run):
    workdir, _ = tiny_run
    for picker in TINY["pickers"]:
        metrics = json.loads((workdir / f"results/evaluation/{picker}/pyocto/metrics.json").read_text())
        for phase in ("P", "S"):
            assert set(metrics["picks"][phase]) >= {"recall", "precision", "n_ref", "n_pred", "residual_median_s"}
        assert set(metrics["events"]) >= {
            "recall", "precision", "n_ref", "n_pred", "tp", "origin_time_mae_s",
            "epicentral_mae_km", "epicentral_rmse_km", "depth_mae_km", "depth_rmse_km",
        }
        assert metrics["picks"]["P"]["n_ref"] > 0
        assert (workdir / f"results/catalog/{picker}/pyocto.xml").stat().st_size > 0
        assert (workdir / f"results/evaluation/{picker}/pyocto/event_map.png").stat().st_size > 0
    baseline = json.loads((workdir / "results/evaluation/stalta/pyocto/metrics.json").read_text())
    # The baseline picker must find most of what an analyst would pick on this scenario.
    assert baseline["picks"]["P"]["recall"] > 0.6
    assert baseline["events"]["recall"] > 0.6
    assert (workdir / "results/evaluation/summary.csv").exists()


@pytest.mark.slow
def test_nothing_to_do_after_a_complete_run(tiny_run):
    workdir, config = tiny_run
    assert [rule for rule, _ in rules_and_wildcards(run(workdir, "-n", config=config))] == []


@pytest.mark.slow
def test_changing_one_picker_threshold_reruns_only_that_picker(tiny_run):
    workdir, config = tiny_run
    changed = yaml.safe_load(config.read_text())
    changed["pickers"]["stalta-strict"]["trigger_on"] = 5.0
    changed_config = write_config(workdir / "changed.yaml", changed)
    jobs = rules_and_wildcards(run(workdir, "-n", config=changed_config))
    rules = {rule for rule, _ in jobs} - {"all"}
    assert rules == {"pick", "merge", "associate", "magnitude", "catalog", "evaluate", "summary"}
    pickers = {wildcards["picker"] for _, wildcards in jobs if "picker" in wildcards}
    assert pickers == {"stalta-strict"}
    assert sum(rule == "pick" for rule, _ in jobs) == 4 * 2


@pytest.mark.slow
def test_replacing_one_station_day_reruns_only_its_shard_and_days(tiny_run):
    workdir, config = tiny_run
    raw = workdir / "results/waveforms/2024-01-02/SY.S002.mseed"
    raw.write_bytes(raw.read_bytes())  # a replaced input: same bytes, newer file
    jobs = rules_and_wildcards(run(workdir, "-n", config=config))
    by_rule = {}
    for rule, wildcards in jobs:
        by_rule.setdefault(rule, []).append(wildcards)
    shard = {"day": "2024-01-02", "net": "SY", "sta": "S002"}
    assert "download" not in by_rule
    assert by_rule["preprocess"] == [shard]
    assert sorted(w["picker"] for w in by_rule["pick"]) == sorted(TINY["pickers"])
    assert all({k: w[k] for k in shard} == shard for w in by_rule["pick"])
    assert sorted((w["picker"], w["day"]) for w in by_rule["merge"]) == sorted((p, "2024-01-02") for p in TINY["pickers"])
    # Associating a day reads its neighbours' picks (midnight), so both days of this run re-associate.
    assert len(by_rule["associate"]) == len(TINY["pickers"]) * 2
    assert len(by_rule["catalog"]) == len(by_rule["evaluate"]) == len(TINY["pickers"])
    run(workdir, config=config)  # leave the fixture complete for the other tests


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_catalog(tiny_run, tmp_path):
    import os
    import signal
    import time
    from base64 import urlsafe_b64decode

    reference_dir, config = tiny_run
    command = [*SNAKEMAKE, "-s", str(ROOT / "Snakefile"), "--directory", str(tmp_path), "--cores", "2",
               "--configfile", str(config)]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    picks_dir = tmp_path / "results/picks/stalta"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and len(list(picks_dir.glob("*/*.parquet"))) < 4:
        time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)  # Snakemake and its running jobs, no chance to clean up
    process.wait()
    # Outputs of jobs still running at the kill are marked incomplete and rightly redone.
    in_flight = {tmp_path / urlsafe_b64decode(marker.name).decode()
                 for marker in (tmp_path / ".snakemake/incomplete").rglob("*") if marker.is_file()}
    finished = {p: p.stat().st_mtime_ns for p in picks_dir.glob("*/*.parquet") if p not in in_flight}
    assert finished, "the run was killed before any pick job finished"
    assert not (tmp_path / "results/evaluation/summary.csv").exists()

    run(tmp_path, "--unlock", config=config)  # a hard kill leaves Snakemake's lock behind
    run(tmp_path, "--rerun-incomplete", config=config)
    assert {p: p.stat().st_mtime_ns for p in finished} == finished, "a finished shard was recomputed"
    for picker in TINY["pickers"]:
        resumed = (tmp_path / f"results/catalog/{picker}/pyocto.csv").read_text()
        uninterrupted = (reference_dir / f"results/catalog/{picker}/pyocto.csv").read_text()
        assert resumed == uninterrupted
