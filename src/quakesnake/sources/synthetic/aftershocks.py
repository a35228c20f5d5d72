"""An aftershock sequence: one mainshock and aftershocks whose rate decays by the Omori–Utsu law
``K / (t + c)^p`` (t days after the mainshock), on top of the background events.

``K`` follows from ``n_events_first_day`` (the expected number of aftershocks in the first 24 h).
A day's aftershocks are a Poisson number with the rate's integral over the day as mean, their times
the inverse of the integrated rate at uniform draws between its values at the day's ends: an exact
sample of the inhomogeneous Poisson process, vectorised. Magnitudes follow a truncated
Gutenberg–Richter law up to Båth's law (the largest aftershock ~1.2 below the mainshock) unless
given; epicentres are uniform over a disc of ``radius_km`` around the mainshock's, depths spread
normally around its depth. Each day's draws depend only on (seed, day), so days stay independent.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from quakesnake.sources.synthetic.earthquake_sources import source_parameters, truncated_gutenberg_richter
from quakesnake.sources.synthetic.settings import DAY_S, day_label, keyed_rng, largest_aftershock_magnitude, midnight

KM_PER_DEGREE = 111.195
MIN_DEPTH_KM = 0.5


def omori_utsu_count(t_days, c_days: float, p: float) -> np.ndarray:
    """Integral of ``1 / (t + c)^p`` from 0 to ``t_days``: the expected number of aftershocks for K = 1."""
    t = np.asarray(t_days, dtype=float)
    if math.isclose(p, 1.0):
        return np.log1p(t / c_days)
    return (c_days ** (1.0 - p) - (t + c_days) ** (1.0 - p)) / (p - 1.0)


def omori_utsu_time(count, c_days: float, p: float) -> np.ndarray:
    """Inverse of :func:`omori_utsu_count`: the time (days) by which ``count`` aftershocks (K = 1) are expected."""
    n = np.asarray(count, dtype=float)
    if math.isclose(p, 1.0):
        return c_days * np.expm1(n)
    return (c_days ** (1.0 - p) - (p - 1.0) * n) ** (1.0 / (1.0 - p)) - c_days


def omori_productivity(settings: dict) -> float:
    """K of the Omori–Utsu rate (events per day^(1-p)) that gives ``n_events_first_day`` in the first day."""
    return settings["n_events_first_day"] / float(omori_utsu_count(1.0, settings["omori_c_days"], settings["omori_p"]))


def mainshock(cfg: dict) -> dict | None:
    """The mainshock (time, latitude, longitude, depth_km, ML), or None when the sequence is off."""
    settings = cfg["aftershocks"]
    if settings["mainshock_magnitude"] is None:
        return None
    region = cfg["region"]
    latitude = settings["latitude"]
    longitude = settings["longitude"]
    return {
        "time": pd.Timestamp(settings["mainshock_time"]).tz_localize(None),
        "latitude": (region["lat_min"] + region["lat_max"]) / 2 if latitude is None else float(latitude),
        "longitude": (region["lon_min"] + region["lon_max"]) / 2 if longitude is None else float(longitude),
        "depth_km": float(settings["depth_km"]),
        "ML": float(settings["mainshock_magnitude"]),
    }


def sequence_events(cfg: dict, day) -> pd.DataFrame:
    """The mainshock (when it falls on ``day``) and the day's aftershocks: offset_s (seconds after the
    day's start), latitude, longitude, depth_km, kind, ML and source parameters; empty when off."""
    main = mainshock(cfg)
    if main is None:
        return pd.DataFrame()
    settings = cfg["aftershocks"]
    start = midnight(day)
    main_offset_s = (main["time"] - start).total_seconds()
    c, p = settings["omori_c_days"], settings["omori_p"]
    # The day's span in days after the mainshock; nothing before it.
    t0, t1 = max(-main_offset_s, 0.0) / DAY_S, (DAY_S - main_offset_s) / DAY_S
    frames = []
    if 0.0 <= main_offset_s < DAY_S:
        frames.append(pd.DataFrame({
            "offset_s": [main_offset_s], "latitude": [main["latitude"]], "longitude": [main["longitude"]],
            "depth_km": [main["depth_km"]], "kind": "mainshock", "ML": [main["ML"]],
            **source_parameters(keyed_rng(cfg["seed"], "mainshock"), 1),
        }))
    if t1 > 0.0:
        rng = keyed_rng(cfg["seed"], "aftershocks", day_label(day))
        k = omori_productivity(settings)
        low, high = omori_utsu_count([t0, t1], c, p)
        n = rng.poisson(k * (high - low))
        t_days = omori_utsu_time(rng.uniform(low, high, n), c, p)
        distance = settings["radius_km"] * np.sqrt(rng.random(n))
        azimuth = rng.uniform(0.0, 2 * np.pi, n)
        frames.append(pd.DataFrame({
            "offset_s": main_offset_s + t_days * DAY_S,
            "latitude": main["latitude"] + distance * np.cos(azimuth) / KM_PER_DEGREE,
            "longitude": main["longitude"] + distance * np.sin(azimuth) / (
                KM_PER_DEGREE * math.cos(math.radians(main["latitude"]))),
            "depth_km": np.clip(main["depth_km"] + rng.normal(0.0, settings["depth_spread_km"], n), MIN_DEPTH_KM, None),
            "kind": "aftershock",
            "ML": np.round(truncated_gutenberg_richter(rng, n, settings["min_magnitude"],
                                                       largest_aftershock_magnitude(settings),
                                                       settings["b_value"]), 2),
            **source_parameters(rng, n),
        }))
    frames = [frame for frame in frames if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
