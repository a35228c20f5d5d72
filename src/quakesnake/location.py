"""Relocate associated events in a 1D layered model with robust, damped least squares (Geiger).

Associators locate coarsely (PyOcto on an octree, GaMMA in a homogeneous medium). :func:`relocate`
refines every event from its assigned picks: the unknowns are x, y (km, in the same local
transverse-Mercator projection the associators use), depth (km below sea level) and origin time;
residuals are observed minus predicted arrival, each divided by its phase's pick uncertainty.
SciPy's trust-region reflective solver (``least_squares(method="trf")``) takes damped
Gauss-Newton steps inside bounds (depth between the surface and the table's floor) with a robust
loss, so a wrongly associated pick pulls far less than a plain least-squares fit would let it.

Travel times and their derivatives (the Jacobian) are those of :mod:`quakesnake.traveltimes`:
the exact first arrivals of the layered model, the same times PyOcto's 1D table holds,
interpolated by a spline of the squared time. Station elevation adds a vertical path through
the top layer, as in PyOcto's elevation correction.

Uncertainties come from the covariance ``s² (JᵀJ)⁻¹`` at the solution, with ``s²`` the
reduced chi-square of the normalised residuals but never below 1: the a priori pick errors,
inflated when the picks fit worse than they claim. ``erh_km`` is sqrt(σx² + σy²) (Hypo71's ERH),
``erz_km`` σz, ``time_std_s`` σt; ``rms_residual_s`` the RMS of the plain residuals (s).
"""
from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from quakesnake import tabular
from quakesnake.association import LocalProjection, _station_id, station_coordinates
from quakesnake.config import section_defaults
from quakesnake.traveltimes import TravelTimes, travel_times_reaching

logger = logging.getLogger(__name__)

# residuals beyond this many sigmas are down-weighted by the robust loss
ROBUST_SCALE_SIGMAS = 3.0
LOCATED_COLUMNS = ["time", "latitude", "longitude", "depth_km", "x_km", "y_km", "rms_residual_s"]
UNCERTAINTY_COLUMNS = ["erh_km", "erz_km", "time_std_s"]

# The options of relocate() with their defaults, and their reasons: the schema's relocation
# section (besides `enabled`, which the workflow reads). A priori pick sigmas: S onsets sit in the
# P coda and are picked less precisely; min_picks: four unknowns need a redundant pick before a
# fit says anything about its own quality.
DEFAULT_OPTIONS = {k: v for k, v in section_defaults("relocation").items() if k != "enabled"}
DEFAULT_PICK_SIGMA_S = DEFAULT_OPTIONS["pick_sigma_s"]


def resolve_options(options: dict | None) -> dict:
    """``options`` over :data:`DEFAULT_OPTIONS`; unknown keys or phases are an error naming them."""
    options = dict(options or {})
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(f"relocation options: unknown key(s) {', '.join(unknown)} (known: {', '.join(DEFAULT_OPTIONS)})")
    sigma = {**DEFAULT_PICK_SIGMA_S, **(options.get("pick_sigma_s") or {})}
    if set(sigma) - {"P", "S"} or min(sigma.values()) <= 0:
        raise ValueError(f"relocation options: pick_sigma_s needs positive P and S values (s), got {sigma}")
    resolved = {**DEFAULT_OPTIONS, **options, "pick_sigma_s": sigma}
    if int(resolved["min_picks"]) < 4:
        raise ValueError(f"relocation options: min_picks must be at least 4 (the four unknowns), got {resolved['min_picks']}")
    if resolved["max_depth_km"] <= 0 or resolved["margin_km"] < 0:
        raise ValueError(f"relocation options: max_depth_km must be positive and margin_km not negative, got {resolved['max_depth_km']}, {resolved['margin_km']}")
    return resolved


def relocate(events: pd.DataFrame, assignments: pd.DataFrame, stations: pd.DataFrame, layers, **options) -> pd.DataFrame:
    """The events of :func:`relocate_with_residuals` (``options``: its keyword arguments)."""
    return relocate_with_residuals(events, assignments, stations, layers, **options)[0]


def relocate_with_residuals(events: pd.DataFrame, assignments: pd.DataFrame, stations: pd.DataFrame, layers,
                            **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Events relocated from their assigned picks in the layered model ``layers``, and the
    assignments with the residuals of the relocated events' picks.

    ``events`` need event_id, time, latitude, longitude, depth_km (the associator's location, the
    starting point); ``assignments`` event_id, network, station, phase, time; ``stations`` network,
    station, latitude, longitude[, elevation_m]. Returns a copy of ``events`` where time, latitude,
    longitude, depth_km (and x_km, y_km, rms_residual_s when present) hold the relocation, the
    previous values are kept as ``<column>_assoc``, and erh_km, erz_km, time_std_s and ``relocated``
    (False: too few picks, the associator location is kept and the uncertainties are NaN) are added.
    ``options`` (keys and defaults: :data:`DEFAULT_OPTIONS`): ``pick_sigma_s`` the a priori pick
    uncertainties by phase; events with fewer than ``min_picks`` picks on located stations keep
    the associator's location; epicentres are searched within the station bounding box plus
    ``margin_km``, depths between 0 and ``max_depth_km``; ``station_elevations=False`` puts every
    station at sea level, as Hypo71-style bulletins do.

    The returned assignments are a copy of ``assignments`` whose ``residual_s`` holds, for the picks
    of relocated events, observed minus predicted arrival from the relocated hypocentre (NaN on
    stations without coordinates); other picks keep the associator's residual.
    """
    options = resolve_options(options)
    sigma, min_picks, max_depth_km = options["pick_sigma_s"], int(options["min_picks"]), float(options["max_depth_km"])
    table = events.copy()
    assigned = assignments.copy()
    for column in LOCATED_COLUMNS:
        if column in table:
            table[f"{column}_assoc"] = table[column]
    for column in UNCERTAINTY_COLUMNS:
        table[column] = np.nan
    table["relocated"] = False
    coordinates = station_coordinates(stations)
    if table.empty or coordinates.empty:
        return table, assigned

    projection = LocalProjection.around(coordinates["latitude"], coordinates["longitude"], options["margin_km"])
    station_x, station_y = projection.to_xy(coordinates["latitude"], coordinates["longitude"])
    elevation_km = coordinates["elevation_m"].to_numpy(float) / 1000.0 if options["station_elevations"] else 0.0
    station_table = pd.DataFrame(
        {"x": station_x, "y": station_y, "elevation_km": elevation_km},
        index=coordinates["id"].to_numpy(),
    )
    travel_times = travel_times_reaching(layers, projection.diagonal_km, max_depth_km)
    event_x, event_y = projection.to_xy(table["latitude"], table["longitude"])
    picks = assignments.assign(station_id=_station_id(assignments["network"], assignments["station"]))
    picks = picks[picks["station_id"].isin(station_table.index) & picks["phase"].isin(["P", "S"])]
    picks_by_event = picks.groupby("event_id").indices

    lower = np.array([projection.xlim[0], projection.ylim[0], 0.0, -np.inf])
    upper = np.array([projection.xlim[1], projection.ylim[1], max_depth_km, np.inf])
    # one row per event: x, y, depth, origin offset (s), erh, erz, time std, rms; NaN = not relocated
    solved = np.full((len(table), 8), np.nan)
    new_residuals = []
    for row, event_id in enumerate(table["event_id"]):
        rows = picks_by_event.get(event_id)
        if rows is None or len(rows) < min_picks:
            continue
        event_picks = picks.iloc[rows]
        observed_s = (event_picks["time"] - table["time"].iloc[row]).dt.total_seconds().to_numpy()
        start = np.array([event_x[row], event_y[row], table["depth_km"].iloc[row], 0.0])
        solved[row], residuals_s = _locate(
            observed_s, event_picks["phase"].to_numpy(), station_table.loc[event_picks["station_id"].to_numpy()],
            travel_times, sigma, start, lower, upper,
        )
        new_residuals.append(pd.Series(residuals_s, index=event_picks.index))

    relocated = np.isfinite(solved[:, 0])
    latitude, longitude = projection.to_latlon(solved[relocated, 0], solved[relocated, 1])
    table.loc[relocated, "latitude"], table.loc[relocated, "longitude"] = latitude, longitude
    table.loc[relocated, "depth_km"] = solved[relocated, 2]
    shift = pd.to_timedelta(np.round(solved[relocated, 3] * 1e9).astype(np.int64), unit="ns")
    table.loc[relocated, "time"] = table.loc[relocated, "time"].to_numpy("datetime64[ns]") + shift.to_numpy()
    if "x_km" in table:
        table.loc[relocated, "x_km"], table.loc[relocated, "y_km"] = solved[relocated, 0], solved[relocated, 1]
    if "rms_residual_s" in table:
        table.loc[relocated, "rms_residual_s"] = solved[relocated, 7]
    for position, column in enumerate(UNCERTAINTY_COLUMNS, start=4):
        table[column] = solved[:, position]
    table["relocated"] = relocated
    if "residual_s" in assigned:
        assigned.loc[assigned["event_id"].isin(table.loc[relocated, "event_id"]), "residual_s"] = np.nan
        for residuals_s in new_residuals:
            assigned.loc[residuals_s.index, "residual_s"] = residuals_s.to_numpy()
    logger.info("relocated %d of %d events (the rest have fewer than %d picks on located stations)",
                int(relocated.sum()), len(table), min_picks)
    return table, assigned


def _locate(observed_s, phases, stations: pd.DataFrame, travel_times: TravelTimes, sigma: dict, start, lower, upper) -> tuple[np.ndarray, np.ndarray]:
    """One event from ``start`` (x, y, depth, origin offset; observed times are s after the start
    origin): returns (x, y, depth, origin offset, erh_km, erz_km, time_std_s, rms_residual_s) and
    the picks' residuals (s)."""
    station_x, station_y = stations["x"].to_numpy(), stations["y"].to_numpy()
    pick_sigma = np.array([sigma[phase] for phase in phases])
    elevation_delay = stations["elevation_km"].to_numpy() / np.array([travel_times.surface_velocity_km_s[p] for p in phases])
    is_p = phases == "P"

    def predict(params):
        dx, dy = params[0] - station_x, params[1] - station_y
        distance = np.hypot(dx, dy)
        times, d_distance, d_depth = np.empty(len(phases)), np.empty(len(phases)), np.empty(len(phases))
        for phase, chosen in (("P", is_p), ("S", ~is_p)):
            times[chosen], d_distance[chosen], d_depth[chosen] = travel_times.time_and_derivatives(phase, distance[chosen], params[2])
        # d distance / dx is dx / distance; a station right above the source contributes no horizontal pull
        with np.errstate(invalid="ignore", divide="ignore"):
            unit_x, unit_y = np.where(distance > 0, dx / distance, 0.0), np.where(distance > 0, dy / distance, 0.0)
        return params[3] + times + elevation_delay, d_distance * unit_x, d_distance * unit_y, d_depth

    def residuals(params):
        return (observed_s - predict(params)[0]) / pick_sigma

    def jacobian(params):
        _, d_x, d_y, d_depth = predict(params)
        return -np.column_stack([d_x, d_y, d_depth, np.ones(len(phases))]) / pick_sigma[:, None]

    start = np.clip(start, lower + 1e-6, upper - 1e-6)
    result = least_squares(
        residuals, start, jac=jacobian, bounds=(lower, upper), method="trf", loss="soft_l1",
        f_scale=ROBUST_SCALE_SIGMAS,  # km and s are alike in size here: the default unit x_scale converges in ~10 steps
    )
    n_picks = len(phases)
    normalised = result.fun
    reduced_chi_square = float(np.sum(normalised ** 2) / (n_picks - 4)) if n_picks > 4 else 1.0
    # result.jac carries the robust loss's weights: its JᵀJ is the Gauss-Newton Hessian of the robust cost
    covariance = max(reduced_chi_square, 1.0) * np.linalg.pinv(result.jac.T @ result.jac)
    variances = np.clip(np.diag(covariance), 0.0, None)
    residuals_s = normalised * pick_sigma
    rms_s = np.sqrt(np.mean(residuals_s ** 2))
    return np.array([*result.x, np.sqrt(variances[0] + variances[1]), np.sqrt(variances[2]), np.sqrt(variances[3]), rms_s]), residuals_s


def locate_files(events_path, assignments_path, stations_path, layers, events_out, assignments_out,
                 options: dict | None = None) -> pd.DataFrame:
    """The locate rule's file edge of :func:`relocate_with_residuals`: one day's associated events
    and assignments in, the relocated events and the assignments with their residuals out.
    ``options`` are :data:`DEFAULT_OPTIONS` keys (the workflow's ``relocation`` section)."""
    events = tabular.read_table(events_path, tabular.EVENT_COLUMNS[:5])
    assignments = tabular.read_table(assignments_path, ["event_id", "network", "station", "phase", "time"])
    located, residuals = relocate_with_residuals(events, assignments, tabular.read_stations(stations_path), layers, **(options or {}))
    tabular.write_table(located, events_out)
    tabular.write_table(residuals, assignments_out)
    return located
