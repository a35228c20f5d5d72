"""Training datasets and training runs (quakesnake.training), and the `snakemake train` target."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from synthetic_days import preprocessed_station_days
from workflow_runs import snakemake

from quakesnake import picking, tabular, training

DAY = "2024-03-01"
SCENARIO = {"seed": 11, "n_stations": 3, "events_per_day": 120, "swarm_probability_per_day": 0.0,
            "truth_min_picks": 1, "truth_min_snr": 4.0}


@pytest.fixture(scope="module")
def station_days(tmp_path_factory):
    """Three preprocessed synthetic station-days, their truth picks, and one 0-byte (no data) shard."""
    root = tmp_path_factory.mktemp("training")
    files = preprocessed_station_days(root, SCENARIO, DAY)
    empty = root / "SY.NODATA.mseed"
    empty.write_bytes(b"")
    return root, files + [empty]


@pytest.fixture(scope="module")
def dataset(station_days):
    root, files = station_days
    counts = training.build_dataset(root / "truth" / "picks.csv", files, root / "dataset",
                                    {"noise_traces_per_station_day": 3}, day=DAY)
    return root, counts


def test_dataset_loads_in_seisbench_with_labels_at_the_reference_picks(dataset):
    import seisbench.data as sbd

    root, counts = dataset
    assert counts["station_days"] == 3  # the 0-byte shard is skipped
    assert counts["noise"] == 9 and counts["earthquake"] > 50
    data = sbd.WaveformDataset(root / "dataset", component_order="ZNE")
    assert len(data) == counts["earthquake"] + counts["noise"]
    metadata = data.metadata
    picks = tabular.read_table(root / "truth" / "picks.csv")
    rate = 100.0
    checked = 0
    for i in np.flatnonzero(metadata["trace_category"] == "earthquake")[:40]:
        row = metadata.iloc[i]
        waveform = data.get_waveforms(int(i))
        assert waveform.shape == (3, 12000)
        start = tabular.to_datetime64(row["trace_start_time"])
        own = picks[(picks["event_id"] == f"{row['source_id']:.0f}") & (picks["station"] == row["station_code"])]
        for phase, column in training.PRIMARY_COLUMNS.items():
            of_phase = own[own["phase"] == phase]
            if len(of_phase):
                expected = (of_phase["time"].iloc[0] - start).total_seconds() * rate
                assert abs(row[column] - expected) <= 1.0
                checked += 1
    assert checked > 30
    noise = metadata[metadata["trace_category"] == "noise"]
    assert noise[list(training.label_columns())].isna().all().all()


def test_split_is_by_event(dataset):
    root, _ = dataset
    metadata = pd.read_csv(root / "dataset" / "metadata.csv")
    events = metadata[metadata["trace_category"] == "earthquake"]
    assert (events.groupby("source_id")["split"].nunique() == 1).all()
    assert set(events["split"]) == {"train", "dev", "test"}


def test_one_epoch_lowers_the_loss_and_saves_loadable_weights(dataset, tmp_path):
    root, _ = dataset
    settings = {"epochs": 1, "batch_size": 16, "max_train_batches_per_epoch": 8, "seed": 3}
    metrics = training.train([root / "dataset"], tmp_path / "model", settings, num_threads=2)
    assert metrics["best_dev_loss"] < metrics["initial_dev_loss"]
    history = pd.read_csv(tmp_path / "model" / "history.csv")
    assert list(history["epoch"]) == [0, 1]
    assert (tmp_path / "model" / "training_curve.png").stat().st_size > 0
    scores = json.loads((tmp_path / "model" / "metrics.json").read_text())["scores"]
    assert set(scores) == {"dev", "test"} and set(scores["test"]) == {"P", "S"}
    assert set(scores["test"]["P"]) == {"0.1s", "0.5s"} and scores["test"]["P"]["0.5s"]["n_ref"] > 0
    model = picking.load_model({"type": "seisbench", "model": "PhaseNet", "weights": str(tmp_path / "model" / "model")})
    assert type(model).__name__ == "PhaseNet"
    # the weights carry their dev split's F1-best thresholds, which pickers take by default
    chosen = json.loads((tmp_path / "model" / "metrics.json").read_text())["dev_thresholds"]
    assert set(chosen) == {"P", "S"} and all(c["threshold"] in training.THRESHOLD_GRID for c in chosen.values())
    assert model.default_args == {"P_threshold": chosen["P"]["threshold"], "S_threshold": chosen["S"]["threshold"]}
    settings = picking.picker_settings({"type": "seisbench"})
    assert picking.models.phase_thresholds(model, settings) == {p: c["threshold"] for p, c in chosen.items()}


def _peaks(curve, lowest):
    from scipy.signal import find_peaks

    found, properties = find_peaks(curve, height=lowest, distance=50)
    return found, properties["peak_heights"]


def test_dev_thresholds_take_the_f1_best_of_the_grid(monkeypatch):
    """Constructed curves: every trace holds its true arrival at 10 s (probability 0.95; on a
    quarter of the P traces 0.25) and a false peak at 20 s (P 0.35, S 0.55)."""
    rate, n = 100, 3000

    def curve(peaks):
        values = np.zeros(n, dtype=np.float32)
        for second, height in peaks:
            values[int(second * rate) - 5 : int(second * rate) + 6] = height
        return values

    target = np.array([10 * rate])
    p_curves = [(target, curve([(10, 0.95 if i % 4 else 0.25), (20, 0.35)])) for i in range(40)]
    s_curves = [(target, curve([(10, 0.95), (20, 0.55)])) for _ in range(40)]

    class Rate:
        sampling_rate = rate

    monkeypatch.setattr(training, "_phase_peaks", lambda model, loader, seed, lowest: {
        phase: [(target, *_peaks(curve, lowest)) for target, curve in curves]
        for phase, curves in (("P", p_curves), ("S", s_curves))})
    chosen = training.dev_thresholds(Rate(), loader=None)
    # P: at 0.2 every true P and every false peak (F1 0.67); from 0.3 a quarter of the P are lost,
    # false peaks until 0.4: 0.4 keeps 30 of 40 with no false one (F1 0.857)
    assert chosen["P"]["threshold"] == 0.4 and chosen["P"]["f1"]["0.4"] == pytest.approx(30 / 35)
    # S: false peaks at 0.55 pass up to 0.5; from 0.6 the S alone, up to 0.9 (ties: the lower)
    assert chosen["S"]["threshold"] == 0.6 and chosen["S"]["f1"]["0.6"] == pytest.approx(1.0)


def test_dev_thresholds_command_scores_saved_weights_and_writes_them(dataset, tmp_path, capsys):
    import seisbench.models as sbm
    import torch

    from quakesnake.cli import EXIT_BAD_INPUT, main

    root, _ = dataset
    torch.manual_seed(0)
    sbm.PhaseNet().save(tmp_path / "weights")  # trained before thresholds were written: none
    assert json.loads((tmp_path / "weights.json").read_text())["default_args"] == {}
    assert main(["dev-thresholds", "--weights", str(tmp_path / "weights"), "--datasets", str(root / "dataset"),
                 "--write"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("\n") == 11 and "F1 P" in printed and "written into the weights' JSON" in printed
    written = json.loads((tmp_path / "weights.json").read_text())["default_args"]
    assert set(written) == {"P_threshold", "S_threshold"} and all(v in training.THRESHOLD_GRID for v in written.values())
    chosen = printed.split("chosen: ")[1].split(" (")[0]
    assert chosen == f"P {written['P_threshold']:g}, S {written['S_threshold']:g}"
    # the weights load with them, and a picker without thresholds of its own takes them
    model = picking.load_model({"type": "seisbench", "weights": str(tmp_path / "weights")})
    assert picking.models.phase_thresholds(model, picking.picker_settings({"type": "seisbench"})) == {
        "P": written["P_threshold"], "S": written["S_threshold"]}
    # not a dataset; a lone state dict has no JSON to write into
    assert main(["dev-thresholds", "--weights", str(tmp_path / "weights"), "--datasets", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "no metadata.csv" in capsys.readouterr().err
    torch.save(sbm.PhaseNet().state_dict(), tmp_path / "lone.pt")
    with pytest.raises(training.TrainingError, match="nowhere to write"):
        training.weights_dev_thresholds("PhaseNet", str(tmp_path / "lone.pt"), [root / "dataset"], write=True)


def test_sensor_and_trend_augmentations_run_in_training_only(dataset):
    import seisbench.generate as sbg

    root, _ = dataset
    data = training.load_datasets([root / "dataset"])
    model = training.build_model(training.training_settings({}))
    augmented = training.training_settings({"augmentation": {"sensor_highpass_probability": 1.0, "trend_probability": 1.0,
                                                             "gaussian_noise_probability": 0.0,
                                                             "channel_dropout_probability": 0.0, "gap_probability": 0.0}})
    def names(steps):
        return [str(inner) for step in steps for inner in getattr(step, "augmentations", [step])]

    train_names = names(training._augmentations(model, augmented, train=True))
    assert any("highpass" in name for name in train_names) and any("RandomTrend" in name for name in train_names)
    assert not any("highpass" in name or "RandomTrend" in name
                   for name in names(training._augmentations(model, augmented, train=False)))

    generator = sbg.GenericGenerator(data.train())
    generator.add_augmentations(training._augmentations(model, augmented, train=True))
    for i in range(4):
        window = generator[i]
        assert window["X"].shape == (3, model.in_samples) and np.isfinite(window["X"]).all()
        assert window["y"].shape == (3, model.in_samples)

    trend = training.RandomTrend(scale=2.0)
    flat = {"X": (np.zeros((3, 1000)) + np.random.default_rng(0).normal(size=(3, 1000)), {})}
    before = flat["X"][0].copy()
    trend(flat)
    drift = flat["X"][0] - before
    assert np.allclose(np.diff(drift, axis=-1), np.diff(drift, axis=-1)[:, :1])  # linear per channel
    assert np.all(np.abs(drift[:, -1] - drift[:, 0]) <= 2.0 * before.std(axis=-1) + 1e-9)


def test_vertical_only_keeps_the_vertical_channel():
    x = np.random.default_rng(1).normal(size=(3, 500))
    state = {"X": (x.copy(), {})}
    training.VerticalOnly(0)(state)
    assert np.array_equal(state["X"][0][0], x[0]) and not state["X"][0][1:].any()


def _window_labels(data, model, settings, n_windows: int = 60) -> np.ndarray:
    """Labelled P+S probability mass of ``n_windows`` training windows of the event traces."""
    import seisbench.generate as sbg

    generator = sbg.GenericGenerator(data.filter(data.metadata["trace_category"] == "earthquake", inplace=False))
    generator.add_augmentations(training._augmentations(model, settings, train=True))
    np.random.seed(0)
    return np.array([generator[i % len(generator)]["y"][1:].max() for i in range(n_windows)])


def test_unanchored_windows_show_codas_without_their_onsets(dataset):
    root, _ = dataset
    data = training.load_datasets([root / "dataset"]).train()
    model = training.build_model(training.training_settings({}))
    quiet = {"gaussian_noise_probability": 0.0, "channel_dropout_probability": 0.0, "gap_probability": 0.0}
    anchored = _window_labels(data, model, training.training_settings({"augmentation": quiet}))
    anywhere = _window_labels(data, model, training.training_settings(
        {"augmentation": {**quiet, "unanchored_window_probability": 1.0}}))
    # around an arrival, every window holds a labelled onset; cropped anywhere in 120 s event
    # traces, many hold none (codas, pre-event noise)
    assert (anchored > 0.5).all()
    assert 0.2 < (anywhere < 0.01).mean() < 0.9
    # evaluation windows stay around arrivals whatever the training share
    settings = training.training_settings({"augmentation": {"unanchored_window_probability": 1.0}})
    import seisbench.generate as sbg

    evaluation_steps = training._augmentations(model, settings, train=False)
    assert any(isinstance(step, sbg.WindowAroundSample) for step in evaluation_steps)
    assert not any(isinstance(step, sbg.OneOf) for step in evaluation_steps)


def test_dataset_settings_leave_out_what_only_shapes_training():
    settings = training.dataset_settings({"epochs": 99, "learning_rate": 0.5, "augmentation": {"trend_probability": 1.0},
                                          "trace_s": 60.0, "real_noise": {"traces_per_station": 3}})
    assert set(settings) == set(training.DATASET_KEYS)
    assert settings["trace_s"] == 60.0 and settings["real_noise"]["traces_per_station"] == 3
    assert training.dataset_settings({"epochs": 1}) == training.dataset_settings({"epochs": 2, "patience": 9})


def test_training_is_deterministic(dataset, tmp_path):
    root, _ = dataset
    settings = {"epochs": 1, "batch_size": 16, "max_train_batches_per_epoch": 3, "seed": 5}
    first = training.train([root / "dataset"], tmp_path / "a", settings, num_threads=1)
    second = training.train([root / "dataset"], tmp_path / "b", settings, num_threads=1)
    assert first["best_dev_loss"] == pytest.approx(second["best_dev_loss"], rel=1e-6)


def test_eqtransformer_trains_through_the_same_code_path(dataset, tmp_path):
    root, _ = dataset
    settings = {"model": "EQTransformer", "epochs": 1, "batch_size": 8, "max_train_batches_per_epoch": 4}
    metrics = training.train([root / "dataset"], tmp_path / "eqt", settings, num_threads=2)
    assert metrics["model"] == "EQTransformer"
    assert (tmp_path / "eqt" / "model.pt").stat().st_size > 0


def test_unknown_model_and_empty_datasets_fail_clearly(tmp_path):
    with pytest.raises(picking.PickerConfigError, match="unknown SeisBench model 'PhaseNot'"):
        training.build_model(training.training_settings({"model": "PhaseNot"}))
    with pytest.raises(training.TrainingError, match="no metadata.csv"):
        training.load_datasets([tmp_path])
    # a day without a single trace (here: only a 0-byte shard) is an empty dataset, which loading skips
    (tmp_path / "SY.NODATA.mseed").write_bytes(b"")
    counts = training.build_dataset(pd.DataFrame(columns=["event_id", "station", "phase", "time"]),
                                    [tmp_path / "SY.NODATA.mseed"], tmp_path / "empty", day=DAY)
    assert counts["earthquake"] == counts["noise"] == 0
    assert (tmp_path / "empty" / "waveforms.hdf5").is_file()
    assert len(pd.read_csv(tmp_path / "empty" / "metadata.csv")) == 0
    with pytest.raises(training.TrainingError, match="no traces in any of the 1 dataset"):
        training.load_datasets([tmp_path / "empty"])


def test_device_auto_trains_on_the_cpu_here_and_cuda_fails_clearly_without_one(dataset, tmp_path, monkeypatch):
    import torch

    root, _ = dataset
    assert training._training_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    settings = {"epochs": 1, "batch_size": 8, "max_train_batches_per_epoch": 1, "device": "cuda"}
    with pytest.raises(training.TrainingError, match="torch sees no CUDA device"):
        training.train([root / "dataset"], tmp_path / "model", settings, num_threads=1)
    assert not (tmp_path / "model").exists()


@pytest.mark.slow
def test_snakemake_train_target(tmp_path):
    config = {
        "days": {"start": DAY, "end": DAY},
        "synthetic": {**SCENARIO, "n_stations": 3},
        "training": {"epochs": 1, "batch_size": 8, "max_train_batches_per_epoch": 4},
    }
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    snakemake(tmp_path, "train", "--cores", "2", "--configfile", str(tmp_path / "train.yaml"))
    model_dir = tmp_path / "results" / "training" / "model"
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1
    picker = {"type": "seisbench", "model": "PhaseNet", "weights": str(model_dir / "model")}
    assert picking.load_model(picker) is not None
