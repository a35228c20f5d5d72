"""Real noise for training datasets: noise windows cut from real continuous recordings.

A model trained on synthetic data only has never seen real noise (microseism bursts, cultural
noise, instrument glitches), and picks it (issue 15). :func:`load_recordings` reads the files of
``training.real_noise.files`` (miniSEED files or globs, an SDS archive's day files included),
preprocesses every station exactly as the pick stage does (:func:`quakesnake.preprocess.preprocess_stream`
with the run's ``preprocess`` options: one instrument, the model's sampling rate, gaps zero-filled
after detrending, missing components absent) and runs a conservative screening picker on it
(``screen_picker``: by default STA/LTA with triggers well below the baseline's). Since these
recordings have no catalog, "noise" means "no screening pick within ``clearance_s``", and no
stretch of constant samples (gap fills: a held last value, or zeros) inside. The training dataset
builder takes two kinds of traces from them:

- pure real-noise traces (no labels), from :meth:`Recording.random_start`;
- synthetic arrivals in real noise: :func:`bury_in_real_noise`.
"""
from __future__ import annotations

import glob
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import obspy

from quakesnake.errors import QuakesnakeError
from quakesnake.preprocess import PreprocessError, dead_runs, preprocess_stream
# An arrival's SNR measured on the trace, as every pick's SNR is.
from quakesnake.analyst import band_limited, onset_windows, peak_and_noise, snr_of
from quakesnake.waveforms import WaveformError, read_miniseed

logger = logging.getLogger(__name__)

START_STEP_S = 0.1  # noise windows start on this grid


class RealNoiseError(QuakesnakeError, ValueError):
    """``training.real_noise`` names files that give no usable real noise."""


def expand_files(patterns: list[str]) -> list[str]:
    """The files of ``training.real_noise.files``: each entry a path or a glob, sorted, no repeats.

    A pattern matching nothing raises: a typo would silently train without real noise.
    """
    files: list[str] = []
    for pattern in patterns:
        matched = sorted(glob.glob(str(pattern))) if glob.has_magic(str(pattern)) else [str(pattern)]
        if not matched:
            raise RealNoiseError(f"training.real_noise.files: {pattern!r} matches no file")
        files += [path for path in matched if path not in files]
    return files


@dataclass
class Recording:
    """One station's preprocessed real recording, and where noise windows may start in it."""

    station_id: str  # NET.STA
    files: list[str]
    stream: obspy.Stream
    start: obspy.UTCDateTime
    rate: float
    allowed_starts: np.ndarray  # sample offsets (from ``start``) where a noise window may begin

    def random_start(self, rng: np.random.Generator) -> obspy.UTCDateTime:
        """The start of a random noise window."""
        return self.start + int(rng.choice(self.allowed_starts)) / self.rate


def _constant_spans(stream: obspy.Stream) -> list[tuple[obspy.UTCDateTime, obspy.UTCDateTime]]:
    """Stretches where a channel holds one value long enough to be no data
    (:func:`quakesnake.preprocess.dead_runs`): gap fills (a held last sample, as some downloaders
    write them; zeros) and dead channels. Any channel,
    not all of them: a window with one frozen component is not the noise of a working station."""
    spans = []
    for trace in stream:
        data = np.asarray(trace.data)
        if np.ma.isMaskedArray(data):
            data = data.filled(0)
        rate = trace.stats.sampling_rate
        spans += [(trace.stats.starttime + s / rate, trace.stats.starttime + e / rate)
                  for s, e in zip(*dead_runs(data, rate))]
    return spans


def _allowed_starts(n_samples: int, rate: float, npts: int, picks_s: np.ndarray,
                    blocked: list[tuple[float, float]], clearance_s: float) -> np.ndarray:
    """Sample offsets where a window of ``npts`` fits in the data, holds no blocked span, and has
    no screening pick within ``clearance_s`` before, inside or after it (times in s from ``start``)."""
    offsets = np.arange(0, max(n_samples - npts + 1, 0), START_STEP_S * rate).astype(int)
    window_start, window_end = offsets / rate, (offsets + npts) / rate
    ok = np.ones(offsets.size, dtype=bool)
    picks_s = np.sort(picks_s)
    # a window is clear when no pick falls in [start - clearance, end + clearance]
    first = np.searchsorted(picks_s, window_start - clearance_s, side="left")
    last = np.searchsorted(picks_s, window_end + clearance_s, side="right")
    ok &= last == first
    for span_start, span_end in blocked:
        ok &= (window_end <= span_start) | (window_start >= span_end)
    return offsets[ok]


def load_recordings(files: list[str], preprocess: dict, screen_picker: dict, clearance_s: float,
                    trace_s: float) -> list[Recording]:
    """Every station of ``files`` as a :class:`Recording` with at least one possible noise window.

    Unreadable files and stations that preprocessing rejects are skipped with a warning; raises
    :class:`RealNoiseError` when no station of the files gives a single noise window.
    """
    from quakesnake.picking import PickerConfigError, pick_stream, picker_settings

    try:
        screen_picker = picker_settings(screen_picker)
    except PickerConfigError as exc:
        raise RealNoiseError(f"training.real_noise.screen_picker: {exc}") from exc
    raw = obspy.Stream()
    files_of: dict[str, list[str]] = {}
    for path in files:
        try:
            stream = read_miniseed(path)
        except WaveformError as exc:
            logger.warning("training.real_noise.files: %s skipped: %s", path, exc.reason)
            continue
        for trace in stream:
            station_id = f"{trace.stats.network}.{trace.stats.station}"
            if path not in files_of.setdefault(station_id, []):
                files_of[station_id].append(path)
        raw += stream

    recordings, reasons = [], []
    for station_id in sorted(files_of):
        network, station = station_id.split(".")
        station_raw = raw.select(network=network, station=station)
        try:
            processed = preprocess_stream(station_raw, station_id=station_id, **preprocess)
        except PreprocessError as exc:
            logger.warning("real noise %s skipped: %s", station_id, exc)
            reasons.append(f"{station_id}: {exc}")
            continue
        rate = processed[0].stats.sampling_rate
        start = min(tr.stats.starttime for tr in processed)
        n_samples = int(round((max(tr.stats.endtime for tr in processed) - start) * rate)) + 1
        picks = pick_stream(processed, screen_picker)
        picks_s = (picks["time"].astype("int64").to_numpy() - start.ns) / 1e9
        # Held values are found in the raw counts (detrending turns them into ramps), zero fills
        # in the preprocessed data; both as seconds from ``start``.
        blocked = [(a - start, b - start) for a, b in _constant_spans(station_raw) + _constant_spans(processed)]
        npts = int(round(trace_s * rate))
        allowed = _allowed_starts(n_samples, rate, npts, picks_s, blocked, clearance_s)
        possible = max(int((n_samples - npts) / (START_STEP_S * rate)) + 1, 1)
        logger.info("real noise %s: %d screening pick(s), %d constant stretch(es), %.0f%% of window starts usable",
                    station_id, len(picks), len(blocked), 100 * allowed.size / possible)
        if not allowed.size:
            reasons.append(f"{station_id}: no {trace_s:g} s window clear of screening picks and gap fills")
            continue
        recordings.append(Recording(station_id, files_of[station_id], processed, start, rate, allowed))
    if not recordings:
        raise RealNoiseError(f"training.real_noise.files ({len(files)} file(s)) give no noise window: "
                             + ("; ".join(reasons) or "no readable data"))
    return recordings


def _arrival_views(band: np.ndarray, arrivals: dict[str, list[int]], rate: float):
    """Per labelled arrival: (rows it is seen on, peak after the onset per row, noise RMS before it
    per row); None when an arrival has no noise window before it."""
    views = []
    for phase, samples in arrivals.items():
        rows = [0] if phase == "P" else [1, 2]  # P on the vertical, S on the horizontals
        for onset in samples:
            measured = peak_and_noise(band[rows], onset, rate)
            if measured is None:
                return None
            views.append((rows, *measured))
    return views


def arrival_snr(data: np.ndarray, arrivals: dict[str, list[int]], rate: float) -> float | None:
    """The smallest SNR (:mod:`quakesnake.analyst`) of the labelled arrivals of a (Z, N, E) trace,
    or None when it cannot be measured (an arrival too close to the trace's edge, or dead channels).
    """
    return _smallest_snr(_arrival_views(band_limited(data, rate), arrivals, rate))


def _smallest_snr(views) -> float | None:
    """:func:`arrival_snr` from the arrival views of a trace already band-passed."""
    if not views:
        return None
    ratios = [snr_of(peak, noise) for _, peak, noise in views]
    return None if any(np.isnan(ratios)) else min(ratios)


def bury_in_real_noise(data: np.ndarray, arrivals: dict[str, list[int]], noise: np.ndarray, rate: float,
                       min_snr: float, rng: np.random.Generator) -> tuple[np.ndarray, float] | None:
    """A synthetic event trace with real noise added over its own noise, labels unchanged:
    (mixed data, the added noise's 1-20 Hz RMS in units of the synthetic noise's), or None when
    the trace is too weak to stay visible under real noise at least as large as its own.

    Why scale-and-add and not the generator's noise-free signal: the synthetic source (another
    module, being reorganised) does not hand out its signal apart from its noise, and the trace
    already went through the pick stage's preprocessing, so both parts are in the same units and
    processing here. The synthetic noise stays in; the real noise is scaled per channel to ``k``
    times the synthetic noise RMS before the first arrival, with ``k`` the largest that keeps
    every labelled arrival at a target SNR drawn log-uniformly in [``min_snr``, its weakest
    arrival's SNR / sqrt(2)]: onsets buried past what an analyst could pick would teach the
    network to pick in noise, the very fault to cure.
    """
    band = band_limited(data, rate)
    views = _arrival_views(band, arrivals, rate)
    snr = _smallest_snr(views)
    if snr is None or snr < min_snr * np.sqrt(2.0):
        return None
    first = min(onset for samples in arrivals.values() for onset in samples)
    noise_start, noise_end, _ = onset_windows(first, rate)
    reference = np.sqrt(np.mean(band[:, noise_start:noise_end] ** 2, axis=1))
    noise = noise - noise.mean(axis=1, keepdims=True)
    noise_band = band_limited(noise, rate)
    noise_rms = np.sqrt(np.mean(noise_band ** 2, axis=1))
    # real noise with the synthetic noise's RMS on every channel (0 where either is missing)
    unit = np.divide(reference, noise_rms, out=np.zeros_like(noise_rms), where=(noise_rms > 0) & (reference > 0))
    target = float(np.exp(rng.uniform(np.log(min_snr), np.log(snr / np.sqrt(2.0)))))
    # k per arrival from peak / sqrt(noise^2 + (k * reference)^2) = target on its best row
    k = np.inf
    for rows, peak, arrival_noise in views:
        ref = reference[rows] * (unit[rows] > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            k_rows = np.sqrt(np.maximum((peak / target) ** 2 - arrival_noise ** 2, 0.0)) / ref
        k = min(k, float(np.nanmax(np.where(ref > 0, k_rows, np.nan))) if np.any(ref > 0) else np.inf)
    if not np.isfinite(k) or k < 1.0:
        return None
    mixed = data + (k * unit)[:, None] * noise
    # A channel without synthetic data (dropped, zero) stays zero: missing components are zeros.
    mixed[~np.any(data, axis=1)] = 0.0
    return mixed.astype(np.float32), k


def noise_file_label(recording: Recording) -> str:
    """The files of a recording as one metadata value (several for an SDS archive's channels)."""
    return ";".join(str(Path(path)) for path in recording.files)
