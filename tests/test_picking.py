"""picking: STA/LTA + AIC on synthetic arrivals, SeisBench models (untrained, local, pretrained)."""
from __future__ import annotations

import logging

import numpy as np
import obspy
import pandas as pd
import pytest

from quakesnake import io
from quakesnake.picking import (
    PickerConfigError,
    aic_curve,
    load_model,
    pick_file,
    pick_stream,
    picker_settings,
    resolve_device,
    resolve_dtype,
)

torch = pytest.importorskip("torch")
sbm = pytest.importorskip("seisbench.models")

RATE = 100.0
START = obspy.UTCDateTime("2024-01-01T00:10:00")
PICK_DTYPES = {
    "network": object, "station": object, "location": object, "phase": object,
    "time": np.dtype("datetime64[ns]"), "probability": np.float64, "picker": object,
}


def damped_sine(times, onset, freq, decay, amplitude):
    lag = np.clip(times - onset, 0, None)
    return np.where(times >= onset, amplitude * np.exp(-lag / decay) * np.sin(2 * np.pi * freq * lag), 0.0)


def event_stream(arrivals, *, seconds=180.0, start=START, components="ZNE", station="SYN", seed=0):
    """Noise (std 1) with local-event arrivals: list of (P offset s, S offset s) from ``start``.

    P is strong on Z and weak on the horizontals, S the other way round, as for a shallow
    local event.
    """
    rng = np.random.default_rng(seed)
    times = np.arange(int(seconds * RATE)) / RATE
    signal_by_component = {"Z": (30, 15), "N": (8, 60), "E": (-6, 45), "1": (8, 60), "2": (-6, 45)}
    stream = obspy.Stream()
    for component in components:
        p_amplitude, s_amplitude = signal_by_component[component]
        data = rng.normal(0, 1, times.size)
        for p, s in arrivals:
            data += damped_sine(times, p, 6.0, 0.8, p_amplitude) + damped_sine(times, s, 4.0, 1.5, s_amplitude)
        header = dict(network="XX", station=station, channel="HH" + component, sampling_rate=RATE, starttime=start)
        stream += obspy.Trace(data.astype(np.float32), header=header)
    return stream


def offsets_s(picks, phase, start=START):
    times = picks.loc[picks["phase"] == phase, "time"]
    return ((times - pd.Timestamp(start.datetime)).dt.total_seconds()).to_numpy()


def assert_pick_table(picks, picker_name):
    assert list(picks.columns) == io.PICK_COLUMNS
    for column, dtype in PICK_DTYPES.items():
        assert picks[column].dtype == dtype, column
    assert picks["phase"].isin(["P", "S"]).all()
    assert picks["probability"].between(0, 1).all()
    assert (picks["picker"] == picker_name).all()
    assert picks["time"].is_monotonic_increasing


# --------------------------------------------------------------------------------------------
# AIC and STA/LTA


def test_aic_matches_the_definition_and_finds_a_variance_change():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 1, 150), rng.normal(0, 8, 100)])
    aic = aic_curve(x)
    brute = np.full(x.size, np.inf)
    for k in range(2, x.size - 1):
        brute[k] = k * np.log(np.var(x[:k])) + (x.size - k - 1) * np.log(np.var(x[k:]))
    np.testing.assert_allclose(aic, brute, rtol=1e-9)
    assert abs(int(np.argmin(aic)) - 150) <= 3


def test_aic_survives_dead_samples():
    x = np.concatenate([np.zeros(100), np.random.default_rng(0).normal(0, 1, 100)])
    assert int(np.argmin(aic_curve(x))) == 100


def test_stalta_picks_p_and_s_of_a_synthetic_event():
    picks = pick_stream(event_stream([(60.0, 66.5)]), {"type": "stalta"}, picker_name="stalta")
    assert_pick_table(picks, "stalta")
    p, s = offsets_s(picks, "P"), offsets_s(picks, "S")
    assert len(p) == 1 and abs(p[0] - 60.0) <= 0.1
    assert len(s) == 1 and abs(s[0] - 66.5) <= 0.3


def test_stalta_picks_several_events_and_z12_instruments():
    arrivals = [(40.0, 44.0), (100.0, 108.0), (150.0, 152.5)]
    picks = pick_stream(event_stream(arrivals, seconds=200, components="Z12"), {"type": "stalta"})
    np.testing.assert_allclose(offsets_s(picks, "P"), [a[0] for a in arrivals], atol=0.1)
    np.testing.assert_allclose(offsets_s(picks, "S"), [a[1] for a in arrivals], atol=0.3)


def test_stalta_on_a_vertical_only_station_picks_p_only():
    picks = pick_stream(event_stream([(60.0, 66.5)], components="Z"), {"type": "stalta"})
    assert list(picks["phase"]) == ["P"]


def test_stalta_stays_quiet_on_noise_and_after_a_zero_filled_gap():
    stream = event_stream([], seconds=300)
    for tr in stream:
        tr.data[10000:16000] = 0.0  # a long gap as preprocess writes it
    picks = pick_stream(stream, {"type": "stalta"})
    assert picks.empty
    assert_pick_table(picks, "")


def test_picks_outside_the_day_are_dropped():
    day_start = obspy.UTCDateTime("2024-01-02")
    # the shard runs from 2 min before midnight; one event before midnight, one after
    stream = event_stream([(40.0, 45.0), (150.0, 155.0)], seconds=240, start=day_start - 120)
    config = {"type": "stalta"}
    everything = pick_stream(stream, config)
    assert len(everything) == 4
    inside = pick_stream(stream, config, day="2024-01-02")
    np.testing.assert_allclose(offsets_s(inside, "P", start=day_start), [30.0], atol=0.1)
    assert (inside["time"] >= pd.Timestamp("2024-01-02")).all()
    assert pick_stream(stream, config, day="2024-01-03").empty


def test_picker_settings_fill_defaults_and_reject_mistakes():
    assert picker_settings({"type": "stalta", "trigger_on": 6.0})["trigger_on"] == 6.0
    assert picker_settings({"type": "seisbench"})["p_threshold"] == 0.3
    with pytest.raises(PickerConfigError, match="unknown key.*trigger_onn"):
        picker_settings({"type": "stalta", "trigger_onn": 6.0})
    with pytest.raises(PickerConfigError, match="picker type"):
        picker_settings({"type": "magic"})


def test_pick_file_writes_typed_tables_even_when_empty(tmp_path):
    source = tmp_path / "XX.SYN.mseed"
    event_stream([(60.0, 66.5)]).write(str(source), format="MSEED", encoding="FLOAT32")

    picks_path = tmp_path / "picks" / "XX.SYN.parquet"
    pick_file(source, picks_path, {"type": "stalta"}, day="2024-01-01", picker_name="stalta")
    back = io.read_table(picks_path, io.PICK_COLUMNS)
    assert len(back) == 2
    assert_pick_table(back, "stalta")

    empty_path = tmp_path / "picks" / "empty.parquet"
    pick_file(source, empty_path, {"type": "stalta"}, day="2024-01-05", picker_name="stalta")
    back = io.read_table(empty_path, io.PICK_COLUMNS)
    assert back.empty
    assert_pick_table(back, "stalta")


# --------------------------------------------------------------------------------------------
# SeisBench models


def untrained_phasenet(seed=0):
    torch.manual_seed(seed)
    return sbm.PhaseNet().eval()


def test_untrained_phasenet_runs_on_three_and_one_component_stations():
    stream = event_stream([(60.0, 66.5)], station="THREE") + event_stream([(60.0, 66.5)], components="Z", station="ONE")
    config = {"type": "seisbench", "model": "PhaseNet", "p_threshold": 0.2, "s_threshold": 0.2}
    picks = pick_stream(stream, config, model=untrained_phasenet(), picker_name="phasenet-untrained")
    assert_pick_table(picks, "phasenet-untrained")
    assert set(picks["station"]) <= {"THREE", "ONE"}
    again = pick_stream(stream, config, model=untrained_phasenet(), picker_name="phasenet-untrained")
    pd.testing.assert_frame_equal(picks, again)  # deterministic

    in_day = pick_stream(stream, config, model=untrained_phasenet(), day="2024-01-02")
    assert in_day.empty
    assert_pick_table(in_day, "")


def test_weights_from_a_local_seisbench_save(tmp_path):
    model = untrained_phasenet(seed=1)
    (tmp_path / "mine").mkdir()
    model.save(tmp_path / "mine" / "phasenet")
    model.save(tmp_path / "versioned", version_str="3")
    expected = model.state_dict()

    for weights, version in [
        (tmp_path / "mine" / "phasenet", None),  # the base path model.save() was given
        (tmp_path / "mine" / "phasenet.pt", None),  # the weights file itself
        (tmp_path / "mine", None),  # a directory holding one pair
        (tmp_path / "versioned", "3"),
    ]:
        config = {"type": "seisbench", "model": "PhaseNet", "weights": str(weights), "version": version}
        loaded = load_model(config)
        assert not loaded.training
        for name, tensor in loaded.state_dict().items():
            assert torch.equal(tensor, expected[name]), (weights, name)


def test_weights_from_a_lone_state_dict(tmp_path, caplog):
    model = untrained_phasenet(seed=2)
    torch.save(model.state_dict(), tmp_path / "trained.pt")
    with caplog.at_level(logging.WARNING, logger="quakesnake.picking"):
        loaded = load_model({"type": "seisbench", "model": "PhaseNet", "weights": str(tmp_path / "trained.pt")})
    assert "default arguments" in caplog.text
    assert torch.equal(loaded.state_dict()["inc.weight"], model.state_dict()["inc.weight"])


def test_missing_local_weights_and_unknown_model_are_clear_errors(tmp_path):
    with pytest.raises(PickerConfigError, match="local path"):
        load_model({"type": "seisbench", "model": "PhaseNet", "weights": str(tmp_path / "nothing" / "here")})
    with pytest.raises(PickerConfigError, match="unknown SeisBench model 'PhaseNot'.*PhaseNet"):
        load_model({"type": "seisbench", "model": "PhaseNot", "weights": "x"})


def test_pretrained_weights_missing_offline_list_what_was_tried(offline_seisbench):
    with pytest.raises(PickerConfigError) as caught:
        load_model({"type": "seisbench", "model": "PhaseNetLight", "weights": "nosuchweights", "version": "1"})
    message = str(caught.value)
    assert "local path" in message and "SeisBench cache" in message and "download from" in message


def test_device_and_precision_resolution(caplog):
    if torch.cuda.is_available():
        pytest.skip("checks the CPU fallbacks; this machine has CUDA")
    cpu = torch.device("cpu")
    assert resolve_device("auto") == cpu
    with pytest.raises(PickerConfigError, match="CUDA is not available"):
        resolve_device("cuda:0")
    assert resolve_dtype("auto", cpu) == torch.float32
    with caplog.at_level(logging.WARNING, logger="quakesnake.picking"):
        assert resolve_dtype("fp16", cpu) == torch.float32
    assert "fp16" in caplog.text
    assert resolve_dtype("bf16", cpu) == torch.bfloat16
    assert resolve_dtype("fp16", torch.device("cuda")) == torch.float16
    assert resolve_dtype("auto", torch.device("cuda")) == torch.float16
    with pytest.raises(PickerConfigError, match="precision"):
        resolve_dtype("fp8", cpu)


def test_bf16_model_picks_on_cpu(tmp_path):
    untrained_phasenet(seed=3).save(tmp_path / "pn")
    base = {"type": "seisbench", "model": "PhaseNet", "weights": str(tmp_path / "pn"), "p_threshold": 0.2}
    model = load_model({**base, "precision": "bf16", "device": "auto"})
    assert next(model.parameters()).dtype == torch.bfloat16
    assert next(model.parameters()).device.type == "cpu"
    picks = pick_stream(event_stream([(60.0, 66.5)]), base, model=model, picker_name="bf16")
    assert_pick_table(picks, "bf16")


# --------------------------------------------------------------------------------------------
# Real weights on real records (../shared)

N_RECORDS = 20


def labelled_records(shared_dir, count):
    """The first ``count`` labelled records as one stream (one station per record) and true P/S times."""
    folder = shared_dir / "data" / "labelled-waveforms"
    labels = pd.read_csv(folder / "labels.csv").head(count)
    stream, truth = obspy.Stream(), []
    start = obspy.UTCDateTime("2024-03-20T10:00:00")
    for number, row in enumerate(labels.itertuples()):
        record = np.load(folder / "npz" / row.fname)
        channels = str(record["channels"]).split("_")
        # single-channel records hold the vertical in the last column (PhaseNet's layout)
        columns = [record["data"].shape[1] - 1] if len(channels) == 1 else range(len(channels))
        station = f"R{number:02d}"
        for channel, column in zip(channels, columns):
            header = dict(network="NC", station=station, channel=channel, sampling_rate=100.0, starttime=start)
            stream += obspy.Trace(record["data"][:, column].astype(np.float32), header=header)
        truth += [(station, phase, start + int(record[key]) / 100.0) for phase, key in (("P", "itp"), ("S", "its"))]
    return stream, pd.DataFrame(truth, columns=["station", "phase", "time"])


def recall(picks, truth, phase, tolerance_s=0.5):
    hits = 0
    for row in truth[truth["phase"] == phase].itertuples():
        mine = picks[(picks["station"] == row.station) & (picks["phase"] == phase)]
        offsets = (mine["time"] - pd.Timestamp(row.time.datetime)).dt.total_seconds().abs()
        hits += bool((offsets <= tolerance_s).any())
    return hits / (truth["phase"] == phase).sum()


@pytest.mark.shared
def test_pretrained_phasenetlight_through_the_cache_finds_real_p_arrivals(
    shared_dir, seisbench_cache, offline_seisbench
):
    stream, truth = labelled_records(shared_dir, N_RECORDS)
    config = {"type": "seisbench", "model": "PhaseNetLight", "weights": "ethz", "version": "2"}
    model = load_model(config)
    assert model.weights_version == "2"
    picks = pick_stream(stream, config, model=model, picker_name="phasenetlight-ethz")
    assert_pick_table(picks, "phasenetlight-ethz")
    assert recall(picks, truth, "P") >= 0.8
    # loading the model from the configuration inside pick_stream gives the same picks
    pd.testing.assert_frame_equal(picks, pick_stream(stream, config, picker_name="phasenetlight-ethz"))

    latest = load_model({**config, "version": None})  # "latest" = newest in the cache, no network
    assert latest.weights_version == "2"
