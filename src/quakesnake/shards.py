"""The shard table: which (network, station, day) the workflow processes.

Read at Snakemake parse time, so it must stay cheap and never touch the network.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd

from quakesnake import io


def day_range(start: str, end: str) -> list[str]:
    """Days from start to end, both inclusive, as 'YYYY-MM-DD'."""
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    if last < first:
        raise ValueError(f"days: end {end} is before start {start}")
    return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


def neighbour_days(day: str, days: list[str]) -> list[str]:
    """The day itself and the days just before and after it that belong to the run."""
    date = dt.date.fromisoformat(day)
    around = [(date + dt.timedelta(days=k)).isoformat() for k in (-1, 0, 1)]
    return [d for d in around if d in days]


def station_table(config: dict) -> pd.DataFrame:
    """Stations of the run: the configured station file, else the synthetic network."""
    if config.get("stations_file"):
        stations = io.read_stations(config["stations_file"])
    else:
        from quakesnake.sources import synthetic

        stations = synthetic.station_table(config["synthetic"])
    duplicated = stations.duplicated(["network", "station"])
    if duplicated.any():
        names = ", ".join(stations.loc[duplicated, "network"] + "." + stations.loc[duplicated, "station"])
        raise ValueError(f"station table lists {names} more than once")
    return stations.reset_index(drop=True)


def shard_table(stations: pd.DataFrame, days: list[str]) -> dict[str, list[tuple[str, str]]]:
    """Per day, the (network, station) shards to process."""
    codes = list(zip(stations["network"], stations["station"]))
    return {day: codes for day in days}

