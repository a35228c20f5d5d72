"""The ``synthetic:`` settings (every default from the schema), the seeding scheme and day names.

Every random draw of the generator comes from :func:`keyed_rng` with stable names (seed, what is
drawn, network, station, day, event), so each station-day and each day's events are reproducible
on their own, in any process and in any order.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd

from quakesnake.config import section_defaults
from quakesnake.errors import QuakesnakeError

# Every key and default: the schema's synthetic section. stations_file is the workflow's
# top-level one (real stations for the scenario), which the workflow passes in here.
DEFAULTS = {**section_defaults("synthetic"), "stations_file": None}


class SyntheticConfigError(QuakesnakeError, ValueError):
    """A ``synthetic:`` setting that is unknown or impossible; the message names it."""


SAMPLING_RATE_HZ = 100.0
DAY_S = 86400.0
# Båth's law: the largest aftershock is on average this much smaller than its mainshock.
BATH_MAGNITUDE_GAP = 1.2


def resolve_config(cfg: dict | None) -> dict:
    """``cfg`` merged over :data:`DEFAULTS`; unknown keys are an error naming the key."""

    def merge(defaults: dict, given: dict, prefix: str) -> dict:
        unknown = sorted(set(given) - set(defaults))
        if unknown:
            raise SyntheticConfigError(f"synthetic config: unknown key(s) {', '.join(prefix + k for k in unknown)} "
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
        raise SyntheticConfigError(f"synthetic config: region must have lat_min < lat_max and lon_min < lon_max, got {region}")
    if not 0 <= merged["depth_km"][0] <= merged["depth_km"][1]:
        raise SyntheticConfigError(f"synthetic config: depth_km must be [min, max] with 0 <= min <= max, got {merged['depth_km']}")
    magnitude = merged["magnitude"]
    if not magnitude["min"] < magnitude["max"] or magnitude["b_value"] <= 0:
        raise SyntheticConfigError(f"synthetic config: magnitude needs min < max and b_value > 0, got {magnitude}")
    if int(merged["n_stations"]) < 1:
        raise SyntheticConfigError("synthetic config: n_stations must be at least 1")
    for key in ["gap_probability", "swarm_probability_per_day"]:
        if not 0 <= merged[key] <= 1:
            raise SyntheticConfigError(f"synthetic config: {key} must be a probability, got {merged[key]}")
    local = merged["local_events"]
    if not (0 <= local["fraction"] <= 1 and local["max_distance_km"] > 0 and 0 <= local["depth_km"][0] <= local["depth_km"][1]):
        raise SyntheticConfigError("synthetic config: local_events needs 0 <= fraction <= 1, max_distance_km > 0 and "
                         f"depth_km [min, max] with 0 <= min <= max, got {local}")
    _check_aftershocks(merged["aftershocks"])
    sensors = merged["sensors"]
    if sensors["short_period_fraction"] + sensors["accelerometer_fraction"] > 1:
        raise SyntheticConfigError("synthetic config: sensors.short_period_fraction + sensors.accelerometer_fraction "
                                   f"must not exceed 1, got {sensors}")
    return merged


def largest_aftershock_magnitude(settings: dict) -> float:
    """ML of the largest aftershock the ``aftershocks`` settings allow: ``max_magnitude``, else Båth's law."""
    if settings["max_magnitude"] is not None:
        return float(settings["max_magnitude"])
    return float(settings["mainshock_magnitude"]) - BATH_MAGNITUDE_GAP


def _check_aftershocks(settings: dict) -> None:
    if settings["mainshock_magnitude"] is None:
        return
    if settings["mainshock_time"] is None:
        raise SyntheticConfigError("synthetic config: aftershocks.mainshock_time is required with "
                                   "aftershocks.mainshock_magnitude (a UTC time such as 2024-03-01T02:00:00)")
    try:
        pd.Timestamp(settings["mainshock_time"])
    except ValueError as exc:
        raise SyntheticConfigError(f"synthetic config: aftershocks.mainshock_time {settings['mainshock_time']!r} "
                                   f"is no time ({exc})") from None
    largest = largest_aftershock_magnitude(settings)
    if not settings["min_magnitude"] < largest:
        raise SyntheticConfigError(f"synthetic config: aftershocks.min_magnitude {settings['min_magnitude']} must lie "
                                   f"below the largest aftershock's ML {largest:g} (aftershocks.max_magnitude, "
                                   "null = mainshock_magnitude - 1.2)")


def keyed_rng(*keys) -> np.random.Generator:
    """A generator seeded by stable names: the same keys give the same draws in any process."""
    digest = hashlib.sha256("|".join(map(str, keys)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:16], "little"))


def midnight(day) -> pd.Timestamp:
    """00:00 of ``day`` (a date string or timestamp)."""
    return pd.Timestamp(str(day)).normalize()


def day_label(day) -> str:
    """``day`` as 'YYYY-MM-DD', the day's name in random-stream keys."""
    return midnight(day).strftime("%Y-%m-%d")
