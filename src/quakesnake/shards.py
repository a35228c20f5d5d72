"""The shard table: which (network, station, day) the workflow processes.

Read at Snakemake parse time, so it must stay cheap: the only network access is the one FDSN
station query of a selection never asked before (its answer is cached under ``results/``).
"""
from __future__ import annotations

import datetime as dt

import pandas as pd

from quakesnake import tabular


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


def station_table(config: dict, cache_dir="results/station_queries") -> pd.DataFrame:
    """Stations of the run: the configured station file, else what the source's selection finds.

    ``fdsn``: the data centres' station services, asked once per selection and kept in
    ``cache_dir``, so that dry runs see every shard; ``sds``: the archive's StationXML;
    ``synthetic``: the generated network.
    """
    source = config.get("source") or {}
    kind = source.get("type", "synthetic")
    if kind == "fdsn":
        from quakesnake.sources import fdsn

        fdsn.check_clients(source["clients"])
    if config.get("stations_file"):
        stations = tabular.read_stations(config["stations_file"])
    elif kind in ("fdsn", "sds"):
        from quakesnake.sources import sds

        days = day_range(config["days"]["start"], config["days"]["end"])
        stations = fdsn.cached_station_table(source, days, cache_dir) if kind == "fdsn" else sds.station_table(source, days)
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

