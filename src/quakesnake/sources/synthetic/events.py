"""Events of a synthetic scenario: generated (Gutenberg–Richter magnitudes, Poisson origin times,
local events under stations, swarms, an aftershock sequence) or taken from a real catalog (twin mode), each with a random
double-couple mechanism and stress drop."""
from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd

from quakesnake import tabular
from quakesnake.sources.synthetic.aftershocks import sequence_events
from quakesnake.sources.synthetic.earthquake_sources import source_parameters, truncated_gutenberg_richter
from quakesnake.sources.synthetic.settings import DAY_S, day_label, keyed_rng, midnight, resolve_config
from quakesnake.sources.synthetic.stations import station_table

log = logging.getLogger(__name__)

# Magnitude of a twin event: the first of these columns that has a value.
TWIN_MAGNITUDE_COLUMNS = ["ML", "magnitude", "MD"]


def generate_events(cfg: dict, days: list[str], stations: pd.DataFrame | None = None) -> pd.DataFrame:
    """Generated events of ``days``: background (Poisson, uniform in region and depth range, a
    ``local_events`` fraction of them moved close under ``stations``, by default the config's)
    plus a possible swarm per day and, with ``aftershocks``, a mainshock and its Omori–Utsu
    aftershocks; ML from a truncated Gutenberg–Richter law, a random double-couple mechanism and
    stress drop each. Each day depends only on (seed, day)."""
    cfg = resolve_config(cfg)
    if stations is None and cfg["local_events"]["fraction"] > 0:
        stations = station_table(cfg)
    frames = [_generated_events(cfg, day, stations) for day in sorted({midnight(day) for day in days})]
    return pd.concat(frames, ignore_index=True)


def _generated_events(cfg: dict, day, stations: pd.DataFrame | None = None) -> pd.DataFrame:
    """Background events, a possible swarm and the aftershock sequence's events of one day."""
    rng = keyed_rng(cfg["seed"], "events", day_label(day))
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
    _move_local_events(frame, cfg["local_events"], stations, keyed_rng(cfg["seed"], "local-events", day_label(day)))
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
        truncated_gutenberg_richter(rng, len(frame), magnitude["min"], magnitude["max"], magnitude["b_value"]), 2
    )
    frame = frame.assign(**source_parameters(rng, len(frame)))
    # An aftershock sequence has random streams of its own: the background stays what it was.
    sequence = sequence_events(cfg, day)
    if len(sequence):
        frame = pd.concat([frame, sequence], ignore_index=True)
    frame = frame.sort_values("offset_s", ignore_index=True)
    start_of_day = midnight(day)
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


def catalog_events(cfg: dict, day_starts: list[pd.Timestamp]) -> tuple[pd.DataFrame, pd.DataFrame]:
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
    sources = [source_parameters(keyed_rng(cfg["seed"], "source", event_id), 1) for event_id in events["event_id"]]
    for key in ["strike_deg", "dip_deg", "rake_deg", "stress_drop_mpa"]:
        events[key] = [float(source[key][0]) for source in sources]
    picks["event_id"] = picks["event_id"].astype(str)
    picks["phase"] = tabular.phase_letters(picks["phase"])
    picks = picks[picks["event_id"].isin(events["event_id"])]
    return events, picks
