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

Unmatched detections: a reference made by an analyst (or the synthetic truth, which keeps only
events with enough visible picks, as a bulletin would) leaves small events out, so an unmatched
detection is not necessarily false. When the complete list of events that happened is known
(the synthetic generator's ``events_all.csv``), unmatched detections are matched once more, one to
one with the same tolerances, against the generated events the reference left out: those pairs
are ``fp_real``, the rest ``fp_false``, and ``precision_real`` is (tp + fp_real) / detections.
Against a real reference they stay unmatched: candidates for an analyst to review.
"""
from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyproj import Geod

from quakesnake import seismicity
from quakesnake.scoring import one_to_one, pick_scores
from quakesnake.tabular import PICK_COLUMNS, atomic_write, concat_tables, phase_letters, read_reference, read_table, write_table

logger = logging.getLogger(__name__)

STATION_PREFIX_LENGTH = 4
MAGNITUDE_COLUMNS = ("magnitude", "ML", "MD")
PICK_MATCH_COLUMNS = ["pred_index", "ref_index", "station", "phase", "pred_time", "ref_time", "residual_s"]
EVENT_MATCH_COLUMNS = [
    "pred_index", "ref_index", "pred_event_id", "ref_event_id",
    "time_error_s", "epicentral_distance_km", "depth_error_km", "magnitude_error",
]
# what became of a detection: matched to a reference event, else (with the complete list of
# generated events) a real event the reference left out or a false one, else simply unmatched
DETECTION_OUTCOMES = ("matched", "fp_real", "fp_false", "unmatched")
GENERATED_EVENT_COLUMNS = ["event_id", "time", "latitude", "longitude", "depth_km"]
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
    return phase_letters(picks["phase"]).to_numpy()


def _seconds(times: pd.Series, origin: np.datetime64) -> np.ndarray:
    return (times.to_numpy("datetime64[ns]") - origin) / np.timedelta64(1, "s")


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

        p_hit, r_hit = one_to_one(p_s, r_s, tolerance_s, cost)
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

    p_hit, r_hit = one_to_one(pred_s, ref_s, time_tolerance_s, cost)
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
    # the window's detections with ``outcome`` (DETECTION_OUTCOMES) and what they matched, and the
    # window's reference events with ``found`` and the detection that found them
    detections: pd.DataFrame | None = None
    reference: pd.DataFrame | None = None


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
    generated_events: pd.DataFrame | None = None,
    magnitude_statistics: dict | None = None,
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
    pick_matches = _with_reference_distance(pick_matches, ref_picks, ref_events, ref_stations)
    event_matches = match_events(pred_events, ref_events, event_time_tolerance_s, event_distance_tolerance_km)
    detections, reference = _event_outcomes(pred_events, ref_events, event_matches)
    if generated_events is not None:
        generated = in_window(generated_events, "generated_events")
        uncatalogued = generated[~generated["event_id"].astype(str).isin(set(ref_events["event_id"].astype(str)))]
        unmatched = pred_events[detections["outcome"].to_numpy() == "unmatched"]
        real = match_events(unmatched, uncatalogued, event_time_tolerance_s, event_distance_tolerance_km)
        is_real = detections.index.isin(real["pred_index"])
        detections.loc[detections["outcome"] == "unmatched", "outcome"] = "fp_false"
        detections.loc[is_real, "outcome"] = "fp_real"
        detections.loc[real["pred_index"], "generated_event_id"] = real["ref_event_id"].to_numpy()
    pred_phase, ref_phase = _phase(pred_picks), _phase(ref_picks)
    event_metrics = _event_metrics(len(ref_events), len(pred_events), event_matches)
    event_metrics.update(_unmatched_metrics(detections, generated_events is not None))
    statistics = dict(magnitude_statistics or {})
    metrics = {
        "picks": {
            phase: pick_scores(int((ref_phase == phase).sum()), int((pred_phase == phase).sum()),
                               pick_matches.loc[pick_matches["phase"] == phase, "residual_s"].to_numpy(), phase)
            for phase in ("P", "S")
        },
        "events": event_metrics,
        "magnitude_distribution": {
            "catalog": seismicity.magnitude_statistics(event_magnitude(pred_events), **statistics),
            "reference": seismicity.magnitude_statistics(event_magnitude(ref_events), **statistics),
        },
        "tolerances": {
            "pick_s": pick_tolerance_s, "event_time_s": event_time_tolerance_s,
            "event_distance_km": event_distance_tolerance_km,
        },
        "window": {"start": start.isoformat(), "end": end.isoformat()},
        "dropped": dropped,
    }
    return CatalogScore(json_safe(metrics), pick_matches, event_matches, pred_events, ref_events, dropped,
                        detections, reference)


def _event_outcomes(pred_events: pd.DataFrame, ref_events: pd.DataFrame, matches: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(detections with outcome matched/unmatched and their pair, reference events with found)."""
    detections = pred_events.copy()
    detections["outcome"] = "unmatched"
    detections["ref_event_id"] = None
    detections["generated_event_id"] = None
    for column in ("time_error_s", "epicentral_distance_km", "magnitude_error"):
        detections[column] = np.nan
    pairs = matches.set_index("pred_index")
    detections.loc[pairs.index, "outcome"] = "matched"
    for column in ("ref_event_id", "time_error_s", "epicentral_distance_km", "magnitude_error"):
        detections.loc[pairs.index, column] = pairs[column].to_numpy()
    detections["reference_magnitude"] = np.nan
    detections.loc[pairs.index, "reference_magnitude"] = event_magnitude(ref_events).reindex(matches["ref_index"]).to_numpy()
    reference = ref_events.copy()
    reference["found"] = reference.index.isin(matches["ref_index"])
    reference["pred_event_id"] = None
    reference.loc[matches["ref_index"], "pred_event_id"] = matches["pred_event_id"].to_numpy()
    return detections, reference


def _unmatched_metrics(detections: pd.DataFrame, complete_truth: bool) -> dict:
    """fp_real, fp_false, precision_real (None with the reason when nothing tells real from false)."""
    outcome = detections["outcome"]
    n_pred, tp = len(detections), int((outcome == "matched").sum())
    if not complete_truth:
        return {
            "fp_real": None, "fp_false": None, "precision_real": None, "n_unmatched": n_pred - tp,
            "precision_real_reason": "the reference is not a complete list of the events that happened: "
                                     "unmatched detections are candidates for review, not known to be false",
        }
    fp_real = int((outcome == "fp_real").sum())
    return {
        "fp_real": fp_real, "fp_false": int((outcome == "fp_false").sum()),
        "precision_real": _ratio(tp + fp_real, n_pred), "n_unmatched": n_pred - tp,
        "precision_real_reason": None if n_pred else "no detections",
    }


def _with_reference_distance(pick_matches: pd.DataFrame, ref_picks: pd.DataFrame, ref_events: pd.DataFrame,
                             ref_stations: pd.DataFrame) -> pd.DataFrame:
    """Pick matches with the reference event of each pick and its epicentral distance to the station
    (NaN when the reference pick names no event of the window or the station has no coordinates)."""
    table = pick_matches.copy()
    event_ids = ref_picks["event_id"].astype(str) if "event_id" in ref_picks else pd.Series(None, index=ref_picks.index, dtype=object)
    table["ref_event_id"] = event_ids.reindex(table["ref_index"]).to_numpy(object)
    events = ref_events.drop_duplicates("event_id") if "event_id" in ref_events else ref_events.iloc[:0].assign(event_id="")
    events = events.set_index(events["event_id"].astype(str))
    stations = ref_stations.dropna(subset=["latitude", "longitude"]).drop_duplicates("station").set_index("station")
    event_lat = events["latitude"].reindex(table["ref_event_id"]).to_numpy(float)
    event_lon = events["longitude"].reindex(table["ref_event_id"]).to_numpy(float)
    station_lat = stations["latitude"].reindex(table["station"]).to_numpy(float)
    station_lon = stations["longitude"].reindex(table["station"]).to_numpy(float)
    known = np.isfinite(event_lat) & np.isfinite(station_lat)
    distance = np.full(len(table), np.nan)
    distance[known] = epicentral_distance_km(event_lat[known], event_lon[known], station_lat[known], station_lon[known])
    table["epicentral_distance_km"] = distance
    return table


def _ratio(numerator: int, denominator: int):
    return numerator / denominator if denominator else None


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
    reason = None
    if n_ref == 0:
        reason = "the reference has no events in the window: nothing to score against"
    elif n_pred == 0:
        reason = "no events were detected in the window"
    return {
        "recall": _ratio(tp, n_ref),
        "precision": _ratio(tp, n_pred) if n_ref else None,
        "reason": reason,
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
    text = json.dumps(json_safe(metrics), indent=2, allow_nan=False) + "\n"
    atomic_write(path, lambda partial: partial.write_text(text))


def evaluate_files(
    events_path,
    pick_paths,
    reference_dir,
    days,
    metrics_path,
    detections_path=None,
    reference_events_path=None,
    pick_matches_path=None,
    *,
    generated_events_path=None,
    pick_tolerance_s: float = 0.5,
    event_time_tolerance_s: float = 2.0,
    event_distance_tolerance_km: float = 8.0,
    processed_stations=None,
    magnitude_statistics: dict | None = None,
) -> dict:
    """Score a catalog file and per-day pick files over ``days`` (UTC, 'YYYY-MM-DD') against a
    reference directory; write the metrics JSON and, when paths are given, the tables behind it:
    the detections with their outcome, the reference events with ``found``, the pick matches.

    ``generated_events_path``: the synthetic generator's complete event list (``events_all.csv``),
    which splits unmatched detections into fp_real and fp_false.
    """
    ref_events, ref_picks, ref_stations = read_reference(reference_dir)
    pred_events = read_table(events_path, ["time", "latitude", "longitude", "depth_km"])
    pred_picks = concat_tables([read_table(path, ["station", "phase", "time"]) for path in pick_paths], PICK_COLUMNS)
    generated = None
    if generated_events_path is not None:
        generated = read_table(generated_events_path, GENERATED_EVENT_COLUMNS)
        generated["event_id"] = generated["event_id"].astype(str)
    days = sorted(pd.Timestamp(day) for day in days)
    score = score_catalog(
        pred_events, pred_picks, ref_events, ref_picks, ref_stations,
        start=days[0], end=days[-1] + pd.Timedelta(days=1), pick_tolerance_s=pick_tolerance_s,
        event_time_tolerance_s=event_time_tolerance_s, event_distance_tolerance_km=event_distance_tolerance_km,
        processed_stations=processed_stations, generated_events=generated, magnitude_statistics=magnitude_statistics,
    )
    write_metrics(score.metrics, metrics_path)
    for table, path in [(score.detections, detections_path), (score.reference, reference_events_path),
                        (score.pick_matches, pick_matches_path)]:
        if path is not None:
            write_table(table.reset_index(drop=True), path)
    return score.metrics


def summary_table(metrics_paths) -> pd.DataFrame:
    """One row of headline numbers per ``.../{picker}/{associator}/metrics.json``; ``notes`` says
    why a score is empty (nothing to score against, no real/false split)."""
    rows = []
    for path in map(Path, metrics_paths):
        metrics = json.loads(path.read_text())
        events, p, s = metrics["events"], metrics["picks"]["P"], metrics["picks"]["S"]
        fmd = metrics.get("magnitude_distribution", {})
        catalog_fmd, reference_fmd = fmd.get("catalog", {}), fmd.get("reference", {})
        notes = [f"{label}: {block['reason']}" for label, block in (("events", events), ("P", p), ("S", s))
                 if block.get("reason")]
        if events.get("precision_real_reason"):
            notes.append(f"precision_real: {events['precision_real_reason']}")
        rows.append({
            "picker": path.parent.parent.name,
            "associator": path.parent.name,
            "event_recall": events["recall"],
            "event_precision": events["precision"],
            "event_precision_real": events.get("precision_real"),
            "n_ref_events": events["n_ref"],
            "n_pred_events": events["n_pred"],
            "tp": events["tp"],
            "fp_real": events.get("fp_real"),
            "fp_false": events.get("fp_false"),
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
            "mc": catalog_fmd.get("mc"),
            "b_value": catalog_fmd.get("b_value"),
            "b_uncertainty": catalog_fmd.get("b_uncertainty"),
            "reference_mc": reference_fmd.get("mc"),
            "reference_b_value": reference_fmd.get("b_value"),
            "reference_b_uncertainty": reference_fmd.get("b_uncertainty"),
            "notes": "; ".join(notes),
        })
    return pd.DataFrame(rows)


def headline_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The few numbers the report's landing page shows per picker × associator (from
    :func:`summary_table`), in columns narrow enough for it: reference events found, precision,
    precision_real, the real / false split of the unmatched detections, Mc and b-value. Missing
    values read "n/a" (summary.csv's notes say why)."""
    def number(value, digits=2):
        return "n/a" if value is None or pd.isna(value) else f"{value:.{digits}f}"

    rows = []
    for row in summary.to_dict("records"):
        rows.append({
            "catalog": f"{row['picker']} + {row['associator']}",
            "found": f"{int(row['tp'])} of {int(row['n_ref_events'])}",
            "precision": number(row["event_precision"]),
            "real": number(row["event_precision_real"]),
            "new real / false": "n/a" if pd.isna(row["fp_real"]) else f"{int(row['fp_real'])} / {int(row['fp_false'])}",
            "Mc": number(row["mc"], 1),
            "b": "n/a" if pd.isna(row["b_value"]) else f"{row['b_value']:.2f} ± {row['b_uncertainty']:.2f}",
        })
    return pd.DataFrame(rows)
