"""Data gaps: which stretches of a station-day are missing, which arrivals they hide, and the
traces with them cut out."""
from __future__ import annotations

import numpy as np
import obspy
import pandas as pd

from quakesnake.sources.synthetic.settings import DAY_S, SAMPLING_RATE_HZ, day_label, keyed_rng, resolve_config

GAP_MINUTES = (1.0, 30.0)
GAP_EDGE_S = 600.0
# Picks this close to a gap cannot be made (no data before or after the onset).
GAP_PICK_GUARD_S = (1.0, 0.5)


def station_day_gaps(cfg: dict, network: str, station: str, day) -> list[tuple[float, float]]:
    """Missing stretches of one station-day as (start, end) seconds after the day's start."""
    cfg = resolve_config(cfg)
    rng = keyed_rng(cfg["seed"], "gaps", network, station, day_label(day))
    if rng.random() >= cfg["gap_probability"]:
        return []
    length = rng.uniform(*GAP_MINUTES) * 60.0
    start = rng.uniform(GAP_EDGE_S, DAY_S - GAP_EDGE_S - length)
    return [(start, start + length)]


def arrivals_in_gaps(cfg, arrivals: pd.DataFrame) -> np.ndarray:
    """Whether each arrival falls in (or too close to) a gap of its station-day: no pick there."""
    before, after = GAP_PICK_GUARD_S
    flags = np.zeros(len(arrivals), dtype=bool)
    days = arrivals["time"].dt.normalize()
    for (network, station, day), index in arrivals.groupby([arrivals["network"], arrivals["station"], days]).groups.items():
        gaps = station_day_gaps(cfg, network, station, day)
        seconds = (arrivals.loc[index, "time"] - day).dt.total_seconds().to_numpy()
        hit = np.zeros(len(index), dtype=bool)
        for start, end in gaps:
            hit |= (seconds >= start - after) & (seconds <= end + before)
        flags[arrivals.index.get_indexer(index)] = hit
    return flags


def split_at_gaps(trace: obspy.Trace, gaps: list[tuple[float, float]], margin_s: float) -> list[obspy.Trace]:
    """The trace with the gap stretches (seconds after the day start) cut out; no empty pieces."""
    npts = trace.stats.npts
    keep, cursor = [], 0
    for start_s, end_s in sorted(gaps):
        first = max(int(round((start_s + margin_s) * SAMPLING_RATE_HZ)), 0)
        last = min(int(round((end_s + margin_s) * SAMPLING_RATE_HZ)), npts)
        if last <= first:
            continue  # the gap lies outside this (shortened) window
        if first > cursor:
            keep.append((cursor, first))
        cursor = max(cursor, last)
    if cursor < npts:
        keep.append((cursor, npts))
    if keep == [(0, npts)]:
        return [trace]
    pieces = []
    for first, last in keep:
        piece = obspy.Trace(data=trace.data[first:last].copy())
        for key in ["network", "station", "location", "channel", "sampling_rate"]:
            piece.stats[key] = trace.stats[key]
        piece.stats.starttime = trace.stats.starttime + first / SAMPLING_RATE_HZ
        pieces.append(piece)
    return pieces
