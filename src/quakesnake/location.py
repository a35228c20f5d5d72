"""Relocate associated events in a 1D layered model with robust, damped least squares (Geiger).

Associators locate coarsely (PyOcto on an octree, GaMMA in a homogeneous medium). :func:`relocate`
refines every event from its assigned picks: the unknowns are x, y (km, in the same local
transverse-Mercator projection the associators use), depth (km below sea level) and origin time;
residuals are observed minus predicted arrival, each divided by its phase's pick uncertainty.
SciPy's trust-region reflective solver (``least_squares(method="trf")``) takes damped
Gauss-Newton steps inside bounds (depth between the surface and the table's floor) with a robust
loss, so a wrongly associated pick pulls far less than a plain least-squares fit would let it.

Travel times are the exact first arrivals of the layered model
(:func:`quakesnake.association.layered_first_arrival_times`, the same times PyOcto's 1D table
holds), sampled on a grid and interpolated with a bicubic spline of the *squared* time:
t² is smooth at the source (x² + z² over v² in a layer) where t has a cone-shaped kink, so the
spline and its derivatives, which form the Jacobian, stay accurate to a fraction of a millisecond
near the source and to a few ms at layer interfaces and head-wave crossovers. Station elevation adds a
vertical path through the top layer, as in PyOcto's elevation correction.

Uncertainties come from the covariance ``s² (JᵀJ)⁻¹`` at the solution, with ``s²`` the
reduced chi-square of the normalised residuals but never below 1: the a priori pick errors,
inflated when the picks fit worse than they claim. ``erh_km`` is sqrt(σx² + σy²) (Hypo71's ERH),
``erz_km`` σz, ``time_std_s`` σt; ``rms_residual_s`` the RMS of the plain residuals (s).
"""
from __future__ import annotations

import functools
import logging

import numpy as np
import pandas as pd
from scipy.interpolate import RectBivariateSpline
from scipy.optimize import least_squares

from quakesnake.association import LocalProjection, _station_id, layered_first_arrival_times, station_coordinates
from quakesnake.velocity import read_layers

logger = logging.getLogger(__name__)

# a priori pick-time uncertainties (s): S onsets sit in the P coda and are picked less precisely
DEFAULT_PICK_SIGMA_S = {"P": 0.1, "S": 0.2}
# residuals beyond this many sigmas are down-weighted by the robust loss
ROBUST_SCALE_SIGMAS = 3.0
# events below this many assigned picks on located stations keep the associator's location:
# four unknowns need a redundant pick before a fit says anything about its own quality
MIN_PICKS = 5
# Grid of the travel-time splines. The error is dominated by the kinks of t(depth) at layer
# interfaces, which the spline smooths over about one depth step: 0.25 km keeps it below ~7 ms
# (1 km: ~33 ms, enough to bias a poorly constrained depth by a kilometre); along distance 1 km
# suffices.
DISTANCE_STEP_KM = 1.0
DEPTH_STEP_KM = 0.25
LOCATED_COLUMNS = ["time", "latitude", "longitude", "depth_km", "x_km", "y_km", "rms_residual_s"]
UNCERTAINTY_COLUMNS = ["erh_km", "erz_km", "time_std_s"]


class LayeredTravelTimes:
    """First-arrival P and S travel times (s) and their derivatives in a layered model.

    ``time(phase, distance_km, depth_km)`` returns (t, dt/d distance, dt/d depth) for a source at
    ``depth_km`` below a station at sea level ``distance_km`` away (by reciprocity the table of a
    surface source read at the node). Valid for distances up to ``max_distance_km`` and depths
    from 0 to ``max_depth_km``.
    """

    def __init__(self, layers, max_distance_km: float, max_depth_km: float):
        self.layers = read_layers(layers)
        distances = np.arange(0.0, max_distance_km + 2 * DISTANCE_STEP_KM, DISTANCE_STEP_KM)
        depths = np.arange(0.0, max_depth_km + 2 * DEPTH_STEP_KM, DEPTH_STEP_KM)
        tops = self.layers["depth_km"].to_numpy()
        self.surface_velocity_km_s = {"P": float(self.layers["vp_km_s"].iloc[0]), "S": float(self.layers["vs_km_s"].iloc[0])}
        self._squared = {
            phase: RectBivariateSpline(
                distances, depths, layered_first_arrival_times(tops, self.layers[column].to_numpy(), distances, depths) ** 2,
                kx=3, ky=3,
            )
            for phase, column in (("P", "vp_km_s"), ("S", "vs_km_s"))
        }

    def time(self, phase: str, distance_km, depth_km) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        spline = self._squared[phase]
        squared = np.clip(spline.ev(distance_km, depth_km), 1e-12, None)
        times = np.sqrt(squared)
        return times, spline.ev(distance_km, depth_km, dx=1) / (2 * times), spline.ev(distance_km, depth_km, dy=1) / (2 * times)


def relocate(
    events: pd.DataFrame,
    assignments: pd.DataFrame,
    stations: pd.DataFrame,
    layers,
    *,
    pick_sigma_s: dict[str, float] | None = None,
    min_picks: int = MIN_PICKS,
    margin_km: float = 50.0,
    max_depth_km: float = 60.0,
    station_elevations: bool = True,
) -> pd.DataFrame:
    """Events relocated from their assigned picks in the layered model ``layers``.

    ``events`` need event_id, time, latitude, longitude, depth_km (the associator's location, the
    starting point); ``assignments`` event_id, network, station, phase, time; ``stations`` network,
    station, latitude, longitude[, elevation_m]. Returns a copy of ``events`` where time, latitude,
    longitude, depth_km (and x_km, y_km, rms_residual_s when present) hold the relocation, the
    previous values are kept as ``<column>_assoc``, and erh_km, erz_km, time_std_s and ``relocated``
    (False: too few picks, the associator location is kept and the uncertainties are NaN) are added.
    Epicentres are searched within the station bounding box plus ``margin_km``, depths between 0
    and ``max_depth_km``. ``station_elevations=False`` puts every station at sea level, as
    Hypo71-style bulletins do.
    """
    sigma = {**DEFAULT_PICK_SIGMA_S, **(pick_sigma_s or {})}
    table = events.copy()
    for column in LOCATED_COLUMNS:
        if column in table:
            table[f"{column}_assoc"] = table[column]
    for column in UNCERTAINTY_COLUMNS:
        table[column] = np.nan
    table["relocated"] = False
    coordinates = station_coordinates(stations)
    if table.empty or coordinates.empty:
        return table

    projection = LocalProjection.around(coordinates["latitude"], coordinates["longitude"], margin_km)
    station_x, station_y = projection.to_xy(coordinates["latitude"], coordinates["longitude"])
    elevation_km = coordinates["elevation_m"].to_numpy(float) / 1000.0 if station_elevations else 0.0
    station_table = pd.DataFrame(
        {"x": station_x, "y": station_y, "elevation_km": elevation_km},
        index=coordinates["id"].to_numpy(),
    )
    travel_times = _travel_times(layers, projection.diagonal_km, max_depth_km)
    event_x, event_y = projection.to_xy(table["latitude"], table["longitude"])
    picks = assignments.assign(station_id=_station_id(assignments["network"], assignments["station"]))
    picks = picks[picks["station_id"].isin(station_table.index) & picks["phase"].isin(["P", "S"])]
    picks_by_event = picks.groupby("event_id").indices

    lower = np.array([projection.xlim[0], projection.ylim[0], 0.0, -np.inf])
    upper = np.array([projection.xlim[1], projection.ylim[1], max_depth_km, np.inf])
    # one row per event: x, y, depth, origin offset (s), erh, erz, time std, rms; NaN = not relocated
    solved = np.full((len(table), 8), np.nan)
    for row, event_id in enumerate(table["event_id"]):
        rows = picks_by_event.get(event_id)
        if rows is None or len(rows) < min_picks:
            continue
        event_picks = picks.iloc[rows]
        observed_s = (event_picks["time"] - table["time"].iloc[row]).dt.total_seconds().to_numpy()
        start = np.array([event_x[row], event_y[row], table["depth_km"].iloc[row], 0.0])
        solved[row] = _locate(
            observed_s, event_picks["phase"].to_numpy(), station_table.loc[event_picks["station_id"].to_numpy()],
            travel_times, sigma, start, lower, upper,
        )

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
    logger.info("relocated %d of %d events (the rest have fewer than %d picks on located stations)",
                int(relocated.sum()), len(table), min_picks)
    return table


def _travel_times(layers, max_distance_km: float, max_depth_km: float) -> LayeredTravelTimes:
    """A table reaching ``max_distance_km`` (rounded up to 50 km, so nearby extents share one),
    kept between calls: building it costs about a second, locating an event a few milliseconds."""
    values = read_layers(layers)[["depth_km", "vp_km_s", "vs_km_s"]]
    return _cached_travel_times(
        tuple(map(tuple, values.to_numpy().round(6).tolist())), float(np.ceil(max_distance_km / 50.0) * 50.0), float(max_depth_km),
    )


@functools.lru_cache(maxsize=4)
def _cached_travel_times(layer_rows: tuple, max_distance_km: float, max_depth_km: float) -> LayeredTravelTimes:
    layers = pd.DataFrame(list(layer_rows), columns=["depth_km", "vp_km_s", "vs_km_s"])
    return LayeredTravelTimes(layers, max_distance_km, max_depth_km)


def _locate(observed_s, phases, stations: pd.DataFrame, travel_times: LayeredTravelTimes, sigma: dict, start, lower, upper) -> np.ndarray:
    """One event from ``start`` (x, y, depth, origin offset; observed times are s after the start
    origin): returns x, y, depth, origin offset, erh_km, erz_km, time_std_s, rms_residual_s."""
    station_x, station_y = stations["x"].to_numpy(), stations["y"].to_numpy()
    pick_sigma = np.array([sigma[phase] for phase in phases])
    elevation_delay = stations["elevation_km"].to_numpy() / np.array([travel_times.surface_velocity_km_s[p] for p in phases])
    is_p = phases == "P"

    def predict(params):
        dx, dy = params[0] - station_x, params[1] - station_y
        distance = np.hypot(dx, dy)
        times, d_distance, d_depth = np.empty(len(phases)), np.empty(len(phases)), np.empty(len(phases))
        for phase, chosen in (("P", is_p), ("S", ~is_p)):
            times[chosen], d_distance[chosen], d_depth[chosen] = travel_times.time(phase, distance[chosen], params[2])
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
    rms_s = np.sqrt(np.mean((normalised * pick_sigma) ** 2))
    return np.array([*result.x, np.sqrt(variances[0] + variances[1]), np.sqrt(variances[2]), np.sqrt(variances[3]), rms_s])
