"""The download stage: every station-day of one day from the configured source, in one job.

One job per day rather than per station-day: a year of 150 stations is 365 jobs, not 54,750, and
Snakemake's cost grows with the number of jobs (benchmarks/dag_scale.py). Inside the job the
station-days are fetched ``workers`` at a time (threads; at least 4 for FDSN, whose requests wait
on the network).

A station-day is written to a staging area (``staging_dir``, a
:class:`quakesnake.cache.ContentCache` keyed by what selects its data) as soon as it arrives.
Only when every station-day of the day has an answer (data or "no data") are they moved into
place; when some fail for real (every client and retry exhausted) the job fails naming them, and
the next run takes the ones already fetched from the staging area instead of asking again.

Outputs: one raw miniSEED per station-day (counts, as the source delivered them; 0 bytes: no
data), the StationXML of all stations of the day (``inventory.xml``, responses included; 0 bytes
when no station has metadata), and the day's status table (``ok`` / ``no_data`` and the reason
per station-day).
"""
from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import obspy
import pandas as pd

from quakesnake import tabular
from quakesnake.cache import ContentCache, content_key, file_digest
from quakesnake.errors import QuakesnakeError
from quakesnake.sources import fdsn, sds, synthetic

logger = logging.getLogger(__name__)

STAGED_SUFFIXES = (".mseed", ".xml", ".json")
FDSN_MIN_WORKERS = 4  # requests wait on the network, not on a core; more would be impolite to the servers
# Settings that select which data a station-day holds; clients, timeouts and retries only say how
# to get it, so changing them must not fetch again what is staged.
SELECTION_KEYS = ("type", "networks", "stations", "locations", "channels", "sds_root", "inventory")


class DownloadError(QuakesnakeError, RuntimeError):
    """Some station-days of a day could not be fetched (the others are staged for the next run)."""


def selection_key(source: dict, station: dict, day: str, margin_s: float, synthetic_cfg=None,
                  arrivals_digest: str | None = None) -> str:
    """The staging key of one station-day: what its data depends on."""
    selection = {k: source.get(k) for k in SELECTION_KEYS}
    where = {k: station.get(k) for k in ("network", "station", "location")}
    if source["type"] == "synthetic":
        return content_key("download", selection, station, day, margin_s, synthetic_cfg, arrivals_digest)
    return content_key("download", selection, where, day, margin_s)


def fetch_station_day(source: dict, station: dict, day: str, margin_s: float, *, synthetic_cfg=None,
                      arrivals: pd.DataFrame | None = None, token: str | None = None) -> fdsn.StationDay:
    """One station-day from the source: synthesised, read from an SDS archive, or from FDSN."""
    if source["type"] == "synthetic":
        stream, inventory = synthetic.synthesize_station_day(synthetic_cfg, pd.Series(station), day, arrivals,
                                                             margin_s=margin_s)
        return fdsn.StationDay(stream, inventory, "ok", "synthetic scenario", {"source": "synthetic"})
    if source["type"] == "sds":
        return sds.read_station_day(source, station, day, margin_s)
    return fdsn.fetch_station_day(source, station, day, margin_s, token=token)


def download_day(source: dict, stations: list[dict], day: str, margin_s: float, *, out_status, out_waveforms,
                 out_inventory, staging_dir, synthetic_cfg=None, arrivals_dir=None, token: str | None = None,
                 workers: int = 1) -> pd.DataFrame:
    """Fetch every station-day of ``day``; write the outputs; return the status table.

    ``stations`` (station-table records) and ``out_waveforms`` are parallel lists.
    """
    out_waveforms = list(map(Path, out_waveforms))
    if len(stations) != len(out_waveforms):
        raise ValueError(f"{len(stations)} stations but {len(out_waveforms)} waveform outputs")
    arrivals = digest = None
    if source["type"] == "synthetic":
        arrivals = synthetic.read_arrivals(arrivals_dir)
        digest = file_digest(Path(arrivals_dir) / "arrivals.parquet")
    staging = ContentCache(Path(staging_dir) / day)

    def staged(station: dict) -> tuple[str, dict[str, Path] | Exception]:
        name = f"{station['network']}.{station['station']}"
        key = selection_key(source, station, day, margin_s, synthetic_cfg, digest)
        found = staging.get(name, key, STAGED_SUFFIXES)
        if found:
            logger.info("%s %s: staged by an earlier attempt", name, day)
            return name, found
        try:
            result = fetch_station_day(source, station, day, margin_s, synthetic_cfg=synthetic_cfg,
                                       arrivals=arrivals, token=token)
        except Exception as exc:  # a real failure of this station-day; the others go on
            logger.error("%s %s: %s", name, day, exc)
            return name, exc
        paths = {suffix: staging.path(name, key, suffix + ".new") for suffix in STAGED_SUFFIXES}
        fdsn.write_station_day(result, paths[".mseed"], paths[".xml"], paths[".json"])
        return name, staging.put(name, key, paths, move=True)

    if source["type"] == "fdsn":
        workers = max(workers, FDSN_MIN_WORKERS)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="download") as pool:
        answers = list(pool.map(staged, stations))
    failures = [(name, answer) for name, answer in answers if isinstance(answer, Exception)]
    if failures:
        listed = "; ".join(f"{name}: {exc}" for name, exc in failures)
        raise DownloadError(
            f"{day}: {len(failures)} of {len(stations)} station-day(s) could not be fetched ({listed}). "
            f"The {len(stations) - len(failures)} fetched are staged in {staging.root}; the next run fetches only the rest.")

    rows, inventory = [], obspy.Inventory(networks=[])
    for (name, files), out in zip(answers, out_waveforms):
        network, station = tabular.shard_code(out)
        record = json.loads(files[".json"].read_text())
        rows.append(tabular.shard_status_row(day, network, station, record))
        if files[".xml"].stat().st_size:
            inventory += obspy.read_inventory(str(files[".xml"]), format="STATIONXML")
    tabular.atomic_write(out_inventory, lambda tmp: inventory.write(str(tmp), format="STATIONXML")
                       if len(inventory.networks) else tmp.write_bytes(b""))
    for (name, files), out in zip(answers, out_waveforms):
        out.parent.mkdir(parents=True, exist_ok=True)
        os.replace(files[".mseed"], out)
        for suffix in (".xml", ".json"):
            files[suffix].unlink(missing_ok=True)
    table = pd.DataFrame(rows, columns=tabular.SHARD_STATUS_TABLE_COLUMNS)
    tabular.write_table(table, out_status)
    counts = table["status"].value_counts().to_dict()
    logger.info("%s: %d station-days (%s)", day, len(table), ", ".join(f"{n} {s}" for s, n in counts.items()))
    return table

