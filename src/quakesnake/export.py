"""Export a catalog (events, pick assignments, amplitudes) as CSV, QuakeML and NonLinLoc observations.

The QuakeML carries per event its Origin with Arrivals linked to Picks (a relocated origin, from
the locate stage, with its uncertainties: ERH as OriginUncertainty, depth and time errors, the
RMS residual as standard error), and, when the events have an ML, the Magnitude with its StationMagnitudes and the Wood–Anderson Amplitudes they
come from, so that SeisComP (``scxmldump``/``sccnv``) or any ObsPy user reads the whole
solution. NonLinLoc gets one NLLOC_OBS file per event, written by ObsPy.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
from obspy import Catalog
from obspy.core.event import (
    Amplitude, Arrival, CreationInfo, Event, EventDescription, Magnitude, Origin, OriginQuality, OriginUncertainty, Pick,
    QuantityError,
    ResourceIdentifier, StationMagnitude, StationMagnitudeContribution, WaveformStreamID,
)
from obspy.geodetics import gps2dist_azimuth, kilometer2degrees

from quakesnake.tabular import EVENT_COLUMNS, atomic_write, require_columns, to_utcdatetime

logger = logging.getLogger(__name__)

RESOURCE_PREFIX = "smi:quakesnake"
# Pick time uncertainty (s) written with every pick: NonLinLoc weighs arrivals by it and reads
# none as 0. S onsets rise out of the P coda and are picked less sharply than P onsets.
PICK_UNCERTAINTY_S = {"P": 0.1, "S": 0.2}
AMPLITUDE_EXPORT_COLUMNS = [
    "event_id", "network", "station", "location", "channel", "amplitude_mm", "time", "station_ml", "snr", "used",
]


def write_catalog_csv(events: pd.DataFrame, path) -> None:
    """Events as CSV, times as ISO 8601 UTC with a 'Z'; written atomically."""
    require_columns(events, ["event_id", "time", "latitude", "longitude", "depth_km"], "events")
    table = events.copy()
    table["time"] = pd.to_datetime(table["time"]).dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    atomic_write(path, lambda target: table.to_csv(target, index=False))


def to_obspy_catalog(events: pd.DataFrame, assignments: pd.DataFrame, stations: pd.DataFrame | None = None,
                     amplitudes: pd.DataFrame | None = None, pick_uncertainty_s: dict | None = None) -> Catalog:
    """An ObsPy Catalog: one Event per row with its Origin, Magnitude (when known), Picks and Arrivals.

    Arrivals link each assigned pick to the origin with its time residual; with ``stations``
    (network, station, latitude, longitude) they also carry epicentral distance and azimuth.
    The magnitude takes its type, uncertainty and station count from the ``magnitude_type``,
    ``magnitude_uncertainty`` and ``magnitude_n_stations`` columns when present; with
    ``amplitudes`` (the magnitude stage's table) every row becomes an Amplitude (metres, zero
    to peak) and a StationMagnitude, contributing with weight 1 when ``used``, else 0. Picks
    carry ``pick_uncertainty_s[phase]`` (default :data:`PICK_UNCERTAINTY_S`).
    """
    require_columns(events, EVENT_COLUMNS[:5], "events")
    require_columns(assignments, ["event_id", "network", "station", "phase", "time"], "assignments")
    if amplitudes is not None:
        require_columns(amplitudes, AMPLITUDE_EXPORT_COLUMNS, "amplitudes")
    coordinates = {}
    if stations is not None and len(stations):
        located = stations.dropna(subset=["latitude", "longitude"]).drop_duplicates(["network", "station"])
        coordinates = {(n, s): (lat, lon) for n, s, lat, lon in located[["network", "station", "latitude", "longitude"]].itertuples(index=False)}
    picks_by_event = {event_id: group for event_id, group in assignments.groupby("event_id", sort=False)}
    amplitudes_by_event = {} if amplitudes is None else dict(list(amplitudes.groupby("event_id", sort=False)))
    uncertainty = {**PICK_UNCERTAINTY_S, **(pick_uncertainty_s or {})}
    catalog = Catalog(resource_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/catalog"), creation_info=CreationInfo(agency_id="quakesnake"))
    for row in events.itertuples(index=False):
        event = _event(row, picks_by_event.get(row.event_id), coordinates, uncertainty)
        _add_amplitudes(event, amplitudes_by_event.get(row.event_id))
        catalog.append(event)
    return catalog


def _event(row, assigned: pd.DataFrame | None, coordinates: dict, pick_uncertainty_s: dict) -> Event:
    event_id = str(row.event_id)
    method = str(getattr(row, "associator", "") or "")
    relocated = bool(getattr(row, "relocated", False))
    if relocated:
        method = f"{method}+relocation-1d" if method else "relocation-1d"
    origin = Origin(
        resource_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/origin/{event_id}"),
        time=to_utcdatetime(row.time),
        latitude=float(row.latitude), longitude=float(row.longitude), depth=float(row.depth_km) * 1000.0,
        method_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/method/{method}") if method else None,
        evaluation_mode="automatic",
    )
    event = Event(
        resource_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/event/{event_id}"),
        event_type="earthquake", origins=[origin],
        event_descriptions=[EventDescription(text=event_id, type="earthquake name")],
    )
    if relocated:
        _add_location_uncertainty(origin, row)
    event.preferred_origin_id = origin.resource_id
    magnitude = getattr(row, "magnitude", np.nan)
    if magnitude is not None and np.isfinite(magnitude):
        magnitude_type = getattr(row, "magnitude_type", None)
        uncertainty = getattr(row, "magnitude_uncertainty", np.nan)
        n_stations = getattr(row, "magnitude_n_stations", None)
        event.magnitudes.append(Magnitude(
            resource_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/magnitude/{event_id}"),
            mag=float(magnitude), magnitude_type=str(magnitude_type) if isinstance(magnitude_type, str) else "M",
            mag_errors=QuantityError(uncertainty=float(uncertainty)) if np.isfinite(uncertainty) else QuantityError(),
            station_count=int(n_stations) if n_stations is not None and not pd.isna(n_stations) else None,
            origin_id=origin.resource_id, evaluation_mode="automatic",
        ))
        event.preferred_magnitude_id = event.magnitudes[0].resource_id
    if assigned is None:
        return event
    for n, pick_row in enumerate(assigned.itertuples(index=False)):
        location = "" if pd.isna(getattr(pick_row, "location", "")) else str(pick_row.location)
        pick = Pick(
            resource_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/pick/{event_id}/{n}"),
            time=to_utcdatetime(pick_row.time), time_errors=QuantityError(uncertainty=pick_uncertainty_s.get(str(pick_row.phase))),
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
        standard_error=origin.quality.standard_error if origin.quality else None,
    )
    return event


def _finite(value) -> float | None:
    return float(value) if value is not None and not pd.isna(value) and np.isfinite(value) else None


def _add_location_uncertainty(origin: Origin, row) -> None:
    """The locate stage's uncertainties (km, s) in QuakeML's units (m, s)."""
    erh_km, erz_km = _finite(getattr(row, "erh_km", None)), _finite(getattr(row, "erz_km", None))
    time_std_s, rms_s = _finite(getattr(row, "time_std_s", None)), _finite(getattr(row, "rms_residual_s", None))
    if erh_km is not None:
        origin.origin_uncertainty = OriginUncertainty(horizontal_uncertainty=erh_km * 1000.0,
                                                      preferred_description="horizontal uncertainty")
    if erz_km is not None:
        origin.depth_errors = QuantityError(uncertainty=erz_km * 1000.0)
    if time_std_s is not None:
        origin.time_errors = QuantityError(uncertainty=time_std_s)
    origin.quality = OriginQuality(standard_error=rms_s)


def _add_amplitudes(event: Event, amplitudes: pd.DataFrame | None) -> None:
    """Amplitudes and station magnitudes of one event, linked to its S (else P) pick and its magnitude."""
    if amplitudes is None or not len(amplitudes):
        return
    event_id = str(event.event_descriptions[0].text)
    origin = event.origins[0]
    magnitude = event.magnitudes[0] if event.magnitudes else None
    picks = {}
    for pick in sorted(event.picks, key=lambda p: (p.phase_hint != "S", p.time)):
        picks.setdefault((pick.waveform_id.network_code, pick.waveform_id.station_code), pick)
    for n, row in enumerate(amplitudes.itertuples(index=False)):
        location = "" if pd.isna(row.location) else str(row.location)
        waveform_id = WaveformStreamID(network_code=str(row.network), station_code=str(row.station),
                                       location_code=location, channel_code=str(row.channel))
        pick = picks.get((str(row.network), str(row.station)))
        amplitude = Amplitude(
            resource_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/amplitude/{event_id}/{n}"),
            generic_amplitude=float(row.amplitude_mm) / 1000.0, unit="m", type="AML", category="point",
            magnitude_hint="ML", waveform_id=waveform_id, pick_id=pick.resource_id if pick else None,
            scaling_time=to_utcdatetime(row.time),
            snr=float(row.snr) if np.isfinite(row.snr) else None, evaluation_mode="automatic",
        )
        station_magnitude = StationMagnitude(
            resource_id=ResourceIdentifier(f"{RESOURCE_PREFIX}/station_magnitude/{event_id}/{n}"),
            origin_id=origin.resource_id, mag=float(row.station_ml), station_magnitude_type="ML",
            amplitude_id=amplitude.resource_id, waveform_id=waveform_id,
        )
        event.amplitudes.append(amplitude)
        event.station_magnitudes.append(station_magnitude)
        if magnitude is not None:
            magnitude.station_magnitude_contributions.append(StationMagnitudeContribution(
                station_magnitude_id=station_magnitude.resource_id, weight=1.0 if row.used else 0.0,
            ))


def write_quakeml(events: pd.DataFrame, assignments: pd.DataFrame, stations: pd.DataFrame | None, path,
                  amplitudes: pd.DataFrame | None = None) -> None:
    """Write :func:`to_obspy_catalog` as QuakeML, atomically."""
    write_catalog_quakeml(to_obspy_catalog(events, assignments, stations, amplitudes), path)


def write_catalog_quakeml(catalog: Catalog, path) -> None:
    """Write an ObsPy Catalog as QuakeML, atomically."""
    atomic_write(path, lambda target: catalog.write(str(target), format="QUAKEML"))


def write_nlloc_obs(catalog: Catalog, directory) -> list[Path]:
    """One NonLinLoc observation file (NLLOC_OBS, written by ObsPy) per event with picks.

    Files are named after the event (``{event name}.obs``) and the directory is replaced as a
    whole, so an interrupted export leaves no mix of old and new files. Events without picks
    have nothing to locate and are left out (logged). Returns the written paths.
    """
    directory = Path(directory)
    partial = directory.with_name(directory.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    written = []
    for event in catalog:
        name = str(event.event_descriptions[0].text) if event.event_descriptions else str(event.resource_id).rsplit("/", 1)[-1]
        if not event.picks:
            logger.info("event %s has no picks: no NonLinLoc observation file", name)
            continue
        path = partial / f"{name}.obs"
        Catalog([event]).write(str(path), format="NLLOC_OBS")
        written.append(directory / path.name)
    shutil.rmtree(directory, ignore_errors=True)
    partial.replace(directory)
    return written
