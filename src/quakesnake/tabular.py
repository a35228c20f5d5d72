"""Table contracts and file I/O shared by every stage.

All times inside the package are timezone-naive ``datetime64[ns]`` meaning UTC: GaMMA
breaks on strings and tz-aware stamps, parquet keeps naive nanoseconds exactly, and
ObsPy ``UTCDateTime`` converts both ways with :func:`to_datetime64` / :func:`to_utcdatetime`.

Tables travel between stages as parquet; CSV and QuakeML are exports. The reference
catalog (the evaluation input) uses the shape of the OGS bulletin files: a directory
with ``events.csv``, ``picks.csv`` and ``stations.csv``.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from quakesnake.errors import QuakesnakeError

PICK_COLUMNS = ["network", "station", "location", "phase", "time", "probability", "picker", "snr"]
EVENT_COLUMNS = [
    "event_id", "time", "latitude", "longitude", "depth_km", "magnitude",
    "n_picks", "n_p", "n_s", "associator",
]
ASSIGNMENT_COLUMNS = ["event_id", "network", "station", "location", "phase", "time", "residual_s", "probability"]
STATION_COLUMNS = ["network", "station", "location", "latitude", "longitude", "elevation_m"]

REFERENCE_EVENT_COLUMNS = ["event_id", "time", "latitude", "longitude", "depth_km"]
REFERENCE_PICK_COLUMNS = ["event_id", "station", "phase", "time"]
REFERENCE_STATION_COLUMNS = ["station", "network", "latitude", "longitude"]


class TableError(QuakesnakeError, ValueError):
    """A table file is missing columns or holds values that cannot be read."""


def to_datetime64(values) -> pd.Series | pd.Timestamp:
    """Parse times (ISO strings with or without 'Z', ObsPy UTCDateTime, datetimes) to naive UTC ns."""
    if isinstance(values, (pd.Series, pd.Index, list, np.ndarray)):
        series = pd.Series(values)
        if series.dtype == object and len(series) and hasattr(series.iloc[0], "ns"):  # ObsPy UTCDateTime
            return pd.Series(pd.to_datetime([t.ns for t in series], unit="ns"), index=series.index)
        text = series.dtype == object or pd.api.types.is_string_dtype(series.dtype)
        out = pd.to_datetime(series, utc=True, format="ISO8601" if text else None)
        return out.dt.tz_convert(None).astype("datetime64[ns]")
    if hasattr(values, "ns"):  # ObsPy UTCDateTime, to the nanosecond (its .datetime has microseconds)
        return pd.Timestamp(values.ns, unit="ns")
    stamp = pd.Timestamp(values)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(None)
    return stamp.as_unit("ns")


def to_utcdatetime(value):
    """A naive-UTC time (Timestamp, datetime64, int ns, ISO string) as an ObsPy UTCDateTime, to the ns."""
    from obspy import UTCDateTime  # lazily: most table work needs no ObsPy

    return UTCDateTime(ns=int(to_datetime64(value).value))


def phase_letters(phases) -> pd.Series:
    """Phase names reduced to the letter the stages compare on: "Pg", "pn", "P" -> "P"; "Sg" -> "S"."""
    return pd.Series(phases).astype(str).str.upper().str[0].astype(object)


# Columns that tables written before they existed lack (picks: snr, quakesnake.analyst): read as
# missing values, so that a rerun after an upgrade reuses what was computed.
FILLED_WHEN_MISSING = {"snr": np.nan}


def empty_table(columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype=float if c in FILLED_WHEN_MISSING else object) for c in columns})
    if "time" in frame:
        frame["time"] = pd.Series(dtype="datetime64[ns]")
    return frame


def require_columns(frame: pd.DataFrame, columns: list[str], path) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TableError(f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(map(str, frame.columns))})")


def with_object_text(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its text columns as object, whichever pandas made them.

    pandas 3 reads and builds text as its string dtype; the tables this project builds hold object
    columns, and a table read back must equal the one written (the pick stage's cache, comparisons,
    concatenation) under any pandas.
    """
    text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c].dtype) and frame[c].dtype != object]
    if text:
        frame = frame.copy()
        frame[text] = frame[text].astype(object)
    return frame


def read_table(path, columns: list[str] | None = None) -> pd.DataFrame:
    """Read a parquet or CSV table; check required columns; parse a ``time`` column to naive UTC."""
    path = Path(path)
    if not path.exists():
        raise TableError(f"{path}: file not found")
    try:
        frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path, dtype={"event_id": str, "station": str, "network": str, "location": str})
    except Exception as exc:  # pyarrow/pandas raise many kinds; the user needs the file and reason
        raise TableError(f"{path}: cannot read table ({exc})") from exc
    if columns:
        for column in columns:
            if column in FILLED_WHEN_MISSING and column not in frame.columns:
                frame[column] = FILLED_WHEN_MISSING[column]
        require_columns(frame, columns, path)
    frame = with_object_text(frame)
    # pandas' own test: np.issubdtype raises on extension dtypes (pandas' "string", the default
    # string dtype from pandas 3 on)
    if "time" in frame.columns and not pd.api.types.is_datetime64_any_dtype(frame["time"].dtype):
        try:
            frame["time"] = to_datetime64(frame["time"])
        except Exception as exc:
            raise TableError(f"{path}: column 'time' holds values that are not times ({exc})") from exc
    elif "time" in frame.columns and getattr(frame["time"].dt, "tz", None) is not None:
        frame["time"] = frame["time"].dt.tz_convert(None)
    return frame


def atomic_write(path, write, suffix: str = "") -> Path:
    """Write a file under its final name only once complete: ``write(temporary path)`` fills a
    uniquely named file beside ``path`` (``suffix`` ends its name, for writers that choose the
    format by it), which then replaces ``path``; on failure it is removed. A killed job never
    leaves a half file a later run would take for a whole one, and parallel jobs writing the
    same file never see each other's half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name + ".", suffix=".part" + suffix, delete=False) as handle:
        partial = Path(handle.name)
    try:
        write(partial)
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def write_table(frame: pd.DataFrame, path) -> None:
    """Write parquet (or CSV by suffix) atomically so an interrupted job leaves no half file."""
    path = Path(path)
    if path.suffix == ".csv":
        out = frame.copy()
        for col in out.columns:
            if pd.api.types.is_datetime64_any_dtype(out[col].dtype):
                out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        atomic_write(path, lambda tmp: out.to_csv(tmp, index=False))
    else:
        atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))


def location_codes(values: pd.Series) -> pd.Series:
    """Location codes as the object text every table here holds, a missing code as "" (CSV reads an
    empty code as NaN; ``astype(str)`` alone would make pandas 3's string dtype)."""
    return values.fillna("").astype(str).astype(object)


def read_stations(path) -> pd.DataFrame:
    """Station table (CSV/parquet) with network, station, latitude, longitude [, elevation_m, location]."""
    frame = read_table(path, REFERENCE_STATION_COLUMNS)
    if "location" not in frame:
        frame["location"] = ""
    if "elevation_m" not in frame:
        frame["elevation_m"] = 0.0
    frame["location"] = location_codes(frame["location"])
    frame["elevation_m"] = frame["elevation_m"].astype(float).fillna(0.0)
    return frame


def read_reference(directory) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Reference catalog directory in the shared layout: (events, picks, stations)."""
    directory = Path(directory)
    events = read_table(directory / "events.csv", REFERENCE_EVENT_COLUMNS)
    picks = read_table(directory / "picks.csv", REFERENCE_PICK_COLUMNS)
    stations = read_stations(directory / "stations.csv")
    events["event_id"] = events["event_id"].astype(str)
    picks["event_id"] = picks["event_id"].astype(str)
    picks["phase"] = phase_letters(picks["phase"])
    return events, picks, stations


def concat_tables(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return empty_table(columns)
    return pd.concat(frames, ignore_index=True)


# Shard status: every stage that can meet "no data" or unusable data records it per shard with its
# reason instead of failing the run (and a rerun does not ask the data centre again): a JSON record
# per station-day (write_shard_status), gathered by the day-level jobs into a status table per day.
SHARD_STATUSES = ("ok", "no_data", "skipped")


def write_shard_status(path, stage: str, status: str, reason: str = "", **details) -> dict:
    """Write ``{"stage", "status", "reason", ...details}`` atomically; ``status`` in SHARD_STATUSES."""
    if status not in SHARD_STATUSES:
        raise ValueError(f"shard status must be one of {SHARD_STATUSES}, got {status!r}")
    record = {"stage": stage, "status": status, "reason": reason, **details}
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(record, indent=1, default=str) + "\n"))
    return record


def read_shard_status(path) -> dict:
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TableError(f"{path}: cannot read shard status ({exc})") from exc
    if record.get("status") not in SHARD_STATUSES:
        raise TableError(f"{path}: shard status {record.get('status')!r} is not one of {SHARD_STATUSES}")
    return record


SHARD_STATUS_COLUMNS = ["day", "network", "station", "stage", "status", "reason"]
# a stage's status table of one day: the columns above and the record's details as JSON text
SHARD_STATUS_TABLE_COLUMNS = [*SHARD_STATUS_COLUMNS, "details"]


def shard_code(path) -> tuple[str, str]:
    """(network, station) of a shard file named ``NET.STA.<suffix>`` (``.mseed``, ``.status.json``...)."""
    network, station = Path(path).name.split(".")[:2]
    return network, station


def shard_status_row(day: str, network: str, station: str, record: dict) -> dict:
    """One row of a stage's status table of a day, from a shard status record."""
    details = {k: v for k, v in record.items() if k not in ("stage", "status", "reason", "input")}
    return {"day": day, "network": network, "station": station, "stage": record["stage"], "status": record["status"],
            "reason": record.get("reason", ""), "details": json.dumps(details, sort_keys=True, default=str)}


def shard_status_table(paths) -> pd.DataFrame:
    """The shard status of a run: one row per (shard, stage), sorted by day, network, station.

    ``paths`` are the stages' day tables (download: ``results/waveforms/{day}/status.csv``,
    preprocessing: ``results/picks/{picker}/{day}.status.csv``) and, as earlier runs wrote them,
    per-shard status files ``…/{day}/{net}.{sta}.status.json``. Rows of one shard keep the order
    of ``paths`` (list the stages in pipeline order).
    """
    rows = []
    for path in map(Path, paths):
        if path.suffix == ".json":
            record = read_shard_status(path)
            network, station = shard_code(path)
            rows.append([path.parent.name, network, station, record.get("stage", ""), record["status"],
                         record.get("reason", "")])
            continue
        table = read_table(path, SHARD_STATUS_COLUMNS)
        bad = sorted(set(table["status"]) - set(SHARD_STATUSES))
        if bad:
            raise TableError(f"{path}: shard status {bad[0]!r} is not one of {SHARD_STATUSES}")
        rows.extend(table[SHARD_STATUS_COLUMNS].fillna("").astype(str).values.tolist())
    table = pd.DataFrame(rows, columns=SHARD_STATUS_COLUMNS)
    return table.sort_values(["day", "network", "station"], kind="stable").reset_index(drop=True)


def shard_status_summary(table: pd.DataFrame, max_examples: int = 5) -> pd.DataFrame:
    """The shard status table (:func:`shard_status_table`) in one row per stage, status and reason:
    how many shards, on how many days, and the first few of them (``DAY NET.STA``), so that a run of
    thousands of shards says in a few lines what yielded nothing and why."""
    columns = ["stage", "status", "reason", "n_shards", "n_days", "examples"]
    if table.empty:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    rows = []
    for (stage, status, reason), group in table.groupby(["stage", "status", "reason"], sort=False):
        examples = [f"{d} {n}.{s}" for d, n, s in group[["day", "network", "station"]].head(max_examples).itertuples(index=False)]
        rows.append([stage, status, reason, len(group), group["day"].nunique(),
                     ", ".join(examples) + (" …" if len(group) > max_examples else "")])
    summary = pd.DataFrame(rows, columns=columns)
    # what went wrong first: ok rows last, then by stage in pipeline order and by count
    summary["_ok"] = summary["status"] == "ok"
    return summary.sort_values(["_ok", "n_shards"], ascending=[True, False], kind="stable").drop(columns="_ok").reset_index(drop=True)
