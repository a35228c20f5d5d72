"""picking: STA/LTA + AIC on synthetic arrivals, SeisBench models (untrained, local, pretrained)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import obspy
import pandas as pd
import pytest

from quakesnake import tabular
from quakesnake.picking import (
    PickerConfigError,
    annotate_stream,
    default_batch_size,
    load_model,
    pick_file,
    pick_files,
    pick_stream,
    picker_settings,
    resolve_device,
    resolve_dtype,
)
from quakesnake.picking.models import phase_thresholds
from quakesnake.picking.screen import resolve_screen_dtype
from quakesnake.picking.stalta import aic_curve

torch = pytest.importorskip("torch")
sbm = pytest.importorskip("seisbench.models")

RATE = 100.0
START = obspy.UTCDateTime("2024-01-01T00:10:00")
PICK_DTYPES = {
    "network": object, "station": object, "location": object, "phase": object,
    "time": np.dtype("datetime64[ns]"), "probability": np.float64, "picker": object, "snr": np.float64,
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
    assert list(picks.columns) == tabular.PICK_COLUMNS
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
    assert picker_settings({"type": "seisbench"})["p_threshold"] is None  # the weights' own
    with pytest.raises(PickerConfigError, match="unknown key.*trigger_onn"):
        picker_settings({"type": "stalta", "trigger_onn": 6.0})
    with pytest.raises(PickerConfigError, match="picker type"):
        picker_settings({"type": "magic"})


def test_thresholds_are_the_settings_else_the_weights_own_else_seisbenchs_generic():
    model = EnvelopePicker().eval()
    settings = picker_settings({"type": "seisbench"})
    assert phase_thresholds(model, settings) == {"P": 0.3, "S": 0.3}
    model.default_args = {"P_threshold": 0.45, "S_threshold": 0.6}
    assert phase_thresholds(model, settings) == {"P": 0.45, "S": 0.6}
    assert phase_thresholds(model, {**settings, "s_threshold": 0.2}) == {"P": 0.45, "S": 0.2}
    # the pick stage and SeisBench's classify trigger at the weights' thresholds alike
    stream = event_stream(SPARSE_EVENTS, seconds=1500)
    config = {k: v for k, v in ENVELOPE.items() if not k.endswith("_threshold")}
    ours = pick_stream(stream, {**config, "dense_overlap": None}, model=model)
    assert_same_picks(ours, pick_stream(stream, {**config, "dense_overlap": None, "engine": "seisbench"}, model=model))
    assert set(ours["phase"]) == {"P", "S"}
    strict = pick_stream(stream, {**config, "dense_overlap": None, "s_threshold": 0.99}, model=model)
    assert set(strict["phase"]) == {"P"}


def test_pick_file_writes_typed_tables_even_when_empty(tmp_path):
    source = tmp_path / "XX.SYN.mseed"
    event_stream([(60.0, 66.5)]).write(str(source), format="MSEED", encoding="FLOAT32")

    picks_path = tmp_path / "picks" / "XX.SYN.parquet"
    pick_file(source, picks_path, {"type": "stalta"}, day="2024-01-01", picker_name="stalta")
    back = tabular.read_table(picks_path, tabular.PICK_COLUMNS)
    assert len(back) == 2
    assert_pick_table(back, "stalta")

    empty_path = tmp_path / "picks" / "empty.parquet"
    pick_file(source, empty_path, {"type": "stalta"}, day="2024-01-05", picker_name="stalta")
    back = tabular.read_table(empty_path, tabular.PICK_COLUMNS)
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
# The window pipeline (engine: quakesnake) against SeisBench's classify


class EnvelopePicker(sbm.PhaseNet):
    """PhaseNet's windows, normalisation and outputs with a forward whose probabilities follow
    the smoothed energy of the input (P from Z, S from the horizontals): quiet in noise, high at
    arrivals, so picks are meaningful and screening has something to confirm."""

    def forward(self, x, logits=False):
        tie = self.out.bias.sum() * 0 + 1  # follows the weights' dtype
        energy = torch.nn.functional.avg_pool1d(x * x, 41, stride=1, padding=20)
        p = torch.tanh(energy[:, :1] / 40.0) * tie
        s = torch.tanh(energy[:, 1:].amax(dim=1, keepdim=True) / 40.0) * tie
        return torch.cat([1 - torch.maximum(p, s), p, s], dim=1)


SPARSE_EVENTS = [(300.0, 306.0), (700.0, 709.0), (1100.0, 1104.0)]
ENVELOPE = {"type": "seisbench", "model": "PhaseNet", "p_threshold": 0.5, "s_threshold": 0.5, "batch_size": 16}


def assert_same_picks(picks, reference):
    assert len(picks) == len(reference) > 0
    assert (picks["time"].to_numpy() == reference["time"].to_numpy()).all()
    np.testing.assert_allclose(picks["probability"], reference["probability"], atol=1e-5)


@pytest.mark.parametrize("model_name", ["PhaseNet", "EQTransformer"])
def test_window_pipeline_reproduces_seisbench_annotate(model_name):
    torch.manual_seed(4)
    model = getattr(sbm, model_name)().eval()
    stream = event_stream([(60.0, 66.5)], seconds=240) + event_stream(
        [(90.0, 95.0)], seconds=200, components="Z12", station="TWO", start=START + 3.0
    ) + event_stream([], seconds=150, components="Z", station="ONE", start=START + 0.004)
    config = {"type": "seisbench", "model": model_name, "screen": "none", "dense_overlap": None}
    ours = annotate_stream(stream, config, model=model)
    theirs = model.annotate(stream, batch_size=256)
    assert len(ours) == len(theirs) == 9
    for trace in theirs:
        (mine,) = ours.select(id=trace.id)
        assert mine.stats.starttime == trace.stats.starttime and mine.stats.npts == trace.stats.npts
        np.testing.assert_allclose(mine.data, trace.data, atol=1e-5)


def test_window_pipeline_picks_as_classify_does():
    model = EnvelopePicker().eval()
    stream = event_stream(SPARSE_EVENTS, seconds=1500) + event_stream(
        [(100.0, 104.0)], seconds=300, components="Z", station="ONE"
    )
    classify = pick_stream(stream, {**ENVELOPE, "engine": "seisbench"}, model=model)
    assert set(classify["station"]) == {"SYN", "ONE"}
    assert_same_picks(pick_stream(stream, {**ENVELOPE, "screen": "none"}, model=model), classify)
    assert_same_picks(pick_stream(stream, ENVELOPE, model=model), classify)


class EdgeArtefactPicker(EnvelopePicker):
    """The envelope picker with a false P of probability 0.7 in the first 0.3 s of every window:
    a picker whose output depends on where in the window a sample falls, as a trained model's
    does near the window edges, where it sees little context."""

    def forward(self, x, logits=False):
        out = super().forward(x, logits).clone()
        out[:, 1, :30] = torch.maximum(out[:, 1, :30], torch.tensor(0.7))
        return out


def test_dense_pass_gives_the_picks_of_every_window_at_its_overlap_computing_few(caplog):
    model = EnvelopePicker().eval()
    stream = event_stream(SPARSE_EVENTS, seconds=1500)
    dense_everywhere = pick_stream(stream, {**ENVELOPE, "screen": "none", "dense_overlap": None, "overlap": 2700},
                                   model=model)
    with caplog.at_level(logging.INFO, logger="quakesnake.picking"):
        two_passes = pick_stream(stream, {**ENVELOPE, "screen": "none", "dense_overlap": 0.9}, model=model)
    assert_same_picks(two_passes, dense_everywhere)
    (message,) = [r.getMessage() for r in caplog.records if "dense windows" in r.getMessage()]
    used, total = (int(n) for n in message.split("stacked from ")[1].split(" dense")[0].split(" of "))
    assert message.split(": ")[1].startswith("3 stretches") and 0 < used < total / 4
    # the same dense overlap in samples; none, or one not above the model's own: one pass only
    assert_same_picks(pick_stream(stream, {**ENVELOPE, "screen": "none", "dense_overlap": 2700}, model=model),
                      dense_everywhere)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="quakesnake.picking"):
        single = pick_stream(stream, {**ENVELOPE, "screen": "none", "dense_overlap": 0.4}, model=model)
    assert "dense windows" not in caplog.text
    assert_same_picks(single, pick_stream(stream, {**ENVELOPE, "screen": "none", "dense_overlap": None}, model=model))


def test_dense_pass_removes_picks_that_come_and_go_with_the_window_layout():
    model = EdgeArtefactPicker().eval()
    stream = event_stream(SPARSE_EVENTS, seconds=1500)
    arrivals = np.array([t for event in SPARSE_EVENTS for t in event])

    def p_offsets(config, trim_s):
        """P picks (s after START) of the recording starting ``trim_s`` later, but for its first
        window: fewer windows cover each sample there, whatever the overlap."""
        trimmed = stream.copy().trim(START + trim_s)
        config = {**ENVELOPE, "screen": "none", "p_threshold": 0.3, **config}
        offsets = offsets_s(pick_stream(trimmed, config, model=model), "P")
        return offsets[offsets > trim_s + 30.01]

    def far_from_arrivals(offsets):
        return [t for t in offsets if np.abs(arrivals - t).min() > 1.0]

    for trim_s in (0.0, 4.3, 11.9):  # other window starts
        two_windows = p_offsets({"dense_overlap": None}, trim_s)
        assert len(far_from_arrivals(two_windows)) > 20  # at every window start: (0.7 + noise) / 2 > 0.3
        dense = p_offsets({}, trim_s)  # the default dense pass: 0.7 / 10 window positions
        assert far_from_arrivals(dense) == []
        assert all(np.abs(dense - p).min() < 0.5 for p, _ in SPARSE_EVENTS)


def test_bf16_screen_keeps_the_fp32_picks_and_recomputes_only_near_them(caplog):
    model = EnvelopePicker().eval()
    stream = event_stream(SPARSE_EVENTS, seconds=1500)
    fp32 = pick_stream(stream, {**ENVELOPE, "screen": "none"}, model=model)
    with caplog.at_level(logging.INFO, logger="quakesnake.picking"):
        screened = pick_stream(stream, {**ENVELOPE, "screen": "bf16"}, model=model)
    assert_same_picks(screened, fp32)
    recomputed = [r.getMessage() for r in caplog.records if "recomputed in full precision" in r.getMessage()]
    assert len(recomputed) == 1
    touched, total = (int(n) for n in recomputed[0].split(": ")[1].split(" windows")[0].split(" of "))
    assert 0 < touched < total / 4
    # deterministic: a second run gives the same table
    pd.testing.assert_frame_equal(screened, pick_stream(stream, {**ENVELOPE, "screen": "bf16"}, model=model))


def test_picks_do_not_depend_on_the_thread_count():
    model = EnvelopePicker().eval()
    stream = event_stream(SPARSE_EVENTS, seconds=1500)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = pick_stream(stream, {**ENVELOPE, "screen": "bf16"}, model=model)
        torch.set_num_threads(3)  # three batch workers
        three = pick_stream(stream, {**ENVELOPE, "screen": "bf16"}, model=model)
    finally:
        torch.set_num_threads(threads)
    assert len(one) == 6
    pd.testing.assert_frame_equal(one, three)


def test_screen_errors_beyond_the_margin_fall_back_to_full_precision(monkeypatch, caplog):
    from quakesnake.picking import windows

    model = EnvelopePicker().eval()
    stream = event_stream(SPARSE_EVENTS, seconds=1500)
    fp32 = pick_stream(stream, {**ENVELOPE, "screen": "none"}, model=model)
    original = windows.fast_copy

    class Distorted(torch.nn.Module):  # a screening pass 20 % off: far beyond its margin
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            out = self.inner(x)
            return torch.cat([out[:, :1], 1.2 * out[:, 1:]], dim=1)

    def distorted(model, dtype):
        copy = original(model, dtype)
        return Distorted(copy) if dtype == torch.bfloat16 else copy

    monkeypatch.setattr(windows, "fast_copy", distorted)
    with caplog.at_level(logging.WARNING, logger="quakesnake.picking"):
        screened = pick_stream(stream, {**ENVELOPE, "screen": "bf16"}, model=model)
    assert "exceeds half the margin" in caplog.text
    assert_same_picks(screened, fp32)


def test_screening_is_skipped_where_it_cannot_pay(caplog):
    model = EnvelopePicker().eval()
    busy = event_stream([(20.0 + 40 * i, 26.0 + 40 * i) for i in range(8)], seconds=360)
    with caplog.at_level(logging.INFO, logger="quakesnake.picking"):
        picks = pick_stream(busy, {**ENVELOPE, "screen": "bf16"}, model=model)
        low = pick_stream(busy, {**ENVELOPE, "screen": "bf16", "p_threshold": 0.1, "s_threshold": 0.1}, model=model)
    assert "windows touch possible picks; no screening" in caplog.text
    assert "not above zero" in caplog.text
    assert_same_picks(picks, pick_stream(busy, {**ENVELOPE, "screen": "none"}, model=model))
    assert len(low) >= len(picks)


def test_unmerged_gaps_and_other_rates_are_left_to_classify(caplog):
    model = EnvelopePicker().eval()
    gappy = event_stream(SPARSE_EVENTS, seconds=1500)
    gappy = gappy.slice(START, START + 500) + gappy.slice(START + 520, START + 1500)  # two traces per channel
    slow = event_stream([(100.0, 104.0)], seconds=300, station="SLOW")
    for trace in slow:
        trace.stats.sampling_rate = 50.0
    stream = gappy + slow
    with caplog.at_level(logging.INFO, logger="quakesnake.picking"):
        ours = pick_stream(stream, ENVELOPE, model=model)
    assert "several traces for one component" in caplog.text and "sampling rate differs" in caplog.text
    assert_same_picks(ours, pick_stream(stream, {**ENVELOPE, "engine": "seisbench"}, model=model))


def test_triggers_on_the_stretches_equal_obspys_trigger_on_the_whole_curve():
    from obspy.signal.trigger import trigger_onset

    from quakesnake.picking.windows import triggers as _triggers

    rng = np.random.default_rng(7)
    for trial in range(200):
        curve = (np.abs(np.cumsum(rng.normal(0, 0.05, int(rng.integers(5, 3000))))) % 1.0).astype(np.float32)
        if trial % 3 == 0:
            curve[rng.integers(0, curve.size, 5)] = np.nan
        threshold = float(rng.uniform(0.1, 0.9))
        expected = [tuple(int(i) for i in pair) for pair in trigger_onset(curve, threshold, threshold / 2)]
        assert _triggers(curve, threshold) == expected


def test_fast_copy_folds_batchnorm_and_moves_transposed_biases():
    from quakesnake.picking.fast_model import fast_copy as _fast_copy

    torch.manual_seed(5)
    for model in (sbm.PhaseNet().eval(), sbm.PhaseNetLight().eval()):
        fast = _fast_copy(model, torch.float32)
        assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in fast.modules())
        transposed = [m for m in fast.modules() if isinstance(m, torch.nn.ConvTranspose1d)]
        assert transposed and all(m.bias is None for m in transposed)
        x = torch.randn(3, 3, model.in_samples)
        with torch.no_grad():
            torch.testing.assert_close(fast(x), model(x), atol=1e-5, rtol=0)
        assert _fast_copy(model, torch.float32) is fast  # cached
        assert next(_fast_copy(model, torch.bfloat16).parameters()).dtype == torch.bfloat16
        assert _fast_copy(model, torch.float32) is fast  # one copy per dtype
    eqt = sbm.EQTransformer().eval()  # fx cannot trace it: a plain copy
    x = torch.randn(2, 3, 6000)
    with torch.no_grad():
        for a, b in zip(_fast_copy(eqt, torch.float32)(x), eqt(x)):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_screen_batch_size_and_engine_resolution_on_cpu():
    if torch.cuda.is_available():
        pytest.skip("checks the CPU choices; this machine has CUDA")
    model = untrained_phasenet()
    native = torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    assert resolve_screen_dtype("auto", model) == (torch.bfloat16 if native else None)
    assert resolve_screen_dtype("none", model) is None
    assert resolve_screen_dtype("bf16", model) == torch.bfloat16
    assert resolve_screen_dtype("auto", untrained_phasenet().to(torch.bfloat16)) is None  # nothing to confirm with
    with pytest.raises(PickerConfigError, match="screen"):
        resolve_screen_dtype("int8", model)
    assert default_batch_size(torch.device("cpu")) == 64
    assert default_batch_size(torch.device("cuda", 0)) == 256
    with pytest.raises(PickerConfigError, match="engine"):
        pick_stream(event_stream([]), {"type": "seisbench", "engine": "fastest"}, model=model)
    with pytest.raises(PickerConfigError, match="only SeisBench pickers"):
        annotate_stream(event_stream([]), {"type": "stalta"})


def test_pick_files_loads_the_model_once(tmp_path, monkeypatch):
    from quakesnake.picking import shards

    model = EnvelopePicker().eval()
    loads = []
    monkeypatch.setattr(shards, "picker_model", lambda cfg: loads.append(cfg) or model)
    jobs = []
    for number, arrivals in enumerate([[(60.0, 66.5)], [(100.0, 104.0)]]):
        source = tmp_path / f"XX.S{number}.mseed"
        event_stream(arrivals, seconds=200, station=f"S{number}").write(str(source), format="MSEED", encoding="FLOAT32")
        jobs.append((source, tmp_path / "picks" / f"S{number}.parquet", "2024-01-01"))
    (tmp_path / "empty.mseed").write_bytes(b"")
    jobs.insert(0, (tmp_path / "empty.mseed", tmp_path / "picks" / "empty.parquet", "2024-01-01"))
    results = pick_files(jobs, ENVELOPE, "envelope")
    assert len(loads) == 1 and results[0].empty
    for (source, target, day), picks in zip(jobs[1:], results[1:]):
        assert len(picks) == 2
        pd.testing.assert_frame_equal(tabular.read_table(target, tabular.PICK_COLUMNS), picks)
        pd.testing.assert_frame_equal(picks, pick_file(source, tmp_path / "again.parquet", ENVELOPE, day, "envelope",
                                                       model=model))


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


@pytest.mark.shared
def test_pretrained_phasenetlight_pick_stage_gives_the_classify_picks(shared_dir, seisbench_cache, offline_seisbench):
    stream, _ = labelled_records(shared_dir, N_RECORDS)
    config = {"type": "seisbench", "model": "PhaseNetLight", "weights": "ethz", "version": "2"}
    model = load_model(config)
    classify = pick_stream(stream, {**config, "engine": "seisbench"}, model=model)
    for screen in ("none", "bf16"):
        assert_same_picks(pick_stream(stream, {**config, "screen": screen}, model=model), classify)


def test_picks_inside_dead_stretches_are_dropped():
    """A flat-lined or zero-filled stretch (every component constant for >= DEAD_RUN_S) is no data:
    a network's output there (its windows normalised by a zero spread, or a step into the flat
    part) is dropped; picks on live data, or where one component still records, stay."""
    from quakesnake.picking.picks import Pick, outside_dead_stretches as _outside_dead_stretches
    from quakesnake.preprocess import DEAD_RUN_S

    rate, start = 100.0, obspy.UTCDateTime("2024-01-01T00:00:00")
    live = np.random.default_rng(0).normal(0, 10, 6000)
    flat = np.concatenate([live, np.full(3000, 35.0), live[:1000]])  # flat from 60 s to 90 s
    z = obspy.Trace(flat, header={"network": "XX", "station": "A", "channel": "EHZ", "sampling_rate": rate,
                                  "starttime": start})
    n = obspy.Trace(np.concatenate([live, live[:4000]]), header={**z.stats, "channel": "EHN"})

    def row(station, seconds):
        return Pick("XX", station, "", "S", (start + seconds).ns, 0.9)

    rows = [row("A", 30.0), row("A", 75.0), row("A", 95.0)]
    assert _outside_dead_stretches(rows, obspy.Stream([z])) == [rows[0], rows[2]]
    # the N component records through the stretch: nothing is dead
    assert _outside_dead_stretches(rows, obspy.Stream([z, n])) == rows
    # a flat run shorter than DEAD_RUN_S is data (a quiet sample run)
    short = z.copy()
    short.data = np.concatenate([live, np.full(int(DEAD_RUN_S * rate) - 2, 35.0), live])
    assert _outside_dead_stretches([row("A", 60.2)], obspy.Stream([short])) == [row("A", 60.2)]
    # other stations are untouched
    assert _outside_dead_stretches([row("B", 75.0)], obspy.Stream([z])) == [row("B", 75.0)]


def test_the_installed_seisbench_has_every_internal_the_window_pipeline_uses():
    from types import SimpleNamespace

    from quakesnake.picking import seisbench_adapter

    seisbench_adapter.check_compatible()  # the installed SeisBench
    model = sbm.PhaseNet()
    argdict = dict(model.default_args)
    assert seisbench_adapter.grouping(model) == "instrument"
    assert 0 <= seisbench_adapter.window_overlap(model, argdict) < model.in_samples
    assert seisbench_adapter.annotate_argument(model, argdict, "stacking") in ("avg", "max")
    assert seisbench_adapter.has_default_classify_aggregate(model)
    assert seisbench_adapter.phase_labels(model) == ["P", "S"]
    assert "PhaseNet" in seisbench_adapter.waveform_model_classes()

    # a SeisBench that renamed an internal fails loudly, naming it and the tested range
    stand_in = SimpleNamespace(WaveformModel=SimpleNamespace(**{
        name: getattr(sbm.WaveformModel, name) for name in ("annotate_batch_pre", "annotate_batch_post", "classify",
                                                           "annotate", "_argdict_get_with_default")}),
        PhaseNet=sbm.PhaseNet, EQTransformer=sbm.EQTransformer)
    with pytest.raises(seisbench_adapter.SeisBenchIncompatible, match=r"WaveformModel\._get_overlap.*seisbench>=0\.12\.6,<0\.13"):
        seisbench_adapter.check_compatible(stand_in)
    # the range it names is the one pyproject.toml pins
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert f'"seisbench{seisbench_adapter.TESTED_RANGE}"' in pyproject
