"""Real noise in training datasets (quakesnake.real_noise, training.build_dataset's real_noise)."""
from __future__ import annotations

import numpy as np
import obspy
import pandas as pd
import pytest

from synthetic_days import preprocessed_station_days

from quakesnake import preprocess, real_noise, training

DAY = "2024-03-01"
SCENARIO = {"seed": 12, "n_stations": 2, "events_per_day": 60, "swarm_probability_per_day": 0.0,
            "truth_min_picks": 1, "truth_min_snr": 4.0}
RECORDING_S = 1200
HELD_START_S, HELD_S = 300, 60  # a gap filled by holding the last value, as SeisMonitor writes them


def write_noise_recording(path, station="RN1", seed=0, held=True, burst_at_s=None):
    """A stand-in for a real continuous recording: 20 min of coloured Gaussian noise in int32
    counts with an offset, three components, a held-value gap fill on N and optionally a burst."""
    rng = np.random.default_rng(seed)
    rate = 100.0
    n = int(RECORDING_S * rate) + 1
    stream = obspy.Stream()
    for component in "ZNE":
        data = np.convolve(rng.normal(0, 300, n), np.ones(5) / 5, mode="same") + 5000
        if burst_at_s is not None:
            i = int(burst_at_s * rate)
            data[i:i + 300] += rng.normal(0, 30000, 300) * np.exp(-np.arange(300) / 80)
        if held and component == "N":
            i = int(HELD_START_S * rate)
            data[i:i + int(HELD_S * rate)] = data[i - 1]
        stream += obspy.Trace(data.astype(np.int32), header={
            "network": "XX", "station": station, "location": "00", "channel": f"HH{component}",
            "sampling_rate": rate, "starttime": obspy.UTCDateTime("2017-10-15T06:00:00")})
    stream.write(str(path), format="MSEED")
    return path


@pytest.fixture(scope="module")
def station_days(tmp_path_factory):
    root = tmp_path_factory.mktemp("real_noise")
    files = preprocessed_station_days(root, SCENARIO, DAY)
    recordings = [write_noise_recording(root / f"noise{i}.mseed", f"RN{i}", seed=i) for i in range(3)]
    return root, files, recordings


def test_noise_windows_avoid_screening_picks_and_gap_fills(tmp_path):
    path = write_noise_recording(tmp_path / "noise.mseed", burst_at_s=800)
    screen = training.DEFAULTS["real_noise"]["screen_picker"]
    [recording] = real_noise.load_recordings([str(path)], {}, screen, 10.0, 120.0)
    starts_s = recording.allowed_starts / recording.rate
    assert starts_s.size > 100
    ends_s = starts_s + 120
    # the held value on N (300-360 s) and the burst at 800 s (with 10 s clearance) lie in no window
    assert not np.any((starts_s < HELD_START_S + HELD_S) & (ends_s > HELD_START_S))
    assert not np.any((starts_s < 800 + 10) & (ends_s + 10 > 800))
    # plain noise around them is used
    assert np.any(starts_s < HELD_START_S - 120) and np.any(starts_s > 900)


def test_expand_files_lists_globs_and_refuses_patterns_matching_nothing(tmp_path):
    a = write_noise_recording(tmp_path / "a.mseed", "RNA")
    b = write_noise_recording(tmp_path / "b.mseed", "RNB")
    assert real_noise.expand_files([str(tmp_path / "*.mseed"), str(a)]) == [str(a), str(b)]
    with pytest.raises(real_noise.RealNoiseError, match="training.real_noise.files: .*nothing.*matches no file"):
        real_noise.expand_files([str(tmp_path / "nothing*.mseed")])


def test_recordings_without_any_noise_window_fail_naming_the_setting(tmp_path):
    path = write_noise_recording(tmp_path / "short.mseed")
    with pytest.raises(real_noise.RealNoiseError, match="training.real_noise.files .*no noise window"):
        real_noise.load_recordings([str(path)], {}, {"type": "stalta"}, 10.0, 2000.0)  # longer than the data


def test_bury_in_real_noise_keeps_every_arrival_visible():
    rng = np.random.default_rng(1)
    rate, n = 100.0, 12000
    data = rng.normal(0, 1.0, (3, n))
    data[:, 3000:3300] += rng.normal(0, 40.0, (3, 300))  # P at sample 3000, SNR ~ 40
    data[:, 5000:5300] += rng.normal(0, 60.0, (3, 300))  # S at 5000
    arrivals = {"P": [3000], "S": [5000]}
    noise = rng.normal(0, 7.0, (3, n)) + 100.0
    for _ in range(20):
        mixed, scale = real_noise.bury_in_real_noise(data, arrivals, noise, rate, 4.0, rng)
        assert scale >= 1.0
        snr = real_noise.arrival_snr(mixed, arrivals, rate)
        assert 4.0 * 0.8 <= snr <= real_noise.arrival_snr(data, arrivals, rate)
    weak = rng.normal(0, 1.0, (3, n))
    weak[:, 3000:3300] += rng.normal(0, 1.0, (3, 300))  # 1-20 Hz peak / RMS ~ 4: too weak to bury further
    assert real_noise.arrival_snr(weak, {"P": [3000], "S": []}, rate) < 4.0 * np.sqrt(2)
    assert real_noise.bury_in_real_noise(weak, {"P": [3000], "S": []}, noise, rate, 4.0, rng) is None
    dropped = data.copy()
    dropped[2] = 0.0  # a missing component stays missing
    mixed, _ = real_noise.bury_in_real_noise(dropped, arrivals, noise, rate, 4.0, rng)
    assert not mixed[2].any() and mixed[0].std() > data[0].std()


def test_dataset_with_real_noise_records_every_traces_noise_source(station_days):
    import seisbench.data as sbd

    root, files, recordings = station_days
    plain = training.build_dataset(root / "truth" / "picks.csv", files, root / "plain",
                                   {"noise_traces_per_station_day": 2}, day=DAY)
    settings = {"noise_traces_per_station_day": 2,
                "real_noise": {"files": [str(root / "noise*.mseed")], "traces_per_station": 4,
                               "arrivals_in_real_noise_fraction": 0.5}}
    counts = training.build_dataset(root / "truth" / "picks.csv", files, root / "mixed", settings, day=DAY)
    assert counts["earthquake"] == plain["earthquake"]
    assert counts["noise"] == plain["noise"] + 3 * 4
    sources = counts["noise_source"]
    assert sources["real"] == 12 and sources["synthetic+real"] > 0.2 * counts["earthquake"]
    assert sum(sources.values()) == counts["earthquake"] + counts["noise"]

    data = sbd.WaveformDataset(root / "mixed", component_order="ZNE")
    metadata = data.metadata
    real = metadata[metadata["trace_noise_source"] == "real"]
    assert (real["trace_category"] == "noise").all()
    assert real[list(training.label_columns())].isna().all().all()
    assert set(real["trace_noise_station"]) == {"XX.RN0", "XX.RN1", "XX.RN2"}
    assert real["trace_noise_file"].str.endswith(".mseed").all()
    # each real station sits in one split
    assert (real.groupby("trace_noise_station")["split"].nunique() == 1).all()
    # a real-noise trace is the preprocessed recording at its recorded start
    row = real.iloc[0]
    recording = obspy.read(row["trace_noise_file"])
    processed = preprocess.preprocess_stream(recording)
    start = obspy.UTCDateTime(row["trace_noise_start_time"])
    expected = training.component_data(processed, start, 12000)
    np.testing.assert_allclose(data.get_waveforms(int(real.index[0])), expected, rtol=1e-6)

    mixed = metadata[metadata["trace_noise_source"] == "synthetic+real"]
    assert (mixed["trace_category"] == "earthquake").all() and (mixed["trace_real_noise_scale"] >= 1).all()
    synthetic_only = metadata[metadata["trace_noise_source"] == "synthetic"]
    assert synthetic_only["trace_noise_file"].isna().all() or (synthetic_only["trace_noise_file"].fillna("") == "").all()
    # the mixed traces are the plain ones plus noise: same labels, other samples
    plain_meta = pd.read_csv(root / "plain" / "metadata.csv").set_index("trace_name")
    name = mixed["trace_name"].iloc[0]
    assert plain_meta.loc[name, "trace_p_arrival_sample"] == pytest.approx(mixed["trace_p_arrival_sample"].iloc[0], nan_ok=True)
    plain_data = sbd.WaveformDataset(root / "plain", component_order="ZNE")
    i_plain = int(np.flatnonzero(plain_data.metadata["trace_name"] == name)[0])
    assert not np.allclose(plain_data.get_waveforms(i_plain), data.get_waveforms(int(mixed.index[0])))


def test_real_noise_off_leaves_the_dataset_as_it_was(station_days):
    root, files, _ = station_days
    a = training.build_dataset(root / "truth" / "picks.csv", files, root / "a", {"noise_traces_per_station_day": 2}, day=DAY)
    b = training.build_dataset(root / "truth" / "picks.csv", files, root / "b",
                               {"noise_traces_per_station_day": 2,
                                "real_noise": {"files": [], "traces_per_station": 5}}, day=DAY)
    assert a == b and a["noise_source"] == {"synthetic": a["earthquake"] + a["noise"], "real": 0, "synthetic+real": 0}


def test_a_bad_screen_picker_is_named(tmp_path):
    path = write_noise_recording(tmp_path / "noise.mseed")
    with pytest.raises(real_noise.RealNoiseError, match="training.real_noise.screen_picker: unknown key.*trigger"):
        real_noise.load_recordings([str(path)], {}, {"type": "stalta", "trigger": 3}, 10.0, 120.0)


def test_real_noise_files_are_inputs_of_the_dataset_jobs(tmp_path):
    import re

    import yaml
    from workflow_runs import snakemake

    (tmp_path / "noise").mkdir()
    recording = write_noise_recording(tmp_path / "noise" / "XX.RN1.mseed")
    config = {"days": {"start": DAY, "end": DAY}, "synthetic": {**SCENARIO},
              "training": {"real_noise": {"files": ["noise/*.mseed"]}}}
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "train", "-n", "--cores", "1", "--configfile", str(tmp_path / "train.yaml"))
    blocks = re.findall(r"rule training_dataset:\n(.*?)\n\n", result.stdout + result.stderr, re.S)
    assert blocks and all(f"noise/{recording.name}" in block.split("output:")[0] for block in blocks)

    config["training"]["real_noise"]["files"] = ["elsewhere/*.mseed"]
    (tmp_path / "train.yaml").write_text(yaml.safe_dump(config))
    failed = snakemake(tmp_path, "train", "-n", "--cores", "1", "--configfile", str(tmp_path / "train.yaml"), check=False)
    assert failed.returncode != 0
    assert "training.real_noise.files: 'elsewhere/*.mseed' matches no file" in failed.stdout + failed.stderr
