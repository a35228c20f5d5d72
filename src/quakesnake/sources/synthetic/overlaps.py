"""The codas of other events at an arrival: what an analyst sees besides station noise.

In a dense sequence an aftershock's onset often falls into the coda of an earlier, larger event;
an analyst picks it only if it stands out of that coda as well as of the noise. The codas are the
ones the synthesizer draws (:func:`pulses.phase_velocity`): band-limited noise with the envelope
:func:`pulses.coda_envelope`, an RMS at onset of ``CODA_RATIO`` × the direct pulse's peak, split
over the components by ``CODA_PARTITION``, lasting the arrival's ``coda_s``.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
import scipy.signal

from quakesnake.sources.synthetic.noise import analyst_band
from quakesnake.sources.synthetic.pulses import CODA_PARTITION, CODA_RATIO, coda_band, coda_envelope, coda_filter
from quakesnake.sources.synthetic.settings import SAMPLING_RATE_HZ

# Components of CODA_PARTITION an arrival is measured on: P on Z, S on a horizontal (N and E
# carry the same share).
VERTICAL, HORIZONTAL = 0, 1


@lru_cache(maxsize=512)
def analyst_band_fraction(dominant_hz: float) -> float:
    """RMS of a coda drawn around ``dominant_hz`` after the analyst filter, per unit RMS before."""
    sos, _ = coda_filter(dominant_hz)
    freq = np.linspace(0.0, SAMPLING_RATE_HZ / 2, 4097)
    _, response = scipy.signal.sosfreqz(sos, worN=freq, fs=SAMPLING_RATE_HZ)
    power = np.abs(response) ** 2
    return float(np.sqrt(np.sum(power * analyst_band(freq) ** 2) / np.sum(power)))


def coda_rms_at_onset(row, direct_peak: float) -> tuple[float, float]:
    """Analyst-band coda RMS at onset (m/s) of one arrival on Z and on a horizontal.

    ``direct_peak``: the largest sample of the arrival's direct pulse over its three components,
    the peak :func:`pulses.phase_velocity` scales the coda by."""
    scale = CODA_RATIO[row.phase] * direct_peak * analyst_band_fraction(coda_band(row))
    shares = CODA_PARTITION[row.phase]
    return scale * shares[VERTICAL], scale * shares[HORIZONTAL]


def other_event_coda_rms(arrivals: pd.DataFrame, onset_rms_z: np.ndarray, onset_rms_h: np.ndarray) -> np.ndarray:
    """RMS (m/s, analyst band) at each arrival's onset of the codas of every other event's earlier
    arrivals at the same station: P measured on Z, S on a horizontal; codas add in power.

    ``onset_rms_z``/``onset_rms_h``: :func:`coda_rms_at_onset` per arrival (NaN: no signal);
    ``arrivals`` needs time, event_id, phase, travel_time_s, coda_s, network, station, location.
    """
    result = np.zeros(len(arrivals))
    if len(arrivals) == 0:
        return result
    time = arrivals["time"].to_numpy(dtype="datetime64[ns]")
    seconds = (time - time.min()).astype("timedelta64[ns]").astype(np.int64) / 1e9
    event = pd.factorize(arrivals["event_id"])[0]
    on_vertical = (arrivals["phase"] == "P").to_numpy()
    travel = arrivals["travel_time_s"].to_numpy(dtype=float)
    coda_s = np.nan_to_num(arrivals["coda_s"].to_numpy(dtype=float), nan=0.0)
    rms_z, rms_h = np.nan_to_num(onset_rms_z, nan=0.0), np.nan_to_num(onset_rms_h, nan=0.0)
    station_keys = [arrivals[column].fillna("") for column in ("network", "station", "location")]
    for index in arrivals.groupby(station_keys, sort=False).indices.values():
        order = index[np.argsort(seconds[index], kind="stable")]
        onsets = seconds[order]
        # Every earlier onset within the longest coda at this station: one (target, source) row each.
        first = np.searchsorted(onsets, onsets - coda_s[order].max(), side="left")
        last = np.searchsorted(onsets, onsets, side="left")
        counts = last - first
        if counts.sum() == 0:
            continue
        target = np.repeat(np.arange(len(order)), counts)
        source = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts) + np.repeat(first, counts)
        target_row, source_row = order[target], order[source]
        lag = onsets[target] - onsets[source]
        audible = (lag < coda_s[source_row]) & (event[source_row] != event[target_row])
        target_row, source_row, lag = target_row[audible], source_row[audible], lag[audible]
        onset_rms = np.where(on_vertical[target_row], rms_z[source_row], rms_h[source_row])
        amplitude = onset_rms * coda_envelope(travel[source_row], lag)
        result += np.bincount(target_row, weights=amplitude**2, minlength=len(arrivals))
    return np.sqrt(result)
