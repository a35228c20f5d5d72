"""What an analyst sees of an onset: the band a record is judged in, and an onset's signal-to-noise
ratio in it. One convention for three uses: the synthetic truth (which arrivals an analyst could
pick, i.e. the labels), real noise buried under synthetic arrivals in training
(:mod:`quakesnake.real_noise`), and the SNR of every pick (the picks table's ``snr``, and a picker's
``p_min_snr`` / ``s_min_snr``).

SNR: the peak within :data:`SNR_WINDOW_S` after the onset over the RMS of the :data:`NOISE_WINDOW_S`
ending :data:`ONSET_GUARD_S` before it, both in the causal analyst band (no energy of an onset leaks
before it); P on the vertical, S on the better horizontal (for S the P coda counts as noise).
"""
from __future__ import annotations

import numpy as np
import obspy
import pandas as pd
from obspy.signal.filter import bandpass

ANALYST_BAND_HZ = (1.0, 20.0)
SNR_WINDOW_S = 2.0  # signal: the peak within this long after the onset
NOISE_WINDOW_S = 5.0  # noise: the RMS over this long before the onset ...
ONSET_GUARD_S = 0.5  # ... ending this long before it (an onset's time is uncertain by about this)
# A pick's SNR is measured on a stretch cut around it; the causal filter settles in this much
# data before the noise window (the 1 Hz corner's transient lasts about a second).
FILTER_WARM_UP_S = 5.0


def band_limited(data: np.ndarray, rate: float) -> np.ndarray:
    """Rows of ``data`` (... × samples) in the causal analyst band (upper corner capped below Nyquist)."""
    return bandpass(np.asarray(data, dtype=np.float64), ANALYST_BAND_HZ[0], min(ANALYST_BAND_HZ[1], 0.45 * rate), rate,
                    corners=4, zerophase=False, axis=-1)


def onset_windows(onset: int, rate: float) -> tuple[int, int, int]:
    """Sample indices (noise start, noise end, signal end) of an onset at sample ``onset``."""
    signal_len, noise_len, guard = (int(round(x * rate)) for x in (SNR_WINDOW_S, NOISE_WINDOW_S, ONSET_GUARD_S))
    return onset - guard - noise_len, onset - guard, onset + signal_len


def peak_and_noise(band: np.ndarray, onset: int, rate: float,
                   recorded: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray] | None:
    """Per row of a band-limited (rows × samples) array: the peak after an onset and the noise RMS
    before it; None when the windows do not fit in the array. Samples not ``recorded`` (the raw
    data's exact zeros: zero-filled gaps, a missing component; by default the band's own zeros)
    are not noise: the RMS is over the other samples, 0 when there are none."""
    noise_start, noise_end, signal_end = onset_windows(onset, rate)
    if noise_start < 0 or signal_end > band.shape[1]:
        return None
    peak = np.abs(band[:, onset:signal_end]).max(axis=1)
    noise_part = band[:, noise_start:noise_end]
    recorded = (noise_part != 0) if recorded is None else recorded[:, noise_start:noise_end]
    with np.errstate(invalid="ignore"):
        noise = np.sqrt(np.where(recorded, noise_part ** 2, 0.0).sum(axis=1) / recorded.sum(axis=1))
    return peak, np.nan_to_num(noise, nan=0.0)


def snr_of(peak: np.ndarray, noise: np.ndarray) -> float:
    """The best SNR over the rows an onset is seen on; NaN when no row has noise to measure against."""
    usable = noise > 0
    return float((peak[usable] / noise[usable]).max()) if usable.any() else float("nan")


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
    instrument = list(zip(picks["network"], picks["station"], picks["location"]))
    phases = picks["phase"].to_numpy()
    for key, traces in by_instrument.items():
        mine = np.array([i for i, other in enumerate(instrument) if other == key], dtype=int)
        for phase in ("P", "S"):
            rows = mine[phases[mine] == phase]
            if rows.size:
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
    data = trace.data
    # the common case: a stretch with its full warm-up; one filter call for all of them
    lead = warm_up - noise_start
    if whole.any():
        stretches = data[(onsets[whole] - lead)[:, None] + np.arange(lead + signal_end)[None, :]]
        snr[whole] = _stretch_snr(stretches, lead, rate)
    # near the data's start: a shorter warm-up
    for i in np.flatnonzero(fits & ~whole):
        stretch = data[None, :onsets[i] + signal_end]
        snr[i] = _stretch_snr(stretch, int(onsets[i]), rate)[0]
    return snr


def _stretch_snr(stretches: np.ndarray, onset: int, rate: float) -> np.ndarray:
    """SNR of an onset at sample ``onset`` of each row. No demeaning: the stream is detrended
    already, and its zero-filled gaps must stay zeros (they are not noise)."""
    stretches = np.asarray(stretches, dtype=np.float64)
    peak, noise = peak_and_noise(band_limited(stretches, rate), onset, rate, recorded=stretches != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(noise > 0, peak / noise, np.nan)
