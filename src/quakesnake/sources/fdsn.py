"""Real station-days from FDSN web services: ObsPy clients in a fallback order.

One station-day asks the clients in turn (the client the station table found the station at
first): the station service for StationXML at response level, then the dataselect service for
the first channel group (``source.channels``, in priority order) the station has. Timeouts,
5xx, 429, broken connections and truncated answers are retried with exponential backoff; HTTP
204 and empty answers mean "this client holds no such data" (a 404 is an error: no ``nodata=404``
is asked for, so it means a wrong URL, not an empty archive). The station-day is "no_data"
only when every client answered so; when a client kept failing instead, the job fails with
every client's outcome, so that a rerun asks again rather than recording a gap that is not one.

An EIDA token (restricted data) is read from the file that ``source.eida_token`` or
``$QUAKESNAKE_EIDA_TOKEN`` names and handed to ObsPy as text; neither the text nor the path
reaches a log, a status file or an error message (:func:`_scrub`).

:class:`StationDay` and :func:`write_station_day` are shared with the SDS and synthetic sources.
"""
from __future__ import annotations

import hashlib
import http.client
import io as _io
import json
import logging
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import obspy
import pandas as pd
from obspy import Inventory, Stream, UTCDateTime
from obspy.clients.fdsn import Client
from obspy.clients.fdsn.header import (
    FDSNBadGatewayException, FDSNException, FDSNNoDataException,
    FDSNInternalServerException, FDSNServiceUnavailableException, FDSNTimeoutException,
    FDSNTooManyRequestsException,
)
from obspy.clients.fdsn.mass_downloader import CircularDomain, RectangularDomain
from obspy.geodetics import kilometers2degrees
from obspy.io.mseed import InternalMSEEDWarning

from quakesnake import tabular
from quakesnake.errors import QuakesnakeError

log = logging.getLogger("quakesnake.fdsn")

TOKEN_ENV = "QUAKESNAKE_EIDA_TOKEN"
DAY_S = 86400.0
# Station and network codes the workflow's wildcards accept (Snakefile wildcard_constraints).
NETWORK_CODE = re.compile(r"^[A-Z0-9]{1,2}$")
STATION_CODE = re.compile(r"^[A-Z0-9]{1,5}$")

_TRANSIENT = (
    FDSNTimeoutException, FDSNInternalServerException, FDSNBadGatewayException,
    FDSNServiceUnavailableException, FDSNTooManyRequestsException,
    http.client.HTTPException,  # IncompleteRead: fewer bytes than Content-Length announced
    OSError,  # connection reset, socket timeout while reading the body
)
# libmseed's words for a cut answer; ObsPy only warns and returns the records before the cut.
_CUT_MSEED = re.compile(r"end of file|not enough to constitute", re.IGNORECASE)


class SourceError(QuakesnakeError, RuntimeError):
    """A station-day could not be fetched: every client failed or the configuration is unusable."""


class TruncatedAnswer(Exception):
    """An answer that cannot be read completely (cut miniSEED, broken StationXML): asked again."""


@dataclass
class StationDay:
    """What a source found for one station-day; ``stream``/``inventory`` None when absent."""

    stream: Stream | None
    inventory: Inventory | None
    status: str  # tabular.SHARD_STATUSES: "ok" or "no_data"
    reason: str = ""
    details: dict = field(default_factory=dict)


def write_station_day(result: StationDay, waveforms, inventory, status) -> dict:
    """Write miniSEED, StationXML (0 bytes each when absent) and then the shard status, each atomically."""
    tabular.atomic_write(waveforms, lambda tmp: result.stream.write(str(tmp), format="MSEED")
                  if result.stream else tmp.write_bytes(b""))
    tabular.atomic_write(inventory, lambda tmp: result.inventory.write(str(tmp), format="STATIONXML")
                  if result.inventory else tmp.write_bytes(b""))
    return tabular.write_shard_status(status, "download", result.status, result.reason, **result.details)


# ----------------------------------------------------------------------------- selection

def time_window(day: str, margin_s: float) -> tuple[UTCDateTime, UTCDateTime]:
    """[day − margin, day + 1 d + margin]: the station-day with its share of the neighbouring days."""
    start = UTCDateTime(day)
    return start - margin_s, start + DAY_S + margin_s


def domain_parameters(domain: dict | None) -> dict:
    """FDSN station-query parameters of a rectangular or circular domain (km radii to degrees)."""
    if not domain:
        return {}
    if domain["type"] == "rectangle":
        return RectangularDomain(minlatitude=domain["lat_min"], maxlatitude=domain["lat_max"],
                                 minlongitude=domain["lon_min"], maxlongitude=domain["lon_max"]).get_query_parameters()
    return CircularDomain(latitude=domain["latitude"], longitude=domain["longitude"],
                          minradius=kilometers2degrees(domain.get("min_radius_km", 0.0)),
                          maxradius=kilometers2degrees(domain["radius_km"])).get_query_parameters()


def stations_of_inventory(inventory: Inventory, client: str | None = None) -> pd.DataFrame:
    """One row per (network, station) of an inventory; the latest epoch's coordinates win."""
    rows = []
    for network in inventory:
        for station in sorted(network, key=lambda s: s.start_date or UTCDateTime(0)):
            rows.append({"network": network.code, "station": station.code, "location": "",
                         "latitude": station.latitude, "longitude": station.longitude,
                         "elevation_m": station.elevation, **({"client": client} if client else {})})
    frame = pd.DataFrame(rows, columns=tabular.STATION_COLUMNS + (["client"] if client else []))
    return frame.drop_duplicates(["network", "station"], keep="last").reset_index(drop=True)


def usable_codes(stations: pd.DataFrame, where: str) -> pd.DataFrame:
    """Drop (with a warning) stations whose codes the workflow's wildcards cannot name."""
    usable = stations["network"].str.match(NETWORK_CODE) & stations["station"].str.match(STATION_CODE)
    if not usable.all():
        names = ", ".join(stations.loc[~usable, "network"] + "." + stations.loc[~usable, "station"])
        log.warning("%s: skipping station(s) %s: codes outside [A-Z0-9]{1,2}.[A-Z0-9]{1,5}", where, names)
    return stations[usable].reset_index(drop=True)


# ---------------------------------------------------------------------------- the token

def eida_token(token_path: str | None) -> str | None:
    """Text of the EIDA token file named by ``token_path`` or ``$QUAKESNAKE_EIDA_TOKEN``; None if neither."""
    path = token_path or os.environ.get(TOKEN_ENV)
    if not path:
        return None
    try:
        text = Path(path).expanduser().read_text()
    except OSError as exc:  # the message names the setting, never the path
        raise SourceError(f"cannot read the EIDA token file named by source.eida_token or ${TOKEN_ENV}: "
                          f"{exc.strerror or type(exc).__name__}") from None
    if not text.strip():
        raise SourceError(f"the EIDA token file named by source.eida_token or ${TOKEN_ENV} is empty")
    return text


def _scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        if secret and secret.strip():
            text = text.replace(secret, "<token>").replace(secret.strip(), "<token>")
    return text


def _describe(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """One line: the exception kind and the first line of its message (ObsPy appends server pages)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return _scrub(f"{type(exc).__name__}: {first}" if first else type(exc).__name__, secrets)


# ------------------------------------------------------------------------- transport

def _transient(exc: BaseException) -> bool:
    if isinstance(exc, (*_TRANSIENT, TruncatedAnswer)):
        return True
    if isinstance(exc, FDSNException):  # ObsPy's code-less failures: refused, reset, DNS, unknown 5xx
        message = str(exc)
        code = re.search(r"Unknown HTTP code: (\d+)", message)
        return (message.startswith(("Unknown Error", "No FDSN services could be discovered"))
                or (code is not None and int(code.group(1)) >= 500))
    return False


def with_retries(call, what: str, retries: int, backoff_s: float, secrets: tuple[str, ...] = ()):
    """``call()``, again after backoff_s, 2·backoff_s, … while it fails transiently, at most ``retries`` times."""
    for attempt in range(retries + 1):
        try:
            return call()
        except Exception as exc:
            if not _transient(exc) or attempt == retries:
                raise
            wait = backoff_s * 2**attempt
            log.warning("%s: %s; retry %d of %d in %.1f s", what, _describe(exc, secrets), attempt + 1, retries, wait)
            time.sleep(wait)


def open_client(name: str, timeout_s: float, token: str | None = None) -> Client:
    """ObsPy client of a data centre (short name or URL), with the EIDA token where the centre takes one.

    Without a token no service discovery is made (no extra round trips per station-day); with
    one, discovery tells whether the centre offers EIDA authentication at all.
    """
    if token is None:
        return Client(name, timeout=timeout_s, _discover_services=False)
    client = Client(name, timeout=timeout_s, service_mappings={"event": None})
    if not client.services.get("eida-auth"):
        log.info("%s offers no EIDA token authentication: open data only", name)
        return client
    try:
        client.set_eida_token(token)
    except ValueError:  # ObsPy's check of the token's form; the message stays ours
        raise SourceError("the EIDA token file named by source.eida_token or "
                          f"${TOKEN_ENV} does not hold a PGP-signed EIDA token") from None
    return client


def check_clients(clients: list[str]) -> None:
    """Reject unknown short names and malformed URLs before any request (ObsPy's own check, offline)."""
    for name in clients:
        try:
            Client(name, _discover_services=False)
        except ValueError as exc:
            raise SourceError(f"source.clients: {exc}") from None


def read_mseed_answer(data: bytes) -> Stream:
    """Parse a dataselect answer; a cut or unreadable one raises :class:`TruncatedAnswer`."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            stream = obspy.read(_io.BytesIO(data), format="MSEED")
        except Exception as exc:
            raise TruncatedAnswer(f"unreadable miniSEED answer of {len(data)} bytes ({exc})") from exc
    for warning in caught:
        if issubclass(warning.category, InternalMSEEDWarning) and _CUT_MSEED.search(str(warning.message)):
            raise TruncatedAnswer(f"cut miniSEED answer of {len(data)} bytes ({warning.message})")
        warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    return stream


def read_stationxml_answer(data: bytes) -> Inventory:
    try:
        return obspy.read_inventory(_io.BytesIO(data), format="STATIONXML")
    except Exception as exc:
        raise TruncatedAnswer(f"unreadable StationXML answer of {len(data)} bytes ({exc})") from exc


def _answer_bytes(request, **query) -> bytes:
    """The raw bytes a client request (``get_stations``, ``get_waveforms``) answers; b"" for no data (204)."""
    buffer = _io.BytesIO()
    try:
        request(filename=buffer, **query)
    except FDSNNoDataException:
        return b""
    return buffer.getvalue()


def get_inventory(client: Client, **query) -> Inventory | None:
    """Station-service answer as an Inventory; None for no data (204, empty answer, no stations)."""
    data = _answer_bytes(client.get_stations, **query)
    if not data.strip():
        return None
    inventory = read_stationxml_answer(data)
    return inventory if inventory.get_contents()["stations"] else None


def get_stream(client: Client, **query) -> Stream | None:
    """Dataselect answer as a Stream; None for no data (204, empty answer)."""
    data = _answer_bytes(client.get_waveforms, **query)
    return read_mseed_answer(data) if data else None


# ---------------------------------------------------------------------------- station-day

def client_order(source: dict, station: dict) -> list[str]:
    """The configured clients, the one the station table found this station at first."""
    clients = list(source["clients"])
    home = station.get("client")
    if isinstance(home, str) and home:
        clients = [home] + [c for c in clients if c != home]
    return clients


def fetch_station_day(source: dict, station: dict, day: str, margin_s: float, token: str | None = None) -> StationDay:
    """Raw counts and response-level StationXML of one station-day from the first client holding them.

    Raises :class:`SourceError` naming every client's outcome when none delivered data and at
    least one failed (rather than answering "no data").
    """
    net, sta = str(station["network"]), str(station["station"])
    start, end = time_window(day, margin_s)
    secrets = (token,) if token else ()
    retry = dict(retries=source["retries"], backoff_s=source["backoff_s"], secrets=secrets)
    locations = ",".join(source["locations"])
    tried, failed, metadata = [], False, None
    for name in client_order(source, station):
        what = f"{net}.{sta} {day} at {name}"
        try:
            client = with_retries(lambda: open_client(name, source["timeout_s"], token), what + " (connect)", **retry)
            inventory = with_retries(lambda: get_inventory(
                client, network=net, station=sta, location=locations, channel=",".join(source["channels"]),
                starttime=start, endtime=end, level="response"), what + " (station)", **retry)
            if inventory is None:
                tried.append({"client": name, "outcome": "no station metadata"})
                continue
            metadata = metadata or inventory
            for pattern in [p for p in source["channels"] if inventory.select(channel=p)]:
                stream = with_retries(lambda: get_stream(
                    client, network=net, station=sta, location=locations, channel=pattern,
                    starttime=start, endtime=end), f"{what} (dataselect {pattern})", **retry)
                if stream:
                    stream.trim(start, end)
                if stream:
                    tried.append({"client": name, "outcome": f"ok: {len(stream)} trace(s) of {pattern}"})
                    log.info("%s: %d trace(s) of %s", what, len(stream), pattern)
                    return StationDay(stream, inventory.select(channel=pattern), "ok",
                                      f"{len(stream)} trace(s) of {pattern} from {name}",
                                      {"source": "fdsn", "client": name, "channels": pattern, "tried": tried})
            tried.append({"client": name, "outcome": "station metadata but no waveforms"})
        except SourceError:
            raise
        except Exception as exc:
            failed = True
            tried.append({"client": name, "outcome": f"failed: {_describe(exc, secrets)}"})
            log.warning("%s: gave up: %s", what, _describe(exc, secrets))
    outcomes = "; ".join(f"{t['client']}: {t['outcome']}" for t in tried)
    if failed:
        raise SourceError(f"{net}.{sta} {day}: no client delivered data and not every client answered "
                          f"(a rerun asks again): {outcomes}")
    log.info("%s.%s %s: no data at any client (%s)", net, sta, day, outcomes)
    return StationDay(None, metadata, "no_data", f"no client holds data of {net}.{sta} for {day}",
                      {"source": "fdsn", "tried": tried})


# ---------------------------------------------------------------------------- station table

def selection(source: dict, days: list[str]) -> dict:
    """What decides the station list: the cache key of :func:`cached_station_table`."""
    keys = ("clients", "networks", "stations", "locations", "channels", "domain")
    return {**{k: source[k] for k in keys}, "days": [days[0], days[-1]]}


def query_station_table(source: dict, days: list[str]) -> tuple[pd.DataFrame, list[str]]:
    """Stations matching the selection at every client (first client wins a station) and the failures."""
    query = {"network": ",".join(source["networks"]), "station": ",".join(source["stations"]),
             "location": ",".join(source["locations"]), "channel": ",".join(source["channels"]),
             "starttime": UTCDateTime(days[0]), "endtime": UTCDateTime(days[-1]) + DAY_S,
             "level": "station", **domain_parameters(source["domain"])}
    # One repeat at most: this runs while Snakemake builds the DAG, and an incomplete list is
    # not cached, so the next run asks again anyway.
    retry = dict(retries=min(source["retries"], 1), backoff_s=source["backoff_s"])
    tables, failures = [], []
    for name in source["clients"]:
        try:
            client = with_retries(lambda: open_client(name, source["timeout_s"]), f"{name} (connect)", **retry)
            inventory = with_retries(lambda: get_inventory(client, **query), f"station list at {name}", **retry)
        except Exception as exc:
            failures.append(f"{name}: {_describe(exc)}")
            log.warning("station list: %s failed: %s", name, _describe(exc))
            continue
        found = stations_of_inventory(inventory, client=name) if inventory else pd.DataFrame()
        log.info("station list: %d station(s) at %s", len(found), name)
        tables.append(found)
    stations = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=tabular.STATION_COLUMNS + ["client"])
    stations = stations.drop_duplicates(["network", "station"], keep="first").reset_index(drop=True)
    return usable_codes(stations, "station list"), failures


def cached_station_table(source: dict, days: list[str], cache_dir) -> pd.DataFrame:
    """The station list of the selection, asked once and kept under ``cache_dir`` (keyed by the selection).

    A list is kept only when every client answered; otherwise it is used for this run and asked
    again next time. No client answering, or no station found, is an error.
    """
    chosen = selection(source, days)
    key = hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"fdsn-{key}.csv"
    if path.exists():
        return tabular.read_stations(path)
    stations, failures = query_station_table(source, days)
    if len(failures) == len(source["clients"]):
        raise SourceError("station list: no FDSN client answered (set stations_file to run without one): "
                          + "; ".join(failures))
    if stations.empty:
        raise SourceError(f"station list: no station matches the selection {json.dumps(chosen)}")
    if failures:
        log.warning("station list incomplete, not cached (asked again next run): %s", "; ".join(failures))
    else:
        tabular.write_table(stations, path)
        tabular.atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(json.dumps(chosen, indent=1) + "\n"))
    return tabular.with_object_text(stations)  # as a cached list reads back
