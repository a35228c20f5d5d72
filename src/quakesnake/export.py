"""Export a catalog (events + pick assignments) as CSV or QuakeML."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from obspy import Catalog, UTCDateTime
from obspy.core.event import (
    Arrival, CreationInfo, Event, EventDescription, Magnitude, Origin, OriginQuality, Pick, ResourceIdentifier,
    WaveformStreamID,
)
from obspy.geodetics import gps2dist_azimuth, kilometer2degrees

from quakesnake.io import EVENT_COLUMNS, require_columns

RESOURCE_PREFIX = "smi:quakesnake"


def write_catalog_csv(events: pd.DataFrame, path) -> None:
    """Events as CSV, times as ISO 8601 UTC with a 'Z'; written atomically."""
    require_columns(events, ["event_id", "time", "latitude", "longitude", "depth_km"], "events")
    table = events.copy()
    table["time"] = pd.to_datetime(table["time"]).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    _atomic_write(path, lambda target: table.to_csv(target, index=False))


def to_obspy_catalog(events: pd.DataFrame, assignments: pd.DataFrame, stations: pd.DataFrame | None = None) -> Catalog:
    """An ObsPy Catalog: one Event per row with its Origin, Magnitude (when known), Picks and Arrivals.

    Arrivals link each assigned pick to the origin with its time residual; with ``stations``
    (network, station, latitude, longitude) they also carry epicentral distance and azimuth.
    """
    require_columns(events, EVENT_COLUMNS[:5], "events")
    require_columns(assignments, ["event_id", "network", "station", "phase", "time"], "assignments")
    coordinates = {}
    if stations is not None and len(stations):
        located = stations.dropna(subset=["latitude", "longitude"]).drop_duplicates(["network", "station"])
        coordinates = {(n, s): (lat, lon) for n, s, lat, lon in located[["network", "station", "latitude", "longitude"]].itertuples(index=False)}
    picks_by_event = {event_id: group for event_id, group in assignments.groupby("event_id", sort=False)}
    catalog = Catalog(resource_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/catalog"), creation_info=CreationInfo(agency_id="quakesnake"))
    for row in events.itertuples(index=False):
        catalog.append(_event(row, picks_by_event.get(row.event_id), coordinates))
    return catalog


def _event(row, assigned: pd.DataFrame | None, coordinates: dict) -> Event:
    event_id = str(row.event_id)
    method = str(getattr(row, "associator", "") or "")
    origin = Origin(
        resource_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/origin/{event_id}"),
        time=UTCDateTime(pd.Timestamp(row.time).to_pydatetime()),
        latitude=float(row.latitude), longitude=float(row.longitude), depth=float(row.depth_km) * 1000.0,
        method_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/method/{method}") if method else None,
        evaluation_mode="automatic",
    )
    event = Event(
        resource_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/event/{event_id}"),
        event_type="earthquake", origins=[origin],
        event_descriptions=[EventDescription(text=event_id, type="earthquake name")],
    )
    event.preferred_origin_id = origin.resource_id
    magnitude = getattr(row, "magnitude", np.nan)
    if magnitude is not None and np.isfinite(magnitude):
        event.magnitudes.append(Magnitude(
            resource_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/magnitude/{event_id}"),
            mag=float(magnitude), magnitude_type="M", origin_id=origin.resource_id,
        ))
        event.preferred_magnitude_id = event.magnitudes[0].resource_id
    if assigned is None:
        return event
    for n, pick_row in enumerate(assigned.itertuples(index=False)):
        location = "" if pd.isna(getattr(pick_row, "location", "")) else str(pick_row.location)
        pick = Pick(
            resource_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/pick/{event_id}/{n}"),
            time=UTCDateTime(pd.Timestamp(pick_row.time).to_pydatetime()),
            waveform_id=WaveformStreamID(network_code=str(pick_row.network), station_code=str(pick_row.station), location_code=location),
            phase_hint=str(pick_row.phase), evaluation_mode="automatic",
        )
        event.picks.append(pick)
        arrival = Arrival(
            resource_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/arrival/{event_id}/{n}"),
            pick_id=pick.resource_id, phase=str(pick_row.phase),
        )
        residual = getattr(pick_row, "residual_s", np.nan)
        if np.isfinite(residual):
            arrival.time_residual = float(residual)
        station = coordinates.get((pick_row.network, pick_row.station))
        if station is not None:
            metres, azimuth, _ = gps2dist_azimuth(origin.latitude, origin.longitude, station[0], station[1])
            arrival.distance = kilometer2degrees(metres / 1000.0)
            arrival.azimuth = azimuth
        origin.arrivals.append(arrival)
    origin.quality = OriginQuality(
        associated_phase_count=len(origin.arrivals), used_phase_count=len(origin.arrivals),
        associated_station_count=int(assigned[["network", "station"]].drop_duplicates().shape[0]),
    )
    return event


def write_quakeml(events: pd.DataFrame, assignments: pd.DataFrame, stations: pd.DataFrame | None, path) -> None:
    """Write :func:`to_obspy_catalog` as QuakeML, atomically."""
    catalog = to_obspy_catalog(events, assignments, stations)
    _atomic_write(path, lambda target: catalog.write(str(target), format="QUAKEML"))


def _atomic_write(path, write) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name, suffix=".part", delete=False) as handle:
        target = Path(handle.name)
    try:
        write(target)
        target.replace(path)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
