"""The classic baseline: recursive STA/LTA triggers on the band-passed vertical, refined with
Maeda's AIC; S from the horizontal energy's STA/LTA after each P, refined with AIC (defaults and
their reasons: :data:`quakesnake.picking.settings.STALTA_DEFAULTS`)."""
from __future__ import annotations

import logging
from collections import defaultdict

import numpy as np
import obspy
from obspy.signal.filter import bandpass
from obspy.signal.trigger import recursive_sta_lta, trigger_onset

from quakesnake.picking.picks import Pick
from quakesnake.preprocess import DEAD_RUN_S, true_runs

logger = logging.getLogger(__name__)

def aic_curve(x: np.ndarray) -> np.ndarray:
    """Maeda's AIC, ``k log var(x[:k]) + (n - k - 1) log var(x[k:])``, for every split k.

    Vectorised with cumulative sums; ``+inf`` where a side has fewer than two samples. The
    onset is the argmin: the split where two stationary segments explain the window best.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.size
    aic = np.full(n, np.inf)
    if n < 4:
        return aic
    x = x - x.mean()  # cumulative sums of large offsets lose precision
    head_sum = np.cumsum(x)
    head_sq = np.cumsum(x * x)
    k = np.arange(2, n - 1)  # head x[:k] and tail x[k:] both hold >= 2 samples
    head_var = head_sq[k - 1] / k - (head_sum[k - 1] / k) ** 2
    tail_n = n - k
    tail_var = (head_sq[-1] - head_sq[k - 1]) / tail_n - ((head_sum[-1] - head_sum[k - 1]) / tail_n) ** 2
    floor = np.finfo(np.float64).tiny + 1e-20 * np.max(x * x)  # log(0) on dead (zero-filled) stretches
    aic[k] = k * np.log(np.maximum(head_var, floor)) + (n - k - 1) * np.log(np.maximum(tail_var, floor))
    return aic


def pick_stalta(stream: obspy.Stream, settings: dict) -> list[Pick]:
    """STA/LTA + AIC picks of every instrument of ``stream`` (merged, gaps zero-filled)."""
    stream = stream.copy()
    stream.merge(method=1, fill_value=0)  # zero-filled gaps, as preprocess writes them
    by_instrument: dict[tuple[str, str, str], dict[str, obspy.Trace]] = defaultdict(dict)
    for trace in stream:
        by_instrument[trace.stats.network, trace.stats.station, trace.stats.location][trace.stats.channel[-1]] = trace

    rows = []
    for (network, station, location), components in sorted(by_instrument.items()):
        vertical = components.get("Z")
        if vertical is None:
            logger.warning("%s.%s.%s: no vertical component; STA/LTA picks nothing", network, station, location)
            continue
        horizontals = next(
            ([components[c] for c in pair if c in components] for pair in ("NE", "12") if set(pair) & set(components)),
            [],
        )
        for phase, time, quality in _stalta_station(vertical, horizontals, settings):
            rows.append(Pick(network, station, location, phase, time.ns, quality))
    return rows


def _stalta_station(vertical: obspy.Trace, horizontals: list[obspy.Trace], settings: dict):
    """Yield (phase, UTCDateTime, quality) for one instrument."""
    rate = vertical.stats.sampling_rate
    sta, lta = int(round(settings["sta_s"] * rate)), int(round(settings["lta_s"] * rate))
    aic_half = int(round(settings["aic_window_s"] * rate / 2))
    z_filtered = _bandpassed(vertical.data, rate, settings["bandpass_hz"])
    z_ratio = _sta_lta_blinded(z_filtered, vertical.data, sta, lta, rate)

    horizontal = _horizontal_view(horizontals, settings) if horizontals else None

    s_onset_time = None
    for on_index, off_index in trigger_onset(z_ratio, settings["trigger_on"], settings["trigger_off"]):
        trigger_time = vertical.stats.starttime + on_index / rate
        if s_onset_time is not None and abs(trigger_time - s_onset_time) <= settings["aic_window_s"] / 2:
            continue  # the S of the previous event seen on the vertical, not a new P
        start, end = max(on_index - aic_half, 0), min(on_index + aic_half, z_filtered.size)
        onset_index = start + int(np.argmin(aic_curve(z_filtered[start:end])))
        p_time = vertical.stats.starttime + onset_index / rate
        peak = float(z_ratio[on_index : off_index + 1].max())
        yield "P", p_time, _quality(peak, settings["trigger_on"])

        if horizontal is not None:
            s_pick = _pick_s(horizontal, p_time, settings)
            if s_pick is not None:
                s_onset_time = s_pick[0]
                yield "S", s_pick[0], s_pick[1]


def _horizontal_view(horizontals: list[obspy.Trace], settings: dict) -> dict | None:
    """Band-passed horizontals on their common time span, their energy's STA/LTA, and timing."""
    start = max(tr.stats.starttime for tr in horizontals)
    end = min(tr.stats.endtime for tr in horizontals)
    if end <= start:
        return None
    rate = horizontals[0].stats.sampling_rate
    aligned = [tr.slice(start, end) for tr in horizontals]
    n = min(tr.stats.npts for tr in aligned)
    raw = np.stack([tr.data[:n].astype(np.float64) for tr in aligned])
    filtered = np.stack([_bandpassed(row, rate, settings["bandpass_hz"]) for row in raw])
    energy = np.sqrt(np.sum(filtered**2, axis=0))  # STA/LTA squares it: N^2 + E^2
    sta, lta = int(round(settings["sta_s"] * rate)), int(round(settings["lta_s"] * rate))
    ratio = _sta_lta_blinded(energy, np.abs(raw).sum(axis=0), sta, lta, rate)
    return {"filtered": filtered, "ratio": ratio, "start": aligned[0].stats.starttime, "rate": rate}


def _pick_s(horizontal: dict, p_time: obspy.UTCDateTime, settings: dict):
    """The S after a P: the strongest interior STA/LTA peak in the window, refined by AIC."""
    ratio, filtered, rate = horizontal["ratio"], horizontal["filtered"], horizontal["rate"]
    p_index = int(round((p_time - horizontal["start"]) * rate))
    first = p_index + int(round(settings["s_min_delay_s"] * rate))
    last = min(p_index + int(round(settings["s_window_s"] * rate)), ratio.size)
    if first < 0 or last - first < 3:
        return None
    window = ratio[first:last]
    peak_offset = int(np.argmax(window))
    peak = float(window[peak_offset])
    if peak < settings["s_trigger_on"] or peak_offset in (0, window.size - 1):
        return None  # below threshold, or still rising/decaying at the edge: no S peak in this window
    # Walk back from the peak to where the ratio crossed the threshold: the S trigger.
    below = np.flatnonzero(window[:peak_offset] < settings["s_trigger_on"])
    trigger_index = first + (below[-1] + 1 if below.size else 0)

    aic_half = int(round(settings["aic_window_s"] * rate / 2))
    start = max(trigger_index - aic_half, p_index + 1)  # never let AIC see the P onset itself
    end = min(trigger_index + aic_half, ratio.size)
    if end - start < 4:
        return None
    combined = sum(aic_curve(component[start:end]) for component in filtered)
    onset_index = start + int(np.argmin(combined))
    return horizontal["start"] + onset_index / rate, _quality(peak, settings["s_trigger_on"])


def _bandpassed(data: np.ndarray, rate: float, corners) -> np.ndarray:
    """Causal Butterworth band-pass: a zero-phase filter would smear energy before the onset."""
    low, high = corners
    high = min(high, 0.45 * rate)
    return bandpass(np.asarray(data, dtype=np.float64), low, high, rate, corners=4, zerophase=False)


def _sta_lta_blinded(signal: np.ndarray, raw: np.ndarray, sta: int, lta: int, rate: float) -> np.ndarray:
    """Recursive STA/LTA, zero while the LTA warms up: at the start and after every zero-filled gap.

    A gap end looks like an onset from silence (the LTA is near zero), which is not an arrival.
    """
    ratio = recursive_sta_lta(np.ascontiguousarray(signal, dtype=np.float64), sta, lta)
    ratio[:lta] = 0.0
    for start, end in zip(*true_runs(raw == 0)):
        if end - start >= DEAD_RUN_S * rate:
            ratio[start : end + lta] = 0.0
    return ratio


def _quality(peak: float, threshold: float) -> float:
    return float(np.clip(1.0 - 0.5 * threshold / peak, 0.0, 1.0))
