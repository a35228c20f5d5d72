"""Train and fine-tune SeisBench pickers on a reference catalog and the workflow's station-days.

Two steps, each a workflow rule:

1. :func:`build_dataset` cuts, per station-day, one trace around every reference event seen at
   the station plus a few noise-only traces, and writes them as a SeisBench ``WaveformDataset``
   (``metadata.csv`` + ``waveforms.hdf5``). Traces are long (``trace_s``, 120 s by default) so
   that training can crop windows with the pick anywhere in them. Every reference arrival that
   falls inside a trace is labelled, not only the event the trace was cut for: an unlabelled
   arrival would teach the network to call real onsets noise. The train/dev/test split is drawn
   per event (all traces of an event share it), so dev and test scores are on unseen events.
2. :func:`train` trains a SeisBench model from scratch or fine-tunes given weights with
   SeisBench's generator and augmentations, stops early on the dev loss, and writes the best
   weights in SeisBench's save format, the loss curve, and dev/test pick recall and precision.

Picks are matched to labels the way ``quakesnake.evaluation`` matches picks: one-to-one within
a tolerance (0.1 s and 0.5 s are reported).
"""
from __future__ import annotations

import hashlib
import json
import logging
import random
import time
from pathlib import Path

import numpy as np
import obspy
import pandas as pd

from quakesnake import tabular
from quakesnake.config import section_defaults
from quakesnake.scoring import scores_by_tolerance, tolerance_key
from quakesnake.errors import QuakesnakeError
from quakesnake.preprocess import preprocess_station_day
from quakesnake.real_noise import bury_in_real_noise, expand_files, load_recordings, noise_file_label

logger = logging.getLogger(__name__)

COMPONENTS = "ZNE"
ALTERNATIVE_COMPONENTS = {"N": "1", "E": "2"}
PRIMARY_COLUMNS = {"P": "trace_p_arrival_sample", "S": "trace_s_arrival_sample"}
MAX_EXTRA_ARRIVALS = 4  # per phase: further arrivals (other events) inside one trace
FALSE_PICK_COLUMN = "trace_false_pick_sample"  # a noise trace cut around a false pick: its sample
SPLITS = ("train", "dev", "test")

# Every key and default: the schema's training section.
DEFAULTS = section_defaults("training")


class TrainingError(QuakesnakeError, ValueError):
    """The dataset or training settings cannot produce a model (no traces, unknown model, ...)."""


def training_settings(cfg: dict | None) -> dict:
    """``cfg`` over :data:`DEFAULTS`, one level deep for the nested dicts."""
    cfg = dict(cfg or {})
    settings = {**DEFAULTS, **cfg}
    for key in ("split", "augmentation", "real_noise"):
        settings[key] = {**DEFAULTS[key], **cfg.get(key, {})}
    return settings


# The training settings a dataset is cut with; the rest (model, epochs, rate, augmentations) only
# shape the training, so the dataset rules take these alone as params and changing how a model
# trains does not rebuild its datasets.
DATASET_KEYS = ("trace_s", "first_arrival_s", "noise_traces_per_station_day", "noise_clearance_s", "split",
                "real_noise", "seed")


def dataset_settings(cfg: dict | None) -> dict:
    """The part of the training settings (over the defaults) that :func:`build_dataset` reads."""
    settings = training_settings(cfg)
    return {key: settings[key] for key in DATASET_KEYS}


# --------------------------------------------------------------------------------------------
# Dataset


def event_split(event_id: str, seed: int, dev: float, test: float) -> str:
    """Deterministic split of one event: a hash, not a random draw, so adding days keeps old splits."""
    fraction = int(hashlib.sha1(f"{seed}:{event_id}".encode()).hexdigest()[:12], 16) / 16**12
    if fraction < test:
        return "test"
    if fraction < test + dev:
        return "dev"
    return "train"


def component_data(stream: obspy.Stream, start: obspy.UTCDateTime, npts: int) -> np.ndarray:
    """(3, npts) float32 in Z, N, E order; missing components and samples outside the data are 0."""
    out = np.zeros((len(COMPONENTS), npts), dtype=np.float32)
    for row, component in enumerate(COMPONENTS):
        traces = stream.select(component=component) or stream.select(component=ALTERNATIVE_COMPONENTS.get(component, "?"))
        for trace in traces:
            rate = trace.stats.sampling_rate
            offset = int(round((trace.stats.starttime - start) * rate))
            first, last = max(offset, 0), min(offset + trace.stats.npts, npts)
            if last > first:
                out[row, first:last] = trace.data[first - offset:last - offset]
    return out


def _arrival_columns(picks: pd.DataFrame, start: pd.Timestamp, npts: int, rate: float, event_id: str | None) -> dict:
    """Sample indices of the reference arrivals inside a trace: the trace's own event first."""
    columns = {}
    inside = picks[(picks["time"] >= start) & (picks["time"] < start + pd.Timedelta(seconds=npts / rate))]
    for phase, primary in PRIMARY_COLUMNS.items():
        of_phase = inside[inside["phase"] == phase]
        own = of_phase[of_phase["event_id"] == event_id].sort_values("time")
        others = of_phase[of_phase["event_id"] != event_id].sort_values("time")
        samples = ((pd.concat([own.head(1), others])["time"] - start).dt.total_seconds() * rate).round().astype(int)
        values = list(samples.head(1 + MAX_EXTRA_ARRIVALS)) if len(own) else [np.nan] + list(samples.head(MAX_EXTRA_ARRIVALS))
        values += [np.nan] * (1 + MAX_EXTRA_ARRIVALS - len(values))
        columns[primary] = values[0]
        for k, value in enumerate(values[1:], start=1):
            columns[f"trace_{phase.lower()}{k}_arrival_sample"] = value
    return columns


def label_columns() -> dict[str, str]:
    """Every arrival column of a dataset written here -> its phase (what the labeller reads)."""
    columns = {}
    for phase, primary in PRIMARY_COLUMNS.items():
        columns[primary] = phase
        for k in range(1, MAX_EXTRA_ARRIVALS + 1):
            columns[f"trace_{phase.lower()}{k}_arrival_sample"] = phase
    return columns


def station_day_traces(stream: obspy.Stream, picks: pd.DataFrame, settings: dict, rng: np.random.Generator,
                       day_start: pd.Timestamp | None = None, avoid_times=(), false_pick_times=(),
                       false_pick_traces: int = 0, max_noise_fraction: float | None = None) -> list[tuple[dict, np.ndarray]]:
    """(metadata, data) of the event traces and noise traces of one station-day.

    ``picks`` are the reference picks of this station (event_id, phase, time). Only events whose
    first arrival falls in ``[day_start, day_start + 1 day)`` are cut (the margin around a shard
    belongs to the neighbouring day's shard, so nothing is written twice).

    ``avoid_times`` (picks that are neither labels nor noise) and ``false_pick_times`` (picks
    taken for false alarms) keep the noise traces away as the reference picks do. Up to
    ``false_pick_traces`` further noise traces are cut around false picks clear of every other
    pick, each with the false pick's sample in ``trace_false_pick_sample`` (training windows are
    cropped around it, so the network sees the stretch it picked wrongly).

    ``max_noise_fraction`` caps the noise traces (of both kinds, false-pick ones first) at that
    share of the station-day's traces, on average: a fine-tune on far more noise than events teaches a model
    to pick nothing (seen in adapt's rounds on the Colombian hour: a round whose traces were 85 %
    noise left the next round's model without one event).
    """
    if not len(stream):
        return []
    rate = stream[0].stats.sampling_rate
    npts = int(round(settings["trace_s"] * rate))
    data_start = min(tr.stats.starttime for tr in stream)
    data_end = max(tr.stats.endtime for tr in stream)
    if day_start is None:
        day_start = pd.Timestamp(tabular.to_datetime64(data_start)).normalize()
    day_end = day_start + pd.Timedelta(days=1)
    day_start_utc, day_end_utc = tabular.to_utcdatetime(day_start), tabular.to_utcdatetime(day_end)
    out = []
    first_arrivals = picks.groupby("event_id")["time"].min()
    first_arrivals = first_arrivals[(first_arrivals >= day_start) & (first_arrivals < day_end)]
    lead_min, lead_max = settings["first_arrival_s"]
    for event_id, first in first_arrivals.sort_values().items():
        start = first - pd.Timedelta(seconds=float(rng.uniform(lead_min, lead_max)))
        start_utc = tabular.to_utcdatetime(start)
        if start_utc < data_start or start_utc + npts / rate > data_end:
            continue
        data = component_data(stream, start_utc, npts)
        columns = _arrival_columns(picks, start, npts, rate, event_id)
        onset = columns[PRIMARY_COLUMNS["P"]]
        onset = columns[PRIMARY_COLUMNS["S"]] if np.isnan(onset) else onset
        around = data[:, max(int(onset) - int(rate), 0):int(onset) + int(rate)]
        if not np.any(around):  # the arrival sits in a zero-filled gap: a label without signal
            continue
        out.append(({"source_id": str(event_id), "trace_category": "earthquake",
                     "trace_start_time": str(start_utc), **columns}, data))

    clearance = pd.Timedelta(seconds=settings["noise_clearance_s"])
    kept_times = np.sort(np.concatenate([picks["time"].to_numpy("datetime64[ns]"),
                                         np.asarray(avoid_times, dtype="datetime64[ns]")]))
    false_times = np.sort(np.asarray(false_pick_times, dtype="datetime64[ns]"))
    pick_times = np.sort(np.concatenate([kept_times, false_times]))
    n_events = len(out)
    noise_budget = false_pick_traces + settings["noise_traces_per_station_day"]
    if max_noise_fraction is not None:
        # rounded at random, so that station-days of one or two events keep the share on average
        expected = n_events * max_noise_fraction / (1.0 - max_noise_fraction)
        noise_budget = min(noise_budget, int(expected) + int(rng.uniform() < expected - int(expected)))
    inside_day = false_times[(false_times >= np.datetime64(day_start)) & (false_times < np.datetime64(day_end))]
    for false_time in (rng.permutation(inside_day)[:min(false_pick_traces, noise_budget)]
                       if false_pick_traces and len(inside_day) else []):
        start = pd.Timestamp(false_time) - pd.Timedelta(seconds=float(rng.uniform(lead_min, lead_max)))
        start_utc = tabular.to_utcdatetime(start)
        end = start + pd.Timedelta(seconds=npts / rate)
        lo, hi = np.searchsorted(kept_times, [np.datetime64(start - clearance), np.datetime64(end + clearance)])
        if hi > lo or start_utc < data_start or start_utc + npts / rate > data_end:
            continue
        data = component_data(stream, start_utc, npts)
        if not np.any(data):
            continue
        columns = _arrival_columns(picks.iloc[:0], start, npts, rate, None)
        sample = int(round((pd.Timestamp(false_time) - start).total_seconds() * rate))
        out.append(({"source_id": "", "trace_category": "noise", "trace_start_time": str(start_utc), **columns,
                     FALSE_PICK_COLUMN: sample}, data))
    noise_written, attempts = 0, 0
    noise_wanted = min(settings["noise_traces_per_station_day"], noise_budget - (len(out) - n_events))
    span_s = (min(data_end, day_end_utc) - max(data_start, day_start_utc)) - npts / rate
    while noise_written < noise_wanted and attempts < 50 and span_s > 0:
        attempts += 1
        start_utc = max(data_start, day_start_utc) + float(rng.uniform(0, span_s))
        start = pd.Timestamp(tabular.to_datetime64(start_utc))
        end = start + pd.Timedelta(seconds=npts / rate)
        lo, hi = np.searchsorted(pick_times, [np.datetime64(start - clearance), np.datetime64(end)])
        if hi > lo:
            continue
        data = component_data(stream, start_utc, npts)
        if not np.any(data):
            continue
        columns = _arrival_columns(picks.iloc[:0], start, npts, rate, None)
        out.append(({"source_id": "", "trace_category": "noise", "trace_start_time": str(start_utc), **columns}, data))
        noise_written += 1
    return out


def _labelled_arrivals(metadata: dict) -> dict[str, list[int]]:
    """The labelled arrival samples of a trace's metadata, by phase."""
    arrivals = {phase: [] for phase in PRIMARY_COLUMNS}
    for column, phase in label_columns().items():
        value = metadata.get(column, np.nan)
        if not pd.isna(value):
            arrivals[phase].append(int(value))
    return arrivals


# The noise columns of a trace whose noise is the station-day's own (its source named by build_dataset).
RECORDED_NOISE = {"trace_noise_file": "", "trace_noise_station": "", "trace_noise_start_time": "",
                  "trace_real_noise_scale": np.nan}


def _times_by_station(picks) -> dict[str, np.ndarray]:
    """Pick times (datetime64[ns]) by station of a picks table or its path; {} for None."""
    if picks is None:
        return {}
    if not isinstance(picks, pd.DataFrame):
        picks = tabular.read_table(picks, ["station", "time"])
    return {station: group["time"].to_numpy("datetime64[ns]") for station, group in picks.groupby("station")}


def build_dataset(reference_picks, waveform_files: list, out_dir, settings: dict | None = None,
                  day: str | None = None, preprocess: dict | None = None, margin_s: float = 0.0,
                  real_noise_files: list | None = None, recorded_noise: str = "synthetic",
                  avoid_picks=None, false_picks=None, false_pick_traces_per_station_day: int = 0,
                  max_noise_fraction: float | None = None) -> dict:
    """Write a SeisBench dataset of the traces around ``reference_picks`` in ``waveform_files``.

    ``reference_picks`` is a picks table (or its path) in the shared layout (event_id, station,
    phase, time). ``waveform_files`` are preprocessed station-day miniSEED files named
    ``NET.STA.mseed``; 0-byte files (shards without data) are skipped. With ``preprocess`` (the
    workflow's preprocessing options) they are raw station-days instead, preprocessed in memory as
    the pick stage does (with ``day`` and ``margin_s``). Returns counts.

    Real noise (``settings["real_noise"]``, :mod:`quakesnake.real_noise`; its files are
    ``real_noise_files``, else the expanded ``real_noise.files``): ``traces_per_station`` pure
    noise traces per real station, and a share ``arrivals_in_real_noise_fraction`` of the event
    traces with real noise added over their own (replacing the originals, so the share is the
    dataset's). Every trace's metadata says where its noise came from: ``trace_noise_source``
    (``synthetic``, ``real``, ``synthetic+real``), ``trace_noise_file``, ``trace_noise_station``,
    ``trace_noise_start_time`` and ``trace_real_noise_scale`` (real noise std / synthetic noise std).
    ``recorded_noise`` names the noise of the station-days themselves: ``synthetic`` for the
    synthetic scenario, ``recorded`` for real recordings.

    ``avoid_picks`` and ``false_picks`` (tables or paths with station, time; ``snakemake adapt``
    passes its rounds' picks) are kept away from noise traces, and
    ``false_pick_traces_per_station_day`` noise traces are cut around false picks, with noise at
    most ``max_noise_fraction`` of each station-day's traces (:func:`station_day_traces`).
    """
    import seisbench.data as sbd

    settings = training_settings(settings)
    real_cfg = settings["real_noise"]
    if real_noise_files is None:
        real_noise_files = expand_files(real_cfg["files"])
    wants_real_noise = real_cfg["traces_per_station"] > 0 or real_cfg["arrivals_in_real_noise_fraction"] > 0
    # Read before any trace is cut: bad real-noise settings fail before minutes of work.
    recordings = (load_recordings(real_noise_files, preprocess or {}, real_cfg["screen_picker"],
                                  real_cfg["clearance_s"], settings["trace_s"])
                  if real_noise_files and wants_real_noise else [])
    if not isinstance(reference_picks, pd.DataFrame):
        reference_picks = tabular.read_table(reference_picks, tabular.REFERENCE_PICK_COLUMNS)
    picks = reference_picks.copy()
    picks["event_id"] = picks["event_id"].astype(str)
    picks["phase"] = tabular.phase_letters(picks["phase"])
    picks = picks[picks["phase"].isin(list(PRIMARY_COLUMNS))]
    by_station = dict(tuple(picks.groupby("station")))
    avoid_by_station, false_by_station = (_times_by_station(table) for table in (avoid_picks, false_picks))
    day_start = pd.Timestamp(day) if day else None
    split_cfg = settings["split"]
    # Real stations are split as a whole (their windows overlap): dev and test noise is unseen.
    noise_split = {rec.station_id: event_split(f"real-noise:{rec.station_id}", settings["seed"],
                                               split_cfg["dev"], split_cfg["test"]) for rec in recordings}
    noise_pools = {split: [rec for rec in recordings if noise_split[rec.station_id] == split] or recordings
                   for split in SPLITS}

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {"earthquake": 0, "noise": 0, "false_pick": 0, **{split: 0 for split in SPLITS}, "station_days": 0,
              "noise_source": {recorded_noise: 0, "real": 0, f"{recorded_noise}+real": 0}}
    tmp_meta, tmp_wave = out_dir / "metadata.csv.part", out_dir / "waveforms.hdf5.part"
    with sbd.WaveformDataWriter(tmp_meta, tmp_wave) as writer:
        writer.data_format = {"dimension_order": "CW", "component_order": COMPONENTS,
                              "measurement": "velocity", "unit": "counts (preprocessed, detrended)",
                              "instrument_response": "not restituted"}
        for path in map(Path, waveform_files):
            if path.stat().st_size == 0:
                logger.info("%s: no data (0 bytes), skipped", path)
                continue
            if preprocess is not None:
                stream, record = preprocess_station_day(path, day=day, margin_s=margin_s, **preprocess)
                if stream is None:
                    logger.info("%s: %s, skipped", path, record["reason"])
                    continue
            else:
                try:
                    stream = obspy.read(str(path))
                except Exception as exc:  # ObsPy raises many kinds on corrupt files
                    raise TrainingError(f"{path}: cannot read waveforms ({exc})") from exc
            if not len(stream):
                continue
            network, station = stream[0].stats.network, stream[0].stats.station
            station_picks = by_station.get(station)
            station_picks = station_picks if station_picks is not None else picks.iloc[:0]
            path_hash = int(hashlib.sha1(path.name.encode()).hexdigest()[:8], 16)
            rng = np.random.default_rng([settings["seed"], path_hash])
            # Its own generator: adding real noise leaves the synthetic traces as they were.
            mixing_rng = np.random.default_rng([settings["seed"], path_hash, 1])
            rate = stream[0].stats.sampling_rate
            counts["station_days"] += 1
            traces = station_day_traces(stream, station_picks, settings, rng, day_start,
                                        avoid_by_station.get(station, ()), false_by_station.get(station, ()),
                                        false_pick_traces_per_station_day, max_noise_fraction)
            for metadata, data in traces:
                split = (event_split(metadata["source_id"], settings["seed"], split_cfg["dev"], split_cfg["test"])
                         if metadata["source_id"]
                         else event_split(f"noise:{path.name}:{metadata['trace_start_time']}", settings["seed"],
                                          split_cfg["dev"], split_cfg["test"]))
                metadata = {FALSE_PICK_COLUMN: np.nan, **metadata, **RECORDED_NOISE, "trace_noise_source": recorded_noise}
                if (recordings and metadata["trace_category"] == "earthquake"
                        and mixing_rng.uniform() < real_cfg["arrivals_in_real_noise_fraction"]):
                    recording = noise_pools[split][int(mixing_rng.integers(len(noise_pools[split])))]
                    noise_start = recording.random_start(mixing_rng)
                    noise = component_data(recording.stream, noise_start, data.shape[1])
                    mixed = bury_in_real_noise(data, _labelled_arrivals(metadata), noise, rate,
                                               real_cfg["min_snr"], mixing_rng)
                    if mixed is not None:
                        data, scale = mixed
                        metadata.update({"trace_noise_source": f"{recorded_noise}+real", "trace_noise_file": noise_file_label(recording),
                                         "trace_noise_station": recording.station_id,
                                         "trace_noise_start_time": str(noise_start), "trace_real_noise_scale": scale})
                metadata.update({
                    "trace_name": f"{network}.{station}.{metadata['trace_start_time']}",
                    "station_network_code": network, "station_code": station,
                    "trace_sampling_rate_hz": rate, "split": split,
                })
                writer.add_trace(metadata, data)
                counts[metadata["trace_category"]] += 1
                counts["false_pick"] += int(not pd.isna(metadata[FALSE_PICK_COLUMN]))
                counts[split] += 1
                counts["noise_source"][metadata["trace_noise_source"]] += 1
        for recording in recordings:
            # Seeded by the day too: each day's dataset holds other windows of the same recordings.
            noise_rng = np.random.default_rng([settings["seed"], int(hashlib.sha1(f"{day}:{recording.station_id}".encode()).hexdigest()[:8], 16)])
            network, station = recording.station_id.split(".")
            npts = int(round(settings["trace_s"] * recording.rate))
            for _ in range(real_cfg["traces_per_station"]):
                noise_start = recording.random_start(noise_rng)
                metadata = {"source_id": "", "trace_category": "noise", "trace_start_time": str(noise_start),
                            **_arrival_columns(picks.iloc[:0], pd.Timestamp(tabular.to_datetime64(noise_start)), npts,
                                               recording.rate, None),
                            "trace_noise_source": "real", "trace_noise_file": noise_file_label(recording),
                            "trace_noise_station": recording.station_id, "trace_noise_start_time": str(noise_start),
                            "trace_real_noise_scale": np.nan,
                            "trace_name": f"{network}.{station}.{noise_start}.real-noise",
                            "station_network_code": network, "station_code": station,
                            "trace_sampling_rate_hz": recording.rate, "split": noise_split[recording.station_id]}
                writer.add_trace(metadata, component_data(recording.stream, noise_start, npts))
                counts["noise"] += 1
                counts[metadata["split"]] += 1
                counts["noise_source"]["real"] += 1
    if not tmp_meta.exists():  # SeisBench's writer writes nothing without a trace: an empty dataset
        import h5py

        pd.DataFrame(columns=["trace_name", "trace_category", "split"]).to_csv(tmp_meta, index=False)
        h5py.File(tmp_wave, "w").close()
        logger.warning("dataset %s: no trace (no station-day with data, labels or noise windows clear of picks)", out_dir)
    tmp_meta.replace(out_dir / "metadata.csv")
    tmp_wave.replace(out_dir / "waveforms.hdf5")
    logger.info("dataset %s: %s", out_dir, counts)
    return counts


def load_datasets(dataset_dirs: list):
    """One SeisBench dataset over several dataset directories (empty ones are skipped)."""
    import seisbench.data as sbd

    datasets = []
    for directory in map(Path, dataset_dirs):
        if not (directory / "metadata.csv").is_file():
            raise TrainingError(f"{directory}: not a dataset written by build_dataset (no metadata.csv)")
        if len(pd.read_csv(directory / "metadata.csv", usecols=["trace_name"])) == 0:
            continue
        datasets.append(sbd.WaveformDataset(directory, component_order=COMPONENTS, dimension_order="NCW",
                                            cache=None))
    if not datasets:
        raise TrainingError(f"no traces in any of the {len(dataset_dirs)} dataset(s)")
    return datasets[0] if len(datasets) == 1 else sbd.MultiWaveformDataset(datasets)


# --------------------------------------------------------------------------------------------
# Models, labels, losses


def build_model(settings: dict):
    """A fresh model of ``settings['model']`` or one loaded from ``settings['init_weights']``."""
    from quakesnake.picking.models import load_weights, model_class_named

    model_class = model_class_named(settings["model"])
    if settings["init_weights"]:
        return load_weights(model_class, str(settings["init_weights"]), None)
    return model_class(**settings["model_args"])


def _is_detection_model(model) -> bool:
    """EQTransformer-style models: separate detection, P and S sigmoid outputs."""
    return "Detection" in list(model.labels)


def _augmentations(model, settings: dict, train: bool) -> list:
    """SeisBench's windowing, augmentation, normalisation and labelling for ``model``."""
    import seisbench.generate as sbg

    n = model.in_samples
    columns = label_columns()
    primary = list(PRIMARY_COLUMNS.values())
    aug = settings["augmentation"]
    steps = []
    if train and aug["sensor_highpass_probability"] > 0:
        # Other sensors than broadband ones: a 1 Hz short-period seismometer or a 4.5 Hz geophone
        # is a second-order high-pass on ground velocity (an accelerometer a first-order one).
        # Causal, as the instrument is, and on the whole trace, so its start-up stays at the edge.
        p = aug["sensor_highpass_probability"]
        steps.append(sbg.OneOf([sbg.Filter(2, 1.0, "highpass"), sbg.Filter(2, 4.5, "highpass"),
                                sbg.Filter(1, 0.5, "highpass"), sbg.NullAugmentation()],
                               probabilities=[p / 3, p / 3, p / 3, 1 - p]))
    around_arrival = [
        # A window twice the model's length around one arrival, then a random crop of the model's
        # length: the arrival lands anywhere in the window, not always at the same sample.
        # (a noise trace cut around a false pick: around that pick)
        sbg.WindowAroundSample(primary + [FALSE_PICK_COLUMN], samples_before=n, windowlen=2 * n,
                               selection="random", strategy="pad"),
        sbg.RandomWindow(windowlen=n, strategy="pad"),
    ]
    anywhere = aug["unanchored_window_probability"] if train else 0.0
    if anywhere > 0:
        # Windows around an arrival always hold its onset, but a picker slides over whole records:
        # most of its windows on a recorded event begin in a coda or before the onsets. Without such
        # windows in training it takes coda bursts for onsets (the shipped model's extra P picks on
        # real records lie mostly after the S). So a share of the windows is cropped anywhere in the
        # trace, labelled by whatever arrivals fall inside (often none: a coda-only window).
        steps.append(sbg.OneOf([Steps(around_arrival), sbg.RandomWindow(windowlen=n, strategy="pad")],
                               probabilities=[1 - anywhere, anywhere]))
    else:
        steps += around_arrival
    if train:
        steps += [
            sbg.OneOf([RandomTrend(aug["trend_scale"]), sbg.NullAugmentation()],
                      probabilities=[aug["trend_probability"], 1 - aug["trend_probability"]]),
            sbg.OneOf([sbg.GaussianNoise(scale=tuple(aug["gaussian_noise"])), sbg.NullAugmentation()],
                      probabilities=[aug["gaussian_noise_probability"], 1 - aug["gaussian_noise_probability"]]),
            sbg.OneOf([sbg.ChannelDropout(), sbg.NullAugmentation()],
                      probabilities=[aug["channel_dropout_probability"], 1 - aug["channel_dropout_probability"]]),
            # One-component (vertical) stations, which the pick stage zero-fills: SeisBench's
            # ChannelDropout leaves the vertical alone in about 1 window of 9 it touches, too few
            # to learn to tell an S from a P on the vertical only.
            sbg.OneOf([VerticalOnly(list(model.component_order).index("Z")), sbg.NullAugmentation()],
                      probabilities=[aug["vertical_only_probability"], 1 - aug["vertical_only_probability"]]),
            sbg.OneOf([sbg.AddGap(), sbg.NullAugmentation()],
                      probabilities=[aug["gap_probability"], 1 - aug["gap_probability"]]),
        ]
    # The same normalisation the model applies before inference (per channel, demeaned): PhaseNet
    # divides by the std, EQTransformer by the peak. Per-channel scaling makes gain irrelevant.
    norm = getattr(model, "norm", "std")
    steps.append(sbg.Normalize(demean_axis=-1, amp_norm_axis=-1, amp_norm_type=norm))
    steps.append(sbg.ChangeDtype(np.float32))
    if _is_detection_model(model):
        phases = [label for label in model.labels if label != "Detection"]
        steps.append(sbg.ProbabilisticLabeller(label_columns=columns, model_labels=phases, noise_column=False,
                                               sigma=settings["sigma_samples"], dim=0))
        steps.append(sbg.DetectionLabeller(p_phases=[c for c, p in columns.items() if p == "P"],
                                           s_phases=[c for c, p in columns.items() if p == "S"],
                                           key=("X", "detections"), dim=0))
        steps.append(sbg.ChangeDtype(np.float32, key="detections"))
    else:
        steps.append(sbg.ProbabilisticLabeller(label_columns=columns, model_labels=model.labels,
                                               sigma=settings["sigma_samples"], dim=0))
    steps.append(sbg.ChangeDtype(np.float32, key="y"))
    return steps


class Steps:
    """SeisBench augmentation: several steps applied in turn, so that ``sbg.OneOf`` can choose
    between chains (SeisBench's ``OneOf`` takes single augmentations only)."""

    def __init__(self, steps: list):
        self.steps = list(steps)

    def __call__(self, state_dict):
        for step in self.steps:
            step(state_dict)

    def __str__(self):
        return "Steps(" + ", ".join(str(step) for step in self.steps) + ")"


class VerticalOnly:
    """SeisBench augmentation: every channel but the vertical (index ``vertical``) set to zero, as
    the pick stage feeds a one-component station."""

    def __init__(self, vertical: int, key: str = "X"):
        self.vertical, self.key = vertical, key

    def __call__(self, state_dict):
        x, metadata = state_dict[self.key]
        kept = np.zeros_like(x)
        kept[self.vertical] = x[self.vertical]
        state_dict[self.key] = (kept, metadata)

    def __str__(self):
        return f"VerticalOnly (channel {self.vertical})"


class RandomTrend:
    """SeisBench augmentation: a random linear drift per channel (sensor tilt, temperature, a
    long-period wave), its end-to-end size up to ``scale`` times the channel's standard deviation.
    The model demeans each window but does not detrend it, so raw records carry such ramps."""

    def __init__(self, scale: float, key: str = "X"):
        self.scale, self.key = scale, key

    def __call__(self, state_dict):
        x, metadata = state_dict[self.key]
        ramp = np.linspace(-0.5, 0.5, x.shape[-1])
        size = np.random.uniform(-self.scale, self.scale, x.shape[:-1]) * (x.std(axis=-1) + 1e-12)
        state_dict[self.key] = (x + size[..., None] * ramp, metadata)

    def __str__(self):
        return f"RandomTrend (scale={self.scale})"


def _phase_probabilities(model, output) -> dict:
    """{'P': (batch, samples), 'S': ...} from a model's raw forward output."""
    labels = list(model.labels)
    if _is_detection_model(model):
        return {phase: output[labels.index(phase)] for phase in PRIMARY_COLUMNS}
    return {phase: output[:, labels.index(phase)] for phase in PRIMARY_COLUMNS}


def _target_phases(model, batch) -> dict:
    labels = [label for label in model.labels if label != "Detection"] if _is_detection_model(model) else list(model.labels)
    return {phase: batch["y"][:, labels.index(phase)] for phase in PRIMARY_COLUMNS}


def _loss(model, output, batch):
    import torch

    eps = 1e-5
    if _is_detection_model(model):
        # EQTransformer: binary cross-entropy of each sigmoid output (detection, P, S)
        bce = torch.nn.functional.binary_cross_entropy
        targets = _target_phases(model, batch)
        probabilities = _phase_probabilities(model, output)
        detection = output[list(model.labels).index("Detection")]
        return (0.05 * bce(detection.clamp(eps, 1 - eps), batch["detections"][:, 0])
                + 0.4 * bce(probabilities["P"].clamp(eps, 1 - eps), targets["P"])
                + 0.55 * bce(probabilities["S"].clamp(eps, 1 - eps), targets["S"]))
    # PhaseNet family: cross-entropy of the softmax over (noise, P, S) against the soft labels
    return -(batch["y"] * torch.log(output + eps)).mean(-1).sum(-1).mean()


# --------------------------------------------------------------------------------------------
# Training


def _seed_everything(seed: int) -> None:
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _loader(generator, batch_size: int, shuffle: bool, seed: int, pin_memory: bool = False, weights=None):
    """Batches of ``generator``; with ``weights`` (one per trace) drawn with replacement by them."""
    import torch

    sampler = None
    if weights is not None:
        sampler = torch.utils.data.WeightedRandomSampler(torch.as_tensor(weights, dtype=torch.double), len(weights),
                                                         replacement=True, generator=torch.Generator().manual_seed(seed))
    return torch.utils.data.DataLoader(generator, batch_size=batch_size, shuffle=shuffle and sampler is None,
                                       sampler=sampler, num_workers=0,
                                       generator=torch.Generator().manual_seed(seed), pin_memory=pin_memory)


def _replay_weights(train_sizes: list[int], replay_fraction: float | None):
    """Per-trace sampling weights giving the replay (the last of two sources) ``replay_fraction``
    of the draws; None (plain shuffling) without a replay, a fraction, or traces on both sides."""
    if replay_fraction is None or len(train_sizes) != 2 or not all(train_sizes):
        return None
    own, replay = train_sizes
    return np.concatenate([np.full(own, (1.0 - replay_fraction) / own), np.full(replay, replay_fraction / replay)])


def _training_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise TrainingError(f"training.device is {name!r}, but torch sees no CUDA device here")
    return device


def _on_device(batches, device):
    """The loader's batches with every tensor on ``device`` (pinned, asynchronous copies on CUDA)."""
    non_blocking = device.type == "cuda"
    for batch in batches:
        yield {key: value.to(device, non_blocking=non_blocking) for key, value in batch.items()}


def _mean_loss(model, loader, seed: int) -> float:
    import torch

    np.random.seed(seed)  # windows are cropped with np.random: fix them so dev losses compare
    model.eval()
    total, n = 0.0, 0
    with torch.inference_mode():
        for batch in _on_device(loader, model.device):
            total += float(_loss(model, model(batch["X"]), batch)) * len(batch["X"])
            n += len(batch["X"])
    return total / max(n, 1)


def pick_scores(model, loader, threshold: float, tolerances_s=(0.1, 0.5), seed: int = 0) -> dict:
    """P/S scores of the probability peaks above ``threshold`` against the label peaks, per
    tolerance: ``{"P": {"0.1s": scores, ...}, "S": ...}`` (:mod:`quakesnake.scoring`, matched
    one to one within each trace)."""
    peaks = _phase_peaks(model, loader, seed, threshold)
    return {phase: _scores_at(peaks, phase, threshold, tolerances_s, float(model.sampling_rate))
            for phase in PRIMARY_COLUMNS}


# the thresholds a trained model's own are chosen from: a step finer than 0.1 would choose within
# the noise of a dev split's F1 (on the shipped default's, 0.3 to 0.6 lie within 0.01 of each other)
THRESHOLD_GRID = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def dev_thresholds(model, loader, seed: int = 0, tolerance_s: float = 0.5) -> dict:
    """Per phase the threshold of :data:`THRESHOLD_GRID` whose picks have the best F1 within
    ``tolerance_s`` on ``loader``'s traces (the dev split; ties: the lower), with the F1 of each:
    ``{"P": {"threshold": 0.3, "f1": {"0.1": ..., ...}}, "S": ...}``.

    :func:`train` writes the result into the weights it saves (``default_args``, where SeisBench's
    pretrained weights carry theirs), and pickers take it where their ``p_threshold`` /
    ``s_threshold`` are null (:func:`quakesnake.picking.models.phase_thresholds`).
    """
    peaks, rate = _phase_peaks(model, loader, seed, min(THRESHOLD_GRID)), float(model.sampling_rate)
    key = tolerance_key(tolerance_s)
    chosen = {}
    for phase in PRIMARY_COLUMNS:
        f1 = {}
        for threshold in THRESHOLD_GRID:
            scores = _scores_at(peaks, phase, threshold, (tolerance_s,), rate)[key]
            recall, precision = scores["recall"] or 0.0, scores["precision"] or 0.0
            f1[f"{threshold:g}"] = 2 * recall * precision / (recall + precision) if recall + precision else 0.0
        best = max(THRESHOLD_GRID, key=lambda t: (round(f1[f"{t:g}"], 6), -t))
        chosen[phase] = {"threshold": best, "f1": f1}
    return chosen


def weights_dev_thresholds(model_name: str, weights: str, dataset_dirs: list, write: bool = False,
                           settings: dict | None = None) -> dict:
    """:func:`dev_thresholds` of saved weights on the dev split of ``dataset_dirs`` (the datasets they
    were trained on: :func:`train` splits them by event, so the dev split is theirs), windowed as
    :func:`train` windows its dev split. With ``write``, the thresholds go into the weights' JSON
    (``default_args``), as :func:`train` writes them: for weights trained before it did."""
    import seisbench.generate as sbg

    from quakesnake.picking.models import load_weights, model_class_named, resolve_weights

    settings = training_settings(settings)
    model = load_weights(model_class_named(model_name), str(weights), None)
    dev = load_datasets(dataset_dirs).dev()
    if len(dev) == 0:
        raise TrainingError(f"the dev split of {', '.join(map(str, dataset_dirs))} is empty")
    generator = sbg.GenericGenerator(dev)
    generator.add_augmentations(_augmentations(model, settings, train=False))
    chosen = dev_thresholds(model, _loader(generator, settings["batch_size"], False, settings["seed"]),
                            seed=settings["seed"])
    if write:
        resolved = resolve_weights(model_name, str(weights), None)
        if resolved.kind not in ("saved", "shipped"):
            raise TrainingError(f"weights {weights!r} are not a saved model's JSON + .pt pair: nowhere to write thresholds")
        json_file = resolved.files[0]
        saved = json.loads(json_file.read_text())
        saved["default_args"] = {**saved.get("default_args", {}),
                                 **{f"{phase}_threshold": c["threshold"] for phase, c in chosen.items()}}
        json_file.write_text(json.dumps(saved, indent=4) + "\n")
    return chosen


def _phase_peaks(model, loader, seed: int, lowest: float) -> dict:
    """Per phase and trace: (label peak samples, predicted peak samples, their probabilities), the
    predicted peaks as ``find_peaks`` finds them at height ``lowest``: those at any threshold above
    it are the ones at or above that threshold (a peak is only ever suppressed by a higher one
    within the distance), so scoring many thresholds needs neither the curves nor the model again."""
    import torch
    from scipy.signal import find_peaks

    np.random.seed(seed)
    model.eval()
    rate = float(model.sampling_rate)
    peaks = {phase: [] for phase in PRIMARY_COLUMNS}
    with torch.inference_mode():
        for batch in _on_device(loader, model.device):
            probabilities = _phase_probabilities(model, model(batch["X"]))
            targets = _target_phases(model, batch)
            for phase in PRIMARY_COLUMNS:
                for predicted, target in zip(probabilities[phase].cpu().numpy(), targets[phase].cpu().numpy()):
                    found, properties = find_peaks(predicted, height=lowest, distance=int(rate / 2))
                    peaks[phase].append((find_peaks(target, height=0.5, distance=int(rate))[0], found,
                                         properties["peak_heights"]))
    return peaks


def _scores_at(peaks: dict, phase: str, threshold: float, tolerances_s, rate: float) -> dict:
    """:func:`pick_scores`'s scores of one phase at ``threshold``, from :func:`_phase_peaks`."""
    groups = [(true_peaks / rate, found[heights >= threshold] / rate) for true_peaks, found, heights in peaks[phase]]
    return scores_by_tolerance(groups, tolerances_s, phase)


def train(dataset_dirs: list, out_dir, settings: dict | None = None, num_threads: int | None = None,
          replay_dirs: list | None = None, replay_fraction: float | None = None) -> dict:
    """Train (or fine-tune) a picker; write weights, history, curve and scores into ``out_dir``.

    Files: ``model.json`` + ``model.pt`` (``WaveformModel.save``; load with the picker setting
    ``weights: <out_dir>/model``), ``history.csv``, ``training_curve.png``, ``metrics.json``.

    ``replay_dirs`` are further datasets (e.g. the ones the model was trained on) whose splits join
    those of ``dataset_dirs``; with ``replay_fraction``, training batches draw that share of their
    traces from the replay's train split and the rest from the others' (with replacement), so a
    small new dataset is neither drowned by the replay nor overfit alone, and the dev loss that
    stops training is the same mix of the two dev losses.
    """
    import seisbench.generate as sbg
    import torch

    settings = training_settings(settings)
    if num_threads:
        torch.set_num_threads(int(num_threads))
    _seed_everything(settings["seed"])
    sources = [load_datasets(dataset_dirs)] + ([load_datasets(replay_dirs)] if replay_dirs else [])
    model = build_model(settings)
    device = _training_device(settings["device"])
    model.to(device=device, dtype=torch.float32)
    logger.info("training on %s", device)

    generators, train_sizes, dev_sources = {}, [], None
    for split in SPLITS:
        parts = [getattr(source, split)() for source in sources]
        if split == "train":
            train_sizes = [len(part) for part in parts]
        if split == "dev" and replay_fraction is not None and len(parts) == 2 and all(len(p) for p in parts):
            # the dev loss that stops training weighs the two sources as the batches do
            dev_sources = []
            for part, weight in zip(parts, (1.0 - replay_fraction, replay_fraction)):
                generator = sbg.GenericGenerator(part)
                generator.add_augmentations(_augmentations(model, settings, train=False))
                dev_sources.append((_loader(generator, settings["batch_size"], False, settings["seed"]), weight))
        parts = [part for part in parts if len(part)]
        subset = parts[0] if len(parts) == 1 else sum(parts[1:], parts[0]) if parts else []
        if len(subset) == 0 and split == "test":
            # scarce data (an hour of a network in snakemake adapt): the dev split still stops training
            logger.warning("the test split is empty: no test scores")
            continue
        if len(subset) == 0:
            raise TrainingError(f"the {split} split is empty: add data or change training.split")
        generators[split] = sbg.GenericGenerator(subset)
        generators[split].add_augmentations(_augmentations(model, settings, train=split == "train"))
    batch_size = settings["batch_size"]
    loaders = {split: _loader(gen, batch_size, split == "train", settings["seed"], pin_memory=device.type == "cuda",
                              weights=_replay_weights(train_sizes, replay_fraction) if split == "train" else None)
               for split, gen in generators.items()}
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"])
    max_batches = settings["max_train_batches_per_epoch"]

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    history = []
    best = {"dev_loss": float("inf"), "epoch": -1, "state": None}
    def dev_loss_now() -> float:
        if dev_sources is None:
            return _mean_loss(model, loaders["dev"], settings["seed"])
        return sum(weight * _mean_loss(model, loader, settings["seed"]) for loader, weight in dev_sources)

    initial_dev = dev_loss_now()
    if settings["init_weights"]:
        # a fine-tune that no epoch improves on the dev split keeps the weights it started from
        best = {"dev_loss": initial_dev, "epoch": 0,
                "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
    history.append({"epoch": 0, "train_loss": np.nan, "dev_loss": initial_dev, "seconds": 0.0})
    logger.info("epoch 0: dev loss %.5f (%d train / %d dev / %d test traces)", initial_dev,
                len(generators["train"]), len(generators["dev"]), len(generators.get("test", ())))
    for epoch in range(1, settings["epochs"] + 1):
        started = time.perf_counter()
        np.random.seed(settings["seed"] + epoch)
        model.train()
        total, n = 0.0, 0
        for i, batch in enumerate(_on_device(loaders["train"], device)):
            if max_batches is not None and i >= max_batches:
                break
            loss = _loss(model, model(batch["X"]), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch["X"])
            n += len(batch["X"])
        dev_loss = dev_loss_now()
        history.append({"epoch": epoch, "train_loss": total / max(n, 1), "dev_loss": dev_loss,
                        "seconds": time.perf_counter() - started})
        logger.info("epoch %d: train loss %.5f, dev loss %.5f (%.0f s)", epoch, total / max(n, 1), dev_loss,
                    history[-1]["seconds"])
        if dev_loss < best["dev_loss"]:
            best = {"dev_loss": dev_loss, "epoch": epoch,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        elif epoch - best["epoch"] >= settings["patience"]:
            logger.info("early stop: no dev improvement for %d epochs", settings["patience"])
            break
    if best["state"] is not None:
        model.load_state_dict(best["state"])

    pd.DataFrame(history).to_csv(out_dir / "history.csv", index=False)
    plot_history(history, out_dir / "training_curve.png")
    scores = {split: pick_scores(model, loaders[split], settings["threshold"], seed=settings["seed"])
              if split in loaders else None for split in ("dev", "test")}
    thresholds = dev_thresholds(model, loaders["dev"], seed=settings["seed"])
    model.default_args.update({f"{phase}_threshold": chosen["threshold"] for phase, chosen in thresholds.items()})
    docstring = (f"quakesnake-trained {type(model).__name__}; datasets: {len(dataset_dirs)}; "
                 f"best epoch {best['epoch']} (dev loss {best['dev_loss']:.5f}); settings: "
                 f"{json.dumps(settings, default=str)}")
    model.to("cpu").save(out_dir / "model", weights_docstring=docstring)
    metrics = {"model": type(model).__name__, "best_epoch": best["epoch"], "best_dev_loss": best["dev_loss"],
               "initial_dev_loss": initial_dev, "epochs_run": len(history) - 1,
               "traces": {split: len(generators[split]) if split in generators else 0 for split in SPLITS}, "scores": scores,
               "threshold": settings["threshold"], "dev_thresholds": thresholds}
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=1, default=float) + "\n")
    return metrics


def plot_history(history: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = pd.DataFrame(history)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(frame["epoch"], frame["train_loss"], "o-", label="train")
    ax.plot(frame["epoch"], frame["dev_loss"], "s-", label="dev")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("training curve")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
