"""What every picker returns: :class:`Pick` rows, turned into the picks table
(:data:`quakesnake.tabular.PICK_COLUMNS`); and the dead stretches of data where no pick is kept."""
from __future__ import annotations

import logging
from collections import defaultdict
from typing import NamedTuple

import numpy as np
import obspy
import pandas as pd

from quakesnake import tabular
from quakesnake.preprocess import dead_runs

logger = logging.getLogger(__name__)


class Pick(NamedTuple):
    """One pick as a picker finds it; :func:`picks_table` turns a list of them into the table."""

    network: str
    station: str
    location: str
    phase: str  # "P" or "S"
    time_ns: int  # UTC, nanoseconds since 1970
    probability: float


def _dead_stretches(traces: list[obspy.Trace]) -> np.ndarray:
    """(start ns, end ns) rows of the stretches where every trace of one instrument holds one
    constant value for at least :data:`quakesnake.preprocess.DEAD_RUN_S`: zero-filled gaps, flat-lined or clipped-dead
    channels. A network normalises each window by its spread, so a window of such data (or one
    with a step into it) is an artefact it was never shown, and its output there means nothing."""
    common = None
    for trace in traces:
        data = np.asarray(trace.data)
        rate = trace.stats.sampling_rate
        starts, ends = dead_runs(data, rate)
        t0 = trace.stats.starttime.ns
        spans = np.column_stack([t0 + np.round(starts / rate * 1e9), t0 + np.round(ends / rate * 1e9)])
        common = spans if common is None else _intersect_spans(common, spans)
    return np.empty((0, 2)) if common is None else common


def _intersect_spans(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection of two sorted lists of disjoint [start, end] spans."""
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i, 0], b[j, 0]), min(a[i, 1], b[j, 1])
        if start <= end:
            out.append((start, end))
        if a[i, 1] < b[j, 1]:
            i += 1
        else:
            j += 1
    return np.array(out, dtype=float).reshape(-1, 2)


def outside_dead_stretches(rows: list[Pick], stream: obspy.Stream) -> list[Pick]:
    """The picks not inside a dead stretch (see :func:`_dead_stretches`) of their instrument."""
    if not rows:
        return rows
    by_instrument: dict[tuple, list] = defaultdict(list)
    for trace in stream:
        if trace.stats.npts > 1:
            by_instrument[(trace.stats.network, trace.stats.station, trace.stats.location)].append(trace)
    dead = {key: _dead_stretches(traces) for key, traces in by_instrument.items()}
    kept = []
    for row in rows:
        spans = dead.get((row.network, row.station, row.location))
        if spans is not None and len(spans):
            index = np.searchsorted(spans[:, 0], row.time_ns, side="right") - 1
            if index >= 0 and row.time_ns <= spans[index, 1]:
                continue
        kept.append(row)
    if len(kept) < len(rows):
        logger.info("dropped %d pick(s) inside dead (constant) stretches of data", len(rows) - len(kept))
    return kept


def empty_picks(picker_name: str = "") -> pd.DataFrame:
    """A typed picks table without rows (a station-day without usable data)."""
    return picks_table([], picker_name)


def picks_table(rows: list[Pick], picker_name: str) -> pd.DataFrame:
    """:class:`Pick` rows as a typed picks table (:data:`quakesnake.tabular.PICK_COLUMNS`)."""
    columns = list(zip(*rows)) if rows else [()] * len(Pick._fields)
    network, station, location, phase, time_ns, probability = columns
    table = pd.DataFrame({
        "network": pd.Series(network, dtype=object),
        "station": pd.Series(station, dtype=object),
        "location": pd.Series(location, dtype=object),
        "phase": pd.Series(phase, dtype=object),
        "time": pd.to_datetime(pd.Series(time_ns, dtype=np.int64), unit="ns"),
        "probability": pd.Series(probability, dtype=np.float64),
        "picker": pd.Series([picker_name] * len(rows), dtype=object),
        "snr": np.full(len(rows), np.nan),  # measured on the stream by pick_stream (quakesnake.analyst)
    })
    return table[tabular.PICK_COLUMNS]
