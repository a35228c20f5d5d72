"""Candidate new events for an analyst: the detections that no reference event explains.

Per picker × associator, from what evaluation decided (the ``detections`` table of
:func:`quakesnake.evaluation.evaluate_files`, every detection with its ``outcome``):

* ``candidates.csv``: every unmatched detection with its origin, ML, picks, stations, residual
  RMS and the reference event nearest in origin time (a duplicate or a split of a catalogued
  event shows up as a candidate seconds and kilometres from it);
* ``candidates.xml``: the same events as QuakeML (picks, arrivals, ML, amplitudes, written by
  :func:`quakesnake.export.to_obspy_catalog`), marked as suspected automatic events so that
  SeisComP's ``scdispatch`` or any QuakeML reader takes them as proposals;
* a record section for each of the N largest: the vertical traces of the stations that picked
  the event against epicentral distance, its picks marked and the P and S arrivals the 1D model
  predicts (:class:`quakesnake.traveltimes.TravelTimes`) drawn over them. Only those stations'
  station-days are read, and only the minute around the event.
"""
from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import obspy
import pandas as pd
from matplotlib.figure import Figure
from obspy.core.event import Comment

from quakesnake import tabular
from quakesnake.config import section_defaults
from quakesnake.evaluation import DETECTION_OUTCOMES, epicentral_distance_km, event_magnitude
from quakesnake.export import to_obspy_catalog, write_catalog_quakeml
from quakesnake.magnitude import AMPLITUDE_COLUMNS
from quakesnake.preprocess import DEFAULT_CHANNEL_PRIORITY, VERTICAL, _select_instruments
from quakesnake.report_figures import save_figure
from quakesnake.traveltimes import TravelTimes, travel_times_reaching

logger = logging.getLogger(__name__)

DEFAULTS = section_defaults("review")  # every key and default: the schema's review section
CANDIDATE_COLUMNS = [
    "event_id", "time", "latitude", "longitude", "depth_km", "magnitude", "magnitude_type", "n_picks", "n_p", "n_s",
    "n_stations", "residual_rms_s", "outcome", "generated_event_id", "nearest_reference_event_id",
    "nearest_reference_time_difference_s", "nearest_reference_distance_km", "size_rank", "record_section",
]
PHASE_COLOURS = {"P": "tab:blue", "S": "tab:red"}


class ReviewError(ValueError):
    """An input of the review stage that cannot be used (named file, reason)."""


def candidate_events(detections: pd.DataFrame, assignments: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """The unmatched detections as CANDIDATE_COLUMNS, in origin-time order.

    ``size_rank`` orders them by magnitude (largest first; without magnitude by number of
    picks, after those with one); ``record_section`` is filled in by :func:`write_record_sections`.
    """
    bad = sorted(set(detections["outcome"]) - set(DETECTION_OUTCOMES))
    if bad:
        raise ReviewError(f"detections: outcome {bad[0]!r} is not one of {DETECTION_OUTCOMES}")
    candidates = detections[detections["outcome"] != "matched"].copy()
    candidates["magnitude"] = event_magnitude(candidates)
    for column, default in (("magnitude_type", None), ("n_picks", 0), ("n_p", 0), ("n_s", 0), ("generated_event_id", None)):
        if column not in candidates:
            candidates[column] = default
    picked = assignments[assignments["event_id"].isin(candidates["event_id"])]
    stations = picked.drop_duplicates(["event_id", "network", "station"]).groupby("event_id").size()
    rms = picked.groupby("event_id")["residual_s"].agg(lambda r: float(np.sqrt(np.nanmean(np.square(r)))) if r.notna().any() else np.nan)
    candidates["n_stations"] = candidates["event_id"].map(stations).fillna(0).astype(int)
    candidates["residual_rms_s"] = candidates["event_id"].map(rms).astype(float)
    candidates = _nearest_reference(candidates, reference)
    order = candidates.assign(_m=candidates["magnitude"].fillna(-np.inf)).sort_values(
        ["_m", "n_picks", "time"], ascending=[False, False, True], kind="stable")
    candidates.loc[order.index, "size_rank"] = np.arange(1, len(order) + 1)
    candidates["size_rank"] = candidates["size_rank"].astype(int) if len(candidates) else pd.Series(dtype=int)
    candidates["record_section"] = ""
    return candidates.sort_values("time", kind="stable")[CANDIDATE_COLUMNS].reset_index(drop=True)


def _nearest_reference(candidates: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """The reference event nearest in origin time to each candidate, its time difference
    (candidate − reference, s) and epicentral distance (km); empty when the reference has none."""
    candidates["nearest_reference_event_id"] = None
    candidates["nearest_reference_time_difference_s"] = np.nan
    candidates["nearest_reference_distance_km"] = np.nan
    if reference.empty or candidates.empty:
        return candidates
    reference = reference.sort_values("time", kind="stable")
    ref_times = reference["time"].to_numpy("datetime64[ns]").astype(np.int64)
    times = candidates["time"].to_numpy("datetime64[ns]").astype(np.int64)
    after = np.clip(np.searchsorted(ref_times, times), 0, len(ref_times) - 1)
    before = np.clip(after - 1, 0, len(ref_times) - 1)
    nearest = np.where(np.abs(ref_times[before] - times) <= np.abs(ref_times[after] - times), before, after)
    candidates["nearest_reference_event_id"] = reference["event_id"].astype(str).to_numpy(object)[nearest]
    candidates["nearest_reference_time_difference_s"] = (times - ref_times[nearest]) / 1e9
    candidates["nearest_reference_distance_km"] = epicentral_distance_km(
        candidates["latitude"].to_numpy(float), candidates["longitude"].to_numpy(float),
        reference["latitude"].to_numpy(float)[nearest], reference["longitude"].to_numpy(float)[nearest])
    return candidates


def candidate_quakeml(candidates: pd.DataFrame, catalog_events: pd.DataFrame, assignments: pd.DataFrame,
                      stations: pd.DataFrame, amplitudes: pd.DataFrame) -> obspy.Catalog:
    """The candidates as an ObsPy Catalog (the catalog export's events, picks, ML and amplitudes),
    each marked ``suspected`` with a comment saying why it is a candidate."""
    chosen = catalog_events[catalog_events["event_id"].isin(candidates["event_id"])]
    catalog = to_obspy_catalog(chosen, assignments[assignments["event_id"].isin(chosen["event_id"])], stations,
                               amplitudes[amplitudes["event_id"].isin(chosen["event_id"])])
    by_id = candidates.set_index("event_id")
    for event in catalog:
        row = by_id.loc[event.event_descriptions[0].text]
        event.event_type_certainty = "suspected"
        text = f"candidate new event ({row['outcome']})"
        if isinstance(row["nearest_reference_event_id"], str):
            text += (f"; nearest reference event {row['nearest_reference_event_id']}: "
                     f"{row['nearest_reference_time_difference_s']:+.1f} s, {row['nearest_reference_distance_km']:.1f} km")
        event.comments.append(Comment(text=text))
    return catalog


def record_section(event: pd.Series, picks: pd.DataFrame, traces: dict, stations: pd.DataFrame,
                   travel_times: TravelTimes, path, cfg: dict | None = None) -> None:
    """One event's record section: per station that picked it, the vertical trace (band-passed,
    each scaled to its own peak) at its epicentral distance, its picks as ticks, and the P and S
    arrivals of the 1D model from the event's depth as curves. ``traces``: (network, station) → Trace."""
    cfg = {**DEFAULTS, **(cfg or {})}
    located = stations.drop_duplicates(["network", "station"]).set_index(["network", "station"])
    keys = [key for key in picks[["network", "station"]].drop_duplicates().itertuples(index=False, name=None) if key in located.index]
    distances = {key: float(epicentral_distance_km(event["latitude"], event["longitude"],
                                                   located.at[key, "latitude"], located.at[key, "longitude"])) for key in keys}
    origin = pd.Timestamp(event["time"])
    fig = Figure(figsize=(9, 1.6 + 0.55 * max(len(keys), 3)))
    ax = fig.subplots()
    span = max(distances.values(), default=10.0)
    spacing = max(span / max(len(keys), 1), 1.0) * 0.9
    for key in keys:
        distance = distances[key]
        trace = traces.get(key)
        if trace is not None:
            offset = (trace.stats.starttime - tabular.to_utcdatetime(origin)) + np.arange(trace.stats.npts) * trace.stats.delta
            peak = float(np.abs(trace.data).max()) or 1.0
            ax.plot(offset, distance + 0.45 * spacing * trace.data / peak, c="k", lw=0.5)
        ax.text(1.005, distance, f"{key[0]}.{key[1]}", transform=ax.get_yaxis_transform(), fontsize="x-small", va="center")
        for pick in picks[(picks["network"] == key[0]) & (picks["station"] == key[1])].itertuples(index=False):
            seconds = (pd.Timestamp(pick.time) - origin).total_seconds()
            ax.plot([seconds, seconds], [distance - 0.4 * spacing, distance + 0.4 * spacing],
                    c=PHASE_COLOURS.get(str(pick.phase), "tab:purple"), lw=2)
    grid = np.linspace(0.0, span * 1.1 + 1.0, 200)
    for phase, colour in PHASE_COLOURS.items():
        ax.plot(travel_times.time(phase, grid, float(event["depth_km"])), grid, c=colour, ls="--", lw=1,
                label=f"{phase} predicted (1D model)")
        ax.plot([], [], c=colour, lw=2, label=f"{phase} pick")
    magnitude = event.get("magnitude")
    title = f"{event['event_id']}  {origin:%Y-%m-%d %H:%M:%S.%f}"[:-4] + f"  depth {float(event['depth_km']):.1f} km"
    if magnitude is not None and np.isfinite(magnitude):
        title += f"  ML {magnitude:.1f}"
    ax.set_title(title + f"  ({event['outcome']})", fontsize="medium")
    ax.set_xlabel("time after origin (s)")
    ax.set_ylabel("epicentral distance (km)")
    ax.set_ylim(-spacing, span + spacing)
    ax.set_xlim(-float(cfg["before_origin_s"]), None)
    ax.legend(loc="lower right", fontsize="x-small", ncols=2)
    save_figure(fig, path, dpi=100)


def event_traces(event: pd.Series, picks: pd.DataFrame, waveforms_dir, cfg: dict | None = None,
                 channel_priority=DEFAULT_CHANNEL_PRIORITY) -> dict:
    """The band-passed vertical trace of every station that picked ``event``, from its raw
    station-day ``{waveforms_dir}/{day}/{NET}.{STA}.mseed`` (the origin's UTC day; a station-day
    carries its neighbours' margins), cut from before the origin to after the last pick. A
    station without readable data is left out and logged."""
    cfg = {**DEFAULTS, **(cfg or {})}
    origin = tabular.to_utcdatetime(event["time"])
    last = tabular.to_utcdatetime(picks["time"].max())
    start, end = origin - float(cfg["before_origin_s"]), last + float(cfg["after_last_pick_s"])
    day = f"{pd.Timestamp(event['time']):%Y-%m-%d}"
    traces = {}
    for network, station in picks[["network", "station"]].drop_duplicates().itertuples(index=False, name=None):
        path = Path(waveforms_dir) / day / f"{network}.{station}.mseed"
        if not path.exists() or path.stat().st_size == 0:
            logger.info("%s: no data; %s.%s left out of the record section of %s", path, network, station, event["event_id"])
            continue
        try:
            stream = obspy.read(str(path), format="MSEED", starttime=start - 5.0, endtime=end + 5.0)
        except Exception as exc:  # ObsPy raises many kinds for unreadable files
            logger.warning("%s: cannot read miniSEED (%s: %s); left out of the record section", path, type(exc).__name__, exc)
            continue
        verticals = [tr for tr in _select_instruments(list(stream), channel_priority) if tr.stats.channel[-1] == VERTICAL]
        if not verticals:
            continue
        trace = verticals[0].copy()
        trace.data = trace.data.astype(float)
        trace.detrend("demean").taper(0.05)
        low, high = cfg["bandpass_hz"]
        trace.filter("bandpass", freqmin=low, freqmax=min(high, 0.45 * trace.stats.sampling_rate), corners=4, zerophase=True)
        trace.trim(start, end)
        if trace.stats.npts:
            traces[(network, station)] = trace
    return traces


def write_record_sections(candidates: pd.DataFrame, assignments: pd.DataFrame, stations: pd.DataFrame, waveforms_dir,
                          directory, layers=None, cfg: dict | None = None, channel_priority=DEFAULT_CHANNEL_PRIORITY) -> pd.DataFrame:
    """A record section (``{size_rank:03d}_{event_id}.png``) for each of the ``n_record_sections``
    largest candidates, in ``directory`` (replaced as a whole). Returns the candidates with their
    ``record_section`` file name filled in."""
    cfg = {**DEFAULTS, **(cfg or {})}
    directory = Path(directory)
    partial = directory.with_name(directory.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    candidates = candidates.copy()
    chosen = candidates[candidates["size_rank"] <= int(cfg["n_record_sections"])].sort_values("size_rank")
    if len(chosen):
        located = stations.dropna(subset=["latitude", "longitude"])
        picked = assignments[assignments["event_id"].isin(chosen["event_id"])]
        reach = epicentral_distance_km(chosen["latitude"].mean(), chosen["longitude"].mean(), located["latitude"], located["longitude"])
        span_km = float(np.max(reach)) if len(reach) else 100.0
        spread = float(epicentral_distance_km(chosen["latitude"], chosen["longitude"], chosen["latitude"].mean(), chosen["longitude"].mean()).max())
        travel_times = travel_times_reaching(layers, max_distance_km=(span_km + spread) * 1.15,
                                             max_depth_km=max(float(chosen["depth_km"].max()), 1.0))
        for index, event in chosen.iterrows():
            picks = picked[picked["event_id"] == event["event_id"]]
            name = f"{int(event['size_rank']):03d}_{event['event_id']}.png"
            traces = event_traces(event, picks, waveforms_dir, cfg, channel_priority) if len(picks) else {}
            record_section(event, picks, traces, located, travel_times, partial / name, cfg)
            candidates.loc[index, "record_section"] = name
    shutil.rmtree(directory, ignore_errors=True)
    partial.replace(directory)
    return candidates


def review_files(detections_path, reference_events_path, catalog_events_path, assignments_path, amplitudes_path,
                 stations_path, waveforms_dir, csv_path, quakeml_path, record_sections_dir, velocity_model=None,
                 cfg: dict | None = None, channel_priority=DEFAULT_CHANNEL_PRIORITY) -> pd.DataFrame:
    """The review stage's file edge: read evaluation's and the catalog's tables, write the
    candidates CSV, their QuakeML and the record sections. Returns the candidates."""
    detections = tabular.read_table(detections_path, ["event_id", "time", "latitude", "longitude", "depth_km", "outcome"])
    detections["event_id"] = detections["event_id"].astype(str)
    reference = tabular.read_table(reference_events_path, ["event_id", "time", "latitude", "longitude"])
    catalog_events = tabular.read_table(catalog_events_path, tabular.EVENT_COLUMNS[:5])
    catalog_events["event_id"] = catalog_events["event_id"].astype(str)
    unknown = sorted(set(detections["event_id"]) - set(catalog_events["event_id"]))
    if unknown:
        raise ReviewError(f"{detections_path}: event {unknown[0]} is not in the catalog {catalog_events_path} "
                          "(evaluation and catalog are from different runs)")
    assignments = tabular.read_table(assignments_path, ["event_id", "network", "station", "phase", "time", "residual_s"])
    amplitudes = tabular.read_table(amplitudes_path, AMPLITUDE_COLUMNS)
    stations = tabular.read_stations(stations_path)
    candidates = candidate_events(detections, assignments, reference)
    candidates = write_record_sections(candidates, assignments, stations, waveforms_dir, record_sections_dir,
                                       velocity_model, cfg, channel_priority)
    tabular.write_table(candidates, csv_path)
    write_catalog_quakeml(candidate_quakeml(candidates, catalog_events, assignments, stations, amplitudes), quakeml_path)
    return candidates
