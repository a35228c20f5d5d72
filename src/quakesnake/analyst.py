"""What an analyst sees of an onset: the band a record is judged in, and an onset's signal-to-noise
ratio in it, measured on recorded data. Used for real noise buried under synthetic arrivals in
training (:mod:`quakesnake.real_noise`) and for the SNR of every pick (the picks table's ``snr``,
and a picker's ``p_min_snr`` / ``s_min_snr``).

SNR: the peak within :data:`SNR_WINDOW_S` after the onset over the RMS of the :data:`NOISE_WINDOW_S`
ending :data:`ONSET_GUARD_S` before it, both in the causal analyst band (no energy of an onset leaks
before it); P on the vertical, S on the better horizontal (for S the P coda counts as noise).

The synthetic truth (sources/synthetic/arrivals.py) judges visibility in the same band and signal
window, but on the generator's own parts: a noise-free peak (zero-phase, two-pole band edges) over
the noise model's RMS. Measured on a record, the peak carries the noise too, so pure noise scores
about 2.5-4 here; the truth's thresholds (``truth_min_snr``) are therefore a lower bound of what
this SNR gives for an arrival the truth counts as visible.
"""
from __future__ import annotations

import numpy as np
import obspy
import pandas as pd
from obspy.signal.filter import bandpass

from quakesnake.preprocess import DEAD_RUN_S, dead_runs

ANALYST_BAND_HZ = (1.0, 20.0)
ANALYST_CORNERS = 4  # Butterworth corners of each band edge
SNR_WINDOW_S = 2.0  # signal: the peak within this long after the onset
NOISE_WINDOW_S = 5.0  # noise: the RMS over this long before the onset ...
ONSET_GUARD_S = 0.5  # ... ending this long before it (an onset's time is uncertain by about this)
MIN_NOISE_S = 1.0  # a noise RMS needs at least this much recorded data in its window
# A pick's SNR is measured on a stretch cut around it; the causal filter settles in this much
# data before the noise window (the 1 Hz corner's transient lasts about a second).
FILTER_WARM_UP_S = 5.0
PICKS_PER_CALL = 1000  # stretches band-passed at once (~10 MB each array at 100 Hz)
# Everything a pick's SNR depends on: part of the pick stage's cache key, so a change here
# measures the cached station-days again.
CONVENTION = {"band_hz": ANALYST_BAND_HZ, "corners": ANALYST_CORNERS, "signal_s": SNR_WINDOW_S, "noise_s": NOISE_WINDOW_S,
              "guard_s": ONSET_GUARD_S, "min_noise_s": MIN_NOISE_S, "warm_up_s": FILTER_WARM_UP_S,
              "dead_run_s": DEAD_RUN_S}


def band_limited(data: np.ndarray, rate: float) -> np.ndarray:
    """Rows of ``data`` (... × samples) in the causal analyst band (upper corner capped below Nyquist)."""
    return bandpass(np.asarray(data, dtype=np.float64), ANALYST_BAND_HZ[0], min(ANALYST_BAND_HZ[1], 0.45 * rate), rate,
                    corners=ANALYST_CORNERS, zerophase=False, axis=-1)


def onset_windows(onset: int, rate: float) -> tuple[int, int, int]:
    """Sample indices (noise start, noise end, signal end) of an onset at sample ``onset``."""
    signal_len, noise_len, guard = (int(round(x * rate)) for x in (SNR_WINDOW_S, NOISE_WINDOW_S, ONSET_GUARD_S))
    return onset - guard - noise_len, onset - guard, onset + signal_len


def peak_and_noise(band: np.ndarray, onset: int, rate: float,
                   recorded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Per row of a band-limited (rows × samples) array: the peak after an onset and the noise RMS
    before it; None when the windows do not fit in the array. Samples not ``recorded`` (see
    :func:`recorded_samples`; by default all are) are not noise: the RMS is over the others, 0 when
    fewer than :data:`MIN_NOISE_S` of them remain."""
    noise_start, noise_end, signal_end = onset_windows(onset, rate)
    if noise_start < 0 or signal_end > band.shape[1]:
        return None
    peak = np.abs(band[:, onset:signal_end]).max(axis=1)
    noise_part = band[:, noise_start:noise_end]
    if recorded is None:
        return peak, np.sqrt(np.mean(noise_part ** 2, axis=1))
    recorded = recorded[:, noise_start:noise_end]
    count = recorded.sum(axis=1)
    enough = count >= MIN_NOISE_S * rate
    power = np.where(recorded, noise_part ** 2, 0.0).sum(axis=1) / np.maximum(count, 1)
    return peak, np.where(enough, np.sqrt(power), 0.0)


def row_snr(peak: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Peak over noise per row; NaN where a row has no noise to measure against."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(noise > 0, peak / noise, np.nan)


def snr_of(peak: np.ndarray, noise: np.ndarray) -> float:
    """The best SNR over the rows an onset is seen on; NaN when no row has noise to measure against."""
    ratios = row_snr(peak, noise)
    return float(np.nanmax(ratios)) if np.isfinite(ratios).any() else float("nan")


def recorded_samples(data: np.ndarray, rate: float) -> np.ndarray:
    """Which samples of rows of raw data are data: not inside a dead run
    (:func:`quakesnake.preprocess.dead_runs`: a gap's zeros, a flat-lined channel), which would pass
    for quiet noise."""
    rows = np.asarray(data).reshape(-1, np.shape(data)[-1])
    recorded = np.ones(rows.shape, dtype=bool)
    for row, values in enumerate(rows):
        for first, last in zip(*dead_runs(values, rate)):
            recorded[row, first:last + 1] = False
    return recorded.reshape(np.shape(data))


def pick_snr(stream: obspy.Stream, picks: pd.DataFrame) -> np.ndarray:
    """The SNR of every pick (a picks table) on the stream it was picked on; NaN where it cannot be
    measured (no data around the pick, the pick too close to the data's edge, a dead stretch).

    Each pick's stretch (filter warm-up, noise window, signal window) is cut out and band-passed on
    its own, all of a trace's stretches in one call: a day of data is never copied whole, and a
    pick costs the same whatever the day's length.
    """
    snr = np.full(len(picks), np.nan)
    if not len(picks):
        return snr
    by_instrument: dict[tuple, list[obspy.Trace]] = {}
    for trace in stream:
        by_instrument.setdefault((trace.stats.network, trace.stats.station, trace.stats.location), []).append(trace)
    times_ns = picks["time"].to_numpy("datetime64[ns]").astype(np.int64)
    groups = picks.groupby(["network", "station", "location", "phase"], sort=False).indices
    for (network, station, location, phase), rows in groups.items():
        traces = by_instrument.get((network, station, location))
        if traces:
            per_trace = np.stack([_trace_snr(trace, times_ns[rows]) for trace in _seen_on(traces, phase)])
            measured = ~np.isnan(per_trace).all(axis=0)
            snr[rows[measured]] = np.nanmax(per_trace[:, measured], axis=0)
    return snr


def _seen_on(traces: list[obspy.Trace], phase: str) -> list[obspy.Trace]:
    """The traces a phase is seen on: P on the vertical, S on the horizontals; the vertical (or
    whatever there is) when the instrument lacks those."""
    vertical = [trace for trace in traces if trace.stats.channel[-1:] == "Z"]
    horizontal = [trace for trace in traces if trace.stats.channel[-1:] != "Z"]
    wanted = vertical if phase == "P" else horizontal
    return wanted or traces


def _trace_snr(trace: obspy.Trace, times_ns: np.ndarray) -> np.ndarray:
    """The SNR on one trace of onsets at ``times_ns``; NaN where the trace cannot measure one."""
    rate = float(trace.stats.sampling_rate)
    onsets = np.round((times_ns - trace.stats.starttime.ns) * 1e-9 * rate).astype(np.int64)
    noise_start, _, signal_end = onset_windows(0, rate)
    warm_up = int(round(FILTER_WARM_UP_S * rate))
    snr = np.full(len(onsets), np.nan)
    fits = (onsets + noise_start >= 0) & (onsets + signal_end <= trace.stats.npts)
    whole = fits & (onsets + noise_start - warm_up >= 0)
    data = np.ma.filled(trace.data, 0)  # a masked (unmerged) trace: its masked samples are a gap
    # the common case: a stretch with its full warm-up; one filter call per chunk of them
    lead = warm_up - noise_start
    for chunk in np.array_split(np.flatnonzero(whole), max(1, int(np.ceil(whole.sum() / PICKS_PER_CALL)))):
        if chunk.size:
            stretches = data[(onsets[chunk] - lead)[:, None] + np.arange(lead + signal_end)[None, :]]
            snr[chunk] = _stretch_snr(stretches, lead, rate)
    # near the data's start: a shorter warm-up
    for i in np.flatnonzero(fits & ~whole):
        snr[i] = _stretch_snr(data[None, :onsets[i] + signal_end], int(onsets[i]), rate)[0]
    return snr


def _stretch_snr(stretches: np.ndarray, onset: int, rate: float) -> np.ndarray:
    """SNR of an onset at sample ``onset`` of each row. No demeaning: the stream is detrended
    already, and its gaps must stay recognisable (:func:`recorded_samples`)."""
    stretches = np.asarray(stretches, dtype=np.float64)
    peak, noise = peak_and_noise(band_limited(stretches, rate), onset, rate,
                                 recorded=recorded_samples(stretches, rate))
    return row_snr(peak, noise)
