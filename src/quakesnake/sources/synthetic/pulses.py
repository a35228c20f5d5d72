"""Ground velocity of one arrival: the direct pulse (Brune source, attenuation, site echoes) and its
coda, and the Wood–Anderson amplitude that calibrates it to ML."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import scipy.fft
import scipy.signal

# The magnitude stage measures ML with the same Wood–Anderson seismograph.
from quakesnake.magnitude import WOOD_ANDERSON_PAZ
from quakesnake.sources.synthetic.settings import SAMPLING_RATE_HZ, keyed_rng

# Pulse window: the direct pulse is built by FFT on this many samples, onset at PULSE_LEAD.
PULSE_SAMPLES = 4096
PULSE_LEAD = 256

# Coda: RMS at onset relative to the direct pulse's peak, decay time, and how the coda's
# energy splits over (Z, N, E) for each phase.
CODA_RATIO = {"P": 0.3, "S": 0.4}
CODA_DECAY_S = 12.0
CODA_RISE_S = 0.15
CODA_PARTITION = {"P": (1.0, 0.5, 0.5), "S": (0.5, 1.0, 1.0)}
# Discrete scattered arrivals in a coda (Moho and free-surface reflections, scattering off strong
# heterogeneities): copies of the direct pulse, polarised at random, this long after the onset and
# this large relative to the direct pulse. Real codas hold such onsets and a picker must leave them
# alone; the envelope-shaped noise of _coda has none.
CODA_ARRIVAL_DELAY_S = (1.0, 20.0)
CODA_ARRIVAL_RATIO = (0.1, 0.5)
# A coda ends where its envelope falls to this fraction of the noise RMS.
CODA_END_NOISE_FRACTION = 0.05
MAX_CODA_S = 600.0


def _wood_anderson_transfer(freq: np.ndarray) -> np.ndarray:
    """Wood–Anderson response to ground displacement (m → m) at ``freq`` (Hz)."""
    s = 2j * np.pi * freq
    response = np.full(s.shape, WOOD_ANDERSON_PAZ["gain"] * WOOD_ANDERSON_PAZ["sensitivity"], dtype=complex)
    for zero in WOOD_ANDERSON_PAZ["zeros"]:
        response *= s - zero
    for pole in WOOD_ANDERSON_PAZ["poles"]:
        response /= s - pole
    return response


def wood_anderson_peak_mm(velocity: np.ndarray, sampling_rate: float = SAMPLING_RATE_HZ) -> float:
    """Peak Wood–Anderson amplitude (mm) of ground-velocity traces (m/s), last axis time."""
    n = velocity.shape[-1]
    n_fft = scipy.fft.next_fast_len(n + int(10 * sampling_rate), real=True)  # room for the WA tail
    freq = scipy.fft.rfftfreq(n_fft, 1.0 / sampling_rate)
    spectrum = scipy.fft.rfft(velocity, n_fft, axis=-1)
    displacement_to_wa = np.zeros_like(spectrum)
    displacement_to_wa[..., 1:] = spectrum[..., 1:] / (2j * np.pi * freq[1:]) * _wood_anderson_transfer(freq[1:])
    return float(np.abs(scipy.fft.irfft(displacement_to_wa, n_fft, axis=-1)).max() * 1000.0)


def direct_pulse(row, fraction: float = 0.0) -> np.ndarray:
    """Unit-polarisation velocity pulse (m/s per m·s of displacement spectral level).

    Causal Brune spectrum 1/(1 + i f/fc)², attenuation exp(-π f (t* + κ)) with constant-Q
    dispersion (lower frequencies delayed by t*/π ln(f_N/f)), surface-layer echoes
    1/(1 + r exp(-2πifτ)), onset at PULSE_LEAD + fraction.
    """
    freq = scipy.fft.rfftfreq(PULSE_SAMPLES, 1.0 / SAMPLING_RATE_HZ)
    f = np.maximum(freq, freq[1])
    nyquist = SAMPLING_RATE_HZ / 2
    t_star = float(row.t_star_s)
    delay = (PULSE_LEAD + fraction) / SAMPLING_RATE_HZ + t_star / np.pi * np.log(nyquist / f)
    spectrum = (
        2j * np.pi * freq
        / (1.0 + 1j * freq / float(row.corner_hz)) ** 2
        * np.exp(-np.pi * freq * (t_star + float(row.kappa_s)))
        * np.exp(-2j * np.pi * freq * delay)
        / (1.0 + float(row.site_reflection) * np.exp(-2j * np.pi * freq * float(row.site_delay_s)))
    )
    return scipy.fft.irfft(spectrum, PULSE_SAMPLES) * SAMPLING_RATE_HZ


def coda_band(row) -> float:
    """Dominant frequency (Hz, 0.1 Hz steps) of a phase: source corner or attenuation corner."""
    attenuation_corner = 1.0 / (np.pi * (float(row.t_star_s) + float(row.kappa_s)))
    return round(float(np.clip(min(float(row.corner_hz), attenuation_corner), 1.0, 25.0)), 1)


@lru_cache(maxsize=512)
def coda_filter(dominant_hz: float) -> tuple[np.ndarray, float]:
    """Band-pass (SOS) around ``dominant_hz`` and its white-noise RMS gain."""
    band = [0.3 * dominant_hz, min(2.5 * dominant_hz, 45.0)]
    sos = scipy.signal.butter(2, band, btype="bandpass", fs=SAMPLING_RATE_HZ, output="sos")
    impulse = np.zeros(4096)
    impulse[0] = 1.0
    return sos, float(np.sqrt(np.sum(scipy.signal.sosfilt(sos, impulse) ** 2)))


def coda_envelope(travel_time_s, tau):
    """Coda RMS ``tau`` s after a phase's onset, per unit RMS scale (``CODA_RATIO`` × direct peak
    × ``CODA_PARTITION`` share); ``travel_time_s`` and ``tau`` broadcast. The last seconds of a
    drawn coda are also tapered (:func:`_coda`), where the envelope is a few % of the noise."""
    lapse = np.maximum(travel_time_s, 0.5)
    return (1.0 - np.exp(-tau / CODA_RISE_S)) * lapse / (lapse + tau) * np.exp(-tau / CODA_DECAY_S)


def _coda(seed, row, n: int) -> np.ndarray:
    """Unit-RMS-at-onset coda (3, n) after an onset at sample 0; same prefix for any ``n``."""
    sos, gain = coda_filter(coda_band(row))
    envelope = coda_envelope(float(row.travel_time_s), np.arange(n) / SAMPLING_RATE_HZ)
    taper_n = min(n // 4, int(2 * SAMPLING_RATE_HZ))
    envelope[n - taper_n:] *= np.hanning(2 * taper_n)[taper_n:]
    white = np.stack([keyed_rng(seed, "coda", row.event_id, row.network, row.station, row.phase, component).standard_normal(n)
                      for component in range(3)])
    shares = np.asarray(CODA_PARTITION[row.phase], dtype=float)[:, None]
    return shares * scipy.signal.sosfilt(sos, white, axis=-1) / gain * envelope


def phase_velocity(seed, row, level: float, coda_s: float, fraction: float = 0.0,
                    unit_pulse: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Ground velocity (3, n) of one arrival (direct pulse + coda) and the onset sample.

    ``unit_pulse``: :func:`direct_pulse` of ``row`` and ``fraction``, when the caller has it."""
    pulse = (direct_pulse(row, fraction) if unit_pulse is None else unit_pulse) * level
    weights = np.array([row.weight_z, row.weight_n, row.weight_e])
    direct = weights[:, None] * pulse[None, :]
    lead = int(round(getattr(row, "precursor_lead_s", 0.0) * SAMPLING_RATE_HZ))
    if 0 < lead < PULSE_LEAD:
        # an S-to-P conversion: the pulse, polarised as a P, ahead of the onset (the pulse window's
        # first 1.3 s are at most 0.3 % of its peak, median 0.002 %: rolled to its end they add nothing)
        precursor = np.array([row.precursor_z, row.precursor_n, row.precursor_e])
        direct = direct + precursor[:, None] * np.roll(pulse, -lead)[None, :]
    coda_n = int(round(coda_s * SAMPLING_RATE_HZ))
    n = max(PULSE_SAMPLES, PULSE_LEAD + coda_n)
    signal = np.zeros((3, n))
    signal[:, :PULSE_SAMPLES] = direct
    if coda_n > 0:
        peak = np.abs(direct).max()
        signal[:, PULSE_LEAD:PULSE_LEAD + coda_n] += CODA_RATIO[row.phase] * peak * _coda(seed, row, coda_n)
        _add_coda_arrivals(seed, row, pulse, signal, coda_n)
    return signal, PULSE_LEAD


def _add_coda_arrivals(seed, row, pulse: np.ndarray, signal: np.ndarray, coda_n: int) -> None:
    """Add the row's ``coda_arrivals`` scattered copies of ``pulse`` to ``signal`` in place, each
    at a random delay within the coda (:data:`CODA_ARRIVAL_DELAY_S`), amplitude
    (:data:`CODA_ARRIVAL_RATIO` of the direct pulse) and unit polarisation; the same for any coda
    length that holds them."""
    count = int(getattr(row, "coda_arrivals", 0))
    if count <= 0:
        return
    rng = keyed_rng(seed, "coda-arrival-draws", row.event_id, row.network, row.station, row.phase)
    draws = rng.uniform(size=(count, 2))
    polarisations = rng.standard_normal((count, 3))
    polarisations /= np.maximum(np.linalg.norm(polarisations, axis=1, keepdims=True), 1e-12)
    delays = np.rint((CODA_ARRIVAL_DELAY_S[0] + draws[:, 0] * np.diff(CODA_ARRIVAL_DELAY_S)[0]) * SAMPLING_RATE_HZ).astype(int)
    ratios = CODA_ARRIVAL_RATIO[0] + draws[:, 1] * np.diff(CODA_ARRIVAL_RATIO)[0]
    n = signal.shape[1]
    for delay, ratio, direction in zip(delays, ratios, polarisations):
        if delay >= coda_n:
            continue  # the coda has faded into the noise by then
        end = min(n, delay + PULSE_SAMPLES)
        signal[:, delay:end] += ratio * direction[:, None] * pulse[None, :end - delay]


def coda_duration(row, peak: float, noise_rms: float) -> float:
    """Seconds after the onset until the coda envelope drops to a fraction of the noise."""
    tau = np.arange(0.0, MAX_CODA_S, 0.5)
    lapse = max(float(row.travel_time_s), 0.5)
    envelope = CODA_RATIO[row.phase] * peak * lapse / (lapse + tau) * np.exp(-tau / CODA_DECAY_S)
    below = np.flatnonzero(envelope < CODA_END_NOISE_FRACTION * noise_rms)
    return float(np.clip(tau[below[0]] if len(below) else MAX_CODA_S, 5.0, MAX_CODA_S))
