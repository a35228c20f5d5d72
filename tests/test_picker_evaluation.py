"""Picker evaluation on labelled records: reading the PhaseNet npz layout, scoring, the CLI."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from quakesnake.cli import EXIT_BAD_INPUT, main
from quakesnake.picker_evaluation import evaluate_picker, read_labelled_records

RATE_HZ = 100
N_SAMPLES = 9001
P_INDEX, S_INDEX = 3000, 3600


def _synthetic_event(rng: np.random.Generator) -> np.ndarray:
    """E, N, Z columns of noise with an impulsive P (strongest on Z) and S (strongest on E, N)."""
    data = rng.normal(0.0, 1.0, size=(N_SAMPLES, 3))
    t = np.arange(N_SAMPLES - P_INDEX) / RATE_HZ
    for onset, amplitudes in ((P_INDEX, (8.0, 8.0, 40.0)), (S_INDEX, (60.0, 60.0, 15.0))):
        seconds = t[: N_SAMPLES - onset]
        wavelet = np.sin(2 * np.pi * 6.0 * seconds) * np.exp(-seconds / 1.5)  # 6 Hz, inside the 2-15 Hz band
        for column, amplitude in enumerate(amplitudes):
            data[onset:, column] += amplitude * wavelet
    return data


@pytest.fixture
def labelled_dir(tmp_path):
    """Two three-component records and one vertical-only record (E, N zero-filled) with their labels."""
    rng = np.random.default_rng(7)
    npz_dir = tmp_path / "npz"
    npz_dir.mkdir()
    rows = []
    for name, channels in (("NC_AAA_1.npz", "HHE_HHN_HHZ"), ("NC_BBB_2.npz", "EHE_EHN_EHZ"), ("NC_CCC_3.npz", "EHZ")):
        data = _synthetic_event(rng)
        if channels.count("_") == 0:
            data[:, :2] = 0.0
        np.savez(npz_dir / name, data=data, itp=P_INDEX, its=S_INDEX, channels=channels)
        rows.append({"fname": name, "itp": P_INDEX, "its": S_INDEX, "channels": channels})
    labels = tmp_path / "labels.csv"
    pd.DataFrame(rows).to_csv(labels, index=False)
    return npz_dir, labels


def test_records_keep_real_components_only(labelled_dir):
    records = read_labelled_records(*labelled_dir)
    assert [len(r.stream) for r in records] == [3, 3, 1]
    assert [tr.id for tr in records[2].stream] == ["NC.CCC..EHZ"]
    assert records[0].s_time - records[0].p_time == pytest.approx((S_INDEX - P_INDEX) / RATE_HZ)


def test_bad_record_names_the_file(labelled_dir):
    npz_dir, _ = labelled_dir
    (npz_dir / "NC_AAA_1.npz").write_bytes(b"not an npz")
    with pytest.raises(ValueError, match="NC_AAA_1.npz"):
        read_labelled_records(*labelled_dir)


def test_stalta_finds_every_synthetic_p(labelled_dir):
    metrics = evaluate_picker(read_labelled_records(*labelled_dir), {"type": "stalta"})
    assert metrics["P"]["0.5s"]["n_ref"] == 3
    assert metrics["P"]["0.5s"]["recall"] == 1.0
    assert abs(metrics["P"]["0.5s"]["residual_median_s"]) < 0.1
    json.dumps(metrics, allow_nan=False)  # JSON-safe: no NaN anywhere


def test_cli_missing_labels_is_bad_input(labelled_dir, tmp_path, capsys):
    npz_dir, _ = labelled_dir
    code = main(["eval-picker", "--npz-dir", str(npz_dir), "--labels", str(tmp_path / "missing.csv"),
                 "--model", "stalta", "--out", str(tmp_path / "metrics.json")])
    assert code == EXIT_BAD_INPUT
    assert "missing.csv" in capsys.readouterr().err


def test_cli_stalta_writes_metrics(labelled_dir, tmp_path):
    npz_dir, labels = labelled_dir
    out = tmp_path / "metrics.json"
    assert main(["eval-picker", "--npz-dir", str(npz_dir), "--labels", str(labels), "--model", "stalta", "--out", str(out)]) == 0
    assert json.loads(out.read_text())["P"]["0.5s"]["recall"] == 1.0


def test_phasenetlight_ethz_on_real_records(seisbench_cache, shared_dir, tmp_path):
    source = shared_dir / "data" / "labelled-waveforms"
    if not (source / "labels.csv").is_file():
        pytest.skip(f"needs the labelled waveforms {source}")
    labels = tmp_path / "labels.csv"
    pd.read_csv(source / "labels.csv").head(20).to_csv(labels, index=False)
    records = read_labelled_records(source / "npz", labels)
    picker_cfg = {"type": "seisbench", "model": "PhaseNetLight", "weights": "ethz", "version": "2",
                  "p_threshold": 0.3, "s_threshold": 0.3, "device": "cpu"}
    metrics = evaluate_picker(records, picker_cfg)
    assert metrics["P"]["0.5s"]["n_ref"] == 20
    assert metrics["P"]["0.5s"]["recall"] >= 0.8


def test_unmatched_picks_are_placed_by_the_records_own_p_and_s(labelled_dir, monkeypatch):
    import quakesnake.picker_evaluation as picker_evaluation

    records = read_labelled_records(*labelled_dir)

    def fake_picks(stream, settings, model=None):
        record = next(r for r in records if r.stream is stream)
        p, s = record.p_time, record.s_time
        # the last two: another event's P and S, as far apart as the record's own
        rows = [("P", p + 0.1), ("P", s + 0.2), ("P", s + 5.0), ("S", p - 5.0), ("S", s), ("S", p + 0.3),
                ("P", s + 20.0), ("S", s + 20.0 + (s - p) + 0.2)]
        return pd.DataFrame({"phase": [phase for phase, _ in rows],
                             "time": pd.to_datetime([str(t)[:-1] for _, t in rows]),
                             "snr": [20.0, 3.0, 2.0, np.nan, 12.0, 4.0, 2.0, 4.0],
                             "probability": [0.9, 0.5, 0.4, 0.3, 0.8, 0.6, 0.35, 0.45]})

    monkeypatch.setattr(picker_evaluation, "pick_stream", fake_picks)
    places = picker_evaluation.unmatched_pick_places(records, {"type": "stalta"}).set_index("phase")
    snr_columns = ["median SNR, matched", "median SNR, unmatched", "median probability, matched",
                   "median probability, unmatched"]
    second = picker_evaluation.SECOND_EVENT
    assert places.loc["P"].drop(snr_columns).to_dict() == {
        "before P": 0, "at P": 0, "between P and S": 0, "at S": 3, "after S": 6, "no label": 0, second: 3}
    assert places.loc["S"].drop(snr_columns).to_dict() == {
        "before P": 3, "at P": 3, "between P and S": 0, "at S": 0, "after S": 3, "no label": 0, second: 3}
    # the SNRs of matched and unmatched picks (unmeasured ones left out)
    assert places.loc["P", snr_columns].tolist() == pytest.approx([20.0, 2.0, 0.9, 0.4])
    assert places.loc["S", snr_columns].tolist() == pytest.approx([12.0, 4.0, 0.8, 0.45])
