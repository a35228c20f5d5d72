"""Local magnitude ML of associated events from Wood–Anderson amplitudes.

For every event and every station that picked it, the raw station-day (counts) is cut around
the arrivals, its StationXML response removed to ground displacement and a Wood–Anderson
seismograph simulated (ObsPy ``remove_response`` + ``simulate``). The amplitude is the largest
absolute Wood–Anderson displacement (zero to peak, mm) on either horizontal in a window from
``window_before_s`` before S to ``window_after_s`` after it: the amplitude the synthetic
generator calibrates (its S waves give back ML through the same law). Without an S pick, S
is predicted from the P pick plus the S−P time of the velocity model at the event's
hypocentre (:mod:`quakesnake.traveltimes`), and P from S the same way where P was not picked.

Station magnitude: ``ML_sta = log10(A / mm) + (−log A0(r)) + correction``, with ``r`` the
hypocentral distance (km, station elevation included) and −log A0 in the Hutton & Boore (1987)
form ``a log10(r/100) + b (r − 100) + c``; a law written ``α log10 r + β r + γ`` (as OGS and
other agencies publish theirs) is the same with ``a = α``, ``b = β``, ``c = γ + 2α + 100β``.
Station corrections come from an optional CSV (network, station, correction). A station counts
when its Wood–Anderson peak is at least ``min_snr`` times the peak in the ``noise_window_s``
before P; the event's ML is the median of the counted stations, its uncertainty 1.4826 × their
median absolute deviation (needs two stations).
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import numpy as np
import obspy
import pandas as pd
from obspy import UTCDateTime
from obspy.geodetics import gps2dist_azimuth
from pyproj import Geod

from quakesnake import tabular
from quakesnake.config import section_defaults
from quakesnake.errors import QuakesnakeError
from quakesnake.preprocess import DEFAULT_CHANNEL_PRIORITY, HORIZONTAL_SETS, _select_instruments
from quakesnake.traveltimes import TravelTimes, travel_times_reaching
from quakesnake.waveforms import WaveformError, WindowReader

logger = logging.getLogger(__name__)

# Wood–Anderson seismograph as Hutton & Boore (1987) calibrated it (Uhrhammer & Collins 1990):
# 0.8 s period, damping 0.7, magnification 2080; input ground displacement (two zeros at 0).
WOOD_ANDERSON_PAZ = {
    "poles": [-5.49779 + 5.60886j, -5.49779 - 5.60886j],
    "zeros": [0j, 0j],
    "gain": 1.0,
    "sensitivity": 2080.0,
}
# Every key and default: the schema's magnitude section (attenuation: Hutton & Boore 1987); the
# channel priority is the preprocess section's, so magnitudes use the channels that were picked.
DEFAULTS = {**section_defaults("magnitude"), "channel_priority": list(DEFAULT_CHANNEL_PRIORITY)}
HUTTON_BOORE = DEFAULTS["attenuation"]

# Data kept on both sides of the noise-to-signal span: the response removal tapers it away.
PAD_S = 20.0
# Noise ends this long before P, so an early onset does not count as noise.
NOISE_GAP_S = 0.5
# A window stops this long before another event's arrival at the station and is measured
# only when it still reaches this far past S (the S peak of a local event comes within ~1 s).
FOREIGN_MARGIN_S = 0.5
MIN_AFTER_S_S = 1.0
MAD_TO_SIGMA = 1.4826
_GEOD = Geod(ellps="WGS84")

AMPLITUDE_COLUMNS = [
    "event_id", "network", "station", "location", "channel", "amplitude_mm", "time",
    "hypocentral_distance_km", "station_ml", "correction", "snr", "used",
]
MAGNITUDE_COLUMNS = ["magnitude", "magnitude_type", "magnitude_uncertainty", "magnitude_n_stations"]


class MagnitudeError(QuakesnakeError, ValueError):
    """A station window that gives no amplitude (gap, missing channel or response)."""


def minus_log_a0(r_km, a: float = HUTTON_BOORE["a"], b: float = HUTTON_BOORE["b"], c: float = HUTTON_BOORE["c"]):
    """−log A0(r): ML = log10(A / mm) + minus_log_a0(r); defaults are Hutton & Boore (1987).

    ``r_km`` is the hypocentral distance, ``A`` the Wood–Anderson (gain 2080) peak amplitude.
    """
    r = np.asarray(r_km, dtype=float)
    return a * np.log10(r / 100.0) + b * (r - 100.0) + c


def resolve_config(cfg: dict | None) -> dict:
    """``cfg`` over :data:`DEFAULTS`; unknown keys are an error naming them."""
    cfg = dict(cfg or {})
    unknown = sorted(set(cfg) - set(DEFAULTS)) + sorted(f"attenuation.{k}" for k in set(cfg.get("attenuation") or {}) - set(HUTTON_BOORE))
    if unknown:
        raise ValueError(f"magnitude config: unknown key(s) {', '.join(unknown)} (known: {', '.join(DEFAULTS)})")
    merged = {**DEFAULTS, **cfg, "attenuation": {**HUTTON_BOORE, **(cfg.get("attenuation") or {})}}
    if int(merged["min_stations"]) < 1:
        raise ValueError(f"magnitude config: min_stations must be at least 1, got {merged['min_stations']}")
    return merged


def read_station_corrections(path) -> pd.DataFrame:
    """Station corrections (CSV or parquet: network, station, correction in magnitude units)."""
    table = tabular.read_table(path, ["network", "station", "correction"])
    table["correction"] = pd.to_numeric(table["correction"], errors="coerce")
    if table["correction"].isna().any():
        raise tabular.TableError(f"{path}: column 'correction' must hold numbers (rows {', '.join(map(str, table.index[table['correction'].isna()]))})")
    duplicated = table.duplicated(["network", "station"])
    if duplicated.any():
        raise tabular.TableError(f"{path}: stations listed more than once: {', '.join(table.loc[duplicated, 'network'] + '.' + table.loc[duplicated, 'station'])}")
    return table


def wood_anderson_amplitude(stream: obspy.Stream, inventory, noise_window, signal_window, pre_filt_hz=DEFAULTS["pre_filt_hz"]) -> dict:
    """Largest Wood–Anderson peak (mm) on the horizontals of ``stream`` inside ``signal_window``.

    Windows are (start, end) UTCDateTimes. Returns channel, amplitude_mm, time (of the peak)
    and snr (that peak over the largest Wood–Anderson excursion in ``noise_window`` on the same
    channel). Raises :class:`MagnitudeError` when no horizontal covers both windows without a
    gap or has a usable response.
    """
    (noise_start, noise_end), (signal_start, signal_end) = noise_window, signal_window
    start, end = min(noise_start, signal_start) - PAD_S, signal_end + PAD_S
    reasons, best = [], None
    for trace in _horizontals(stream):
        cut = stream.select(id=trace.id).slice(start, end).merge(method=1)
        if len(cut) != 1 or np.ma.is_masked(cut[0].data) or cut[0].stats.starttime > start + cut[0].stats.delta \
                or cut[0].stats.endtime < end - cut[0].stats.delta:
            reasons.append(f"{trace.id}: no gap-free data over {start} - {end}")
            continue
        cut = cut.copy()
        nyquist = cut[0].stats.sampling_rate / 2.0
        f1, f2, f3, f4 = pre_filt_hz
        pre_filt = (f1, f2, min(f3, 0.8 * nyquist), min(f4, 0.9 * nyquist))
        try:
            cut.remove_response(inventory=inventory, output="DISP", pre_filt=pre_filt)
        except Exception as exc:  # ObsPy raises several kinds for a missing or bad response
            reasons.append(f"{trace.id}: no usable response ({exc})")
            continue
        cut.simulate(paz_remove=None, paz_simulate=WOOD_ANDERSON_PAZ)
        wa = cut[0]
        signal = wa.slice(signal_start, signal_end)
        noise = wa.slice(noise_start, noise_end)
        peak_index = int(np.argmax(np.abs(signal.data)))
        amplitude_mm = float(abs(signal.data[peak_index])) * 1000.0
        noise_mm = float(np.abs(noise.data).max()) * 1000.0 if noise.stats.npts else 0.0
        if best is None or amplitude_mm > best["amplitude_mm"]:
            best = {
                "channel": wa.stats.channel, "amplitude_mm": amplitude_mm,
                "time": signal.stats.starttime + peak_index * signal.stats.delta,
                "snr": amplitude_mm / noise_mm if noise_mm > 0 else np.inf,
            }
    if best is None:
        raise MagnitudeError("; ".join(reasons) or "no horizontal channel")
    return best


def _horizontals(stream: obspy.Stream) -> list[obspy.Trace]:
    """One trace per horizontal channel id (N/E, else 1/2), in id order."""
    ids = {tr.id: tr for tr in stream}
    for components in HORIZONTAL_SETS:
        found = [ids[i] for i in sorted(ids) if i[-1] in components]
        if found:
            return found
    return []


def hypocentral_distance_km(event, station) -> float:
    """Distance (km) from the hypocentre to the station, the station elevation included."""
    epicentral = gps2dist_azimuth(event.latitude, event.longitude, station["latitude"], station["longitude"])[0] / 1000.0
    elevation_km = float(station.get("elevation_m", 0.0) or 0.0) / 1000.0
    return float(np.hypot(epicentral, float(event.depth_km) + elevation_km))


def station_amplitudes(waveforms, inventory, events: pd.DataFrame, assignments: pd.DataFrame, station: dict,
                       cfg: dict | None = None, correction: float = 0.0, layers=None,
                       travel_times: TravelTimes | None = None) -> pd.DataFrame:
    """Amplitudes and station magnitudes at one station for the ``events`` it picked.

    ``waveforms``: the station's stream, or a function from a list of (start, end) windows to
    one stream per window (:meth:`quakesnake.waveforms.WindowReader.read` of its file), which
    then reads only the windows measured: the stage reads a few seconds around each event of a
    station-day, not the day.

    ``assignments`` are the picks at this station (phase P/S, time) of these and other events;
    S is the event's earliest S pick, else its earliest P plus the S−P time of ``travel_times``
    (None: built for ``layers``, None the default crust) from the event's hypocentre. The
    window stops short of the next pick of another event. Events whose window cannot be
    measured are logged and left out. Returns :data:`AMPLITUDE_COLUMNS`.
    """
    cfg = resolve_config(cfg)
    label = f"{station['network']}.{station['station']}"
    plans = []  # (event, noise window, signal window) of every event measured here
    picks_by_event = assignments.groupby("event_id")
    pick_times = assignments["time"].to_numpy("datetime64[ns]").astype(np.int64)
    pick_events = assignments["event_id"].to_numpy()
    for event in events.itertuples(index=False):
        if event.event_id not in picks_by_event.groups:
            continue
        picks = picks_by_event.get_group(event.event_id)
        p_time, s_time = _first(picks, "P"), _first(picks, "S")
        if p_time is None and s_time is None:
            continue
        if p_time is None or s_time is None:
            s_minus_p = _model_s_minus_p_s(event, station, layers, travel_times)
            if s_time is None:
                s_time = p_time + s_minus_p
            else:
                p_time = s_time - s_minus_p
        signal_start, signal_end = s_time - cfg["window_before_s"], s_time + cfg["window_after_s"]
        # Another event's onset inside the window would lend it its amplitude: stop short of it.
        foreign = pick_times[(pick_events != event.event_id) & (pick_times > signal_start.ns)]
        if len(foreign):
            signal_end = min(signal_end, UTCDateTime(ns=int(foreign.min())) - FOREIGN_MARGIN_S)
        if signal_end < s_time + MIN_AFTER_S_S:
            logger.info("%s, event %s: no amplitude (another event's arrival right after S, at %s)", label, event.event_id,
                        UTCDateTime(ns=int(foreign.min())))
            continue
        noise_end = p_time - NOISE_GAP_S
        plans.append((event, (noise_end - cfg["noise_window_s"], noise_end), (signal_start, signal_end)))
    if not plans:
        return _empty_amplitudes()
    if callable(waveforms):  # the span wood_anderson_amplitude cuts, per event
        streams = waveforms([(min(noise[0], signal[0]) - PAD_S, signal[1] + PAD_S) for _, noise, signal in plans])
    else:
        streams = [waveforms] * len(plans)
    rows, selected = [], {}
    for (event, noise_window, signal_window), stream in zip(plans, streams):
        if id(stream) not in selected:  # the instrument of each stream, chosen once
            selected[id(stream)] = obspy.Stream(_select_instruments([tr for tr in stream if tr.stats.npts], cfg["channel_priority"]))
        stream = selected[id(stream)]
        try:
            measured = wood_anderson_amplitude(stream, inventory, noise_window, signal_window, cfg["pre_filt_hz"])
        except MagnitudeError as exc:
            logger.info("%s, event %s: no amplitude (%s)", label, event.event_id, exc)
            continue
        distance = hypocentral_distance_km(event, station)
        station_ml = np.log10(measured["amplitude_mm"]) + float(minus_log_a0(max(distance, 1.0), **cfg["attenuation"])) + correction
        location = stream.select(channel=measured["channel"])[0].stats.location
        rows.append({
            "event_id": event.event_id, "network": station["network"], "station": station["station"],
            "location": location, "channel": measured["channel"], "amplitude_mm": measured["amplitude_mm"],
            "time": tabular.to_datetime64(measured["time"]), "hypocentral_distance_km": distance,
            "station_ml": float(station_ml), "correction": float(correction), "snr": float(measured["snr"]),
            "used": bool(measured["snr"] >= cfg["min_snr"]),
        })
    return pd.DataFrame(rows, columns=AMPLITUDE_COLUMNS) if rows else _empty_amplitudes()


def _model_s_minus_p_s(event, station: dict, layers, travel_times: TravelTimes | None) -> float:
    """S minus P travel time (s) of the velocity model from the event's hypocentre to the station."""
    epicentral = gps2dist_azimuth(event.latitude, event.longitude, station["latitude"], station["longitude"])[0] / 1000.0
    depth = float(event.depth_km)
    if travel_times is None:
        travel_times = travel_times_reaching(layers, epicentral, depth)
    elevation_km = float(station.get("elevation_m", 0.0) or 0.0) / 1000.0
    s_minus_p = float(travel_times.time("S", epicentral, depth, elevation_km) - travel_times.time("P", epicentral, depth, elevation_km))
    if not np.isfinite(s_minus_p):
        raise ValueError(f"event {event.event_id}: {epicentral:.0f} km, {depth:.0f} km deep lies outside the travel-time grid "
                         f"({travel_times.max_distance_km:.0f} x {travel_times.max_depth_km:.0f} km)")
    return s_minus_p


def _first(picks: pd.DataFrame, phase: str) -> UTCDateTime | None:
    times = picks.loc[(tabular.phase_letters(picks["phase"]) == phase).to_numpy(), "time"]
    return tabular.to_utcdatetime(times.min()) if len(times) else None


def _empty_amplitudes() -> pd.DataFrame:
    table = tabular.empty_table(AMPLITUDE_COLUMNS)
    return table.astype({c: float for c in ["amplitude_mm", "hypocentral_distance_km", "station_ml", "correction", "snr"]} | {"used": bool})


def event_magnitudes(events: pd.DataFrame, amplitudes: pd.DataFrame, min_stations: int = 1) -> pd.DataFrame:
    """``events`` with ML: the median of the used station magnitudes (at least ``min_stations``).

    Adds magnitude_type ("ML"), magnitude_uncertainty (1.4826 × MAD; NaN with one station)
    and magnitude_n_stations; events without enough stations get a NaN magnitude (a magnitude
    the associator gave, GaMMA's from pick amplitudes, is replaced).
    """
    used = amplitudes[amplitudes["used"].astype(bool)]
    by_event = used.groupby("event_id")["station_ml"]
    median = by_event.median()
    mad = (used["station_ml"] - by_event.transform("median")).abs().groupby(used["event_id"]).median()
    count = by_event.size()
    out = events.copy()
    n = out["event_id"].map(count).fillna(0).astype(int)
    enough = n >= min_stations
    out["magnitude"] = out["event_id"].map(median).where(enough).astype(float)
    out["magnitude_type"] = np.where(enough, "ML", None)
    out["magnitude_uncertainty"] = (MAD_TO_SIGMA * out["event_id"].map(mad)).where(enough & (n >= 2)).astype(float)
    out["magnitude_n_stations"] = n
    return out


def magnitude_day(events: pd.DataFrame, assignments: pd.DataFrame, stations: pd.DataFrame, shards, cfg: dict | None = None,
                  corrections: pd.DataFrame | None = None, layers=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ML of one day's events from its station-day shards.

    ``layers`` (None: the default crust) predicts the S (P) arrival where only P (S) was picked.
    ``shards`` yields (miniSEED path, StationXML path or ObsPy Inventory) per station-day; a
    0-byte file (a shard without data) or an unreadable one is skipped with the reason logged, as is a station the
    station table does not locate. Only stations that picked an event are read, and of them only
    the windows measured (:class:`quakesnake.waveforms.WindowReader`). Returns
    (events with :data:`MAGNITUDE_COLUMNS`, amplitudes with :data:`AMPLITUDE_COLUMNS`).
    """
    cfg = resolve_config(cfg)
    located = {(r["network"], r["station"]): r for r in stations.to_dict("records")}
    offsets = {} if corrections is None else {(n, s): c for n, s, c in corrections[["network", "station", "correction"]].itertuples(index=False)}
    picked = assignments[assignments["event_id"].isin(events["event_id"])]
    by_station = dict(list(picked.groupby(["network", "station"])))
    travel_times = _travel_times_for(events, stations, layers) if len(picked) else None
    reader = WindowReader()
    tables = []
    for waveform_path, inventory_path in shards:
        waveform_path = Path(waveform_path)
        network, code = tabular.shard_code(waveform_path)
        station_picks = by_station.get((network, code))
        if station_picks is None:
            continue
        if (network, code) not in located:
            logger.warning("%s.%s: not in the station table; its amplitudes are skipped", network, code)
            continue
        try:
            reader.read(waveform_path, [])  # indexes the file: an unreadable one is the reason given
            inventory = _station_inventory(network, code, inventory_path)
            table = station_amplitudes(functools.partial(reader.read, waveform_path), inventory, events, station_picks,
                                       located[(network, code)], cfg, offsets.get((network, code), 0.0),
                                       travel_times=travel_times)
        except (MagnitudeError, WaveformError) as exc:
            logger.warning("%s; station skipped", exc)
            continue
        logger.info("%s.%s: %d amplitude(s) for %d picked event(s)", network, code, len(table), station_picks["event_id"].nunique())
        tables.append(table)
    amplitudes = tabular.concat_tables(tables, AMPLITUDE_COLUMNS) if any(len(t) for t in tables) else _empty_amplitudes()
    amplitudes = amplitudes.sort_values(["event_id", "network", "station"], ignore_index=True)
    return event_magnitudes(events, amplitudes, int(cfg["min_stations"])), amplitudes


def _travel_times_for(events: pd.DataFrame, stations: pd.DataFrame, layers) -> TravelTimes:
    """One travel-time table reaching every event-station distance and event depth of the day."""
    located = stations.dropna(subset=["latitude", "longitude"])
    n_events, n_stations = len(events), len(located)
    _, _, metres = _GEOD.inv(
        np.repeat(events["longitude"].to_numpy(float), n_stations).tolist(), np.repeat(events["latitude"].to_numpy(float), n_stations).tolist(),
        np.tile(located["longitude"].to_numpy(float), n_events).tolist(), np.tile(located["latitude"].to_numpy(float), n_events).tolist(),
    )
    farthest_km = float(np.nanmax(np.asarray(metres, float) / 1000.0, initial=1.0))
    return travel_times_reaching(layers, farthest_km, float(np.nanmax(events["depth_km"].to_numpy(float), initial=1.0)))


def _station_inventory(network: str, code: str, inventory) -> obspy.Inventory:
    """The station's part of the day's inventory (an ObsPy Inventory, or a StationXML path)."""
    if not isinstance(inventory, obspy.Inventory):
        path = Path(inventory)
        if not path.exists() or path.stat().st_size == 0:
            raise MagnitudeError(f"{path}: {'empty' if path.exists() else 'file not found'} (no StationXML)")
        try:
            inventory = obspy.read_inventory(str(path))
        except Exception as exc:  # ObsPy raises several kinds for unreadable StationXML
            raise MagnitudeError(f"{path}: cannot read StationXML ({type(exc).__name__}: {exc})") from exc
    selected = inventory.select(network=network, station=code)
    if not len(selected.networks):
        raise MagnitudeError(f"{network}.{code}: no StationXML in the day's inventory")
    return selected


def magnitude_files(events_path, assignments_path, stations_path, waveform_status_path, inventory_path, events_out,
                    amplitudes_out, cfg: dict | None = None, corrections_path=None, layers=None) -> pd.DataFrame:
    """The rule's file edge of :func:`magnitude_day`: read tables, write events and amplitudes.

    ``waveform_status_path`` is the download stage's status table of the day; the raw miniSEED of
    each station-day lies beside it (``NET.STA.mseed``), ``inventory_path`` is the day's StationXML.
    ``corrections_path`` (None: ``cfg["station_corrections"]``) is the station-correction table.
    """
    cfg = resolve_config(cfg)
    events = tabular.read_table(events_path, tabular.EVENT_COLUMNS[:5])
    assignments = tabular.read_table(assignments_path, ["event_id", "network", "station", "phase", "time"])
    corrections_path = corrections_path or cfg["station_corrections"]
    corrections = read_station_corrections(corrections_path) if corrections_path else None
    status = tabular.read_table(waveform_status_path, ["network", "station", "status"])
    folder = Path(waveform_status_path).parent
    have_data = status[status["status"] == "ok"]
    inventory = obspy.Inventory(networks=[])
    if len(have_data) and Path(inventory_path).stat().st_size:
        try:
            inventory = obspy.read_inventory(str(inventory_path), format="STATIONXML")
        except Exception as exc:
            raise MagnitudeError(f"{inventory_path}: cannot read StationXML ({type(exc).__name__}: {exc})") from exc
    shards = [(folder / f"{net}.{sta}.mseed", inventory) for net, sta in zip(have_data["network"], have_data["station"])]
    with_ml, amplitudes = magnitude_day(events, assignments, tabular.read_stations(stations_path), shards, cfg, corrections, layers)
    tabular.write_table(with_ml, events_out)
    tabular.write_table(amplitudes, amplitudes_out)
    return with_ml
