"""Score a picker on labelled waveform records: short records, each with one true P and S pick.

The records are the PhaseNet training layout (see ``../shared/README.md``): one ``.npz`` per
record with ``data`` (samples x 3, 100 Hz), and a ``labels.csv`` naming each file with the sample
index of its P (``itp``) and S (``its``) and its channel codes (``channels``, e.g.
``EHE_EHN_EHZ``; a one-channel record names one code and zero-fills or repeats the other columns).

Each record is picked alone with :func:`quakesnake.picking.pick_stream` and scored with
:mod:`quakesnake.scoring`: per record and phase a pick matches the label within a tolerance
(one to one, the closest), and precision divides the matches by all picks of that phase (so
extra picks on a record cost precision, not recall).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import obspy
import pandas as pd

from quakesnake.evaluation import json_safe
from quakesnake.picking import picker_model, picker_settings, pick_stream
from quakesnake.scoring import scores_by_tolerance, tolerance_key

SAMPLING_RATE_HZ = 100.0
# The records carry no absolute time; any fixed start works, since picks are compared with labels
# on the same clock.
RECORD_START = obspy.UTCDateTime("2000-01-01T00:00:00")
# PhaseNet's npz files store the columns in E, N, Z order: a one-channel record's code names
# which of these columns holds its data.
COLUMN_COMPONENTS = "ENZ"
PHASES = ("P", "S")
LABEL_COLUMNS = ("fname", "itp", "its", "channels")


@dataclass
class Record:
    """One labelled record: its waveforms and the true P and S times (None when unlabelled)."""

    name: str
    stream: obspy.Stream
    p_time: obspy.UTCDateTime | None
    s_time: obspy.UTCDateTime | None

    def true_time(self, phase: str) -> obspy.UTCDateTime | None:
        return self.p_time if phase == "P" else self.s_time


# --------------------------------------------------------------------------------------------
# Reading


def read_labelled_records(npz_dir, labels_csv) -> list[Record]:
    """The records listed in ``labels_csv`` as ObsPy streams; a bad file raises ValueError naming it."""
    npz_dir, labels_csv = Path(npz_dir), Path(labels_csv)
    try:
        labels = pd.read_csv(labels_csv, dtype={"fname": str, "channels": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ValueError(f"{labels_csv}: cannot read labels ({type(exc).__name__}: {exc})") from exc
    missing = [column for column in LABEL_COLUMNS if column not in labels.columns]
    if missing:
        raise ValueError(f"{labels_csv}: missing column(s) {', '.join(missing)} (needs {', '.join(LABEL_COLUMNS)})")
    return [_read_record(npz_dir / row.fname, row.itp, row.its, row.channels) for row in labels.itertuples(index=False)]


def _read_record(path: Path, itp, its, channels: str) -> Record:
    try:
        with np.load(path) as npz:
            data = np.asarray(npz["data"], dtype=np.float64)
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read a labelled record ({type(exc).__name__}: {exc})") from exc
    if data.ndim != 2 or data.shape[1] != len(COLUMN_COMPONENTS):
        raise ValueError(f"{path}: 'data' must be samples x {len(COLUMN_COMPONENTS)}, got shape {data.shape}")
    codes = str(channels).split("_") if isinstance(channels, str) and channels else []
    if not codes or any(len(code) != 3 for code in codes) or len(codes) > data.shape[1]:
        raise ValueError(f"{path}: channels {channels!r} must be 1 to 3 three-letter codes joined by '_'")

    network, station = (path.stem.split("_") + ["", ""])[:2]
    column_codes = _column_codes(codes)
    stream = obspy.Stream()
    for column in _distinct_columns(data, column_codes, codes):
        header = {
            "network": network, "station": station, "location": "", "channel": column_codes[column],
            "sampling_rate": SAMPLING_RATE_HZ, "starttime": RECORD_START,
        }
        stream.append(obspy.Trace(np.ascontiguousarray(data[:, column]), header=header))
    return Record(path.name, stream, _label_time(itp, path, "itp"), _label_time(its, path, "its"))


def _column_codes(codes: list[str]) -> list[str]:
    """Channel code of each data column: as listed, or the listed code's band/instrument with E, N, Z."""
    if len(codes) == len(COLUMN_COMPONENTS):
        return codes
    return [codes[0][:2] + component for component in COLUMN_COMPONENTS]


def _distinct_columns(data: np.ndarray, column_codes: list[str], listed_codes: list[str]) -> list[int]:
    """Columns holding real data: not all zeros and not an exact copy of a column already kept.

    Listed components are considered first, so a one-channel record repeated into all columns
    keeps the column of its own code, and a zero-filled one keeps its only live column.
    """
    kept: list[int] = []
    for column in sorted(range(data.shape[1]), key=lambda i: (column_codes[i] not in listed_codes, i)):
        if data[:, column].any() and not any(np.array_equal(data[:, column], data[:, k]) for k in kept):
            kept.append(column)
    return sorted(kept)


def _label_time(sample, path: Path, column: str) -> obspy.UTCDateTime | None:
    if pd.isna(sample):
        return None
    try:
        index = float(sample)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: label {column}={sample!r} is not a sample index") from exc
    return None if index < 0 else RECORD_START + index / SAMPLING_RATE_HZ  # PhaseNet marks "no pick" as -1


# --------------------------------------------------------------------------------------------
# Scoring


def evaluate_picker(records: list[Record], picker_cfg: dict, *, model=None, tolerances=(0.1, 0.5)) -> dict:
    """Recall, precision and residuals of a picker on labelled records, per phase and tolerance;
    JSON-safe: ``{"P": {"0.1s": scores, "0.5s": scores}, "S": ...}`` with the scores of
    :func:`quakesnake.scoring.pick_scores` (a pick matches its record's label one to one).

    ``picker_cfg`` is a picking configuration (``{"type": "stalta"}`` or a SeisBench one);
    a SeisBench model is loaded once here unless ``model`` is given.
    """
    tolerances = sorted(float(t) for t in tolerances)
    if not tolerances or tolerances[0] <= 0:
        raise ValueError(f"tolerances must be positive seconds, got {tolerances}")
    settings = picker_settings(picker_cfg)
    if settings["type"] != "stalta" and model is None:
        model = picker_model(settings)

    groups = {phase: [] for phase in PHASES}  # per record: (label time, pick times), s after the record's start
    for labels_s, picks_s, _, _ in _record_picks(records, settings, model):
        for phase in PHASES:
            groups[phase].append((labels_s[phase], picks_s[phase]))
    metrics = {phase: scores_by_tolerance(groups[phase], tolerances, phase) for phase in PHASES}
    return json_safe({"picker": settings, "n_records": len(records), "tolerances_s": tolerances, **metrics})


def _record_picks(records: list[Record], settings: dict, model):
    """Per record: ({phase: [label time]}, {phase: pick times}, {phase: pick SNRs}, {phase: pick
    probabilities}), times in s after the record's start."""
    for record in records:
        picks = pick_stream(record.stream, settings, model=model)
        start_ns = min(trace.stats.starttime.ns for trace in record.stream)
        pick_s = (picks["time"].to_numpy("datetime64[ns]").astype(np.int64) - start_ns) / 1e9
        labels, picked, snr, probability = {}, {}, {}, {}
        for phase in PHASES:
            truth = record.true_time(phase)
            labels[phase] = [] if truth is None else [(truth.ns - start_ns) / 1e9]
            of_phase = picks["phase"].to_numpy() == phase
            picked[phase], snr[phase] = pick_s[of_phase], picks["snr"].to_numpy(float)[of_phase]
            probability[phase] = picks["probability"].to_numpy(float)[of_phase]
        yield labels, picked, snr, probability


# where an unmatched pick lies, in the record's own P and S times
UNMATCHED_PLACES = ("before P", "at P", "between P and S", "at S", "after S", "no label")
# unmatched picks that form a P and S pair at the record's own S - P: an unlabelled second event
SECOND_EVENT = "of them a second event's P and S"


def unmatched_pick_places(records: list[Record], picker_cfg: dict, *, model=None, tolerance_s: float = 0.5,
                          near_s: float = 1.0) -> pd.DataFrame:
    """Where the picks that match no label lie (phase x place counts): more than ``near_s`` before
    the P label, within ``near_s`` of the P or of the S label, between them, after the S; a pick of
    one phase counts as matched only by its own phase's label within ``tolerance_s`` (a P pick at
    the S label is unmatched, "at S"). What kind of signal a picker takes for onsets; with the
    median SNR (:mod:`quakesnake.analyst`) and probability of the matched and of the unmatched picks.

    Column :data:`SECOND_EVENT`: the unmatched picks that pair with an unmatched pick of the other
    phase at the record's own S - P (within ``tolerance_s``, the S after the P). Each record labels
    one event; such a pair is most likely another event from the same source region (a foreshock,
    an aftershock, a repeater), which the record does not label: a precision that counts them as
    false is a lower bound."""
    settings = picker_settings(picker_cfg)
    if settings["type"] != "stalta" and model is None:
        model = picker_model(settings)
    counts = {phase: dict.fromkeys((*UNMATCHED_PLACES, SECOND_EVENT), 0) for phase in PHASES}
    snrs = {(phase, matched): [] for phase in PHASES for matched in (True, False)}
    probabilities = {(phase, matched): [] for phase in PHASES for matched in (True, False)}
    for labels, picked, snr, probability in _record_picks(records, settings, model):
        p = labels["P"][0] if labels["P"] else None
        s = labels["S"][0] if labels["S"] else None
        unmatched = {}
        for phase in PHASES:
            own = labels[phase][0] if labels[phase] else None
            unmatched[phase] = []
            for time, pick_snr, pick_probability in zip(picked[phase], snr[phase], probability[phase]):
                matched = own is not None and abs(time - own) <= tolerance_s
                snrs[phase, matched].append(pick_snr)
                probabilities[phase, matched].append(pick_probability)
                if matched:
                    continue
                unmatched[phase].append(time)
                if p is None or s is None:
                    place = "no label"
                elif abs(time - p) <= near_s:
                    place = "at P"
                elif abs(time - s) <= near_s:
                    place = "at S"
                elif time < p:
                    place = "before P"
                elif time < s:
                    place = "between P and S"
                else:
                    place = "after S"
                counts[phase][place] += 1
        if p is not None and s is not None:
            extra_p, extra_s = np.asarray(unmatched["P"]), np.asarray(unmatched["S"])
            gap = extra_s[None, :] - extra_p[:, None]
            paired = (gap > 0) & (np.abs(gap - (s - p)) <= tolerance_s)
            counts["P"][SECOND_EVENT] += int(paired.any(axis=1).sum())
            counts["S"][SECOND_EVENT] += int(paired.any(axis=0).sum())
    table = pd.DataFrame(counts).T.rename_axis("phase").reset_index()
    for values, name in ((snrs, "SNR"), (probabilities, "probability")):
        for matched, which in ((True, "matched"), (False, "unmatched")):
            table[f"median {name}, {which}"] = [
                float(np.nanmedian(values[phase, matched])) if np.isfinite(values[phase, matched]).any()
                else float("nan") for phase in table["phase"]]
    return table


def format_picker_metrics(metrics: dict) -> str:
    """A small fixed-width table: one row per phase; residuals of the matches within the largest tolerance."""
    tolerances = [tolerance_key(t) for t in metrics["tolerances_s"]]
    header = f"{'phase':6}{'labels':>8}{'picks':>7}"
    header += "".join(f"{f'recall@{t}':>13}{f'prec@{t}':>11}" for t in tolerances)
    header += f"{'median s':>10}{'MAD s':>8}{'RMS s':>8}"
    lines = [header]
    for phase in PHASES:
        by_tolerance = metrics[phase]
        widest = by_tolerance[tolerances[-1]]
        line = f"{phase:6}{widest['n_ref']:>8}{widest['n_pred']:>7}"
        line += "".join(f"{_cell(by_tolerance[t]['recall']):>13}{_cell(by_tolerance[t]['precision']):>11}" for t in tolerances)
        line += f"{_cell(widest['residual_median_s']):>10}{_cell(widest['residual_mad_s']):>8}{_cell(widest['residual_rms_s']):>8}"
        lines.append(line)
    return "\n".join(lines)


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}"
