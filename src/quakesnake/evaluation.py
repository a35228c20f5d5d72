"""Score a catalog (events and picks) against a reference catalog with one-to-one matching.

Matching is a maximum matching: as many pairs as possible within the tolerances, and among
those the smallest total cost (SciPy's ``linear_sum_assignment``). Candidates are first split
into clusters separated by more than the time tolerance, so each assignment problem is small.

* Picks pair on station and phase within ``tolerance_s`` (cost |dt|).
* Events pair within ``time_tolerance_s`` of origin time and ``distance_tolerance_km`` of
  epicentral distance (cost |dt| / time tolerance + distance / distance tolerance).

Station codes: reference bulletins may truncate codes to 4 characters (OGS writes FUOR for
CH.FUORN) while predictions carry the full code. A predicted code matches the identical
reference code; failing that, the reference code equal to its first 4 characters, provided
no other predicted code claims that reference code. Networks are not compared (reference
picks carry none).

Residuals and errors are predicted minus reference (positive: late, deep, large).
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from pyproj import Geod
from scipy.optimize import linear_sum_assignment

from quakesnake.io import PICK_COLUMNS, concat_tables, read_reference, read_table

logger = logging.getLogger(__name__)

STATION_PREFIX_LENGTH = 4
MAGNITUDE_COLUMNS = ("magnitude", "ML", "MD")
PICK_MATCH_COLUMNS = ["pred_index", "ref_index", "station", "phase", "pred_time", "ref_time", "residual_s"]
EVENT_MATCH_COLUMNS = [
    "pred_index", "ref_index", "pred_event_id", "ref_event_id",
    "time_error_s", "epicentral_distance_km", "depth_error_km", "magnitude_error",
]
_GEOD = Geod(ellps="WGS84")


# --------------------------------------------------------------------------- matching

def station_code_map(predicted_codes, reference_codes) -> dict[str, str]:
    """Map predicted station codes to reference codes (exact, else a unique 4-character prefix)."""
    reference = set(map(str, reference_codes))
    predicted = sorted(set(map(str, predicted_codes)))
    mapping = {code: code for code in predicted if code in reference}
    prefix_claims: dict[str, list[str]] = {}
    for code in predicted:
        prefix = code[:STATION_PREFIX_LENGTH]
        if code not in mapping and prefix in reference and prefix not in mapping.values():
            prefix_claims.setdefault(prefix, []).append(code)
    for prefix, codes in prefix_claims.items():
        if len(codes) == 1:
            mapping[codes[0]] = prefix
        else:
            logger.warning("station codes %s all abbreviate to reference %s: none is matched", ", ".join(codes), prefix)
    return mapping


def _phase(picks: pd.DataFrame) -> np.ndarray:
    return picks["phase"].astype(str).str.upper().str[0].to_numpy()


def _seconds(times: pd.Series, origin: np.datetime64) -> np.ndarray:
    return (times.to_numpy("datetime64[ns]") - origin) / np.timedelta64(1, "s")


def _one_to_one(pred_s: np.ndarray, ref_s: np.ndarray, time_tolerance_s: float, pair_cost) -> tuple[np.ndarray, np.ndarray]:
    """Maximum matching with minimum total cost; ``pair_cost(p, r) -> (cost, valid)`` for index arrays."""
    times = np.concatenate([pred_s, ref_s])
    is_ref = np.concatenate([np.zeros(len(pred_s), bool), np.ones(len(ref_s), bool)])
    position = np.concatenate([np.arange(len(pred_s)), np.arange(len(ref_s))])
    order = np.argsort(times, kind="stable")
    # pairs never span a gap wider than the tolerance, so each cluster is solved on its own
    breaks = np.flatnonzero(np.diff(times[order]) > time_tolerance_s) + 1
    pred_matched, ref_matched = [], []
    for cluster in np.split(order, breaks):
        pred = position[cluster[~is_ref[cluster]]]
        ref = position[cluster[is_ref[cluster]]]
        if len(pred) == 0 or len(ref) == 0:
            continue
        cost, valid = pair_cost(pred, ref)
        if not valid.any():
            continue
        # a bonus larger than any total cost makes every extra pair worth more than lower costs
        bonus = float(cost[valid].sum()) + 1.0
        rows, cols = linear_sum_assignment(np.where(valid, cost - bonus, 0.0))
        kept = valid[rows, cols]
        pred_matched.append(pred[rows[kept]])
        ref_matched.append(ref[cols[kept]])
    if not pred_matched:
        return np.array([], np.int64), np.array([], np.int64)
    return np.concatenate(pred_matched), np.concatenate(ref_matched)


def match_picks(pred: pd.DataFrame, ref: pd.DataFrame, tolerance_s: float = 0.5) -> pd.DataFrame:
    """One-to-one pick matches on (station, phase) within ``tolerance_s``.

    Returns PICK_MATCH_COLUMNS; ``pred_index``/``ref_index`` are index labels of the inputs,
    ``station`` the reference code, ``residual_s`` predicted minus reference time.
    """
    if pred.empty or ref.empty:
        return _empty_pick_matches()
    codes = station_code_map(pred["station"], ref["station"])
    pred_keys = pd.DataFrame({"station": pred["station"].astype(str).map(codes).to_numpy(), "phase": _phase(pred)})
    ref_keys = pd.DataFrame({"station": ref["station"].astype(str).to_numpy(), "phase": _phase(ref)})
    origin = min(pred["time"].min(), ref["time"].min()).to_datetime64()
    pred_s, ref_s = _seconds(pred["time"], origin), _seconds(ref["time"], origin)
    ref_groups = ref_keys.groupby(["station", "phase"]).indices  # positions per (station, phase)
    rows = []
    for (station, phase), pred_rows in pred_keys.groupby(["station", "phase"]).indices.items():
        ref_rows = ref_groups.get((station, phase))
        if ref_rows is None:
            continue
        p_s, r_s = pred_s[pred_rows], ref_s[ref_rows]

        def cost(p, r, p_s=p_s, r_s=r_s):
            dt = np.abs(p_s[p][:, None] - r_s[r][None, :])
            return dt, dt <= tolerance_s

        p_hit, r_hit = _one_to_one(p_s, r_s, tolerance_s, cost)
        rows.append(pd.DataFrame({
            "pred_row": pred_rows[p_hit], "ref_row": ref_rows[r_hit], "station": station, "phase": phase,
        }))
    if not rows:
        return _empty_pick_matches()
    matched = pd.concat(rows, ignore_index=True)
    pred_time = pred["time"].to_numpy("datetime64[ns]")[matched["pred_row"]]
    ref_time = ref["time"].to_numpy("datetime64[ns]")[matched["ref_row"]]
    table = pd.DataFrame({
        "pred_index": pred.index.to_numpy()[matched["pred_row"]],
        "ref_index": ref.index.to_numpy()[matched["ref_row"]],
        "station": matched["station"].to_numpy(object),
        "phase": matched["phase"].to_numpy(object),
        "pred_time": pred_time,
        "ref_time": ref_time,
        "residual_s": (pred_time - ref_time) / np.timedelta64(1, "s"),
    })
    return table.sort_values("ref_time", kind="stable").reset_index(drop=True)


def _empty_pick_matches() -> pd.DataFrame:
    return pd.DataFrame({
        "pred_index": np.array([], np.int64), "ref_index": np.array([], np.int64),
        "station": np.array([], object), "phase": np.array([], object),
        "pred_time": np.array([], "datetime64[ns]"), "ref_time": np.array([], "datetime64[ns]"),
        "residual_s": np.array([], float),
    })


def epicentral_distance_km(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Geodesic distance on the WGS84 ellipsoid, km."""
    lat1, lon1, lat2, lon2 = np.broadcast_arrays(*(np.asarray(v, float) for v in (lat1, lon1, lat2, lon2)))
    if lat1.size == 0:
        return np.zeros(lat1.shape)
    # flat lists: pyproj's scalar fast path would take (and warn about) one-element arrays
    _, _, metres = _GEOD.inv(*(np.ravel(v).tolist() for v in (lon1, lat1, lon2, lat2)))
    return np.asarray(metres).reshape(lat1.shape) / 1000.0


def event_magnitude(events: pd.DataFrame) -> pd.Series:
    """The first magnitude column (magnitude, ML, MD) that holds any value, else NaN.

    One column for the whole table, so a catalog's ML is never compared with another
    event's MD; an all-empty column (a catalog without magnitudes) is passed over.
    """
    for column in MAGNITUDE_COLUMNS:
        if column in events:
            values = pd.to_numeric(events[column], errors="coerce")
            if values.notna().any():
                return values
    return pd.Series(np.nan, index=events.index)


def match_events(pred: pd.DataFrame, ref: pd.DataFrame, time_tolerance_s: float = 2.0, distance_tolerance_km: float = 8.0) -> pd.DataFrame:
    """One-to-one event matches within the origin-time and epicentral-distance tolerances.

    Returns EVENT_MATCH_COLUMNS; errors are predicted minus reference; ``magnitude_error`` is
    NaN when either side has no magnitude.
    """
    if pred.empty or ref.empty:
        return _empty_event_matches()
    origin = min(pred["time"].min(), ref["time"].min()).to_datetime64()
    pred_s, ref_s = _seconds(pred["time"], origin), _seconds(ref["time"], origin)
    pred_lat, pred_lon = pred["latitude"].to_numpy(float), pred["longitude"].to_numpy(float)
    ref_lat, ref_lon = ref["latitude"].to_numpy(float), ref["longitude"].to_numpy(float)

    def cost(p, r):
        dt = np.abs(pred_s[p][:, None] - ref_s[r][None, :])
        distance = epicentral_distance_km(pred_lat[p][:, None], pred_lon[p][:, None], ref_lat[r][None, :], ref_lon[r][None, :])
        valid = (dt <= time_tolerance_s) & (distance <= distance_tolerance_km)
        return dt / time_tolerance_s + distance / distance_tolerance_km, valid

    p_hit, r_hit = _one_to_one(pred_s, ref_s, time_tolerance_s, cost)
    if len(p_hit) == 0:
        return _empty_event_matches()
    pred_magnitude = event_magnitude(pred).to_numpy(float)
    ref_magnitude = event_magnitude(ref).to_numpy(float)
    table = pd.DataFrame({
        "pred_index": pred.index.to_numpy()[p_hit],
        "ref_index": ref.index.to_numpy()[r_hit],
        "pred_event_id": _event_ids(pred)[p_hit],
        "ref_event_id": _event_ids(ref)[r_hit],
        "time_error_s": pred_s[p_hit] - ref_s[r_hit],
        "epicentral_distance_km": epicentral_distance_km(pred_lat[p_hit], pred_lon[p_hit], ref_lat[r_hit], ref_lon[r_hit]),
        "depth_error_km": pred["depth_km"].to_numpy(float)[p_hit] - ref["depth_km"].to_numpy(float)[r_hit],
        "magnitude_error": pred_magnitude[p_hit] - ref_magnitude[r_hit],
    })
    return table.sort_values("ref_index", kind="stable").reset_index(drop=True)


def _event_ids(events: pd.DataFrame) -> np.ndarray:
    if "event_id" in events:
        return events["event_id"].astype(str).to_numpy(object)
    return events.index.astype(str).to_numpy(object)


def _empty_event_matches() -> pd.DataFrame:
    frame = pd.DataFrame({c: np.array([], float) for c in EVENT_MATCH_COLUMNS})
    return frame.astype({"pred_index": np.int64, "ref_index": np.int64, "pred_event_id": object, "ref_event_id": object})


# --------------------------------------------------------------------------- scoring

@dataclass
class CatalogScore:
    """Metrics (JSON-safe dict) plus the matches and windowed tables they were computed from."""

    metrics: dict
    pick_matches: pd.DataFrame
    event_matches: pd.DataFrame
    pred_events: pd.DataFrame
    ref_events: pd.DataFrame
    dropped: dict = field(default_factory=dict)


def evaluate(*args, **kwargs) -> dict:
    """The metrics dict of :func:`score_catalog` (same arguments), without the match tables."""
    return score_catalog(*args, **kwargs).metrics


def score_catalog(
    pred_events: pd.DataFrame,
    pred_picks: pd.DataFrame,
    ref_events: pd.DataFrame,
    ref_picks: pd.DataFrame,
    ref_stations: pd.DataFrame,
    *,
    start,
    end,
    pick_tolerance_s: float = 0.5,
    event_time_tolerance_s: float = 2.0,
    event_distance_tolerance_km: float = 8.0,
    processed_stations=None,
) -> CatalogScore:
    """Score predicted events and picks against the reference over the window [start, end).

    Every table is cut to the window by its own ``time``. Reference picks count only on
    stations that have coordinates in ``ref_stations`` and, when ``processed_stations`` (station
    codes) is given, on processed stations: the rest are dropped and counted. Predicted picks on
    stations the reference network does not know are dropped and counted too (the reference
    cannot have picks there). Metrics are None where undefined (no reference, no match, no
    magnitudes).
    """
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    dropped: dict[str, int] = {}

    def in_window(frame: pd.DataFrame, label: str) -> pd.DataFrame:
        inside = (frame["time"] >= start) & (frame["time"] < end)
        dropped[f"{label}_outside_window"] = int((~inside).sum())
        return frame[inside]

    ref_events = in_window(ref_events, "ref_events")
    pred_events = in_window(pred_events, "pred_events")
    ref_picks = in_window(ref_picks, "ref_picks")
    pred_picks = in_window(pred_picks, "pred_picks")

    located_codes = set(ref_stations.dropna(subset=["latitude", "longitude"])["station"].astype(str))
    has_coordinates = ref_picks["station"].astype(str).isin(located_codes)
    dropped["ref_picks_without_station_coordinates"] = int((~has_coordinates).sum())
    ref_picks = ref_picks[has_coordinates]
    if processed_stations is not None:
        processed = set(station_code_map(processed_stations, located_codes).values())
        was_processed = ref_picks["station"].astype(str).isin(processed)
        dropped["ref_picks_on_unprocessed_stations"] = int((~was_processed).sum())
        ref_picks = ref_picks[was_processed]
    known = pred_picks["station"].astype(str).map(station_code_map(pred_picks["station"], located_codes)).notna()
    dropped["pred_picks_on_unknown_stations"] = int((~known).sum())
    pred_picks = pred_picks[known]

    pick_matches = match_picks(pred_picks, ref_picks, pick_tolerance_s)
    event_matches = match_events(pred_events, ref_events, event_time_tolerance_s, event_distance_tolerance_km)
    pred_phase, ref_phase = _phase(pred_picks), _phase(ref_picks)
    metrics = {
        "picks": {
            phase: _pick_metrics(int((ref_phase == phase).sum()), int((pred_phase == phase).sum()),
                                 pick_matches.loc[pick_matches["phase"] == phase, "residual_s"].to_numpy())
            for phase in ("P", "S")
        },
        "events": _event_metrics(len(ref_events), len(pred_events), event_matches),
        "tolerances": {
            "pick_s": pick_tolerance_s, "event_time_s": event_time_tolerance_s,
            "event_distance_km": event_distance_tolerance_km,
        },
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "dropped": dropped,
    }
    return CatalogScore(json_safe(metrics), pick_matches, event_matches, pred_events, ref_events, dropped)


def _ratio(numerator: int, denominator: int):
    return numerator / denominator if denominator else None


def _pick_metrics(n_ref: int, n_pred: int, residuals: np.ndarray) -> dict:
    median = float(np.median(residuals)) if len(residuals) else None
    return {
        "recall": _ratio(len(residuals), n_ref),
        "precision": _ratio(len(residuals), n_pred),
        "n_ref": n_ref,
        "n_pred": n_pred,
        "tp": len(residuals),
        "residual_median_s": median,
        "residual_mad_s": float(np.median(np.abs(residuals - median))) if len(residuals) else None,
    }


def _mean(values: np.ndarray):
    values = values[np.isfinite(values)]
    return float(values.mean()) if len(values) else None


def _rms(values: np.ndarray):
    values = values[np.isfinite(values)]
    return float(np.sqrt(np.mean(values ** 2))) if len(values) else None


def _event_metrics(n_ref: int, n_pred: int, matches: pd.DataFrame) -> dict:
    tp = len(matches)
    time_error = matches["time_error_s"].to_numpy(float)
    distance = matches["epicentral_distance_km"].to_numpy(float)
    depth_error = matches["depth_error_km"].to_numpy(float)
    magnitude_error = matches["magnitude_error"].to_numpy(float)
    return {
        "recall": _ratio(tp, n_ref),
        "precision": _ratio(tp, n_pred),
        "n_ref": n_ref,
        "n_pred": n_pred,
        "tp": tp,
        "fn": n_ref - tp,
        "fp": n_pred - tp,
        "origin_time_mae_s": _mean(np.abs(time_error)),
        "origin_time_bias_s": _mean(time_error),
        "epicentral_mae_km": _mean(distance),
        "epicentral_rmse_km": _rms(distance),
        "depth_mae_km": _mean(np.abs(depth_error)),
        "depth_rmse_km": _rms(depth_error),
        "depth_bias_km": _mean(depth_error),
        "magnitude_bias": _mean(magnitude_error),
        "magnitude_mae": _mean(np.abs(magnitude_error)),
        "n_magnitude_pairs": int(np.isfinite(magnitude_error).sum()),
    }


def json_safe(value):
    """Plain Python types for json.dump: NaN/inf become None, NumPy scalars become int/float."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    return value


# --------------------------------------------------------------------------- files

def write_metrics(metrics: dict, path) -> None:
    """Metrics as indented JSON (NaN refused), written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(json_safe(metrics), indent=2, allow_nan=False) + "\n")
    partial.replace(path)


def evaluate_files(
    events_path,
    pick_paths,
    reference_dir,
    days,
    metrics_path,
    event_map_path=None,
    pick_residuals_path=None,
    *,
    pick_tolerance_s: float = 0.5,
    event_time_tolerance_s: float = 2.0,
    event_distance_tolerance_km: float = 8.0,
    processed_stations=None,
) -> dict:
    """Score a catalog file and per-day pick files over ``days`` (UTC, 'YYYY-MM-DD') against a
    reference directory; write the metrics JSON and, when paths are given, the two plots."""
    ref_events, ref_picks, ref_stations = read_reference(reference_dir)
    pred_events = read_table(events_path, ["time", "latitude", "longitude", "depth_km"])
    pred_picks = concat_tables([read_table(path, ["station", "phase", "time"]) for path in pick_paths], PICK_COLUMNS)
    days = sorted(pd.Timestamp(day) for day in days)
    score = score_catalog(
        pred_events, pred_picks, ref_events, ref_picks, ref_stations,
        start=days[0], end=days[-1] + pd.Timedelta(days=1), pick_tolerance_s=pick_tolerance_s,
        event_time_tolerance_s=event_time_tolerance_s, event_distance_tolerance_km=event_distance_tolerance_km,
        processed_stations=processed_stations,
    )
    write_metrics(score.metrics, metrics_path)
    if event_map_path is not None:
        plot_event_map(score.pred_events, score.ref_events, score.event_matches, ref_stations, event_map_path)
    if pick_residuals_path is not None:
        plot_pick_residuals(score.pick_matches, pick_residuals_path)
    return score.metrics


def summary_table(metrics_paths) -> pd.DataFrame:
    """One row of headline numbers per ``.../{picker}/{associator}/metrics.json``."""
    rows = []
    for path in map(Path, metrics_paths):
        metrics = json.loads(path.read_text())
        events, p, s = metrics["events"], metrics["picks"]["P"], metrics["picks"]["S"]
        rows.append({
            "picker": path.parent.parent.name,
            "associator": path.parent.name,
            "event_recall": events["recall"],
            "event_precision": events["precision"],
            "n_ref_events": events["n_ref"],
            "n_pred_events": events["n_pred"],
            "p_recall": p["recall"],
            "p_precision": p["precision"],
            "s_recall": s["recall"],
            "s_precision": s["precision"],
            "origin_time_mae_s": events["origin_time_mae_s"],
            "epicentral_mae_km": events["epicentral_mae_km"],
            "depth_mae_km": events["depth_mae_km"],
            "depth_bias_km": events["depth_bias_km"],
            "magnitude_bias": events["magnitude_bias"],
            "magnitude_mae": events["magnitude_mae"],
            "n_magnitude_pairs": events["n_magnitude_pairs"],
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- plots

def plot_event_map(pred_events: pd.DataFrame, ref_events: pd.DataFrame, matches: pd.DataFrame, stations: pd.DataFrame, path) -> None:
    """Map of reference and predicted epicentres: matched, missed and false, stations as triangles."""
    matched_ref = ref_events.index.isin(matches["ref_index"])
    matched_pred = pred_events.index.isin(matches["pred_index"])
    fig = Figure(figsize=(8, 7))
    ax = fig.subplots()
    ax.scatter(stations["longitude"], stations["latitude"], marker="^", s=40, c="0.5", edgecolors="k", linewidths=0.5, label="station")
    for ref_index, pred_index in zip(matches["ref_index"], matches["pred_index"]):
        ax.plot([ref_events.at[ref_index, "longitude"], pred_events.at[pred_index, "longitude"]],
                [ref_events.at[ref_index, "latitude"], pred_events.at[pred_index, "latitude"]], c="tab:green", lw=0.6)
    ax.scatter(ref_events.loc[matched_ref, "longitude"], ref_events.loc[matched_ref, "latitude"], s=30, facecolors="none",
               edgecolors="tab:green", label=f"reference, found ({int(matched_ref.sum())})")
    ax.scatter(pred_events.loc[matched_pred, "longitude"], pred_events.loc[matched_pred, "latitude"], s=8, c="tab:green",
               label=f"predicted, matched ({int(matched_pred.sum())})")
    ax.scatter(ref_events.loc[~matched_ref, "longitude"], ref_events.loc[~matched_ref, "latitude"], s=30, marker="x",
               c="tab:red", label=f"reference, missed ({int((~matched_ref).sum())})")
    ax.scatter(pred_events.loc[~matched_pred, "longitude"], pred_events.loc[~matched_pred, "latitude"], s=14, c="tab:orange",
               label=f"predicted, false ({int((~matched_pred).sum())})")
    latitudes = pd.concat([stations["latitude"], ref_events["latitude"], pred_events["latitude"]]).dropna()
    if len(latitudes):
        ax.set_aspect(1.0 / np.cos(np.radians(latitudes.mean())))
    ax.set_xlabel("longitude (°)")
    ax.set_ylabel("latitude (°)")
    ax.legend(loc="best", fontsize="small")
    _save(fig, path)


def plot_pick_residuals(pick_matches: pd.DataFrame, path) -> None:
    """Histograms of predicted minus reference pick times, P and S side by side."""
    fig = Figure(figsize=(9, 3.5))
    axes = fig.subplots(1, 2, sharey=True)
    residuals = pick_matches["residual_s"].to_numpy(float)
    limit = max(float(np.abs(residuals).max()) if len(residuals) else 0.0, 0.1)
    bins = np.linspace(-limit, limit, 41)
    for ax, phase, colour in zip(axes, ("P", "S"), ("tab:blue", "tab:red")):
        values = pick_matches.loc[pick_matches["phase"] == phase, "residual_s"].to_numpy(float)
        ax.hist(values, bins=bins, color=colour, alpha=0.8)
        summary = f"n={len(values)}" + (f", median {np.median(values):+.3f} s" if len(values) else "")
        ax.set_title(f"{phase}: {summary}", fontsize="medium")
        ax.set_xlabel("predicted − reference (s)")
    axes[0].set_ylabel("matched picks")
    _save(fig, path)


def _save(fig: Figure, path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=120)  # a bare Figure renders with Agg: no pyplot state, no display needed
