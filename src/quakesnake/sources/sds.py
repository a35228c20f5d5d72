"""Station-days from a local SeisComP Data Structure archive (data already on disk, the HPC case).

Waveforms come from ``source.sds_root`` (``YEAR/NET/STA/CHA.D/NET.STA.LOC.CHA.D.YEAR.DOY``)
through ObsPy's SDS client, which reads the neighbouring day files for the margins; StationXML
comes from ``source.inventory`` (one file, or a directory of them) and is cut to the station.
The channel groups of ``source.channels`` are tried in order, as for FDSN; no file of any of
them in the window means "no_data".
"""
from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import obspy
import pandas as pd
from obspy import Inventory, Stream, UTCDateTime
from obspy.clients.filesystem.sds import Client

from quakesnake.tabular import atomic_write
from quakesnake.sources.fdsn import (
    DAY_S, SourceError, StationDay, domain_parameters, stations_of_inventory, time_window, usable_codes,
)

log = logging.getLogger("quakesnake.sds")


def _root(source: dict) -> Path:
    root = Path(source["sds_root"])
    if not root.is_dir():
        raise SourceError(f"source.sds_root {root}: not a directory")
    return root


@lru_cache(maxsize=64)
def _read_inventory_file(path: str) -> Inventory:
    try:
        return obspy.read_inventory(path, format="STATIONXML")
    except Exception as exc:
        raise SourceError(f"{path}: cannot read StationXML ({exc})") from exc


def read_inventory(path, network: str | None = None, station: str | None = None) -> Inventory:
    """The StationXML file ``path``, or every ``*.xml`` of the directory ``path``.

    With ``network``/``station`` and a directory, files named ``NET.STA*.xml`` (the usual
    one-file-per-station layout) are read first, and all files only if they hold no such station.
    """
    path = Path(path)
    if path.is_file():
        return _read_inventory_file(str(path))
    if not path.is_dir():
        raise SourceError(f"source.inventory {path}: no such file or directory")
    files = sorted(path.glob("*.xml"))
    if not files:
        raise SourceError(f"source.inventory {path}: holds no *.xml StationXML file")
    if network and station:
        named = [f for f in files if f.name.startswith(f"{network}.{station}.")]
        inventory = _merged(named).select(network=network, station=station)
        if len(inventory):
            return inventory
    return _merged(files)


def _merged(files) -> Inventory:
    inventory = Inventory(networks=[], source="quakesnake sds")
    for file in files:
        inventory += _read_inventory_file(str(file))
    return inventory


def read_station_day(source: dict, station: dict, day: str, margin_s: float) -> StationDay:
    """Raw counts of one station-day from the archive and its response-level StationXML."""
    root = _root(source)
    net, sta = str(station["network"]), str(station["station"])
    start, end = time_window(day, margin_s)
    inventory = read_inventory(source["inventory"], net, sta).select(
        network=net, station=sta, starttime=start, endtime=end)
    client = Client(str(root))
    for pattern in source["channels"]:
        stream = Stream()
        for location in source["locations"]:
            stream += client.get_waveforms(net, sta, location, pattern, start, end)
        stream.trim(start, end)
        if not stream:
            continue
        channels = inventory.select(channel=pattern)
        missing = sorted({tr.id for tr in stream} - {f"{net}.{sta}.{c.location_code}.{c.code}"
                                                      for n in channels for s in n for c in s})
        if missing:
            raise SourceError(f"source.inventory {source['inventory']}: no StationXML for "
                              f"{', '.join(missing)} between {start} and {end}")
        log.info("%s.%s %s: %d trace(s) of %s from %s", net, sta, day, len(stream), pattern, root)
        return StationDay(stream, channels, "ok", f"{len(stream)} trace(s) of {pattern} from the SDS archive",
                          {"source": "sds", "channels": pattern})
    log.info("%s.%s %s: no file of %s in %s", net, sta, day, ",".join(source["channels"]), root)
    return StationDay(None, inventory if len(inventory) else None, "no_data",
                      f"no data of {net}.{sta} ({','.join(source['channels'])}) in the SDS archive for {day}",
                      {"source": "sds"})


def station_table(source: dict, days: list[str]) -> pd.DataFrame:
    """Stations of the inventory matching the selection (patterns, domain) during the days."""
    if not source.get("inventory"):
        raise SourceError("source.type sds needs source.inventory (StationXML) or a stations_file")
    _root(source)
    inventory = read_inventory(source["inventory"])
    window = dict(starttime=UTCDateTime(days[0]), endtime=UTCDateTime(days[-1]) + DAY_S,
                  **domain_parameters(source["domain"]))
    selected = Inventory(networks=[], source="quakesnake sds")
    for network in source["networks"]:
        for code in source["stations"]:
            for location in source["locations"]:
                for channel in source["channels"]:
                    selected += inventory.select(network=network, station=code, location=location,
                                                 channel=channel, **window)
    stations = usable_codes(stations_of_inventory(selected), f"source.inventory {source['inventory']}")
    if stations.empty:
        raise SourceError(f"source.inventory {source['inventory']}: no station matches the selection "
                          f"(networks {source['networks']}, stations {source['stations']}, "
                          f"channels {source['channels']}, domain {source['domain']}, days {days[0]}..{days[-1]})")
    return stations


# --------------------------------------------------------------------------------------------
# Building an archive from loose files


def sds_path(root, trace_id: str, day: UTCDateTime) -> Path:
    """The SDS day file of ``trace_id`` (NET.STA.LOC.CHA) on ``day``."""
    net, sta, loc, cha = trace_id.split(".")
    year, doy = day.year, day.julday
    return Path(root) / f"{year}" / net / sta / f"{cha}.D" / f"{net}.{sta}.{loc}.{cha}.D.{year}.{doy:03d}"


def archive_files(files: list, root) -> list[Path]:
    """Write miniSEED ``files`` (any cut: hours, days, several channels per file) into an SDS
    archive under ``root``, one file per channel and UTC day, merged with what the archive
    holds. ObsPy reads SDS archives but writes none, hence this. Returns the day files written.

    Overlapping copies of the same samples merge; conflicting samples keep the archive's
    (``Stream.merge(method=1)`` would interpolate, ``method=0`` masks: neither changes data).
    """
    streams: dict[tuple[str, str], Stream] = {}
    for path in map(Path, files):
        try:
            stream = obspy.read(str(path), format="MSEED")
        except Exception as exc:  # ObsPy raises many kinds on bad files; the user needs file and reason
            raise SourceError(f"{path}: cannot read as miniSEED ({exc})") from exc
        for trace in stream:
            day = UTCDateTime(trace.stats.starttime.date)
            while day < trace.stats.endtime:
                piece = trace.slice(day, day + DAY_S - trace.stats.delta / 2, nearest_sample=False)
                if piece.stats.npts:
                    streams.setdefault((trace.id, str(day.date)), Stream()).append(piece)
                day += DAY_S
    written = []
    for (trace_id, day), stream in sorted(streams.items()):
        target = sds_path(root, trace_id, UTCDateTime(day))
        if target.exists():
            stream = obspy.read(str(target), format="MSEED") + stream
        stream.merge(method=0, fill_value=None)
        stream = stream.split()  # gaps stay gaps (miniSEED holds no masked samples)
        atomic_write(target, lambda tmp, s=stream: s.write(str(tmp), format="MSEED"))
        written.append(target)
    return written


def inventory_of_archive(root, stations: pd.DataFrame) -> Inventory:
    """StationXML of every channel in the SDS archive ``root``, with the coordinates of the
    ``stations`` table (network, station, latitude, longitude[, elevation_m]) and no response:
    enough for picking and association (``source.inventory`` of an sds run), not for magnitudes,
    which need the instrument response."""
    from obspy.core.inventory import Channel, Network, Station

    coordinates = {(str(r["network"]), str(r["station"])): r for r in stations.to_dict("records")}
    channels: dict[tuple[str, str], dict[tuple[str, str], tuple[float, UTCDateTime, UTCDateTime]]] = {}
    for day_file in sorted(Path(root).glob("*/*/*/*.D/*")):
        for trace in obspy.read(str(day_file), format="MSEED", headonly=True):
            stats = trace.stats
            key = (stats.network, stats.station)
            if key not in coordinates:
                raise SourceError(f"{day_file}: station {stats.network}.{stats.station} is not in the station table")
            rate, start, end = channels.setdefault(key, {}).get(
                (stats.location, stats.channel), (stats.sampling_rate, stats.starttime, stats.endtime))
            channels[key][(stats.location, stats.channel)] = (rate, min(start, stats.starttime), max(end, stats.endtime))
    if not channels:
        raise SourceError(f"{root}: no SDS day files (YEAR/NET/STA/CHA.D/NET.STA.LOC.CHA.D.YEAR.DOY)")
    networks: dict[str, Network] = {}
    for (net, sta), by_channel in sorted(channels.items()):
        row = coordinates[(net, sta)]
        lat, lon, elevation = float(row["latitude"]), float(row["longitude"]), float(row.get("elevation_m", 0.0) or 0.0)
        start = min(s for _, s, _ in by_channel.values())
        station = Station(sta, lat, lon, elevation, start_date=UTCDateTime(start.date))
        for (loc, cha), (rate, _, _) in sorted(by_channel.items()):
            station.channels.append(Channel(cha, loc, lat, lon, elevation, 0.0, sample_rate=rate,
                                            start_date=UTCDateTime(start.date)))
        networks.setdefault(net, Network(net)).stations.append(station)
    return Inventory(networks=list(networks.values()), source="quakesnake sds-archive (no responses)")
