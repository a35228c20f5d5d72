"""Arrivals of a scenario: every event × station P and S arrival with its time, geometry,
radiation and polarisation, its absolute level from ML, and the analyst view (snr, visible)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import scipy.fft

from quakesnake.analyst import SNR_WINDOW_S
# The magnitude stage measures ML with the same −log A0 law.
from quakesnake.magnitude import minus_log_a0
from quakesnake.sources.synthetic.gaps import arrivals_in_gaps
from quakesnake.sources.synthetic.noise import analyst_band, station_day_noise
from quakesnake.sources.synthetic.overlaps import coda_rms_at_onset, other_event_coda_rms
from quakesnake.sources.synthetic.pulses import coda_duration, direct_pulse, phase_velocity, wood_anderson_peak_mm
from quakesnake.sources.synthetic.settings import SAMPLING_RATE_HZ, keyed_rng
from quakesnake.sources.synthetic.stations import station_properties

EARTH_RADIUS_KM = 6371.0

P_CORNER_FACTOR = 1.5  # fc(P)/fc(S) (Madariaga 1976)
# Crustal Q_P is close to Q_S at these frequencies; with t* = t/Q the S pulse is the more damped.
Q_P, Q_S = 300.0, 300.0

# Speeds just below the station set the incidence angles: weathered rock turns rays upwards.
NEAR_SURFACE_KM_S = {"P": 3.5, "S": 1.5}
# Nodal planes are never clean in real data (scattering, 3D structure): radiation floor.
RADIATION_FLOOR = 0.15

# The S level is calibrated on its pulse and this much coda (the Wood–Anderson peak lies in it).
CALIBRATION_CODA_S = 30.0

# Analyst view (quakesnake.analyst: band and window after the onset); the P-coda window before S.
PRE_S_WINDOW_S = 1.0


def _band_limited(signal: np.ndarray) -> np.ndarray:
    n = signal.shape[-1]
    n_fft = scipy.fft.next_fast_len(n + int(2 * SAMPLING_RATE_HZ), real=True)
    freq = scipy.fft.rfftfreq(n_fft, 1.0 / SAMPLING_RATE_HZ)
    return scipy.fft.irfft(scipy.fft.rfft(signal, n_fft, axis=-1) * analyst_band(freq), n_fft, axis=-1)[..., :n]


def event_station_pairs(events: pd.DataFrame, stations: pd.DataFrame) -> pd.DataFrame:
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


def arrival_table(cfg, pairs, layers, table, catalog_picks) -> pd.DataFrame:
    """P and S rows for every pair: times, geometry, spectra and polarisation (level still 1)."""
    elevation_km = pairs["elevation_m"].fillna(0.0).to_numpy() / 1000.0
    depth = pairs["depth_km"].to_numpy()
    distance = pairs["epicentral_km"].to_numpy()
    hypocentral = np.hypot(distance, np.clip(depth, 0.0, None) + elevation_km)
    propagation_azimuth = np.radians(pairs["backazimuth_deg"].to_numpy() + 180.0)
    sources = {"P": _layer_value(layers, "vp_km_s", depth), "S": _layer_value(layers, "vs_km_s", depth)}
    moment = 10 ** (1.5 * pairs["ML"].to_numpy() + 9.1)  # N·m, Mw taken equal to ML
    sites = {
        (network, station): station_properties(cfg, network, station)
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

    complexity = cfg["complexity"]
    rows, p_direction = [], None
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
        vertical, north, east = _scattered_polarisation(cfg["seed"], pairs, phase, (vertical, north, east),
                                                        complexity["polarization_scatter"])
        if phase == "P":
            p_direction = np.stack([vertical, north, east])
        # only S waves convert to P ahead of themselves; P rows get the columns, empty
        precursor = _sp_precursors(cfg["seed"], pairs, p_direction,
                                   complexity["sp_precursor_probability"] if phase == "S" else 0.0)
        scattered = _coda_arrival_counts(cfg["seed"], pairs, complexity["s_coda_arrivals"] if phase == "S" else 0.0)
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
                    **precursor,
                    "coda_arrivals": scattered,
                }
            )
        )
    arrivals = pd.concat(rows, ignore_index=True)
    return arrivals[np.isfinite(arrivals["travel_time_s"])].reset_index(drop=True)


# Shallow S-to-P conversions (sediment–basement interfaces): amplitude relative to the S pulse and
# how long before the S they arrive.
SP_PRECURSOR_RATIO = (0.1, 0.4)
SP_PRECURSOR_LEAD_S = (0.3, 1.2)


def _pair_rngs(seed, pairs: pd.DataFrame, *keys):
    """One random stream per event × station pair, keyed by names (independent of the table's order)."""
    return [keyed_rng(seed, *keys, event_id, network, station)
            for event_id, network, station in zip(pairs["event_id"], pairs["network"], pairs["station"])]


def _scattered_polarisation(seed, pairs: pd.DataFrame, phase: str, components, scatter: float):
    """(vertical, north, east) of unit polarisations, each moved by a random vector of length up to
    ``scatter`` and scaled back to unit length: scattering and 3D structure near the station put P
    energy on the horizontals and S energy on the vertical, which ray theory in flat layers does not."""
    vectors = np.stack([np.asarray(c, dtype=float) for c in components])
    if scatter <= 0:
        return tuple(vectors)
    draws = np.array([rng.standard_normal(4) for rng in _pair_rngs(seed, pairs, "polarisation", phase)]).T
    direction = draws[:3] / np.maximum(np.linalg.norm(draws[:3], axis=0), 1e-12)
    length = scatter * (0.5 + 0.5 * np.tanh(draws[3]))  # in (0, scatter), centred on scatter / 2
    moved = vectors + length * direction
    moved *= np.linalg.norm(vectors, axis=0) / np.maximum(np.linalg.norm(moved, axis=0), 1e-12)
    return tuple(moved)


def _sp_precursors(seed, pairs: pd.DataFrame, p_direction: np.ndarray, probability: float) -> dict:
    """Columns of the S rows' S-to-P precursors: lead (s, 0 = none) and (Z, N, E) weights relative to
    the S pulse, polarised as the pair's P. Not an arrival anyone picks: a picker must learn to leave
    a small P-like onset just before a large S alone."""
    n = len(pairs)
    columns = {"precursor_lead_s": np.zeros(n), "precursor_z": np.zeros(n), "precursor_n": np.zeros(n),
               "precursor_e": np.zeros(n)}
    if probability <= 0:
        return columns
    draws = np.array([rng.uniform(size=3) for rng in _pair_rngs(seed, pairs, "sp-precursor")]).T
    has = draws[0] < probability
    ratio = np.where(has, SP_PRECURSOR_RATIO[0] + draws[1] * np.diff(SP_PRECURSOR_RATIO)[0], 0.0)
    columns["precursor_lead_s"] = np.where(has, SP_PRECURSOR_LEAD_S[0] + draws[2] * np.diff(SP_PRECURSOR_LEAD_S)[0], 0.0)
    for i, name in enumerate(("precursor_z", "precursor_n", "precursor_e")):
        columns[name] = ratio * p_direction[i]
    return columns


def _coda_arrival_counts(seed, pairs: pd.DataFrame, mean: float) -> np.ndarray:
    """How many discrete scattered arrivals each pair's coda holds (Poisson, ``mean``); where and how
    large they are is drawn when the coda is (:func:`pulses.phase_velocity`)."""
    if mean <= 0:
        return np.zeros(len(pairs), dtype=int)
    return np.array([rng.poisson(mean) for rng in _pair_rngs(seed, pairs, "coda-arrivals")], dtype=int)


def calibrate_and_predict(cfg, arrivals: pd.DataFrame, day_starts: list[pd.Timestamp]) -> pd.DataFrame:
    """Absolute levels from ML, coda durations, and the analyst view (snr, visible) per arrival.

    The snr's noise (``noise_rms_m_s``) is the station's noise, for S also the event's own P coda,
    and the codas of other events' earlier arrivals at that station (``other_codas_rms_m_s``)."""
    seed = cfg["seed"]
    arrivals = arrivals.copy()
    # filled per arrival in numpy (pandas' per-cell setter costs 50 µs a cell), columns set at the end
    computed = {column: np.full(len(arrivals), np.nan) for column in ("level_m_s", "coda_s", "peak_velocity_m_s", "noise_rms_m_s")}
    computed["snr"] = np.zeros(len(arrivals))
    # analyst-band coda RMS at onset on (Z, a horizontal): the background this arrival makes for others
    coda_onset_rms = np.full((2, len(arrivals)), np.nan)

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
        p_pulse, s_pulse = direct_pulse(p_row), direct_pulse(s_row)

        # S level from the Wood–Anderson amplitude that ML and distance demand.
        unit_s, onset = phase_velocity(seed, s_row, 1.0, CALIBRATION_CODA_S, unit_pulse=s_pulse)
        target_mm = 10 ** (s_row.ML - minus_log_a0(max(s_row.hypocentral_km, 1.0)))
        s_level = target_mm / wood_anderson_peak_mm(unit_s[1:])
        p_level = s_level * p_row.relative_level

        # P: noise-free band-limited peak on Z against the noise there.
        p_noise, p_noise_h = noise_z[phases["P"]], noise_h[phases["P"]]
        p_weight = np.abs([p_row.weight_z, p_row.weight_n, p_row.weight_e]).max()
        p_peak_direct = np.abs(p_pulse).max() * p_level * p_weight
        s_minus_p = max(s_row.travel_time_s - p_row.travel_time_s, 0.0)
        p_coda_s = max(coda_duration(p_row, p_peak_direct, min(p_noise, p_noise_h)), s_minus_p + PRE_S_WINDOW_S)
        p_signal, _ = phase_velocity(seed, p_row, p_level, p_coda_s, unit_pulse=p_pulse)
        p_band = _band_limited(p_signal)
        p_peak = float(np.abs(p_band[0, onset:onset + window]).max())

        # S: peak on the stronger horizontal against noise plus the P coda just before S.
        s_noise_h = noise_h[phases["S"]]
        s_peak_direct = np.abs(s_pulse).max() * s_level
        s_weight = np.abs([s_row.weight_z, s_row.weight_n, s_row.weight_e]).max()
        coda_onset_rms[:, phases["P"]] = coda_rms_at_onset(p_row, p_peak_direct)
        coda_onset_rms[:, phases["S"]] = coda_rms_at_onset(s_row, s_peak_direct * s_weight)
        s_coda_s = coda_duration(s_row, s_peak_direct, s_noise_h)
        s_signal, _ = phase_velocity(seed, s_row, s_level, s_coda_s, unit_pulse=s_pulse)
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

    # An analyst sees an onset against the noise and whatever codas of other events are ringing.
    arrivals["coda_s"] = computed["coda_s"]
    other_codas = other_event_coda_rms(arrivals, *coda_onset_rms)
    computed["other_codas_rms_m_s"] = other_codas
    computed["noise_rms_m_s"] = np.hypot(computed["noise_rms_m_s"], other_codas)
    with np.errstate(invalid="ignore"):
        computed["snr"] = np.nan_to_num(computed["peak_velocity_m_s"] / computed["noise_rms_m_s"], nan=0.0)
    for column, values in computed.items():
        arrivals[column] = values
    arrivals["in_gap"] = arrivals_in_gaps(cfg, arrivals)
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
