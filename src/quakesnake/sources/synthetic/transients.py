"""Transient noise of a station-day (``transients``): one-sample spikes and offset steps on one
channel (electronics and telemetry, in counts) and cultural bursts (traffic, machinery: ground
motion on all components, through the instrument). Each kind is a Poisson number per station-day
at its configured rate, uniform in time over the day; drawn from (seed, network, station, day).

Spike and step sizes are multiples of the channel's robust sample-to-sample noise scale (as
preprocessing measures it), so they are as conspicuous on a quiet broadband as on an accelerometer;
spikes span the range preprocessing's despike removes (≥ 50 scales) and smaller ones it keeps.
Burst amplitudes are multiples of the station's night-time cultural noise.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.signal

from quakesnake.sources.synthetic.noise import StationDayNoise
from quakesnake.sources.synthetic.settings import DAY_S, SAMPLING_RATE_HZ, day_label, keyed_rng

TRANSIENT_COLUMNS = ["kind", "offset_s", "component", "amplitude", "duration_s"]
# amplitude ranges (log-uniform): spikes and steps in noise scales, bursts in cultural-noise RMS
SPIKE_SCALES = (20.0, 2000.0)
STEP_SCALES = (100.0, 10000.0)
BURST_CULTURAL_RMS = (3.0, 30.0)
BURST_DURATION_S = (5.0, 60.0)
BURST_BAND_HZ = (2.0, 20.0)
# Changes behind the noise scale (as preprocess.NOISE_SCALE_SAMPLES: a median of a million is enough).
NOISE_SCALE_SAMPLES = 1_000_000


def station_day_transients(cfg: dict, network: str, station: str, day) -> pd.DataFrame:
    """The transients of one station-day: kind (spike, step, burst), offset_s (after the day's
    start), component (0 Z, 1 N, 2 E; -1 all), amplitude (signed for spikes and steps), duration_s."""
    rates = cfg["transients"]
    rng = keyed_rng(cfg["seed"], "transients", network, station, day_label(day))
    frames = []
    for kind, rate, (low, high) in [("spike", rates["spikes_per_day"], SPIKE_SCALES),
                                    ("step", rates["steps_per_day"], STEP_SCALES),
                                    ("burst", rates["bursts_per_day"], BURST_CULTURAL_RMS)]:
        n = rng.poisson(rate) if rate > 0 else 0
        amplitude = np.exp(rng.uniform(np.log(low), np.log(high), n))
        if kind == "burst":
            component, duration = np.full(n, -1), rng.uniform(*BURST_DURATION_S, n)
        else:
            component, duration = rng.integers(0, 3, n), np.zeros(n)
            amplitude *= rng.choice([-1.0, 1.0], n)
        frames.append(pd.DataFrame({"kind": kind, "offset_s": rng.uniform(0.0, DAY_S, n), "component": component,
                                    "amplitude": amplitude, "duration_s": duration}))
    table = pd.concat(frames, ignore_index=True)[TRANSIENT_COLUMNS]
    return table.sort_values("offset_s", ignore_index=True)


def add_bursts(velocity: np.ndarray, transients: pd.DataFrame, noise: StationDayNoise, keys: tuple,
               margin_s: float) -> None:
    """Add the cultural bursts to ground velocity (3, n) that starts ``margin_s`` before the day, in place."""
    bursts = transients[transients["kind"] == "burst"]
    if bursts.empty:
        return
    sos = scipy.signal.butter(4, BURST_BAND_HZ, btype="bandpass", fs=SAMPLING_RATE_HZ, output="sos")
    npts = velocity.shape[1]
    for index, burst in enumerate(bursts.itertuples(index=False)):
        n = int(round(burst.duration_s * SAMPLING_RATE_HZ))
        first = int(round((burst.offset_s + margin_s) * SAMPLING_RATE_HZ))
        lo, hi = max(first, 0), min(first + n, npts)
        if hi <= lo:
            continue
        white = keyed_rng(*keys, "burst", index).standard_normal((3, n))
        band = scipy.signal.sosfilt(sos, white, axis=-1)
        band /= band.std(axis=-1, keepdims=True)
        horizontal = noise.component_factors(1)[1]
        factors = np.array([1.0, horizontal, horizontal])[:, None]
        signal = burst.amplitude * noise.cultural_night_rms_m_s * factors * band * np.hanning(n)
        velocity[:, lo:hi] += signal[:, lo - first:hi - first]


def add_electronic_transients(counts: np.ndarray, component: int, transients: pd.DataFrame, margin_s: float) -> None:
    """Add the spikes and steps of ``component`` to its counts (starting ``margin_s`` before the day), in place."""
    mine = transients[transients["kind"].isin(["spike", "step"]) & (transients["component"] == component)]
    if mine.empty:
        return
    scale = noise_scale(counts)
    for transient in mine.itertuples(index=False):
        sample = int(round((transient.offset_s + margin_s) * SAMPLING_RATE_HZ))
        if not 0 <= sample < counts.size:
            continue
        if transient.kind == "spike":
            counts[sample] += transient.amplitude * scale
        else:
            counts[sample:] += transient.amplitude * scale


def noise_scale(counts: np.ndarray) -> float:
    """Robust scale of the sample-to-sample changes, 1.4826 × median |diff| (at least one count)."""
    stride = max(1, counts.size // NOISE_SCALE_SAMPLES)
    later = counts[1::stride]
    changes = np.abs(later - counts[:-1:stride][:later.size])
    return max(1.4826 * float(np.median(changes)), 1.0) if changes.size else 1.0
