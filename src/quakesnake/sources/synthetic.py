"""Synthetic seismic scenario: the embedded default data source, deterministic from a seed.

:func:`generate_scenario` draws earthquakes (Gutenberg–Richter magnitudes, Poisson origin times,
occasional swarms) or takes them from a real catalog ("twin" mode), computes every event ×
station P and S arrival with its amplitude, and predicts which arrivals an analyst would see.
:func:`synthesize_station_day` turns those arrivals into a day of three-component 100 Hz data in
counts, with a StationXML inventory whose response converts back to ground velocity.

Physics, in ground velocity:

- Direct P and S pulses: causal Brune source spectrum (corner from moment and stress drop),
  geometric spreading folded into the Hutton & Boore amplitude law, constant-Q attenuation with
  its causal dispersion plus a site kappa, double-couple radiation (a random mechanism per
  event), P polarised along the ray and S split into SV/SH by the mechanism. Incidence angles use
  near-surface speeds, so P is strongest on Z and S on the horizontals.
- Amplitudes: every event's S wave is scaled so that its simulated Wood–Anderson peak equals
  ``10 ** (ML - minus_log_a0(r))`` mm (Hutton & Boore 1987); P follows from the S level by
  ``(vs/vp)³`` and the radiation pattern. With Q_P = Q_S and a P kappa of vs/vp times the S
  one, the S peak on the horizontals is a median 3.2 times the P peak on Z (10–90 %: 1–8) and
  4.8 times the P on the horizontals, as in the real Northern-California records of
  ``shared/data/labelled-waveforms`` (3.2 and 4.3).
- Site: a soft surface layer under each station echoes every arrival (two-way time 0.03–0.15 s
  for P, 2–3 times that for S), so direct arrivals are short wavetrains, as in real records.
- Coda: band-limited noise after each phase with an envelope decaying as
  ``T/(T+τ) exp(-τ/τc)`` (T travel time, τ time after onset), on all three components.
- Noise: secondary (~0.2 Hz) and primary (~0.07 Hz) microseisms, cultural noise (1–20 Hz) with a
  day/night cycle, a station-dependent level and a station H/V ratio of 1.2–2, generated as
  Gaussian noise with a model PSD in the frequency domain and passed through the instrument
  response.
- Gaps: with ``gap_probability`` per station-day one 1–30 min stretch of data is missing.

Analyst visibility (``snr``/``visible`` in the arrivals table) is computed from the same pulses
and the same noise model the synthesizer uses: ``snr`` is the peak of the noise-free 1–20 Hz
signal within 2 s after the onset over the RMS of the 1–20 Hz noise at that time (for S, the P
coda there counts as noise too); P on Z, S on the stronger horizontal. ``min_snr`` is the
threshold the arrival had to reach; truth picks get an OGS-style weight from ``snr / min_snr``.

Configuration (the workflow's ``synthetic:`` block; every default: the schema, config/README.md):

``seed``
    Integer; every random draw derives from it and from stable names (day, station, event).
``network``
    Network code of generated stations.
``n_stations``
    Number of generated stations (ignored with ``stations_file`` or ``catalog_dir``).
``region``
    Box holding generated stations (a jittered grid) and epicentres (~120 × 120 km).
``depth_km``
    Hypocentre depth range, km below sea level, uniform.
``events_per_day``
    Mean number of background events per day (Poisson).
``magnitude``
    Truncated Gutenberg–Richter distribution of ML.
``swarm_probability_per_day``
    Chance that a day holds a swarm: 5–20 events within one hour in a ~3 km patch.
``noise.level_db_range``
    Cultural-noise level of a station, dB above 1e-8 m/s RMS (1–20 Hz, at night), uniform
    per station: some stations are quiet, some noisy.
``noise.cultural_day_night_ratio``
    Amplitude ratio of cultural noise at mid-afternoon to the middle of the night.
``noise.microseism_db``
    Acceleration PSD (dB re 1 m²/s⁴/Hz) at the secondary microseism peak; varies ±3 dB by
    station and ±4 dB by day.
``noise.utc_offset_h``
    Local time of the day/night cycle (UTC+1: central Europe).
``gap_probability``
    Chance per station-day of one data gap of 1–30 minutes.
``truth_min_snr``
    A P arrival is ``visible`` (an analyst would pick it) when its ``snr`` reaches this. Over a
    few seconds Gaussian noise peaks at about 3 RMS, so 6 is an onset twice the size of the
    largest noise wiggles: plain on a 1–20 Hz trace. Weaker onsets are the ones analysts skip
    or pick with low weight.
``truth_s_snr_factor``
    An S arrival needs ``truth_min_snr`` times this: analysts pick S only where its onset in
    the P coda is unambiguous. With one threshold for both phases the truth would hold 1.4
    times more S than P picks; with 1.7 it holds 1.4 times more P than S (0.9 within 20 km,
    1.5 at 20–50 km, 1.9 at 50–100 km), as the OGS bulletin of the same region does (1.1,
    1.4, 1.9).
``truth_min_picks``
    An event enters the truth catalog only with at least this many visible picks.
``stations_file``
    CSV of real stations (station, network, latitude, longitude[, elevation_m]); replaces the
    generated stations.
``catalog_dir``
    Directory with a real catalog in the reference layout (events.csv, picks.csv
    [, stations.csv]): twin mode. Events come from it, sized by ML (else ``magnitude``, else
    MD; events with none are left out, with a warning); arrivals take its pick times where it
    has them and model times elsewhere; stations come from ``stations_file`` or its
    stations.csv.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import math
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np
import obspy
import pandas as pd
import scipy.fft
import scipy.signal
from scipy.integrate import trapezoid
from obspy import UTCDateTime
from obspy.core.inventory import Channel, Inventory, Network, Station
from obspy.core.inventory.response import Response

from quakesnake import tabular
from quakesnake.config import section_defaults
# The magnitude stage measures ML with the same Wood–Anderson seismograph and −log A0 law.
from quakesnake.magnitude import WOOD_ANDERSON_PAZ, minus_log_a0
from quakesnake.traveltimes import DEFAULT_LAYERS, TravelTimes, read_layers

log = logging.getLogger(__name__)

# Every key and default: the schema's synthetic section. stations_file is the workflow's
# top-level one (real stations for the scenario), which the workflow passes in here.
DEFAULTS = {**section_defaults("synthetic"), "stations_file": None}

SAMPLING_RATE_HZ = 100.0
CHANNELS = ("HHZ", "HHN", "HHE")  # component order Z, N, E everywhere in this module
DAY_S = 86400.0
# the day/night cycle of the cultural noise may stretch this much to fit an FFT window (see _daylight_cycles)
DAYLIGHT_STRETCH_MAX = 0.02
EARTH_RADIUS_KM = 6371.0

# Instrument: a 120 s broadband sensor (generator 1500 V/(m/s)) with an 80 Hz two-pole
# high-frequency corner, on a 24-bit digitizer at 4e5 counts/V.
SENSOR_ZEROS = [0j, 0j]
SENSOR_POLES = [
    -0.037019 + 0.037019j, -0.037019 - 0.037019j,
    -355.43 + 355.43j, -355.43 - 355.43j,
]
SENSITIVITY_COUNTS_PER_M_S = 1500.0 * 4.0e5
SENSITIVITY_FREQUENCY_HZ = 1.0
CHANNEL_EPOCH_START = UTCDateTime(2000, 1, 1)

# Source and path.
STRESS_DROP_MEDIAN_MPA = 3.0
STRESS_DROP_SIGMA_LN = 0.6
P_CORNER_FACTOR = 1.5  # fc(P)/fc(S) (Madariaga 1976)
# Crustal Q_P is close to Q_S at these frequencies; with t* = t/Q the S pulse is the more damped.
Q_P, Q_S = 300.0, 300.0
KAPPA_RANGE_S = (0.01, 0.04)  # site kappa of S; P's is vs/vp of it (same Q near the surface)
# A soft surface layer under each station rings: echoes every two-way time τ, each one
# −r times the last (resonance at 1/(2τ)), so a direct arrival is a short wavetrain, not a spike.
SITE_DELAY_P_RANGE_S = (0.03, 0.15)
SITE_S_OVER_P_DELAY_RANGE = (2.0, 3.0)
SITE_REFLECTION_RANGE = (0.3, 0.6)
# Speeds just below the station set the incidence angles: weathered rock turns rays upwards.
NEAR_SURFACE_KM_S = {"P": 3.5, "S": 1.5}
# Nodal planes are never clean in real data (scattering, 3D structure): radiation floor.
RADIATION_FLOOR = 0.15

# Pulse window: the direct pulse is built by FFT on this many samples, onset at PULSE_LEAD.
PULSE_SAMPLES = 4096
PULSE_LEAD = 256

# Coda: RMS at onset relative to the direct pulse's peak, decay time, and how the coda's
# energy splits over (Z, N, E) for each phase.
CODA_RATIO = {"P": 0.3, "S": 0.4}
CODA_DECAY_S = 12.0
CODA_RISE_S = 0.15
CODA_PARTITION = {"P": (1.0, 0.5, 0.5), "S": (0.5, 1.0, 1.0)}
# A coda ends where its envelope falls to this fraction of the noise RMS.
CODA_END_NOISE_FRACTION = 0.05
MAX_CODA_S = 600.0
CALIBRATION_CODA_S = 30.0

# Analyst view: band, window after the onset, P-coda window before S.
ANALYST_BAND_HZ = (1.0, 20.0)
SNR_WINDOW_S = 2.0
PRE_S_WINDOW_S = 1.0

# Noise model.
CULTURAL_REFERENCE_RMS_M_S = 1.0e-8
SECONDARY_MICROSEISM_HZ = (0.16, 0.24)
PRIMARY_MICROSEISM_HZ = 0.07
PRIMARY_BELOW_SECONDARY_DB = 15.0
NOISE_FLOOR_ACCELERATION_DB = -170.0
# Horizontal/vertical noise amplitude: ~1.2 for microseisms; above 1 Hz it is the station's
# H/V ratio (the same soft surface layer that rings for S amplifies horizontal noise).
HORIZONTAL_MICROSEISM_FACTOR = 1.2
HORIZONTAL_CULTURAL_FACTOR_RANGE = (1.2, 2.0)
STATION_MICROSEISM_SIGMA_DB = 3.0
DAY_MICROSEISM_SIGMA_DB = 4.0

GAP_MINUTES = (1.0, 30.0)
GAP_EDGE_S = 600.0
# Picks this close to a gap cannot be made (no data before or after the onset).
GAP_PICK_GUARD_S = (1.0, 0.5)

# Magnitude of a twin event: the first of these columns that has a value.
TWIN_MAGNITUDE_COLUMNS = ["ML", "magnitude", "MD"]

# OGS-style pick weight from snr / visibility threshold: ≥ 8 → 0, ≥ 3 → 1, ≥ 1.5 → 2, else 3.
# With Gutenberg–Richter amplitudes this gives roughly the OGS bulletin's P weights
# (0: 6 %, 1: 19 %, 2: 38 %, 3–4: 37 %).
SNR_WEIGHTS = [(8.0, 0), (3.0, 1), (1.5, 2)]
# The OGS bulletin's columns; location errors and duration magnitude stay empty.
TRUTH_EVENT_COLUMNS = [
    "event_id", "time", "latitude", "longitude", "depth_km", "ML",
    "erh_km", "erz_km", "azimuthal_gap", "n_picks", "MD", "region",
]


# ----------------------------------------------------------------------------------- config

def resolve_config(cfg: dict | None) -> dict:
    """``cfg`` merged over :data:`DEFAULTS`; unknown keys are an error naming the key."""

    def merge(defaults: dict, given: dict, prefix: str) -> dict:
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise ValueError(f"synthetic config: unknown key(s) {', '.join(prefix + k for k in unknown)} "
                             f"(known: {', '.join(prefix + k for k in defaults)})")
        merged = {}
        for key, default in defaults.items():
            value = given.get(key, default)
            if isinstance(default, dict):
                value = merge(default, value or {}, f"{prefix}{key}.")
            merged[key] = value
        return merged

    merged = merge(DEFAULTS, dict(cfg or {}), "")
    region = merged["region"]
    if not (region["lat_min"] < region["lat_max"] and region["lon_min"] < region["lon_max"]):
        raise ValueError(f"synthetic config: region must have lat_min < lat_max and lon_min < lon_max, got {region}")
    if not 0 <= merged["depth_km"][0] <= merged["depth_km"][1]:
        raise ValueError(f"synthetic config: depth_km must be [min, max] with 0 <= min <= max, got {merged['depth_km']}")
    magnitude = merged["magnitude"]
    if not magnitude["min"] < magnitude["max"] or magnitude["b_value"] <= 0:
        raise ValueError(f"synthetic config: magnitude needs min < max and b_value > 0, got {magnitude}")
    if int(merged["n_stations"]) < 1:
        raise ValueError("synthetic config: n_stations must be at least 1")
    for key in ["gap_probability", "swarm_probability_per_day"]:
        if not 0 <= merged[key] <= 1:
            raise ValueError(f"synthetic config: {key} must be a probability, got {merged[key]}")
    local = merged["local_events"]
    if not (0 <= local["fraction"] <= 1 and local["max_distance_km"] > 0 and 0 <= local["depth_km"][0] <= local["depth_km"][1]):
        raise ValueError("synthetic config: local_events needs 0 <= fraction <= 1, max_distance_km > 0 and "
                         f"depth_km [min, max] with 0 <= min <= max, got {local}")
    return merged


def _rng(*keys) -> np.random.Generator:
    """A generator seeded by stable names: the same keys give the same draws in any process."""
    digest = hashlib.sha256("|".join(map(str, keys)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def _day_start(day) -> pd.Timestamp:
    return pd.Timestamp(str(day)).normalize()


def _day_key(day) -> str:
    return _day_start(day).strftime("%Y-%m-%d")


# ------------------------------------------------------------------------------ amplitudes

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


def _analyst_band(freq: np.ndarray) -> np.ndarray:
    """Magnitude of a two-pole high-pass × two-pole low-pass (Butterworth) analyst filter."""
    low, high = ANALYST_BAND_HZ
    with np.errstate(divide="ignore"):
        highpass = 1.0 / np.sqrt(1.0 + (low / np.maximum(freq, 1e-12)) ** 4)
    return highpass / np.sqrt(1.0 + (freq / high) ** 4)


def _band_limited(signal: np.ndarray) -> np.ndarray:
    n = signal.shape[-1]
    n_fft = scipy.fft.next_fast_len(n + int(2 * SAMPLING_RATE_HZ), real=True)
    freq = scipy.fft.rfftfreq(n_fft, 1.0 / SAMPLING_RATE_HZ)
    return scipy.fft.irfft(scipy.fft.rfft(signal, n_fft, axis=-1) * _analyst_band(freq), n_fft, axis=-1)[..., :n]


# ---------------------------------------------------------------------------------- noise

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

    def stationary_psd(self, freq: np.ndarray) -> np.ndarray:
        """Microseisms and a low floor, given in acceleration dB and turned into velocity."""
        f = np.maximum(freq, 1e-6)
        acceleration = (
            10 ** (self.microseism_db / 10) * np.exp(-0.5 * (np.log(f / self.secondary_hz) / 0.35) ** 2)
            + 10 ** ((self.microseism_db - PRIMARY_BELOW_SECONDARY_DB) / 10)
            * np.exp(-0.5 * (np.log(f / PRIMARY_MICROSEISM_HZ) / 0.25) ** 2)
            + 10 ** (NOISE_FLOOR_ACCELERATION_DB / 10)
        )
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
        weight = _analyst_band(freq) ** 2
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


def _station_properties(cfg: dict, network: str, station: str) -> dict:
    """Site constants of a station: noise level, microseism offset, kappa, surface-layer echoes."""
    rng = _rng(cfg["seed"], "station", network, station)
    low, high = cfg["noise"]["level_db_range"]
    properties = {
        "level_db": rng.uniform(low, high),
        "microseism_offset_db": rng.normal(0.0, STATION_MICROSEISM_SIGMA_DB),
        "kappa_s": rng.uniform(*KAPPA_RANGE_S),
        "site_delay_p_s": rng.uniform(*SITE_DELAY_P_RANGE_S),
        "site_reflection": rng.uniform(*SITE_REFLECTION_RANGE),
        "horizontal_cultural_factor": rng.uniform(*HORIZONTAL_CULTURAL_FACTOR_RANGE),
    }
    properties["site_delay_s_s"] = properties["site_delay_p_s"] * rng.uniform(*SITE_S_OVER_P_DELAY_RANGE)
    return properties


def station_day_noise(cfg: dict, network: str, station: str, day) -> StationDayNoise:
    """The noise model of one station-day (deterministic from seed, station and day)."""
    cfg = resolve_config(cfg)
    site = _station_properties(cfg, network, station)
    rng = _rng(cfg["seed"], "day-noise", network, station, _day_key(day))
    return StationDayNoise(
        cultural_night_rms_m_s=CULTURAL_REFERENCE_RMS_M_S * 10 ** (site["level_db"] / 20),
        horizontal_cultural_factor=site["horizontal_cultural_factor"],
        day_night_ratio=float(cfg["noise"]["cultural_day_night_ratio"]),
        microseism_db=cfg["noise"]["microseism_db"] + site["microseism_offset_db"] + rng.normal(0.0, DAY_MICROSEISM_SIGMA_DB),
        secondary_hz=rng.uniform(*SECONDARY_MICROSEISM_HZ),
        utc_offset_h=float(cfg["noise"]["utc_offset_h"]),
        day_start=_day_start(day),
    )


def station_day_gaps(cfg: dict, network: str, station: str, day) -> list[tuple[float, float]]:
    """Missing stretches of one station-day as (start, end) seconds after the day's start."""
    cfg = resolve_config(cfg)
    rng = _rng(cfg["seed"], "gaps", network, station, _day_key(day))
    if rng.random() >= cfg["gap_probability"]:
        return []
    length = rng.uniform(*GAP_MINUTES) * 60.0
    start = rng.uniform(GAP_EDGE_S, DAY_S - GAP_EDGE_S - length)
    return [(start, start + length)]


# -------------------------------------------------------------------------------- stations

def station_table(cfg: dict) -> pd.DataFrame:
    """Stations: network, station, location, latitude, longitude, elevation_m.

    From ``stations_file``, else from the twin catalog's stations.csv, else generated as a
    jittered grid over ``region`` with codes S001, S002, ... (deterministic from the seed).
    """
    cfg = resolve_config(cfg)
    if cfg["stations_file"] or cfg["catalog_dir"]:
        path = Path(cfg["stations_file"]) if cfg["stations_file"] else Path(cfg["catalog_dir"]) / "stations.csv"
        stations = tabular.read_stations(path)
        return stations[tabular.STATION_COLUMNS].reset_index(drop=True)

    region, n = cfg["region"], int(cfg["n_stations"])
    rng = _rng(cfg["seed"], "stations")
    mid_lat = math.radians((region["lat_min"] + region["lat_max"]) / 2)
    width = (region["lon_max"] - region["lon_min"]) * math.cos(mid_lat)
    height = region["lat_max"] - region["lat_min"]
    columns = max(1, round(math.sqrt(n * width / height)))
    rows = math.ceil(n / columns)
    cells = np.sort(rng.choice(rows * columns, size=n, replace=False))
    x = (cells % columns + 0.5 + rng.uniform(-0.35, 0.35, n)) / columns
    y = (cells // columns + 0.5 + rng.uniform(-0.35, 0.35, n)) / rows
    return pd.DataFrame(
        {
            "network": cfg["network"],
            "station": [f"S{i + 1:03d}" for i in range(n)],
            "location": "",
            "latitude": np.round(region["lat_min"] + y * height, 5),
            "longitude": np.round(region["lon_min"] + x * (region["lon_max"] - region["lon_min"]), 5),
            "elevation_m": np.round(rng.uniform(100.0, 1800.0, n), 0),
        }
    )


# ------------------------------------------------------------------------------- scenario

@dataclass
class Scenario:
    """Everything a synthetic run knows: all events, all arrivals, the stations.

    ``events`` holds every generated event (event_id, time, latitude, longitude, depth_km, ML,
    source parameters); ``arrivals`` one row per event × station × phase with the amplitude
    parameters :func:`synthesize_station_day` needs and the analyst view (snr, visible).
    """

    events: pd.DataFrame
    arrivals: pd.DataFrame
    stations: pd.DataFrame
    truth_min_picks: int
    region_label: str = "synthetic"

    def truth_tables(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The reference catalog an analyst would have made: (events, picks, stations)."""
        visible = self.arrivals[self.arrivals["visible"]]
        n_picks = visible.groupby("event_id").size()
        catalogued = n_picks[n_picks >= self.truth_min_picks].index
        events = self.events[self.events["event_id"].isin(catalogued)].copy()
        events["n_picks"] = events["event_id"].map(n_picks).astype(int)
        events["azimuthal_gap"] = events["event_id"].map(
            visible.groupby("event_id")["backazimuth_deg"].agg(_azimuthal_gap)
        )
        for column in ["erh_km", "erz_km", "MD"]:
            events[column] = np.nan
        events["region"] = self.region_label
        events = events[TRUTH_EVENT_COLUMNS]

        picks = visible[visible["event_id"].isin(catalogued)].copy()
        picks["weight"] = (picks["snr"] / picks["min_snr"]).map(_pick_weight)
        picks = picks.sort_values(["time", "station", "phase"])[["event_id", "station", "phase", "time", "weight"]]
        stations = self.stations[["station", "network", "latitude", "longitude", "elevation_m"]].copy()
        return events.reset_index(drop=True), picks.reset_index(drop=True), stations.reset_index(drop=True)


def _azimuthal_gap(backazimuths: pd.Series) -> float:
    azimuths = np.sort(np.unique(np.mod(backazimuths.to_numpy(), 360.0)))
    if len(azimuths) < 2:
        return 360.0
    return float(np.max(np.diff(np.append(azimuths, azimuths[0] + 360.0))))


def _pick_weight(snr_over_threshold: float) -> int:
    for ratio, weight in SNR_WEIGHTS:
        if snr_over_threshold >= ratio:
            return weight
    return 3


def _truncated_gutenberg_richter(rng: np.random.Generator, n: int, m_min: float, m_max: float, b: float) -> np.ndarray:
    beta = b * math.log(10.0)
    u = rng.random(n)
    return m_min - np.log(1.0 - u * (1.0 - math.exp(-beta * (m_max - m_min)))) / beta


def _source_parameters(rng: np.random.Generator, n: int) -> dict:
    """Random double-couple mechanisms and stress drops."""
    return {
        "strike_deg": rng.uniform(0.0, 360.0, n),
        "dip_deg": np.degrees(np.arccos(rng.uniform(0.0, 1.0, n))),  # uniform on the sphere
        "rake_deg": rng.uniform(-180.0, 180.0, n),
        "stress_drop_mpa": np.clip(
            STRESS_DROP_MEDIAN_MPA * np.exp(rng.normal(0.0, STRESS_DROP_SIGMA_LN, n)), 0.3, 30.0
        ),
    }


def generate_events(cfg: dict, days: list[str], stations: pd.DataFrame | None = None) -> pd.DataFrame:
    """Generated events of ``days``: background (Poisson, uniform in region and depth range, a
    ``local_events`` fraction of them moved close under ``stations``, by default the config's)
    plus a possible swarm per day, ML from a truncated Gutenberg–Richter law, a random
    double-couple mechanism and stress drop each. Each day depends only on (seed, day)."""
    cfg = resolve_config(cfg)
    if stations is None and cfg["local_events"]["fraction"] > 0:
        stations = station_table(cfg)
    frames = [_generated_events(cfg, day, stations) for day in sorted({_day_start(day) for day in days})]
    return pd.concat(frames, ignore_index=True)


def _generated_events(cfg: dict, day, stations: pd.DataFrame | None = None) -> pd.DataFrame:
    """Background events and a possible swarm of one day."""
    rng = _rng(cfg["seed"], "events", _day_key(day))
    region, depth, magnitude = cfg["region"], cfg["depth_km"], cfg["magnitude"]
    n = rng.poisson(cfg["events_per_day"])
    frame = pd.DataFrame(
        {
            "offset_s": rng.uniform(0.0, DAY_S, n),
            "latitude": rng.uniform(region["lat_min"], region["lat_max"], n),
            "longitude": rng.uniform(region["lon_min"], region["lon_max"], n),
            "depth_km": rng.uniform(depth[0], depth[1], n),
            "kind": "background",
        }
    )
    _move_local_events(frame, cfg["local_events"], stations, _rng(cfg["seed"], "local-events", _day_key(day)))
    if rng.random() < cfg["swarm_probability_per_day"]:
        k = int(rng.integers(5, 21))
        start = rng.uniform(0.0, DAY_S - 3600.0)
        centre_lat = rng.uniform(region["lat_min"], region["lat_max"])
        centre_lon = rng.uniform(region["lon_min"], region["lon_max"])
        centre_depth = rng.uniform(depth[0], depth[1])
        patch_km = 1.0  # standard deviation: ~3 km across
        swarm = pd.DataFrame(
            {
                "offset_s": start + np.sort(rng.uniform(0.0, 3600.0, k)),
                "latitude": centre_lat + rng.normal(0.0, patch_km, k) / 111.195,
                "longitude": centre_lon + rng.normal(0.0, patch_km, k) / (111.195 * math.cos(math.radians(centre_lat))),
                "depth_km": np.clip(centre_depth + rng.normal(0.0, patch_km, k), 0.5, None),
                "kind": "swarm",
            }
        )
        frame = pd.concat([frame, swarm], ignore_index=True)
    frame["ML"] = np.round(
        _truncated_gutenberg_richter(rng, len(frame), magnitude["min"], magnitude["max"], magnitude["b_value"]), 2
    )
    frame = frame.assign(**_source_parameters(rng, len(frame)))
    frame = frame.sort_values("offset_s", ignore_index=True)
    start_of_day = _day_start(day)
    frame["time"] = (start_of_day + pd.to_timedelta(np.round(frame["offset_s"], 2), unit="s")).astype("datetime64[ns]")
    frame["event_id"] = [f"{start_of_day:%Y%m%d}{i + 1:04d}" for i in range(len(frame))]
    frame["latitude"] = frame["latitude"].round(5)
    frame["longitude"] = frame["longitude"].round(5)
    frame["depth_km"] = frame["depth_km"].round(2)
    return frame.drop(columns="offset_s")


def _move_local_events(frame: pd.DataFrame, local: dict, stations: pd.DataFrame | None, rng) -> None:
    """Move a ``local["fraction"]`` of the background events in ``frame`` under random stations
    (epicentre uniform over a disc of ``max_distance_km``, depth uniform in ``depth_km``), in place.
    Its own random stream, so a scenario without local events stays what it was."""
    if local["fraction"] <= 0 or stations is None or len(stations) == 0 or len(frame) == 0:
        return
    moved = frame.index[rng.random(len(frame)) < local["fraction"]]
    station = stations.iloc[rng.integers(0, len(stations), moved.size)]
    distance = local["max_distance_km"] * np.sqrt(rng.random(moved.size))
    azimuth = rng.uniform(0.0, 2 * np.pi, moved.size)
    lat = station["latitude"].to_numpy(float)
    frame.loc[moved, "latitude"] = lat + distance * np.cos(azimuth) / 111.195
    frame.loc[moved, "longitude"] = station["longitude"].to_numpy(float) + distance * np.sin(azimuth) / (
        111.195 * np.cos(np.radians(lat)))
    frame.loc[moved, "depth_km"] = rng.uniform(*local["depth_km"], moved.size)
    frame.loc[moved, "kind"] = "local"


def _catalog_events(cfg: dict, day_starts: list[pd.Timestamp]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events (origin inside ``days``) and picks of the twin catalog."""
    directory = Path(cfg["catalog_dir"])
    events = tabular.read_table(directory / "events.csv", tabular.REFERENCE_EVENT_COLUMNS)
    picks = tabular.read_table(directory / "picks.csv", tabular.REFERENCE_PICK_COLUMNS)
    magnitude_columns = [c for c in TWIN_MAGNITUDE_COLUMNS if c in events.columns]
    if not magnitude_columns:
        raise tabular.TableError(
            f"{directory / 'events.csv'}: twin mode needs a magnitude column ({', '.join(TWIN_MAGNITUDE_COLUMNS)})"
        )
    events["event_id"] = events["event_id"].astype(str)
    magnitude = pd.Series(np.nan, index=events.index)
    for column in magnitude_columns:
        magnitude = magnitude.fillna(pd.to_numeric(events[column], errors="coerce"))
    events["ML"] = magnitude
    origin_day = events["time"].dt.normalize()
    events = events[origin_day.isin(day_starts)].sort_values("time", ignore_index=True)
    unsized = events["ML"].isna()
    if unsized.any():
        # Without a magnitude an event has no amplitude: it cannot be part of the twin.
        log.warning("%s: %d event(s) without %s left out of the twin: %s", directory / "events.csv",
                    int(unsized.sum()), " or ".join(magnitude_columns), ", ".join(events.loc[unsized, "event_id"]))
        events = events[~unsized].reset_index(drop=True)
    events = events[["event_id", "time", "latitude", "longitude", "depth_km", "ML"]].copy()
    events["kind"] = "catalog"
    sources = [_source_parameters(_rng(cfg["seed"], "source", event_id), 1) for event_id in events["event_id"]]
    for key in ["strike_deg", "dip_deg", "rake_deg", "stress_drop_mpa"]:
        events[key] = [float(source[key][0]) for source in sources]
    picks["event_id"] = picks["event_id"].astype(str)
    picks["phase"] = picks["phase"].astype(str).str.upper().str[0]
    picks = picks[picks["event_id"].isin(events["event_id"])]
    return events, picks


def _geometry(events: pd.DataFrame, stations: pd.DataFrame) -> pd.DataFrame:
    """Every event × station pair with epicentral distance and azimuths (spherical Earth)."""
    pairs = events.merge(stations, how="cross", suffixes=("", "_station"))
    lat1, lon1 = np.radians(pairs["latitude"]), np.radians(pairs["longitude"])
    lat2, lon2 = np.radians(pairs["latitude_station"]), np.radians(pairs["longitude_station"])
    dlon = lon2 - lon1
    cos_angle = np.clip(np.sin(lat1) * np.sin(lat2) + np.cos(lat1) * np.cos(lat2) * np.cos(dlon), -1.0, 1.0)
    pairs["epicentral_km"] = EARTH_RADIUS_KM * np.arccos(cos_angle)
    azimuth = np.arctan2(
        np.sin(dlon) * np.cos(lat2), np.cos(lat1) * np.sin(lat2) - np.sin(lat1) * np.cos(lat2) * np.cos(dlon)
    )
    backazimuth = np.arctan2(
        -np.sin(dlon) * np.cos(lat1), np.cos(lat2) * np.sin(lat1) - np.sin(lat2) * np.cos(lat1) * np.cos(dlon)
    )
    pairs["azimuth_deg"] = np.mod(np.degrees(azimuth), 360.0)
    pairs["backazimuth_deg"] = np.mod(np.degrees(backazimuth), 360.0)
    return pairs


def _radiation(strike, dip, rake, azimuth, takeoff):
    """Double-couple far-field radiation (P, SV, SH) of Aki & Richards (2002, eq. 4.89); degrees."""
    strike, dip, rake, azimuth, takeoff = map(np.radians, (strike, dip, rake, azimuth, takeoff))
    phi = azimuth - strike
    sl, cl, sd, cd = np.sin(rake), np.cos(rake), np.sin(dip), np.cos(dip)
    s2d, c2d = np.sin(2 * dip), np.cos(2 * dip)
    si, ci, s2i, c2i = np.sin(takeoff), np.cos(takeoff), np.sin(2 * takeoff), np.cos(2 * takeoff)
    p = (cl * sd * si**2 * np.sin(2 * phi) - cl * cd * s2i * np.cos(phi)
         + sl * s2d * (ci**2 - si**2 * np.sin(phi) ** 2) + sl * c2d * s2i * np.sin(phi))
    sv = (sl * c2d * c2i * np.sin(phi) - cl * cd * c2i * np.cos(phi)
          + 0.5 * cl * sd * s2i * np.sin(2 * phi) - 0.5 * sl * s2d * s2i * (1 + np.sin(phi) ** 2))
    sh = (cl * cd * ci * np.sin(phi) + cl * sd * si * np.cos(2 * phi)
          + sl * c2d * ci * np.cos(phi) - 0.5 * sl * s2d * si * np.sin(2 * phi))
    return p, sv, sh


def _layer_value(layers: pd.DataFrame, column: str, depth_km) -> np.ndarray:
    index = np.searchsorted(layers["depth_km"].to_numpy(), np.clip(depth_km, 0.0, None), side="right") - 1
    return layers[column].to_numpy()[index]


def _arrival_table(cfg, pairs, layers, table, catalog_picks) -> pd.DataFrame:
    """P and S rows for every pair: times, geometry, spectra and polarisation (level still 1)."""
    elevation_km = pairs["elevation_m"].fillna(0.0).to_numpy() / 1000.0
    depth = pairs["depth_km"].to_numpy()
    distance = pairs["epicentral_km"].to_numpy()
    hypocentral = np.hypot(distance, np.clip(depth, 0.0, None) + elevation_km)
    propagation_azimuth = np.radians(pairs["backazimuth_deg"].to_numpy() + 180.0)
    sources = {"P": _layer_value(layers, "vp_km_s", depth), "S": _layer_value(layers, "vs_km_s", depth)}
    moment = 10 ** (1.5 * pairs["ML"].to_numpy() + 9.1)  # N·m, Mw taken equal to ML
    sites = {
        (network, station): _station_properties(cfg, network, station)
        for network, station in pairs[["network", "station"]].drop_duplicates().itertuples(index=False)
    }
    site = pd.DataFrame([sites[key] for key in zip(pairs["network"], pairs["station"])])

    takeoff, incidence = {}, {}
    for phase in ("P", "S"):
        slowness = np.nan_to_num(table.horizontal_slowness(phase, distance, depth), nan=0.0)
        down = np.degrees(np.arcsin(np.clip(sources[phase] * slowness, 0.0, 1.0)))
        # A ray leaving upwards reaches the station with sin(takeoff) close to distance/hypocentral.
        upgoing = sources[phase] * slowness > 0.9 * distance / np.maximum(hypocentral, 1e-3)
        takeoff[phase] = np.where(upgoing, 180.0 - down, down)
        incidence[phase] = np.degrees(np.arcsin(np.clip(NEAR_SURFACE_KM_S[phase] * slowness, 0.0, 0.95)))
    mechanism = (pairs["strike_deg"], pairs["dip_deg"], pairs["rake_deg"], pairs["azimuth_deg"])
    rad_p, _, _ = _radiation(*mechanism, takeoff["P"])
    _, rad_sv, rad_sh = _radiation(*mechanism, takeoff["S"])
    s_total = np.sqrt(rad_sv**2 + rad_sh**2 + RADIATION_FLOOR**2)
    p_total = np.where(rad_p >= 0, 1.0, -1.0) * np.sqrt(rad_p**2 + RADIATION_FLOOR**2)
    # Far-field P/S displacement ratio at equal distance: (vs/vp)³ × radiation ratio.
    p_relative = (sources["S"] / sources["P"]) ** 3 * p_total / s_total

    stress_pa = pairs["stress_drop_mpa"].to_numpy() * 1e6
    corner_s = 0.49 * sources["S"] * 1000.0 * (stress_pa / moment) ** (1.0 / 3.0)

    rows = []
    for phase in ("P", "S"):
        travel = table.time(phase, distance, depth, elevation_km)
        time = pairs["time"] + pd.to_timedelta(travel, unit="s")
        source = np.full(len(pairs), "model", dtype=object)
        if catalog_picks is not None and len(catalog_picks):
            picked = catalog_picks[catalog_picks["phase"] == phase].drop_duplicates(["event_id", "station"])
            lookup = pairs[["event_id", "station"]].merge(
                picked[["event_id", "station", "time"]], how="left", on=["event_id", "station"]
            )
            has_pick = lookup["time"].notna().to_numpy()
            time = time.where(~has_pick, lookup["time"].to_numpy())
            travel = np.where(has_pick, (time - pairs["time"]).dt.total_seconds().to_numpy(), travel)
            source[has_pick] = "catalog"
        angle = np.radians(incidence[phase])
        if phase == "P":
            radial, vertical, transverse = np.sin(angle), np.cos(angle), np.zeros(len(pairs))
            level, corner, q = np.abs(p_relative), P_CORNER_FACTOR * corner_s, Q_P
            sign = np.sign(p_relative)
        else:
            # Polarisation from the mechanism's SV/SH split; pure SH where both vanish.
            magnitude = np.hypot(rad_sv, rad_sh)
            sv = np.where(magnitude > 1e-9, rad_sv / np.maximum(magnitude, 1e-9), 0.0)
            sh = np.where(magnitude > 1e-9, rad_sh / np.maximum(magnitude, 1e-9), 1.0)
            radial, vertical, transverse = sv * np.cos(angle), -sv * np.sin(angle), sh
            level, corner, q, sign = np.ones(len(pairs)), corner_s, Q_S, 1.0
        north = radial * np.cos(propagation_azimuth) - transverse * np.sin(propagation_azimuth)
        east = radial * np.sin(propagation_azimuth) + transverse * np.cos(propagation_azimuth)
        rows.append(
            pd.DataFrame(
                {
                    "event_id": pairs["event_id"].to_numpy(),
                    "network": pairs["network"].to_numpy(),
                    "station": pairs["station"].to_numpy(),
                    "location": pairs["location"].to_numpy(),
                    "phase": phase,
                    "time": pd.to_datetime(time).to_numpy().astype("datetime64[ns]"),
                    "time_source": source,
                    "travel_time_s": travel,
                    "ML": pairs["ML"].to_numpy(),
                    "epicentral_km": distance,
                    "hypocentral_km": hypocentral,
                    "backazimuth_deg": pairs["backazimuth_deg"].to_numpy(),
                    "incidence_deg": incidence[phase],
                    "relative_level": level,
                    "corner_hz": corner,
                    "t_star_s": np.clip(travel, 0.0, None) / q,
                    "kappa_s": site["kappa_s"].to_numpy() * NEAR_SURFACE_KM_S["S"] / NEAR_SURFACE_KM_S[phase],
                    "site_delay_s": site["site_delay_p_s" if phase == "P" else "site_delay_s_s"].to_numpy(),
                    "site_reflection": site["site_reflection"].to_numpy(),
                    "weight_z": sign * vertical,
                    "weight_n": sign * north,
                    "weight_e": sign * east,
                }
            )
        )
    arrivals = pd.concat(rows, ignore_index=True)
    return arrivals[np.isfinite(arrivals["travel_time_s"])].reset_index(drop=True)


# --------------------------------------------------------------------------- pulse physics

def _direct_pulse(row, fraction: float = 0.0) -> np.ndarray:
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


def _coda_band(row) -> float:
    """Dominant frequency (Hz, 0.1 Hz steps) of a phase: source corner or attenuation corner."""
    attenuation_corner = 1.0 / (np.pi * (float(row.t_star_s) + float(row.kappa_s)))
    return round(float(np.clip(min(float(row.corner_hz), attenuation_corner), 1.0, 25.0)), 1)


@lru_cache(maxsize=512)
def _coda_filter(dominant_hz: float) -> tuple[np.ndarray, float]:
    """Band-pass (SOS) around ``dominant_hz`` and its white-noise RMS gain."""
    band = [0.3 * dominant_hz, min(2.5 * dominant_hz, 45.0)]
    sos = scipy.signal.butter(2, band, btype="bandpass", fs=SAMPLING_RATE_HZ, output="sos")
    impulse = np.zeros(4096)
    impulse[0] = 1.0
    return sos, float(np.sqrt(np.sum(scipy.signal.sosfilt(sos, impulse) ** 2)))


def _coda(seed, row, n: int) -> np.ndarray:
    """Unit-RMS-at-onset coda (3, n) after an onset at sample 0; same prefix for any ``n``."""
    sos, gain = _coda_filter(_coda_band(row))
    tau = np.arange(n) / SAMPLING_RATE_HZ
    lapse = max(float(row.travel_time_s), 0.5)
    envelope = (1.0 - np.exp(-tau / CODA_RISE_S)) * lapse / (lapse + tau) * np.exp(-tau / CODA_DECAY_S)
    taper_n = min(n // 4, int(2 * SAMPLING_RATE_HZ))
    envelope[n - taper_n:] *= np.hanning(2 * taper_n)[taper_n:]
    white = np.stack([_rng(seed, "coda", row.event_id, row.network, row.station, row.phase, component).standard_normal(n)
                      for component in range(3)])
    shares = np.asarray(CODA_PARTITION[row.phase], dtype=float)[:, None]
    return shares * scipy.signal.sosfilt(sos, white, axis=-1) / gain * envelope


def _phase_velocity(seed, row, level: float, coda_s: float, fraction: float = 0.0,
                    unit_pulse: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Ground velocity (3, n) of one arrival (direct pulse + coda) and the onset sample.

    ``unit_pulse``: :func:`_direct_pulse` of ``row`` and ``fraction``, when the caller has it."""
    pulse = (_direct_pulse(row, fraction) if unit_pulse is None else unit_pulse) * level
    weights = np.array([row.weight_z, row.weight_n, row.weight_e])
    direct = weights[:, None] * pulse[None, :]
    coda_n = int(round(coda_s * SAMPLING_RATE_HZ))
    n = max(PULSE_SAMPLES, PULSE_LEAD + coda_n)
    signal = np.zeros((3, n))
    signal[:, :PULSE_SAMPLES] = direct
    if coda_n > 0:
        peak = np.abs(direct).max()
        signal[:, PULSE_LEAD:PULSE_LEAD + coda_n] += CODA_RATIO[row.phase] * peak * _coda(seed, row, coda_n)
    return signal, PULSE_LEAD


def _coda_duration(row, peak: float, noise_rms: float) -> float:
    """Seconds after the onset until the coda envelope drops to a fraction of the noise."""
    tau = np.arange(0.0, MAX_CODA_S, 0.5)
    lapse = max(float(row.travel_time_s), 0.5)
    envelope = CODA_RATIO[row.phase] * peak * lapse / (lapse + tau) * np.exp(-tau / CODA_DECAY_S)
    below = np.flatnonzero(envelope < CODA_END_NOISE_FRACTION * noise_rms)
    return float(np.clip(tau[below[0]] if len(below) else MAX_CODA_S, 5.0, MAX_CODA_S))


def _calibrate_and_predict(cfg, arrivals: pd.DataFrame, day_starts: list[pd.Timestamp]) -> pd.DataFrame:
    """Absolute levels from ML, coda durations, and the analyst view (snr, visible) per arrival."""
    seed = cfg["seed"]
    arrivals = arrivals.copy()
    # filled per arrival in numpy (pandas' per-cell setter costs 50 µs a cell), columns set at the end
    computed = {column: np.full(len(arrivals), np.nan) for column in ("level_m_s", "coda_s", "peak_velocity_m_s", "noise_rms_m_s")}
    computed["snr"] = np.zeros(len(arrivals))

    noise_z, noise_h = _noise_rms_at_arrivals(cfg, arrivals)
    records = list(arrivals.itertuples(index=False))
    window = int(SNR_WINDOW_S * SAMPLING_RATE_HZ)
    pre_s = int(PRE_S_WINDOW_S * SAMPLING_RATE_HZ)
    by_pair = arrivals.groupby(["event_id", "network", "station"], sort=False).groups
    for index in by_pair.values():
        phases = {records[i].phase: i for i in index}
        if "S" not in phases or "P" not in phases:
            continue
        p_row, s_row = records[phases["P"]], records[phases["S"]]

        # Each phase's direct pulse, computed once for the calibration and the signals below.
        p_pulse, s_pulse = _direct_pulse(p_row), _direct_pulse(s_row)

        # S level from the Wood–Anderson amplitude that ML and distance demand.
        unit_s, onset = _phase_velocity(seed, s_row, 1.0, CALIBRATION_CODA_S, unit_pulse=s_pulse)
        target_mm = 10 ** (s_row.ML - minus_log_a0(max(s_row.hypocentral_km, 1.0)))
        s_level = target_mm / wood_anderson_peak_mm(unit_s[1:])
        p_level = s_level * p_row.relative_level

        # P: noise-free band-limited peak on Z against the noise there.
        p_noise, p_noise_h = noise_z[phases["P"]], noise_h[phases["P"]]
        p_weight = np.abs([p_row.weight_z, p_row.weight_n, p_row.weight_e]).max()
        p_peak_direct = np.abs(p_pulse).max() * p_level * p_weight
        s_minus_p = max(s_row.travel_time_s - p_row.travel_time_s, 0.0)
        p_coda_s = max(_coda_duration(p_row, p_peak_direct, min(p_noise, p_noise_h)), s_minus_p + PRE_S_WINDOW_S)
        p_signal, _ = _phase_velocity(seed, p_row, p_level, p_coda_s, unit_pulse=p_pulse)
        p_band = _band_limited(p_signal)
        p_peak = float(np.abs(p_band[0, onset:onset + window]).max())

        # S: peak on the stronger horizontal against noise plus the P coda just before S.
        s_noise_h = noise_h[phases["S"]]
        s_peak_direct = np.abs(s_pulse).max() * s_level
        s_coda_s = _coda_duration(s_row, s_peak_direct, s_noise_h)
        s_signal, _ = _phase_velocity(seed, s_row, s_level, s_coda_s, unit_pulse=s_pulse)
        s_band = _band_limited(s_signal)
        s_peak = float(np.abs(s_band[1:, onset:onset + window]).max())
        s_start = onset + int(round(s_minus_p * SAMPLING_RATE_HZ))
        p_coda_before_s = p_band[1:, max(onset, s_start - pre_s):s_start]
        p_coda_rms = float(np.sqrt(np.mean(p_coda_before_s**2))) if p_coda_before_s.size else 0.0
        s_noise = math.hypot(s_noise_h, p_coda_rms)

        for i, level, coda_s, peak, noise in [
            (phases["P"], p_level, p_coda_s, p_peak, p_noise),
            (phases["S"], s_level, s_coda_s, s_peak, s_noise),
        ]:
            computed["level_m_s"][i] = level
            computed["coda_s"][i] = coda_s
            computed["peak_velocity_m_s"][i] = peak
            computed["noise_rms_m_s"][i] = noise
            computed["snr"][i] = peak / noise

    for column, values in computed.items():
        arrivals[column] = values
    arrivals["in_gap"] = _in_gaps(cfg, arrivals)
    covered = arrivals["time"].dt.normalize().isin(day_starts)
    s_threshold = cfg["truth_min_snr"] * cfg["truth_s_snr_factor"]
    arrivals["min_snr"] = np.where(arrivals["phase"] == "S", s_threshold, cfg["truth_min_snr"])
    arrivals["visible"] = (arrivals["snr"] >= arrivals["min_snr"]) & ~arrivals["in_gap"] & covered
    return arrivals.drop(columns="relative_level")


def _noise_rms_at_arrivals(cfg, arrivals: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Analyst-band noise RMS (m/s) at each arrival's time on Z and on a horizontal."""
    vertical, horizontal = np.zeros(len(arrivals)), np.zeros(len(arrivals))
    days = arrivals["time"].dt.normalize()
    for (network, station, day), index in arrivals.groupby([arrivals["network"], arrivals["station"], days]).groups.items():
        noise = station_day_noise(cfg, network, station, day)
        times = arrivals.loc[index, "time"]
        positions = arrivals.index.get_indexer(index)
        vertical[positions] = noise.analyst_band_rms(times, np.zeros(len(index), dtype=bool))
        horizontal[positions] = noise.analyst_band_rms(times, np.ones(len(index), dtype=bool))
    return vertical, horizontal


def _in_gaps(cfg, arrivals: pd.DataFrame) -> np.ndarray:
    before, after = GAP_PICK_GUARD_S
    flags = np.zeros(len(arrivals), dtype=bool)
    days = arrivals["time"].dt.normalize()
    for (network, station, day), index in arrivals.groupby([arrivals["network"], arrivals["station"], days]).groups.items():
        gaps = station_day_gaps(cfg, network, station, day)
        seconds = (arrivals.loc[index, "time"] - day).dt.total_seconds().to_numpy()
        hit = np.zeros(len(index), dtype=bool)
        for start, end in gaps:
            hit |= (seconds >= start - after) & (seconds <= end + before)
        flags[arrivals.index.get_indexer(index)] = hit
    return flags


def generate_scenario(cfg: dict, stations: pd.DataFrame, days: list[str], layers: pd.DataFrame | None = None,
                      traveltime_cache_dir=None) -> Scenario:
    """Events and all their arrivals at ``stations`` for ``days`` ('YYYY-MM-DD').

    Generated events (or, with ``catalog_dir``, the catalog's events whose origin falls inside
    ``days``), P and S arrivals at every station with amplitude parameters, and the analyst
    view: an arrival is visible when its snr reaches ``truth_min_snr`` (S: times
    ``truth_s_snr_factor``), it is not in a data gap and it falls inside ``days``.
    """
    cfg = resolve_config(cfg)
    layers = read_layers(DEFAULT_LAYERS if layers is None else layers)
    stations = stations[tabular.STATION_COLUMNS].reset_index(drop=True).copy()
    stations["location"] = stations["location"].fillna("").astype(str)
    day_starts = sorted({_day_start(day) for day in days})
    if cfg["catalog_dir"]:
        events, catalog_picks = _catalog_events(cfg, day_starts)
        region_label = f"twin of {Path(cfg['catalog_dir']).name}"
    else:
        events = generate_events(cfg, days, stations)
        catalog_picks, region_label = None, "synthetic"
    events = events.reset_index(drop=True)
    arrival_columns = ["event_id", "network", "station", "location", "phase", "time"]
    if len(events) == 0 or len(stations) == 0:
        empty = tabular.empty_table(arrival_columns + ["snr", "min_snr", "visible", "backazimuth_deg"])
        empty["visible"] = empty["visible"].astype(bool)
        events["n_visible"] = 0
        return Scenario(events, empty, stations, int(cfg["truth_min_picks"]), region_label)

    pairs = _geometry(events, stations)
    max_distance = 100.0 * math.ceil(pairs["epicentral_km"].max() / 100.0 + 1e-9)
    max_depth = 20.0 * math.ceil(max(events["depth_km"].max(), 1.0) / 20.0 + 1e-9)
    table = TravelTimes(layers, max_distance_km=max_distance, max_depth_km=max_depth, cache_dir=traveltime_cache_dir)
    arrivals = _arrival_table(cfg, pairs, layers, table, catalog_picks)
    arrivals = _calibrate_and_predict(cfg, arrivals, day_starts)
    arrivals = arrivals.sort_values(["time", "network", "station", "phase"], ignore_index=True)
    n_visible = arrivals[arrivals["visible"]].groupby("event_id").size()
    events["n_visible"] = events["event_id"].map(n_visible).fillna(0).astype(int)
    return Scenario(events, arrivals, stations, int(cfg["truth_min_picks"]), region_label)


def write_scenario(scenario: Scenario, outdir) -> None:
    """Truth catalog (events.csv, picks.csv, stations.csv) plus arrivals.parquet and events_all.csv."""
    outdir = Path(outdir)
    events, picks, stations = scenario.truth_tables()
    tabular.write_table(events, outdir / "events.csv")
    tabular.write_table(picks, outdir / "picks.csv")
    tabular.write_table(stations, outdir / "stations.csv")
    tabular.write_table(scenario.events, outdir / "events_all.csv")
    tabular.write_table(scenario.arrivals, outdir / "arrivals.parquet")


def read_arrivals(outdir) -> pd.DataFrame:
    """The arrivals table written by :func:`write_scenario`."""
    return tabular.read_table(Path(outdir) / "arrivals.parquet", ["event_id", "network", "station", "location", "phase", "time"])


# ---------------------------------------------------------------------------- waveforms

def instrument_response() -> Response:
    """Broadband sensor + digitizer response, ground velocity (m/s) to counts."""
    return Response.from_paz(
        zeros=SENSOR_ZEROS,
        poles=SENSOR_POLES,
        stage_gain=SENSITIVITY_COUNTS_PER_M_S,
        stage_gain_frequency=SENSITIVITY_FREQUENCY_HZ,
        input_units="M/S",
        output_units="COUNTS",
        normalization_frequency=SENSITIVITY_FREQUENCY_HZ,
        normalization_factor=_normalization_factor(),
    )


def _normalization_factor() -> float:
    s = 2j * np.pi * SENSITIVITY_FREQUENCY_HZ
    value = np.prod([s - z for z in SENSOR_ZEROS]) / np.prod([s - p for p in SENSOR_POLES])
    return float(1.0 / abs(value))


def _instrument_transfer(freq: np.ndarray) -> np.ndarray:
    """Counts per (m/s) at ``freq``: the same poles, zeros and gain as :func:`instrument_response`."""
    s = 2j * np.pi * freq
    transfer = np.full(s.shape, SENSITIVITY_COUNTS_PER_M_S * _normalization_factor(), dtype=np.complex128)
    for zero in SENSOR_ZEROS:
        transfer *= s - zero
    for pole in SENSOR_POLES:
        transfer /= s - pole
    return transfer


@functools.lru_cache(maxsize=2)
def _day_transfer(n_fft: int) -> np.ndarray:
    """:func:`_instrument_transfer` on the rfft grid of ``n_fft`` samples, complex64: the same for
    every station-day of a run, so a download job that synthesises a whole day computes it once.
    Read-only: callers multiply it into new arrays."""
    transfer = _instrument_transfer(scipy.fft.rfftfreq(n_fft, 1.0 / SAMPLING_RATE_HZ)).astype(np.complex64)
    transfer.flags.writeable = False
    return transfer


def _location(station: pd.Series) -> str:
    location = station.get("location", "")
    return "" if location is None or (isinstance(location, float) and math.isnan(location)) else str(location)


def station_inventory(station: pd.Series) -> Inventory:
    """StationXML inventory (response level) of one station's HHZ/HHN/HHE channels."""
    elevation = float(station.get("elevation_m", 0.0) or 0.0)
    if not np.isfinite(elevation):
        elevation = 0.0
    location = _location(station)
    orientation = {"HHZ": (0.0, -90.0), "HHN": (0.0, 0.0), "HHE": (90.0, 0.0)}
    channels = [
        Channel(
            code=code, location_code=location,
            latitude=float(station["latitude"]), longitude=float(station["longitude"]),
            elevation=elevation, depth=0.0, azimuth=orientation[code][0], dip=orientation[code][1],
            sample_rate=SAMPLING_RATE_HZ, response=instrument_response(), start_date=CHANNEL_EPOCH_START,
        )
        for code in CHANNELS
    ]
    site = Station(
        code=str(station["station"]), latitude=float(station["latitude"]), longitude=float(station["longitude"]),
        elevation=elevation, channels=channels, start_date=CHANNEL_EPOCH_START,
    )
    # A fixed creation date keeps reruns byte-identical.
    return Inventory(networks=[Network(code=str(station["network"]), stations=[site])], source="quakesnake synthetic",
                     created=CHANNEL_EPOCH_START)


def _spectral_scale(psd: np.ndarray, n: int) -> np.ndarray:
    """Standard deviation of each rfft bin's real and imaginary part of a length-``n`` real Gaussian
    series with one-sided PSD ``psd`` (units²/Hz), float32 (the input of :func:`_gaussian_spectrum`)."""
    return np.sqrt(psd * n * SAMPLING_RATE_HZ / 4.0).astype(np.float32)


def _gaussian_spectrum(rng: np.random.Generator, scale: np.ndarray, factor: float = 1.0) -> np.ndarray:
    """rfft of a real Gaussian series whose bins have :func:`_spectral_scale` ``scale`` × ``factor``."""
    # Real and imaginary parts drawn interleaved in one call and scaled in place: 2.5x faster on a
    # day than filling .real and .imag separately, and no complex temporaries.
    spectrum = rng.standard_normal(2 * len(scale), dtype=np.float32).view(np.complex64)
    spectrum *= scale
    if factor != 1.0:
        spectrum *= np.float32(factor)
    return spectrum


def _daylight_cycles(n_fft: int) -> int:
    """Whole day/night cycles the spectral shift of :func:`_daylight_modulated` may stretch over an
    FFT window of ``n_fft`` (even) samples; 0 when the window is not within 2 % of a whole number of
    days (shortened windows of tests and training cuts), which then multiply in the time domain."""
    days = n_fft / SAMPLING_RATE_HZ / DAY_S
    cycles = round(days)
    whole = cycles >= 1 and abs(days - cycles) <= DAYLIGHT_STRETCH_MAX * cycles
    return cycles if whole and n_fft % 2 == 0 else 0


def _daylight_curve(noise: StationDayNoise, margin_s: float, n_fft: int, cycles: int) -> tuple[float, float, float]:
    """(mean, amplitude, phase) of the cultural-noise factor as the FFT window sees it:
    ``mean + amplitude * cos(2 pi cycles n / n_fft + phase)`` at sample n. The 24 h cycle of
    :meth:`StationDayNoise.daylight_factor`, stretched to ``cycles`` per window and matched to it at
    the middle of the day (stretch 1.25 % on a day with 60 s margins)."""
    swing = (noise.day_night_ratio - 1.0) / 2.0
    middle_s = n_fft / SAMPLING_RATE_HZ / 2.0  # window seconds
    middle_phase = 2 * np.pi * ((middle_s - margin_s) / 3600.0 + noise.utc_offset_h - 3.0) / 24.0
    return 1.0 + swing, -swing, middle_phase - 2 * np.pi * cycles * middle_s * SAMPLING_RATE_HZ / n_fft


def _daylight_modulated(spectrum: np.ndarray, curve: tuple[float, float, float], cycles: int) -> np.ndarray:
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


def synthesize_station_day(cfg: dict, station: pd.Series, day: str, arrivals: pd.DataFrame,
                           margin_s: float = 60.0, duration_s: float = DAY_S) -> tuple[obspy.Stream, Inventory]:
    """Three components (HHZ, HHN, HHE, 100 Hz, int32 counts) covering
    [day − margin_s, day + duration_s + margin_s) and the station's inventory.

    ``arrivals`` may hold any stations; rows of this one are used. ``duration_s`` shortens the
    day (tests). Deterministic from (seed, network, station, day).
    """
    cfg = resolve_config(cfg)
    network, code = str(station["network"]), str(station["station"])
    location = _location(station)
    start_of_day = _day_start(day)
    start = start_of_day - pd.Timedelta(seconds=margin_s)
    npts = int(round((duration_s + 2 * margin_s) * SAMPLING_RATE_HZ))
    n_fft = scipy.fft.next_fast_len(npts, real=True)
    freq = scipy.fft.rfftfreq(n_fft, 1.0 / SAMPLING_RATE_HZ)
    transfer = _day_transfer(n_fft)
    noise = station_day_noise(cfg, network, code, start_of_day)
    stationary_scale = _spectral_scale(noise.stationary_psd(freq), n_fft)
    cultural_scale = _spectral_scale(noise.cultural_psd(freq), n_fft)

    events = _event_velocity(cfg["seed"], station, arrivals, start, npts, n_fft)
    cycles = _daylight_cycles(n_fft)
    if cycles:
        curve = _daylight_curve(noise, margin_s, n_fft, cycles)
    else:
        seconds = (np.arange(npts, dtype=np.float64) / SAMPLING_RATE_HZ - margin_s).astype(np.float32)
        daylight = noise.daylight_factor(seconds).astype(np.float32)
    rng = _rng(cfg["seed"], "waveform-noise", network, code, _day_key(day))
    gaps = station_day_gaps(cfg, network, code, day)

    stream = obspy.Stream()
    for component, channel in enumerate(CHANNELS):
        stationary_factor, cultural_factor = noise.component_factors(component)
        spectrum = _gaussian_spectrum(rng, stationary_scale, stationary_factor)
        spectrum += scipy.fft.rfft(events[component], workers=2)
        cultural = _gaussian_spectrum(rng, cultural_scale, cultural_factor)
        if cycles:
            spectrum += _daylight_modulated(cultural, curve, cycles)
            del cultural
        spectrum *= transfer
        counts = scipy.fft.irfft(spectrum, n_fft, workers=2)[:npts]
        if not cycles:
            cultural *= transfer
            counts += scipy.fft.irfft(cultural, n_fft, workers=2)[:npts] * daylight
        data = np.clip(np.rint(counts, out=counts), np.iinfo(np.int32).min, np.iinfo(np.int32).max,
                       out=counts).astype(np.int32)
        header = {
            "network": network, "station": code, "location": location, "channel": channel,
            "sampling_rate": SAMPLING_RATE_HZ, "starttime": UTCDateTime(start.to_pydatetime()),
        }
        stream.extend(_split_at_gaps(obspy.Trace(data=data, header=header), gaps, margin_s))
    return stream, station_inventory(station)


def _event_velocity(seed, station: pd.Series, arrivals: pd.DataFrame, start: pd.Timestamp, npts: int, n_fft: int) -> np.ndarray:
    """Sum of all arrivals' ground velocity on (Z, N, E), ``n_fft`` samples from ``start``."""
    velocity = np.zeros((3, n_fft), dtype=np.float32)
    mine = arrivals[(arrivals["network"] == station["network"]) & (arrivals["station"] == station["station"])]
    if "location" in mine:
        mine = mine[mine["location"].fillna("").astype(str) == _location(station)]
    end = start + pd.Timedelta(seconds=npts / SAMPLING_RATE_HZ)
    # Codas reach back; an onset up to MAX_CODA_S before the window can still be heard in it.
    mine = mine[(mine["time"] >= start - pd.Timedelta(seconds=MAX_CODA_S)) & (mine["time"] < end)]
    for row in mine.itertuples(index=False):
        if not np.isfinite(row.level_m_s):
            continue
        offset = (row.time - start).total_seconds() * SAMPLING_RATE_HZ
        whole = math.floor(offset)
        signal, onset = _phase_velocity(seed, row, row.level_m_s, row.coda_s, fraction=offset - whole)
        first = whole - onset
        lo, hi = max(first, 0), min(first + signal.shape[1], npts)
        if hi > lo:
            velocity[:, lo:hi] += signal[:, lo - first:hi - first]
    return velocity


def _split_at_gaps(trace: obspy.Trace, gaps: list[tuple[float, float]], margin_s: float) -> list[obspy.Trace]:
    """The trace with the gap stretches (seconds after the day start) cut out; no empty pieces."""
    npts = trace.stats.npts
    keep, cursor = [], 0
    for start_s, end_s in sorted(gaps):
        first = max(int(round((start_s + margin_s) * SAMPLING_RATE_HZ)), 0)
        last = min(int(round((end_s + margin_s) * SAMPLING_RATE_HZ)), npts)
        if last <= first:
            continue  # the gap lies outside this (shortened) window
        if first > cursor:
            keep.append((cursor, first))
        cursor = max(cursor, last)
    if cursor < npts:
        keep.append((cursor, npts))
    if keep == [(0, npts)]:
        return [trace]
    pieces = []
    for first, last in keep:
        piece = obspy.Trace(data=trace.data[first:last].copy())
        for key in ["network", "station", "location", "channel", "sampling_rate"]:
            piece.stats[key] = trace.stats[key]
        piece.stats.starttime = trace.stats.starttime + first / SAMPLING_RATE_HZ
        pieces.append(piece)
    return pieces
