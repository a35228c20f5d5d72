"""The noise model of a station-day (microseisms, cultural noise with a day/night cycle) and its
synthesis as Gaussian noise with that PSD, in the frequency domain."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
from scipy.integrate import trapezoid

# Analyst view: the band in which snr and the noise RMS of the arrivals table are measured.
from quakesnake.analyst import ANALYST_BAND_HZ
from quakesnake.sources.synthetic.settings import (
    DAY_S, SAMPLING_RATE_HZ, day_label, keyed_rng, midnight, resolve_config,
)
from quakesnake.sources.synthetic.instruments import station_sensor
from quakesnake.sources.synthetic.stations import station_properties

# the day/night cycle of the cultural noise may stretch this much to fit an FFT window (see daylight_cycles)
DAYLIGHT_STRETCH_MAX = 0.02


# Noise model.
CULTURAL_REFERENCE_RMS_M_S = 1.0e-8
SECONDARY_MICROSEISM_HZ = (0.16, 0.24)
PRIMARY_MICROSEISM_HZ = 0.07
PRIMARY_BELOW_SECONDARY_DB = 15.0
NOISE_FLOOR_ACCELERATION_DB = -170.0
# Horizontal/vertical noise amplitude: ~1.2 for microseisms; above 1 Hz it is the station's
# H/V ratio (stations.HORIZONTAL_CULTURAL_FACTOR_RANGE).
HORIZONTAL_MICROSEISM_FACTOR = 1.2
DAY_MICROSEISM_SIGMA_DB = 4.0


def analyst_band(freq: np.ndarray) -> np.ndarray:
    """Magnitude of a two-pole high-pass × two-pole low-pass (Butterworth) analyst filter."""
    low, high = ANALYST_BAND_HZ
    with np.errstate(divide="ignore"):
        highpass = 1.0 / np.sqrt(1.0 + (low / np.maximum(freq, 1e-12)) ** 4)
    return highpass / np.sqrt(1.0 + (freq / high) ** 4)


@dataclass(frozen=True)
class StationDayNoise:
    """Noise of one station on one day: PSD model and its day/night modulation.

    The PSDs are one-sided ground-velocity PSDs ((m/s)²/Hz) of the vertical; on horizontals
    the microseisms are :data:`HORIZONTAL_MICROSEISM_FACTOR` and the cultural noise
    ``horizontal_cultural_factor`` times stronger in amplitude.
    """

    cultural_night_rms_m_s: float
    horizontal_cultural_factor: float
    day_night_ratio: float
    microseism_db: float
    secondary_hz: float
    utc_offset_h: float
    day_start: pd.Timestamp
    # An accelerometer's white self-noise (dB re 1 (m/s²)²/Hz), part of the stationary noise (on
    # the horizontals scaled like the microseisms: one draw serves all components); None: none.
    self_noise_acceleration_db: float | None = None

    def stationary_psd(self, freq: np.ndarray) -> np.ndarray:
        """Microseisms and a low floor, given in acceleration dB and turned into velocity."""
        f = np.maximum(freq, 1e-6)
        acceleration = (
            10 ** (self.microseism_db / 10) * np.exp(-0.5 * (np.log(f / self.secondary_hz) / 0.35) ** 2)
            + 10 ** ((self.microseism_db - PRIMARY_BELOW_SECONDARY_DB) / 10)
            * np.exp(-0.5 * (np.log(f / PRIMARY_MICROSEISM_HZ) / 0.25) ** 2)
            + 10 ** (NOISE_FLOOR_ACCELERATION_DB / 10)
        )
        if self.self_noise_acceleration_db is not None:
            acceleration = acceleration + 10 ** (self.self_noise_acceleration_db / 10)
        return np.where(freq > 0, acceleration / (2 * np.pi * f) ** 2, 0.0)

    def cultural_psd(self, freq: np.ndarray) -> np.ndarray:
        """Night-time cultural noise: flat in velocity between 1 and 20 Hz, rolled off outside."""
        return self.cultural_night_rms_m_s**2 * _cultural_shape(freq) / _cultural_shape_band_power()

    def daylight_factor(self, seconds_after_day_start) -> np.ndarray:
        """Amplitude factor of cultural noise: 1 at 03:00 local time, ``day_night_ratio`` at 15:00."""
        local_hour = np.asarray(seconds_after_day_start) / 3600.0 + self.utc_offset_h
        daylight = 0.5 * (1.0 - np.cos(2 * np.pi * (local_hour - 3.0) / 24.0))
        return 1.0 + (self.day_night_ratio - 1.0) * daylight

    @cached_property
    def _analyst_band_powers(self) -> tuple[float, float]:
        """Vertical noise power ((m/s)²) in the analyst band: stationary part, night cultural part."""
        freq = np.geomspace(0.01, SAMPLING_RATE_HZ / 2, 4000)
        weight = analyst_band(freq) ** 2
        stationary = trapezoid(self.stationary_psd(freq) * weight, freq)
        cultural = trapezoid(self.cultural_psd(freq) * weight, freq)
        return float(stationary), float(cultural)

    def component_factors(self, component: int) -> tuple[float, float]:
        """Amplitude factors (stationary, cultural) of component 0 (Z), 1 (N) or 2 (E)."""
        return (1.0, 1.0) if component == 0 else (HORIZONTAL_MICROSEISM_FACTOR, self.horizontal_cultural_factor)

    def analyst_band_rms(self, times: pd.Series | np.ndarray, horizontal: np.ndarray) -> np.ndarray:
        """RMS (m/s) of the noise in the analyst band at ``times`` on Z or a horizontal."""
        stationary, cultural = self._analyst_band_powers
        seconds = (pd.to_datetime(pd.Series(times)) - self.day_start).dt.total_seconds().to_numpy()
        horizontal = np.asarray(horizontal, dtype=bool)
        stationary_factor = np.where(horizontal, HORIZONTAL_MICROSEISM_FACTOR, 1.0)
        cultural_factor = np.where(horizontal, self.horizontal_cultural_factor, 1.0) * self.daylight_factor(seconds)
        return np.sqrt(stationary * stationary_factor**2 + cultural * cultural_factor**2)


def _cultural_shape(freq: np.ndarray) -> np.ndarray:
    f = np.asarray(freq, dtype=float)
    return f**4 / (1.0 + f**4) / (1.0 + (f / 25.0) ** 8)


@lru_cache(maxsize=1)
def _cultural_shape_band_power() -> float:
    freq = np.linspace(1.0, 20.0, 2000)
    return float(trapezoid(_cultural_shape(freq), freq))


def station_day_noise(cfg: dict, network: str, station: str, day) -> StationDayNoise:
    """The noise model of one station-day (deterministic from seed, station and day)."""
    cfg = resolve_config(cfg)
    site = station_properties(cfg, network, station)
    rng = keyed_rng(cfg["seed"], "day-noise", network, station, day_label(day))
    return StationDayNoise(
        cultural_night_rms_m_s=CULTURAL_REFERENCE_RMS_M_S * 10 ** (site["level_db"] / 20),
        horizontal_cultural_factor=site["horizontal_cultural_factor"],
        day_night_ratio=float(cfg["noise"]["cultural_day_night_ratio"]),
        microseism_db=cfg["noise"]["microseism_db"] + site["microseism_offset_db"] + rng.normal(0.0, DAY_MICROSEISM_SIGMA_DB),
        secondary_hz=rng.uniform(*SECONDARY_MICROSEISM_HZ),
        utc_offset_h=float(cfg["noise"]["utc_offset_h"]),
        day_start=midnight(day),
        self_noise_acceleration_db=station_sensor(cfg, network, station).self_noise_acceleration_db,
    )


def spectral_scale(psd: np.ndarray, n: int) -> np.ndarray:
    """Standard deviation of each rfft bin's real and imaginary part of a length-``n`` real Gaussian
    series with one-sided PSD ``psd`` (units²/Hz), float32 (the input of :func:`gaussian_spectrum`)."""
    return np.sqrt(psd * n * SAMPLING_RATE_HZ / 4.0).astype(np.float32)


def gaussian_spectrum(rng: np.random.Generator, scale: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """rfft of a real Gaussian series whose bins have :func:`spectral_scale` ``scale`` × ``factor``."""
    # Real and imaginary parts drawn interleaved in one call and scaled in place: 2.5x faster on a
    # day than filling .real and .imag separately, and no complex temporaries.
    spectrum = rng.standard_normal(2 * len(scale), dtype=np.float32).view(np.complex64)
    spectrum *= scale
    if factor != 1.0:
        spectrum *= np.float32(factor)
    return spectrum


def daylight_cycles(n_fft: int) -> int:
    """Whole day/night cycles the spectral shift of :func:`daylight_modulated` may stretch over an
    FFT window of ``n_fft`` (even) samples; 0 when the window is not within 2 % of a whole number of
    days (shortened windows of tests and training cuts), which then multiply in the time domain."""
    days = n_fft / SAMPLING_RATE_HZ / DAY_S
    cycles = round(days)
    whole = cycles >= 1 and abs(days - cycles) <= DAYLIGHT_STRETCH_MAX * cycles
    return cycles if whole and n_fft % 2 == 0 else 0


def daylight_curve(noise: StationDayNoise, margin_s: float, n_fft: int, cycles: int) -> tuple[float, float, float]:
    """(mean, amplitude, phase) of the cultural-noise factor as the FFT window sees it:
    ``mean + amplitude * cos(2 pi cycles n / n_fft + phase)`` at sample n. The 24 h cycle of
    :meth:`StationDayNoise.daylight_factor`, stretched to ``cycles`` per window and matched to it at
    the middle of the day (stretch 1.25 % on a day with 60 s margins)."""
    swing = (noise.day_night_ratio - 1.0) / 2.0
    middle_s = n_fft / SAMPLING_RATE_HZ / 2.0  # window seconds
    middle_phase = 2 * np.pi * ((middle_s - margin_s) / 3600.0 + noise.utc_offset_h - 3.0) / 24.0
    return 1.0 + swing, -swing, middle_phase - 2 * np.pi * cycles * middle_s * SAMPLING_RATE_HZ / n_fft


def daylight_modulated(spectrum: np.ndarray, curve: tuple[float, float, float], cycles: int) -> np.ndarray:
    """rfft (even length) of the series whose rfft is ``spectrum``, multiplied by ``curve``.

    Why by hand: a factor that completes ``cycles`` whole periods in the window is a shift of the
    spectrum by ``cycles`` bins either way, so the day/night cycle of the cultural noise costs three
    vector operations instead of its own inverse FFT of a day per component (numpy and SciPy have
    no "modulate an rfft" helper)."""
    mean, amplitude, phase = curve
    k, m = cycles, len(spectrum)
    # X[j - k] and X[j + k] of the full spectrum, read off the rfft's conjugate symmetry
    below = np.concatenate([np.conj(spectrum[k:0:-1]), spectrum[:m - k]])
    above = np.concatenate([spectrum[k:], np.conj(spectrum[m - 2:m - 2 - k:-1])])
    below *= np.complex64(0.5 * amplitude * np.exp(1j * phase))
    above *= np.complex64(0.5 * amplitude * np.exp(-1j * phase))
    below += above
    below += np.float32(mean) * spectrum
    return below
