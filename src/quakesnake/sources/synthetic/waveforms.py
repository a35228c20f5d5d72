"""A station-day of waveforms: noise, every arrival's pulse and coda, transients, the instrument
(sensor, digitizer full scale), gaps."""
from __future__ import annotations

import math

import numpy as np
import obspy
import pandas as pd
import scipy.fft
from obspy.core.inventory import Inventory

from quakesnake import tabular
from quakesnake.sources.synthetic.gaps import split_at_gaps, station_day_gaps
from quakesnake.sources.synthetic.instruments import day_transfer, station_full_scale, station_inventory, station_sensor
from quakesnake.sources.synthetic.noise import (
    daylight_curve, daylight_cycles, daylight_modulated, gaussian_spectrum, spectral_scale, station_day_noise,
)
from quakesnake.sources.synthetic.pulses import MAX_CODA_S, phase_velocity
from quakesnake.sources.synthetic.settings import DAY_S, SAMPLING_RATE_HZ, day_label, keyed_rng, midnight, resolve_config
from quakesnake.sources.synthetic.stations import location_code
from quakesnake.sources.synthetic.transients import add_bursts, add_electronic_transients, station_day_transients

def synthesize_station_day(cfg: dict, station: pd.Series, day: str, arrivals: pd.DataFrame,
                           margin_s: float = 60.0, duration_s: float = DAY_S) -> tuple[obspy.Stream, Inventory]:
    """Three components (HHZ, HHN, HHE or with ``sensors`` EH?/HN?, 100 Hz, int32 counts)
    covering [day − margin_s, day + duration_s + margin_s) and the station's inventory.

    ``arrivals`` may hold any stations; rows of this one are used. ``duration_s`` shortens the
    day (tests). With ``clipping`` the station's digitizer may clip at its full scale; with
    ``transients`` spikes, steps and cultural bursts join the noise. Deterministic from (seed,
    network, station, day).
    """
    cfg = resolve_config(cfg)
    network, code = str(station["network"]), str(station["station"])
    location = location_code(station)
    start_of_day = midnight(day)
    start = start_of_day - pd.Timedelta(seconds=margin_s)
    npts = int(round((duration_s + 2 * margin_s) * SAMPLING_RATE_HZ))
    n_fft = scipy.fft.next_fast_len(npts, real=True)
    freq = scipy.fft.rfftfreq(n_fft, 1.0 / SAMPLING_RATE_HZ)
    sensor = station_sensor(cfg, network, code)
    transfer = day_transfer(n_fft, sensor)
    noise = station_day_noise(cfg, network, code, start_of_day)
    stationary_scale = spectral_scale(noise.stationary_psd(freq), n_fft)
    cultural_scale = spectral_scale(noise.cultural_psd(freq), n_fft)

    events = _event_velocity(cfg["seed"], station, arrivals, start, npts, n_fft)
    transients = station_day_transients(cfg, network, code, day)
    add_bursts(events, transients, noise, (cfg["seed"], network, code, day_label(day)), margin_s)
    cycles = daylight_cycles(n_fft)
    if cycles:
        curve = daylight_curve(noise, margin_s, n_fft, cycles)
    else:
        seconds = (np.arange(npts, dtype=np.float64) / SAMPLING_RATE_HZ - margin_s).astype(np.float32)
        daylight = noise.daylight_factor(seconds).astype(np.float32)
    rng = keyed_rng(cfg["seed"], "waveform-noise", network, code, day_label(day))
    gaps = station_day_gaps(cfg, network, code, day)
    full_scale = station_full_scale(cfg, network, code)
    # int32 words, or a clipping digitizer's two's-complement range
    low, high = (np.iinfo(np.int32).min, np.iinfo(np.int32).max) if full_scale is None else (-full_scale, full_scale - 1)

    stream = obspy.Stream()
    for component, channel in enumerate(sensor.channels):
        stationary_factor, cultural_factor = noise.component_factors(component)
        spectrum = gaussian_spectrum(rng, stationary_scale, stationary_factor)
        spectrum += scipy.fft.rfft(events[component], workers=2)
        cultural = gaussian_spectrum(rng, cultural_scale, cultural_factor)
        if cycles:
            spectrum += daylight_modulated(cultural, curve, cycles)
            del cultural
        spectrum *= transfer
        counts = scipy.fft.irfft(spectrum, n_fft, workers=2)[:npts]
        if not cycles:
            cultural *= transfer
            counts += scipy.fft.irfft(cultural, n_fft, workers=2)[:npts] * daylight
        add_electronic_transients(counts, component, transients, margin_s)
        data = np.clip(np.rint(counts, out=counts), low, high, out=counts).astype(np.int32)
        header = {
            "network": network, "station": code, "location": location, "channel": channel,
            "sampling_rate": SAMPLING_RATE_HZ, "starttime": tabular.to_utcdatetime(start),
        }
        stream.extend(split_at_gaps(obspy.Trace(data=data, header=header), gaps, margin_s))
    return stream, station_inventory(station, sensor)


def _event_velocity(seed, station: pd.Series, arrivals: pd.DataFrame, start: pd.Timestamp, npts: int, n_fft: int) -> np.ndarray:
    """Sum of all arrivals' ground velocity on (Z, N, E), ``n_fft`` samples from ``start``."""
    velocity = np.zeros((3, n_fft), dtype=np.float32)
    mine = arrivals[(arrivals["network"] == station["network"]) & (arrivals["station"] == station["station"])]
    if "location" in mine:
        mine = mine[mine["location"].fillna("").astype(str) == location_code(station)]
    end = start + pd.Timedelta(seconds=npts / SAMPLING_RATE_HZ)
    # Codas reach back; an onset up to MAX_CODA_S before the window can still be heard in it.
    mine = mine[(mine["time"] >= start - pd.Timedelta(seconds=MAX_CODA_S)) & (mine["time"] < end)]
    for row in mine.itertuples(index=False):
        if not np.isfinite(row.level_m_s):
            continue
        offset = (row.time - start).total_seconds() * SAMPLING_RATE_HZ
        whole = math.floor(offset)
        signal, onset = phase_velocity(seed, row, row.level_m_s, row.coda_s, fraction=offset - whole)
        first = whole - onset
        lo, hi = max(first, 0), min(first + signal.shape[1], npts)
        if hi > lo:
            velocity[:, lo:hi] += signal[:, lo - first:hi - first]
    return velocity
