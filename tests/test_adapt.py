"""Self-training (quakesnake.adapt, `snakemake adapt`): the label rule, the rounds' pickers and
settings, the datasets' noise around the rounds' picks, and the whole target on real data."""
from __future__ import annotations

import json

import numpy as np
import obspy
import pandas as pd
import pytest

from quakesnake import adapt, tabular
from quakesnake.training import FALSE_PICK_COLUMN, _replay_weights, station_day_traces, training_settings
from workflow_runs import ROOT, planned_jobs, snakemake

T0 = pd.Timestamp("2024-01-01T10:00:00")


def _pick(station, phase, seconds, network="XX"):
    return {"network": network, "station": station, "location": "", "phase": phase,
            "time": T0 + pd.Timedelta(seconds=seconds), "probability": 0.9, "picker": "p", "snr": 10.0}


def _round_tables():
    """Picks of a well-constrained event A (5 stations), a weak event B (2 stations) and 2 picks
    no event took; the assignments copy the picks' times, as the associators do."""
    rows = []
    for k in range(5):  # event A: P and S at 5 stations, residuals 0.1 s, one S off by 2 s
        rows.append({**_pick(f"S{k}", "P", 2.0 * k), "event_id": "A", "residual_s": 0.1})
        rows.append({**_pick(f"S{k}", "S", 3.5 * k + 1), "event_id": "A", "residual_s": 2.0 if k == 4 else -0.1})
    for k in range(2):  # event B
        rows.append({**_pick(f"S{k}", "P", 300.0 + k), "event_id": "B", "residual_s": 0.05})
    assigned = pd.DataFrame(rows)
    lone = pd.DataFrame([_pick("S0", "P", 900.0), _pick("S3", "S", 1200.0)])
    picks = pd.concat([assigned[tabular.PICK_COLUMNS], lone], ignore_index=True)
    events = pd.DataFrame({"event_id": ["A", "B"], "time": [T0, T0 + pd.Timedelta(seconds=299)]})
    return picks, events, assigned[tabular.ASSIGNMENT_COLUMNS]


def test_labels_are_the_picks_of_well_constrained_events_only():
    picks, events, assignments = _round_tables()
    tables = adapt.split_picks(picks, events, assignments, {"min_stations": 4, "min_picks": 6, "min_p_picks": 3,
                                                            "max_rms_residual_s": 0.3, "max_pick_residual_s": 0.6})
    labels = tables["labels"]
    assert list(labels.columns) == adapt.LABEL_COLUMNS
    assert set(labels["event_id"]) == {"A"}
    # the S with a 2 s residual is no label, but no noise either: among the associated picks
    assert len(labels) == 9 and not ((labels["station"] == "S4") & (labels["phase"] == "S")).any()
    associated = tables["associated"]
    assert len(associated) == 3 and set(associated["station"]) == {"S0", "S1", "S4"}
    assert sorted(tables["false"]["station"]) == ["S0", "S3"]
    # stricter rules: event A is no longer well constrained, and its picks move to "associated"
    strict = adapt.split_picks(picks, events, assignments, {"min_stations": 6})
    assert strict["labels"].empty and len(strict["associated"]) == 12


def test_a_pick_without_a_residual_does_not_count_for_its_event():
    picks, events, assignments = _round_tables()
    assignments.loc[assignments["event_id"] == "A", "residual_s"] = np.nan
    assert adapt.split_picks(picks, events, assignments)["labels"].empty


def test_each_round_picks_with_the_previous_rounds_weights():
    cfg = {"rounds": 3, "picker": {"type": "seisbench", "model": "PhaseNet", "weights": "quakesnake-synthetic"}}
    pickers = adapt.round_pickers(cfg, {"phasenet": {}})
    assert list(pickers) == ["adapt-round1", "adapt-round2", "adapt-round3"]
    assert pickers["adapt-round1"]["weights"] == "quakesnake-synthetic"
    assert pickers["adapt-round3"]["weights"] == "results/adapt/round2/model/model"
    training = adapt.training_settings_of_round({"seed": 5, "epochs": 30}, cfg, 3)
    assert training["init_weights"] == "results/adapt/round2/model/model" and training["model"] == "PhaseNet"
    assert training["epochs"] == adapt.DEFAULTS["training"]["epochs"]  # adapt's overrides win
    assert training["seed"] == 8 and training["split"] == training_settings({})["split"]


def test_a_committee_makes_each_round_a_consensus_led_by_the_model():
    cfg = {"committee": {"members": [{"type": "stalta"}], "min_agree": 2}}
    picker = adapt.round_pickers(cfg, {})["adapt-round2"]
    assert picker["type"] == "consensus" and picker["min_agree"] == 2
    assert picker["members"][0]["weights"] == "results/adapt/round1/model/model"
    assert picker["members"][1] == {"type": "stalta"}


def test_bad_adapt_settings_are_refused_with_the_reason():
    with pytest.raises(adapt.AdaptError, match="must be a seisbench picker"):
        adapt.round_pickers({"picker": {"type": "stalta"}}, {})
    with pytest.raises(adapt.AdaptError, match="adapt-round1.*kept for adapt"):
        adapt.round_pickers({}, {"adapt-round1": {"type": "stalta"}})


def test_replay_directories_come_from_globs_and_a_pattern_matching_none_fails(tmp_path):
    for day in ("2024-01-01", "2024-01-02"):
        (tmp_path / day).mkdir()
        (tmp_path / day / "metadata.csv").write_text("trace_name\n")
    (tmp_path / "empty").mkdir()
    assert adapt.replay_dataset_dirs([f"{tmp_path}/*"]) == [str(tmp_path / "2024-01-01"), str(tmp_path / "2024-01-02")]
    with pytest.raises(adapt.AdaptError, match="no dataset directory"):
        adapt.replay_dataset_dirs([f"{tmp_path}/nothing-*"])


def test_a_round_without_labelled_traces_stops_before_training(tmp_path):
    (tmp_path / "metadata.csv").write_text("trace_name,trace_category\na,noise\nb,noise\n")
    with pytest.raises(adapt.AdaptError, match="round 2: no event passed adapt.labels"):
        adapt.fine_tune_round(2, [tmp_path], [], tmp_path / "model", {})


def _stream(seconds=3600.0, rate=100.0):
    rng = np.random.default_rng(0)
    return obspy.Stream([obspy.Trace(rng.normal(size=int(seconds * rate)).astype(np.float32),
                                     {"network": "XX", "station": "S0", "channel": f"HH{c}", "sampling_rate": rate,
                                      "starttime": obspy.UTCDateTime(str(T0))}) for c in "ZNE"])


def test_noise_traces_keep_away_from_every_pick_and_false_picks_get_their_own_traces():
    settings = training_settings({"noise_traces_per_station_day": 8, "noise_clearance_s": 10.0})
    labels = pd.DataFrame({"event_id": ["A", "A"], "phase": ["P", "S"],
                           "time": [T0 + pd.Timedelta(seconds=600), T0 + pd.Timedelta(seconds=605)]})
    avoid = np.array([T0 + pd.Timedelta(seconds=s) for s in (1500, 2500)], dtype="datetime64[ns]")
    false = np.array([T0 + pd.Timedelta(seconds=s) for s in (1000, 3000)], dtype="datetime64[ns]")
    traces = station_day_traces(_stream(), labels, settings, np.random.default_rng(1), T0.normalize(),
                                avoid, false, false_pick_traces=5)
    kinds = [m["trace_category"] for m, _ in traces]
    assert kinds.count("earthquake") == 1
    around_false = [m for m, _ in traces if not pd.isna(m.get(FALSE_PICK_COLUMN, np.nan))]
    assert len(around_false) == 2  # both false picks are clear of the labels and the avoided picks
    for metadata in around_false:
        start = pd.Timestamp(metadata["trace_start_time"]).tz_localize(None)
        false_time = start + pd.Timedelta(seconds=metadata[FALSE_PICK_COLUMN] / 100.0)
        assert np.min(np.abs(false - np.datetime64(false_time))) < np.timedelta64(20, "ms")
    every_pick = np.concatenate([labels["time"].to_numpy("datetime64[ns]"), avoid, false])
    for metadata, _ in traces:
        if metadata["trace_category"] == "noise" and pd.isna(metadata.get(FALSE_PICK_COLUMN, np.nan)):
            start = np.datetime64(pd.Timestamp(metadata["trace_start_time"]).tz_localize(None))
            inside = (every_pick >= start - np.timedelta64(10, "s")) & (every_pick < start + np.timedelta64(120, "s"))
            assert not inside.any()


def test_the_noise_share_is_capped_on_average():
    settings = training_settings({"noise_traces_per_station_day": 20})
    labels = pd.DataFrame({"event_id": [f"E{k}" for k in range(6)], "phase": ["P"] * 6,
                           "time": [T0 + pd.Timedelta(seconds=300 + 500 * k) for k in range(6)]})
    no_events = station_day_traces(_stream(), labels.iloc[:0], settings, np.random.default_rng(1), T0.normalize(),
                                   max_noise_fraction=0.3)
    assert no_events == []
    traces = station_day_traces(_stream(), labels, settings, np.random.default_rng(1), T0.normalize(),
                                max_noise_fraction=0.25)
    kinds = [m["trace_category"] for m, _ in traces]
    assert kinds.count("earthquake") == 6 and kinds.count("noise") == 2  # 6 x 0.25 / 0.75


def test_replay_weights_give_the_replay_its_share_of_the_draws():
    weights = _replay_weights([10, 990], 0.5)
    assert weights[:10].sum() == pytest.approx(0.5) and weights[10:].sum() == pytest.approx(0.5)
    assert _replay_weights([10], 0.5) is None and _replay_weights([10, 990], None) is None


def test_rounds_table_counts_labels_and_traces(tmp_path):
    picks, events, assignments = _round_tables()
    files = {}
    for name, table in (("picks", picks), ("events", events), ("assignments", assignments)):
        files[name] = tmp_path / f"{name}.parquet"
        tabular.write_table(table, files[name])
    out = {key: tmp_path / f"labels.{key}.csv" for key in ("labels", "associated", "false_picks")}
    out["counts"] = tmp_path / "labels.json"
    counts = adapt.write_day_labels(files["picks"], files["events"], files["assignments"], out)
    assert json.loads(out["counts"].read_text()) == counts
    assert counts == {"picks": 14, "events": 2, "labelled_events": 1, "p_labels": 5, "s_labels": 4,
                      "associated_unlabelled_picks": 3, "false_picks": 2}
    metadata = tmp_path / "metadata.csv"
    pd.DataFrame({"trace_category": ["earthquake", "noise", "noise"], FALSE_PICK_COLUMN: [np.nan, 120.0, np.nan],
                  "trace_noise_source": "recorded", "split": "train"}).to_csv(metadata, index=False)
    metrics = tmp_path / "metrics.json"
    scores = {"P": {"0.5s": {"recall": 0.5, "precision": 1.0}}, "S": {"0.5s": {"recall": 1.0, "precision": 0.5}}}
    metrics.write_text(json.dumps({"best_epoch": 1, "initial_dev_loss": 0.2, "best_dev_loss": 0.1,
                                   "scores": {"dev": scores, "test": None}}))
    table = adapt.rounds_table({1: {"picks": [files["picks"]], "events": [files["events"]], "labels": [out["labels"]],
                                    "datasets": [metadata], "metrics": metrics}})
    row = table.iloc[0]
    assert (row["picks"], row["events"], row["labelled_events"], row["p_labels"], row["s_labels"]) == (14, 2, 1, 5, 4)
    assert (row["event_traces"], row["noise_traces"], row["false_pick_traces"]) == (1, 2, 1)
    assert row["dev_p_recall"] == 0.5 and row["dev_s_precision"] == 0.5


def test_the_adapt_target_plans_rounds_that_wait_for_the_previous_model(tmp_path):
    default = ("--configfile", str(ROOT / "config" / "config.yaml"))
    result = snakemake(tmp_path, "adapt", "-n", "--cores", "2", *default)
    jobs = planned_jobs(result.stdout)
    pickers = {job["wildcards"].get("picker") for job in jobs if job["rule"] == "adapt_pick"}
    assert pickers == {"adapt-round1", "adapt-round2"}
    assert {job["wildcards"]["round"] for job in jobs if job["rule"] == "adapt_train"} == {"1", "2"}
    assert not any(job["rule"] in ("pick", "associate", "locate", "evaluate") for job in jobs)
    # round 2's picks read round 1's model: its pick job lists the weights as inputs
    block = next(block for block in result.stdout.split("\n\n") if "results/picks/adapt-round2/" in block
                 and "rule adapt_pick:" in block)
    assert "results/adapt/round1/model/model.pt" in block and "results/adapt/round1/model/model.json" in block
    # the run's own targets hold no adapt job
    everything = planned_jobs(snakemake(tmp_path, "-n", "--cores", "2", *default).stdout)
    assert not any(job["rule"].startswith("adapt") for job in everything)


@pytest.mark.slow
def test_adapt_runs_on_the_colombian_hour(tmp_path, shared_dir):
    """`snakemake adapt` end to end on real unlabelled data, with config/adapt-colombia.yaml as
    its header says (the SDS archive by `quakesnake sds-archive`, a one-day replay dataset)."""
    import subprocess
    import sys

    hour = shared_dir / "data" / "real" / "colombia-vmm-2017-10-15"
    work = tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "quakesnake.cli", "sds-archive", *sorted(map(str, (hour / "mseed").glob("*.mseed"))),
                    "--root", "colombia/SDS", "--stations", str(hour / "stations.csv"),
                    "--inventory", "colombia/inventory.xml"], cwd=work, check=True)
    (work / "synthetic").mkdir()
    replay_config = tmp_path / "replay.yaml"
    replay_config.write_text('days: {start: "2023-06-01", end: "2023-06-01"}\n'
                             "synthetic: {n_stations: 8, events_per_day: 60}\n")
    snakemake(work / "synthetic", "results/training/datasets/2023-06-01/metadata.csv", "--cores", "2",
              "--configfile", str(ROOT / "config" / "train-phasenet.yaml"), str(replay_config))
    snakemake(work, "adapt", "--cores", "2", "--configfile", str(ROOT / "config" / "adapt-colombia.yaml"))

    rounds = pd.read_csv(work / "results" / "adapt" / "rounds.csv")
    assert list(rounds["round"]) == [1, 2]
    assert rounds.loc[0, "labelled_events"] >= 1 and rounds.loc[0, "p_labels"] >= 3
    first = pd.read_csv(work / "results" / "adapt" / "round1" / "labels" / "2017-10-15.csv")
    assert set(first["station"]) <= set(pd.read_csv(hour / "stations.csv")["station"])
    metadata = pd.read_csv(work / "results" / "adapt" / "round1" / "datasets" / "2017-10-15" / "metadata.csv")
    assert set(metadata["trace_noise_source"]) == {"recorded"}
    import seisbench.models as sbm

    adapted = sbm.PhaseNet.load(str(work / "results" / "adapt" / "model" / "model"))
    assert adapted.in_samples == 3001
    assert json.loads((work / "results" / "adapt" / "model" / "metrics.json").read_text())["model"] == "PhaseNet"
