"""Associate phase picks into located events with PyOcto or GaMMA, behind one entry point.

:func:`associate_day` takes one day's picks (plus picks from the neighbouring days, so events
near midnight see all their arrivals), runs the configured associator and keeps the events
whose origin time falls inside the day. Because every day is associated with the same margin
and an event belongs to the day of its origin time, no event is lost or duplicated at 00:00.

Both adapters share one local transverse-Mercator projection (km) centred on the station
bounding box, so the two associators search the same area and their x/y agree. Depths are km
below sea level: stations sit at ``z = -elevation_m / 1000``.

Velocity models
    * PyOcto ``"0d"``: homogeneous ``p_velocity_km_s``/``s_velocity_km_s``.
    * PyOcto ``"1d"``: a layered model (``depth_km`` = top of layer, constant ``vp_km_s`` and
      ``vs_km_s`` inside the layer). PyOcto reads first-arrival travel times from a binary
      table: the cache file of :func:`quakesnake.traveltimes.travel_time_grid` is in its layout,
      so PyOcto's own builder and its pyrocko dependency are not needed.
    * GaMMA: homogeneous ``vp_km_s``/``vs_km_s`` (GaMMA's own model).

Residuals in the assignments are observed minus predicted arrival time from the located event:
PyOcto reports them from its own model (0D or the 1D table, with its elevation correction);
for GaMMA they are computed here with the same homogeneous model GaMMA located with, over the
3-D hypocentre-station distance.
"""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyproj import CRS, Transformer
from threadpoolctl import threadpool_limits

from quakesnake.config import typed_defaults
from quakesnake.tabular import ASSIGNMENT_COLUMNS, EVENT_COLUMNS, PICK_COLUMNS, concat_tables, phase_letters, require_columns
from quakesnake.traveltimes import read_layers, travel_time_grid

logger = logging.getLogger(__name__)

# Every key an associator configuration may hold, with its default: the schema ($defs/associator).
PYOCTO_DEFAULTS: dict = {k: v for k, v in typed_defaults("associator", "pyocto").items() if k != "type"}
GAMMA_DEFAULTS: dict = {k: v for k, v in typed_defaults("associator", "gamma").items() if k != "type"}
DEFAULTS: dict = {"pyocto": PYOCTO_DEFAULTS, "gamma": GAMMA_DEFAULTS}

EVENT_EXTRA_COLUMNS = ["x_km", "y_km", "rms_residual_s"]


def resolve_config(associator_cfg: dict) -> dict:
    """Merge an associator configuration with its defaults; reject unknown keys, warn about odd ones."""
    if "type" not in associator_cfg:
        raise ValueError(f"associator config needs a 'type' ({' or '.join(DEFAULTS)})")
    kind = associator_cfg["type"]
    if kind not in DEFAULTS:
        raise ValueError(f"unknown associator type {kind!r}; expected one of {', '.join(DEFAULTS)}")
    defaults = DEFAULTS[kind]
    for key in associator_cfg:
        if key != "type" and key not in defaults:
            raise ValueError(f"unknown {kind} associator key {key!r}; known keys: {', '.join(defaults)}")
    cfg = {**defaults, **associator_cfg}
    zlim = cfg["zlim_km"]
    if len(zlim) != 2 or zlim[0] >= zlim[1]:
        raise ValueError(f"zlim_km must be [min_depth_km, max_depth_km] with min < max, got {zlim}")
    if kind == "pyocto":
        _check_pyocto_config(cfg)
    else:
        _check_gamma_config(cfg)
    return cfg


def _check_pyocto_config(cfg: dict) -> None:
    if cfg["velocity_model"] not in ("0d", "1d"):
        raise ValueError(f"velocity_model must be '0d' or '1d', got {cfg['velocity_model']!r}")
    if cfg["velocity_model"] == "0d" and cfg["s_velocity_km_s"] >= cfg["p_velocity_km_s"]:
        raise ValueError(f"s_velocity_km_s ({cfg['s_velocity_km_s']}) must be below p_velocity_km_s ({cfg['p_velocity_km_s']})")
    if cfg["velocity_model"] == "1d" and cfg["zlim_km"][0] < 0:
        raise ValueError("PyOcto's 1d model cannot search above sea level: zlim_km[0] must be >= 0")
    if cfg["n_p_and_s_picks"] > min(cfg["n_p_picks"], cfg["n_s_picks"]):
        logger.warning(
            "n_p_and_s_picks (%s) exceeds min(n_p_picks, n_s_picks) = %s: the P and S minima are "
            "effectively raised to %s", cfg["n_p_and_s_picks"], min(cfg["n_p_picks"], cfg["n_s_picks"]),
            cfg["n_p_and_s_picks"],
        )
    if cfg["n_picks"] < 2 * cfg["n_p_and_s_picks"]:
        logger.warning(
            "n_picks (%s) is below 2 * n_p_and_s_picks: events effectively need %s picks",
            cfg["n_picks"], 2 * cfg["n_p_and_s_picks"],
        )
    if cfg["pick_match_tolerance_s"] < cfg["tolerance_s"]:
        logger.warning(
            "pick_match_tolerance_s (%s) is below the velocity-model tolerance_s (%s): picks that "
            "formed an event may be dropped when it is refined", cfg["pick_match_tolerance_s"], cfg["tolerance_s"],
        )


def _check_gamma_config(cfg: dict) -> None:
    if cfg["method"] not in ("BGMM", "GMM"):
        raise ValueError(f"GaMMA method must be 'BGMM' or 'GMM', got {cfg['method']!r}")
    if cfg["vs_km_s"] >= cfg["vp_km_s"]:
        raise ValueError(f"vs_km_s ({cfg['vs_km_s']}) must be below vp_km_s ({cfg['vp_km_s']})")
    if cfg["dbscan_min_samples"] > cfg["min_picks_per_eq"]:
        logger.warning(
            "dbscan_min_samples (%s) exceeds min_picks_per_eq (%s): DBSCAN drops clusters the "
            "event threshold would keep", cfg["dbscan_min_samples"], cfg["min_picks_per_eq"],
        )


@dataclass(frozen=True)
class LocalProjection:
    """Transverse Mercator in km centred on the station bounding box, with the search limits."""

    crs: CRS
    xlim: tuple[float, float]
    ylim: tuple[float, float]

    @classmethod
    def around(cls, latitudes, longitudes, margin_km: float) -> "LocalProjection":
        lat_min, lat_max = float(np.min(latitudes)), float(np.max(latitudes))
        lon_min, lon_max = float(np.min(longitudes)), float(np.max(longitudes))
        crs = CRS(f"+proj=tmerc +lat_0={(lat_min + lat_max) / 2} +lon_0={(lon_min + lon_max) / 2} +units=km")
        x, y = _geographic_to(crs).transform([lon_min, lon_max, lon_min, lon_max], [lat_min, lat_min, lat_max, lat_max])
        return cls(crs, (min(x) - margin_km, max(x) + margin_km), (min(y) - margin_km, max(y) + margin_km))

    # Coordinates go to pyproj as flat lists: its scalar fast path would take (and warn about)
    # one-element arrays.
    def to_xy(self, latitude, longitude) -> tuple[np.ndarray, np.ndarray]:
        x, y = _geographic_to(self.crs).transform(_flat_list(longitude), _flat_list(latitude))
        return np.asarray(x, float), np.asarray(y, float)

    def to_latlon(self, x, y) -> tuple[np.ndarray, np.ndarray]:
        lon, lat = _geographic_to(self.crs).transform(_flat_list(x), _flat_list(y), direction="INVERSE")
        return np.asarray(lat, float), np.asarray(lon, float)

    @property
    def diagonal_km(self) -> float:
        return float(np.hypot(self.xlim[1] - self.xlim[0], self.ylim[1] - self.ylim[0]))


def _geographic_to(crs: CRS) -> Transformer:
    return Transformer.from_crs(CRS.from_epsg(4326), crs, always_xy=True)


def _flat_list(values) -> list[float]:
    return np.ravel(np.asarray(values, float)).tolist()


def station_coordinates(stations: pd.DataFrame) -> pd.DataFrame:
    """One row per network.station (location codes share coordinates): id, latitude, longitude, elevation_m."""
    require_columns(stations, ["network", "station", "latitude", "longitude"], "stations")
    table = stations.dropna(subset=["latitude", "longitude"]).copy()
    elevation = table["elevation_m"] if "elevation_m" in table else pd.Series(0.0, index=table.index)
    table["elevation_m"] = pd.to_numeric(elevation, errors="coerce").fillna(0.0)
    table["id"] = _station_id(table["network"], table["station"])
    table = table.drop_duplicates("id")
    return table[["id", "network", "station", "latitude", "longitude", "elevation_m"]].reset_index(drop=True)


def _station_id(network: pd.Series, station: pd.Series) -> pd.Series:
    return network.fillna("").astype(str) + "." + station.astype(str)


# --------------------------------------------------------------------------- adapters

def picks_around_day(frames, day: str, pad_s: float = 600.0) -> pd.DataFrame:
    """Picks of ``frames`` (e.g. the merged tables of a day and its neighbours) within
    [day - pad, day + 1 day + pad), sorted by time: the input :func:`associate_day` expects."""
    picks = concat_tables(list(frames), PICK_COLUMNS)
    start = pd.Timestamp(day) - pd.Timedelta(seconds=pad_s)
    end = pd.Timestamp(day) + pd.Timedelta(days=1) + pd.Timedelta(seconds=pad_s)
    inside = (picks["time"] >= start) & (picks["time"] < end)
    return picks[inside].sort_values("time", kind="stable").reset_index(drop=True)


def associate_day(
    picks: pd.DataFrame,
    stations: pd.DataFrame,
    day: str,
    associator_cfg: dict,
    layers=None,
    *,
    name: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Associate picks into events and keep the events whose origin time is inside ``day`` (UTC).

    ``picks`` (PICK_COLUMNS) should span the day plus a margin on both sides; ``stations``
    (STATION_COLUMNS) give coordinates by network.station. Picks on stations without
    coordinates are dropped and counted in the log. ``layers`` (a DataFrame with depth_km,
    vp_km_s, vs_km_s, or any spec :func:`~quakesnake.traveltimes.read_layers` accepts) is required
    for PyOcto's ``"1d"`` model and ignored otherwise. Event ids are ``f"{name}-{YYYYMMDD}-{n:05d}"``
    numbered by origin time from 0; the ``associator`` column holds ``name``.

    Returns (events: EVENT_COLUMNS + x_km, y_km, rms_residual_s; assignments: ASSIGNMENT_COLUMNS).
    """
    cfg = resolve_config(associator_cfg)
    if cfg["type"] == "pyocto" and cfg["velocity_model"] == "1d":
        if layers is None:
            raise ValueError("PyOcto velocity_model '1d' needs layers (depth_km, vp_km_s, vs_km_s)")
        layers = read_layers(layers)
    require_columns(picks, ["network", "station", "phase", "time"], "picks")
    day_start = pd.Timestamp(day)
    day_end = day_start + pd.Timedelta(days=1)
    coordinates = station_coordinates(stations)
    usable = _picks_with_coordinates(picks, coordinates)
    if usable.empty or coordinates.empty:
        return _event_table(_empty_located(), name), _empty_assignments()

    projection = LocalProjection.around(coordinates["latitude"], coordinates["longitude"], cfg["margin_km"])
    x, y = projection.to_xy(coordinates["latitude"], coordinates["longitude"])
    coordinates = coordinates.assign(x=x, y=y, z=-coordinates["elevation_m"] / 1000.0)
    if cfg["type"] == "pyocto":
        located, links = _run_pyocto(usable, coordinates, projection, cfg, layers)
    else:
        # One BLAS thread: GaMMA's many small matrix operations gain nothing from more, and on a
        # busy machine spinning OpenBLAS workers made a replay 17 times slower (131 s against 7.5 s).
        with threadpool_limits(limits=1):
            located, links = _run_gamma(usable, coordinates, projection, cfg)

    located = located[(located["time"] >= day_start) & (located["time"] < day_end)]
    located = located.sort_values(["time", "x_km", "y_km"], kind="stable").reset_index(drop=True)
    stamp = day_start.strftime("%Y%m%d")
    located["event_id"] = [f"{name}-{stamp}-{n:05d}" for n in range(len(located))]
    lat, lon = projection.to_latlon(located["x_km"], located["y_km"])
    located["latitude"], located["longitude"] = lat, lon

    links = links.merge(located[["raw_id", "event_id"]], on="raw_id")
    assignments = _assignment_table(links, usable)
    return _event_table(located, name, assignments), assignments


def _picks_with_coordinates(picks: pd.DataFrame, coordinates: pd.DataFrame) -> pd.DataFrame:
    table = picks.copy()
    for column, default in (("location", ""), ("probability", 1.0)):
        if column not in table:
            table[column] = default
    table["probability"] = pd.to_numeric(table["probability"], errors="coerce").fillna(1.0)
    table["phase"] = phase_letters(table["phase"]).to_numpy()
    table["station_id"] = _station_id(table["network"], table["station"])
    known = table["station_id"].isin(coordinates["id"]) & table["phase"].isin(["P", "S"])
    if (~known).any():
        missing = sorted(table.loc[~known, "station_id"].unique())
        logger.warning(
            "dropped %d of %d picks on stations without coordinates or with phases other than P/S (%s)",
            int((~known).sum()), len(table), ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""),
        )
    return table[known].sort_values("time", kind="stable").reset_index(drop=True)


def _run_pyocto(picks, coordinates, projection: LocalProjection, cfg, layers) -> tuple[pd.DataFrame, pd.DataFrame]:
    """PyOcto on epoch-second pick times; returns (raw_id, time, x_km, y_km, depth_km) and (raw_id, pick_row, residual_s)."""
    import pyocto

    velocity_model = _pyocto_velocity_model(cfg, layers, projection)
    associator = pyocto.OctoAssociator(
        xlim=projection.xlim, ylim=projection.ylim, zlim=tuple(float(v) for v in cfg["zlim_km"]),
        velocity_model=velocity_model, time_before=float(cfg["time_before_s"]),
        min_node_size=float(cfg["min_node_size_km"]), min_node_size_location=float(cfg["min_node_size_location_km"]),
        pick_match_tolerance=float(cfg["pick_match_tolerance_s"]), min_interevent_time=float(cfg["min_interevent_time_s"]),
        max_pick_overlap=int(cfg["max_pick_overlap"]), n_picks=int(cfg["n_picks"]), n_p_picks=int(cfg["n_p_picks"]),
        n_s_picks=int(cfg["n_s_picks"]), n_p_and_s_picks=int(cfg["n_p_and_s_picks"]),
        refinement_iterations=int(cfg["refinement_iterations"]), time_slicing=float(cfg["time_slicing_s"]),
        location_split_depth=int(cfg["location_split_depth"]), location_split_return=int(cfg["location_split_return"]),
        min_pick_fraction=float(cfg["min_pick_fraction"]), n_threads=int(cfg["n_threads"]), crs=projection.crs,
    )
    slowest_s = cfg["s_velocity_km_s"] if cfg["velocity_model"] == "0d" else float(layers["vs_km_s"].min())
    network_crossing_s = projection.diagonal_km / slowest_s
    if cfg["time_before_s"] < network_crossing_s:
        logger.warning(
            "time_before_s (%.0f) is shorter than an S wave needs to cross the search area (%.0f s): "
            "events with late arrivals may be split", cfg["time_before_s"], network_crossing_s,
        )
    octo_picks = pd.DataFrame({
        "station": picks["station_id"].to_numpy(),
        "time": picks["time"].to_numpy("datetime64[ns]").astype(np.int64) / 1e9,
        "phase": picks["phase"].to_numpy(),
    })
    octo_stations = coordinates[["id", "x", "y", "z"]]
    events, assignments = associator.associate(octo_picks, octo_stations)
    if len(events) == 0:
        return _empty_located(), _empty_links()
    located = pd.DataFrame({
        "raw_id": events["idx"].to_numpy(),
        "time": pd.to_datetime(np.round(events["time"].to_numpy() * 1e6).astype(np.int64), unit="us").astype("datetime64[ns]"),
        "x_km": events["x"].to_numpy(float),
        "y_km": events["y"].to_numpy(float),
        "depth_km": events["z"].to_numpy(float),
    })
    links = pd.DataFrame({
        "raw_id": assignments["event_idx"].to_numpy(),
        "pick_row": assignments["pick_idx"].to_numpy(),
        "residual_s": assignments["residual"].to_numpy(float),
    })
    return located, links


def _pyocto_velocity_model(cfg, layers, projection: LocalProjection):
    import pyocto

    cutoff = cfg["association_cutoff_distance_km"]
    if cfg["velocity_model"] == "0d":
        return pyocto.VelocityModel0D(
            p_velocity=float(cfg["p_velocity_km_s"]), s_velocity=float(cfg["s_velocity_km_s"]),
            tolerance=float(cfg["tolerance_s"]), association_cutoff_distance=cutoff,
        )
    spacing = float(cfg["grid_spacing_km"])
    # The table must cover every station-event distance in the search box, or PyOcto's locator fails.
    xdist = float(np.ceil((projection.diagonal_km + 10.0) / 10.0) * 10.0)
    zdist = float(np.ceil((cfg["zlim_km"][1] + 5.0) / 5.0) * 5.0)
    path = travel_time_grid(layers, spacing, xdist, zdist, cfg["table_dir"])
    return pyocto.VelocityModel1D(
        path=str(path), tolerance=float(cfg["tolerance_s"]), association_cutoff_distance=cutoff,
        # elevation corrections run through the top layer (PyOcto's own default is 5.3 / 3.1 km/s)
        surface_p_velocity=float(layers["vp_km_s"].iloc[0]), surface_s_velocity=float(layers["vs_km_s"].iloc[0]),
    )


def _run_gamma(picks, coordinates, projection: LocalProjection, cfg) -> tuple[pd.DataFrame, pd.DataFrame]:
    """GaMMA with its quirks kept here: column names, datetime64 stamps, bfgs_bounds, global RNG, prints."""
    from gamma.utils import association

    gamma_picks = pd.DataFrame({
        "id": picks["station_id"].to_numpy(),
        # pd.Timestamp objects: GaMMA calls .tz_localize on each and breaks on (pandas-3) strings
        "timestamp": picks["time"].astype("datetime64[ns]"),
        "prob": picks["probability"].to_numpy(float),
        "type": picks["phase"].str.lower().to_numpy(),
    })
    if cfg["use_amplitude"]:
        if "amplitude" not in picks:
            raise ValueError("GaMMA use_amplitude needs an 'amplitude' column (peak amplitude, m/s) in the picks")
        gamma_picks["amp"] = picks["amplitude"].to_numpy(float)
    gamma_stations = pd.DataFrame({
        "id": coordinates["id"], "x(km)": coordinates["x"], "y(km)": coordinates["y"], "z(km)": coordinates["z"],
    })
    zlim = tuple(float(v) for v in cfg["zlim_km"])
    gamma_config = {
        "dims": ["x(km)", "y(km)", "z(km)"],
        "x(km)": projection.xlim, "y(km)": projection.ylim, "z(km)": zlim,
        "vel": {"p": float(cfg["vp_km_s"]), "s": float(cfg["vs_km_s"])},
        "use_dbscan": bool(cfg["use_dbscan"]), "dbscan_eps": float(cfg["dbscan_eps_s"]),
        "dbscan_min_samples": int(cfg["dbscan_min_samples"]),
        "dbscan_min_cluster_size": int(cfg["dbscan_min_cluster_size"]),
        "dbscan_max_time_space_ratio": float(cfg["dbscan_max_time_space_ratio"]),
        "min_picks_per_eq": int(cfg["min_picks_per_eq"]), "min_p_picks_per_eq": int(cfg["min_p_picks_per_eq"]),
        "min_s_picks_per_eq": int(cfg["min_s_picks_per_eq"]), "max_sigma11": float(cfg["max_sigma11_s"]),
        "max_sigma22": float(cfg["max_sigma22"]),
        "oversample_factor": int(cfg["oversample_factor"]), "use_amplitude": bool(cfg["use_amplitude"]),
        # GaMMA's L-BFGS location needs explicit bounds: x, y, z, then time (free)
        "bfgs_bounds": (
            (projection.xlim[0] - 1, projection.xlim[1] + 1),
            (projection.ylim[0] - 1, projection.ylim[1] + 1),
            (zlim[0], zlim[1] + 1),
            (None, None),
        ),
        "ncpu": int(cfg["ncpu"]),
    }
    captured = io.StringIO()
    rng_state = np.random.get_state()
    try:
        np.random.seed(cfg["seed"])
        # GaMMA prints progress to stdout and tqdm bars to stderr
        with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*iprint.*", category=DeprecationWarning)  # its L-BFGS-B call
            events, assignment = association(gamma_picks, gamma_stations, gamma_config, method=cfg["method"])
    finally:
        np.random.set_state(rng_state)
    logger.debug("GaMMA output: %s", captured.getvalue().strip())
    if not events:
        return _empty_located(), _empty_links()

    events = pd.DataFrame(events)
    located = pd.DataFrame({
        "raw_id": events["event_index"].to_numpy(),
        "time": pd.to_datetime(events["time"]).astype("datetime64[ns]").to_numpy(),
        "x_km": events["x(km)"].to_numpy(float),
        "y_km": events["y(km)"].to_numpy(float),
        "depth_km": events["z(km)"].to_numpy(float),
    })
    if cfg["use_amplitude"]:
        located["magnitude"] = events["magnitude"].to_numpy(float)
    links = pd.DataFrame(assignment, columns=["pick_row", "raw_id", "gamma_prob"]).drop(columns="gamma_prob")
    links["residual_s"] = _homogeneous_residuals(links, located, picks, coordinates, cfg["vp_km_s"], cfg["vs_km_s"])
    return located, links


def _homogeneous_residuals(links, located, picks, coordinates, vp: float, vs: float) -> np.ndarray:
    """Observed minus predicted arrival (s) with straight rays at constant vp/vs."""
    event = located.set_index("raw_id").loc[links["raw_id"].to_numpy()]
    pick = picks.iloc[links["pick_row"].to_numpy()]
    station = coordinates.set_index("id").loc[pick["station_id"].to_numpy()]
    distance = np.sqrt(
        (event["x_km"].to_numpy() - station["x"].to_numpy()) ** 2
        + (event["y_km"].to_numpy() - station["y"].to_numpy()) ** 2
        + (event["depth_km"].to_numpy() - station["z"].to_numpy()) ** 2
    )
    velocity = np.where(pick["phase"].to_numpy() == "P", vp, vs)
    travel_s = (pick["time"].to_numpy("datetime64[ns]") - event["time"].to_numpy("datetime64[ns]")) / np.timedelta64(1, "s")
    return travel_s - distance / velocity


# --------------------------------------------------------------------------- output tables

def _empty_located() -> pd.DataFrame:
    return pd.DataFrame({
        "raw_id": np.array([], dtype=np.int64),
        "time": np.array([], dtype="datetime64[ns]"),
        "x_km": np.array([], float), "y_km": np.array([], float), "depth_km": np.array([], float),
        "latitude": np.array([], float), "longitude": np.array([], float),
        "event_id": np.array([], dtype=object),
    })


def _empty_links() -> pd.DataFrame:
    return pd.DataFrame({"raw_id": np.array([], np.int64), "pick_row": np.array([], np.int64), "residual_s": np.array([], float)})


def _empty_assignments() -> pd.DataFrame:
    no_picks = pd.DataFrame({
        "network": [], "station": [], "location": [], "phase": [],
        "time": np.array([], dtype="datetime64[ns]"), "probability": np.array([], float),
    })
    return _assignment_table(_empty_links().assign(event_id=np.array([], dtype=object)), no_picks)


def _assignment_table(links: pd.DataFrame, picks: pd.DataFrame) -> pd.DataFrame:
    pick = picks.iloc[links["pick_row"].to_numpy()]
    table = pd.DataFrame({
        "event_id": links["event_id"].to_numpy(dtype=object),
        "network": pick["network"].to_numpy(dtype=object),
        "station": pick["station"].to_numpy(dtype=object),
        "location": pick["location"].to_numpy(dtype=object),
        "phase": pick["phase"].to_numpy(dtype=object),
        "time": pick["time"].to_numpy("datetime64[ns]"),
        "residual_s": links["residual_s"].to_numpy(float),
        "probability": pick["probability"].to_numpy(float),
    })
    return table.sort_values(["event_id", "time"], kind="stable").reset_index(drop=True)[ASSIGNMENT_COLUMNS]


def _event_table(located: pd.DataFrame, name: str, assignments: pd.DataFrame | None = None) -> pd.DataFrame:
    if assignments is None or assignments.empty:
        counts = pd.DataFrame(columns=["n_picks", "n_p", "n_s", "rms_residual_s"], dtype=float)
    else:
        grouped = assignments.groupby("event_id")
        counts = pd.DataFrame({
            "n_picks": grouped.size(),
            "n_p": grouped["phase"].apply(lambda p: int((p == "P").sum())),
            "n_s": grouped["phase"].apply(lambda p: int((p == "S").sum())),
            "rms_residual_s": grouped["residual_s"].apply(lambda r: float(np.sqrt(np.mean(r ** 2)))),
        })
    per_event = counts.reindex(located["event_id"].to_numpy())
    magnitude = located["magnitude"] if "magnitude" in located else pd.Series(np.nan, index=located.index)
    table = pd.DataFrame({
        "event_id": located["event_id"].to_numpy(dtype=object),
        "time": located["time"].to_numpy("datetime64[ns]"),
        "latitude": located["latitude"].to_numpy(float),
        "longitude": located["longitude"].to_numpy(float),
        "depth_km": located["depth_km"].to_numpy(float),
        "magnitude": magnitude.to_numpy(float),
        "n_picks": per_event["n_picks"].fillna(0).to_numpy(np.int64),
        "n_p": per_event["n_p"].fillna(0).to_numpy(np.int64),
        "n_s": per_event["n_s"].fillna(0).to_numpy(np.int64),
        "associator": np.full(len(located), name, dtype=object),
        "x_km": located["x_km"].to_numpy(float),
        "y_km": located["y_km"].to_numpy(float),
        "rms_residual_s": per_event["rms_residual_s"].to_numpy(float),
    })
    return table[EVENT_COLUMNS + EVENT_EXTRA_COLUMNS]
