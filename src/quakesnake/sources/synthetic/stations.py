"""Stations of a synthetic scenario (generated, or real ones from a file) and their site constants."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from quakesnake import tabular
from quakesnake.sources.synthetic.settings import keyed_rng, resolve_config

KAPPA_RANGE_S = (0.01, 0.04)  # site kappa of S; P's is vs/vp of it (same Q near the surface)
# A soft surface layer under each station rings: echoes every two-way time τ, each one
# −r times the last (resonance at 1/(2τ)), so a direct arrival is a short wavetrain, not a spike.
SITE_DELAY_P_RANGE_S = (0.03, 0.15)
SITE_S_OVER_P_DELAY_RANGE = (2.0, 3.0)
SITE_REFLECTION_RANGE = (0.3, 0.6)
# Horizontal/vertical amplitude of cultural noise (above 1 Hz): the same soft surface layer that
# rings for S amplifies horizontal noise.
HORIZONTAL_CULTURAL_FACTOR_RANGE = (1.2, 2.0)
STATION_MICROSEISM_SIGMA_DB = 3.0


def location_code(station: pd.Series) -> str:
    """A station row's location code; '' when missing (NaN after a CSV round trip)."""
    location = station.get("location", "")
    return "" if location is None or (isinstance(location, float) and math.isnan(location)) else str(location)


def station_properties(cfg: dict, network: str, station: str) -> dict:
    """Site constants of a station: noise level, microseism offset, kappa, surface-layer echoes."""
    rng = keyed_rng(cfg["seed"], "station", network, station)
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
    rng = keyed_rng(cfg["seed"], "stations")
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
