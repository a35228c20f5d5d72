"""1D layered velocity models and their first-arrival P and S travel times: one engine, one cache.

A model is a table of constant-velocity layers (``depth_km`` is the top of each layer, the last
layer is a half-space), read and checked by :func:`read_layers`. Every consumer of travel times
(the synthetic generator, PyOcto's 1D table, relocation, magnitude windows) gets them from here:

* :func:`layered_first_arrival_times` computes the exact first arrival (direct wave or head wave)
  of the flat layered model at nodes (x, z) for a surface source; by reciprocity that is the
  time from a source at depth z to a station at the surface x km away.
* :func:`travel_time_grid` evaluates it on a square grid and caches the grid on disk in PyOcto's
  ``VelocityModel1D`` layout (so PyOcto reads the cache file itself), keyed by a hash of layers
  and grid; parallel jobs build it once each at most and share it after.
* :class:`TravelTimes` interpolates such a grid with a bicubic spline of the squared time, with
  the derivatives relocation needs and the horizontal slowness the generator's ray angles need.

Why not TauP (the engine this module replaced): on the OGS 1D model (300 km x 60 km, 1 km grid)
ObsPy TauP built the grid in 5.2 s against 0.06 s here, and its times are those of a spherical
Earth under a model given as flat layers: equal at the surface and straight down, earlier by up
to 0.10 s (P) and 0.18 s (S) within 150 km and 40 km depth, 0.26 s / 0.48 s at 300 km and 60 km.
Local bulletins and locators (Hypo71, Hypoinverse, NonLinLoc's layer models) treat such a model
as flat, and TauP also needs a made-up mantle and core below the layers to build at all.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import struct
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from quakesnake import tabular

logger = logging.getLogger(__name__)

LAYER_COLUMNS = ["depth_km", "vp_km_s", "vs_km_s", "rho_g_cm3"]
PHASE_COLUMNS = {"P": "vp_km_s", "S": "vs_km_s"}

# A generic continental crust over a mantle half-space, written for this project.
DEFAULT_LAYERS = pd.DataFrame(
    {
        "depth_km": [0.0, 10.0, 20.0, 32.0],
        "vp_km_s": [5.5, 6.0, 6.5, 8.0],
        "vs_km_s": [3.15, 3.45, 3.72, 4.55],
        "rho_g_cm3": [2.60, 2.72, 2.85, 3.30],
    }
)

# Grid step of the interpolated times. The spline error is dominated by the kinks of t(depth) at
# layer interfaces, which it smooths over about one step: 0.25 km keeps it below ~7 ms (1 km:
# ~33 ms, enough to bias a poorly constrained relocated depth by a kilometre).
GRID_SPACING_KM = 0.25
# Along distance t² is smooth but for head-wave crossovers: the spline takes every node this far
# apart. FITPACK's evaluation time grows with the number of knots: on the 1201 x 241 nodes of
# 300 x 60 km at 0.25 km, three evaluations of 20 points took 4.5 ms, at 1 km along distance 0.3 ms.
SPLINE_DISTANCE_STEP_KM = 1.0
# Extents are rounded up to these steps (distance, depth) so that nearby extents share one grid.
DISTANCE_ROUNDING_KM, DEPTH_ROUNDING_KM = 50.0, 10.0
DEFAULT_CACHE_DIR = Path(tempfile.gettempdir()) / "quakesnake-traveltimes"
# Slowness samples of the direct wave's tau-p envelope (see layered_first_arrival_times).
N_RAY_SLOWNESSES = 4001
# Bump when the grid computation or file layout changes so stale cache files are not reused.
CACHE_VERSION = 1


def nafe_drake_density(vp_km_s):
    """Density (g/cm³) from P speed with Brocher's (2005) polynomial fit of the Nafe–Drake curve."""
    vp = np.asarray(vp_km_s, dtype=float)
    return 1.6612 * vp - 0.4721 * vp**2 + 0.0671 * vp**3 - 0.0043 * vp**4 + 0.000106 * vp**5


def read_layers(spec) -> pd.DataFrame:
    """A validated layer table from a CSV path, a DataFrame or a list of dicts (None: DEFAULT_LAYERS).

    Columns: depth_km (top of layer), vp_km_s, vs_km_s, rho_g_cm3 (filled from vp with
    :func:`nafe_drake_density` when absent). Rows with the same top depth describe a
    discontinuity in the ``.nd`` style; the last of them defines the layer below it.
    """
    if spec is None:  # the workflow's `velocity_model: null`
        spec = DEFAULT_LAYERS
    if isinstance(spec, (str, os.PathLike)):
        source = f"velocity model {spec}"
        try:
            frame = tabular.read_table(spec)
        except tabular.TableError as exc:
            raise tabular.TableError(f"velocity model {exc}") from exc
    elif isinstance(spec, pd.DataFrame):
        source, frame = "velocity model table", spec.copy()
    elif isinstance(spec, (list, tuple)):
        source, frame = "velocity model list", pd.DataFrame(list(spec))
    else:
        raise TypeError(f"velocity model: expected a CSV path, a DataFrame or a list of dicts, got {type(spec).__name__}")

    missing = [c for c in LAYER_COLUMNS[:3] if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)} (has: {', '.join(map(str, frame.columns))})")
    if len(frame) == 0:
        raise ValueError(f"{source}: no layers")
    if "rho_g_cm3" not in frame.columns:
        frame["rho_g_cm3"] = np.nan
    try:
        frame = frame[LAYER_COLUMNS].astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{source}: layer values must be numbers ({exc})") from exc
    frame["rho_g_cm3"] = frame["rho_g_cm3"].fillna(pd.Series(nafe_drake_density(frame["vp_km_s"]), index=frame.index))

    depths = frame["depth_km"].to_numpy()
    if not np.all(np.isfinite(frame.to_numpy())):
        raise ValueError(f"{source}: layer values must be finite numbers")
    if depths[0] != 0.0:
        raise ValueError(f"{source}: the first layer must start at depth_km 0, not {depths[0]}")
    if np.any(np.diff(depths) < 0):
        raise ValueError(f"{source}: depth_km must increase downwards (got {depths.tolist()})")
    for column in ["vp_km_s", "vs_km_s", "rho_g_cm3"]:
        if np.any(frame[column] <= 0):
            raise ValueError(f"{source}: {column} must be positive")
    if np.any(frame["vs_km_s"] >= frame["vp_km_s"]):
        raise ValueError(f"{source}: vs_km_s must be smaller than vp_km_s in every layer")
    frame = frame.drop_duplicates("depth_km", keep="last")
    return frame.reset_index(drop=True)




def configured_layers(files, inline) -> pd.DataFrame:
    """The layers of a workflow rule: its velocity-model file when the config names one (a rule
    input, so that editing the file reruns the rule), else the config's inline list of layers
    (None: :data:`DEFAULT_LAYERS`)."""
    files = list(files)
    if len(files) > 1:
        raise ValueError(f"one velocity model file expected, got {len(files)}: {', '.join(map(str, files))}")
    return read_layers(files[0] if files else inline)


# --------------------------------------------------------------------------- exact first arrivals

def layered_first_arrival_times(tops: np.ndarray, velocities: np.ndarray, x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """First-arrival times (s) from a surface source to nodes (x, z) in a stack of constant layers.

    The direct wave is the upper envelope of its tau-p lines, ``T(x) = max_p tau(p, z) + p x``,
    over ``p`` up to the slowness of the fastest layer above ``z`` (the direct-wave curve is
    convex). ``tau(p) + p x`` is concave in ``p`` with its maximum where the ray's offset
    ``X(p) = x``, so of the sampled ``p`` only the two around that one can hold the maximum: each
    node looks at a few samples next to its ``X(p)`` instead of all of them. A head wave runs
    along each interface below ``z`` whose lower layer is faster than everything above it. The
    first arrival is the earliest of these.
    """
    tops, velocities = np.asarray(tops, float), np.asarray(velocities, float)
    x, z = np.asarray(x, float), np.asarray(z, float)
    bottoms = np.append(tops[1:], np.inf)
    angles = np.linspace(0.0, np.pi / 2, N_RAY_SLOWNESSES)
    times = np.empty((len(x), len(z)))
    for iz, depth in enumerate(z):
        containing = int(np.searchsorted(tops, depth, side="right")) - 1
        p_max = 1.0 / velocities[: containing + 1].max()
        slowness = p_max * np.sin(angles)
        tau = _vertical_slowness_integral(tops, bottoms, velocities, slowness, depth)
        offsets = _horizontal_offsets(tops, bottoms, velocities, slowness, depth)
        nearest = np.searchsorted(offsets, x)
        candidates = np.clip(nearest[:, None] + np.arange(-2, 2)[None, :], 0, len(slowness) - 1)
        best = np.max(tau[candidates] + slowness[candidates] * x[:, None], axis=1)
        for interface in range(containing + 1, len(tops)):
            if velocities[interface] <= velocities[:interface].max():
                continue
            p = np.array([1.0 / velocities[interface]])
            tau_to_interface = _vertical_slowness_integral(tops, bottoms, velocities, p, tops[interface])[0]
            tau_to_node = _vertical_slowness_integral(tops, bottoms, velocities, p, depth)[0]
            offset_to_interface = _horizontal_offsets(tops, bottoms, velocities, p, tops[interface])[0]
            offset_to_node = _horizontal_offsets(tops, bottoms, velocities, p, depth)[0]
            critical_distance = 2 * offset_to_interface - offset_to_node
            head = 2 * tau_to_interface - tau_to_node + p[0] * x
            best = np.where(x >= critical_distance, np.minimum(best, head), best)
        times[:, iz] = best
    return times


def _thickness_above(tops, bottoms, depth) -> np.ndarray:
    return np.clip(np.minimum(bottoms, depth) - tops, 0.0, None)


def _vertical_slowness_integral(tops, bottoms, velocities, slowness, depth) -> np.ndarray:
    """tau(p) from the surface down to ``depth``: sum of h * sqrt(1/v^2 - p^2) over the layers crossed."""
    thickness = _thickness_above(tops, bottoms, depth)
    crossed = thickness > 0
    vertical = np.sqrt(np.clip(1.0 / velocities[crossed, None] ** 2 - slowness[None, :] ** 2, 0.0, None))
    return (thickness[crossed, None] * vertical).sum(axis=0)


def _horizontal_offsets(tops, bottoms, velocities, slowness, depth) -> np.ndarray:
    """Horizontal distance rays of slowness p cover from the surface down to ``depth`` (inf: grazing)."""
    thickness = _thickness_above(tops, bottoms, depth)
    crossed = thickness > 0
    pv = slowness[None, :] * velocities[crossed, None]
    with np.errstate(divide="ignore"):
        return (thickness[crossed, None] * pv / np.sqrt(np.clip(1.0 - pv ** 2, 0.0, None))).sum(axis=0)


# --------------------------------------------------------------------------- the cached grid

def grid_shape(spacing_km: float, max_distance_km: float, max_depth_km: float) -> tuple[int, int]:
    """Nodes along distance and depth of a grid with ``spacing_km`` reaching both maxima."""
    if spacing_km <= 0 or max_distance_km <= 0 or max_depth_km <= 0:
        raise ValueError(f"travel-time grid: spacing and extents must be positive (got {spacing_km}, {max_distance_km}, {max_depth_km} km)")
    return int(np.ceil(max_distance_km / spacing_km - 1e-9)) + 1, int(np.ceil(max_depth_km / spacing_km - 1e-9)) + 1


def travel_time_grid(layers, spacing_km: float, max_distance_km: float, max_depth_km: float, cache_dir=None) -> Path:
    """The cache file of the layers' first-arrival P and S times on a square grid, built if absent.

    The file is in the binary layout PyOcto's ``VelocityModel1D`` reads (as PyOcto's own
    ``create_model`` writes it): ``struct("iid", nx, nz, spacing)`` then P and S times as C-ordered
    float64 arrays of shape (nx, nz), the time from a surface source (0, 0) to node
    (ix * spacing, iz * spacing) km. ``cache_dir`` None: :data:`DEFAULT_CACHE_DIR`.
    """
    layers = read_layers(layers)
    nx, nz = grid_shape(spacing_km, max_distance_km, max_depth_km)
    key = json.dumps(
        {column: layers[column].round(6).tolist() for column in ("depth_km", "vp_km_s", "vs_km_s")}
        | {"spacing": float(spacing_km), "nx": nx, "nz": nz, "version": CACHE_VERSION},
        sort_keys=True,
    )
    directory = Path(cache_dir) if cache_dir else DEFAULT_CACHE_DIR
    path = directory / f"tt-{hashlib.sha256(key.encode()).hexdigest()[:16]}.bin"
    if path.exists() and path.stat().st_size == 16 + 2 * 8 * nx * nz:
        return path
    logger.info("building travel-time grid %s (%.0f x %.0f km, %.2f km grid)", path, (nx - 1) * spacing_km,
                (nz - 1) * spacing_km, spacing_km)
    x, z = np.arange(nx) * spacing_km, np.arange(nz) * spacing_km
    tops = layers["depth_km"].to_numpy()
    grids = [layered_first_arrival_times(tops, layers[column].to_numpy(), x, z) for column in PHASE_COLUMNS.values()]
    directory.mkdir(parents=True, exist_ok=True)
    # Parallel jobs may build the same grid: each writes its own file and renames it atomically,
    # so no job ever reads half a file.
    handle, tmp = tempfile.mkstemp(dir=directory, prefix=path.name, suffix=".part")
    with os.fdopen(handle, "wb") as stream:
        stream.write(struct.pack("iid", nx, nz, float(spacing_km)))
        for grid in grids:
            stream.write(np.ascontiguousarray(grid, dtype=np.float64).tobytes())
    os.replace(tmp, path)
    return path


def read_travel_time_grid(path) -> tuple[float, dict[str, np.ndarray]]:
    """(spacing_km, {"P": times, "S": times}) of a file :func:`travel_time_grid` wrote."""
    raw = Path(path).read_bytes()
    nx, nz, spacing = struct.unpack("iid", raw[:16])
    if len(raw) != 16 + 2 * 8 * nx * nz:
        raise ValueError(f"{path}: not a travel-time grid ({len(raw)} bytes for {nx} x {nz} nodes)")
    times = np.frombuffer(raw[16:], dtype=np.float64).reshape(2, nx, nz)
    return spacing, {"P": times[0], "S": times[1]}


class TravelTimes:
    """First-arrival P and S travel times of a layered model, interpolated from the cached grid
    (every node along depth, every :data:`SPLINE_DISTANCE_STEP_KM` along distance).

    Times are interpolated with a bicubic spline of the *squared* time: t² is smooth at the source
    (x² + z² over v² in a layer) where t has a cone-shaped kink, so the spline and its derivatives
    stay accurate to a fraction of a millisecond near the source and to a few ms at layer
    interfaces and head-wave crossovers. Valid for epicentral distances up to ``max_distance_km``
    and source depths 0 to ``max_depth_km`` (below sea level; shallower sources are taken at 0);
    outside, times are NaN.
    """

    def __init__(self, layers=None, max_distance_km: float = 300.0, max_depth_km: float = 60.0,
                 spacing_km: float = GRID_SPACING_KM, cache_dir=None):
        from scipy.interpolate import RectBivariateSpline  # 0.4 s: imported where a table is used

        self.layers = read_layers(layers)
        self.path = travel_time_grid(self.layers, spacing_km, max_distance_km, max_depth_km, cache_dir)
        spacing, grids = read_travel_time_grid(self.path)
        nx, nz = grids["P"].shape
        self.max_distance_km, self.max_depth_km = (nx - 1) * spacing, (nz - 1) * spacing
        self.surface_velocity_km_s = {phase: float(self.layers[column].iloc[0]) for phase, column in PHASE_COLUMNS.items()}
        every = max(1, int(round(SPLINE_DISTANCE_STEP_KM / spacing)))
        along = np.unique(np.append(np.arange(0, nx, every), nx - 1))  # the last node too: the grid's full reach
        distances, depths = along * spacing, np.arange(nz) * spacing
        self._squared = {phase: RectBivariateSpline(distances, depths, grid[along] ** 2, kx=3, ky=3) for phase, grid in grids.items()}

    def _spline(self, phase: str):
        spline = self._squared.get(str(phase).upper())
        if spline is None:
            raise ValueError(f"phase must be 'P' or 'S', not {phase!r}")
        return spline

    def time_and_derivatives(self, phase: str, distance_km, depth_km) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(t, dt/d distance, dt/d depth) in s and s/km for a station at sea level."""
        spline = self._spline(phase)
        distance, depth = np.broadcast_arrays(np.abs(np.asarray(distance_km, float)), np.clip(np.asarray(depth_km, float), 0.0, None))
        inside = (distance <= self.max_distance_km + 1e-9) & (depth <= self.max_depth_km + 1e-9)
        squared = np.clip(spline.ev(distance, depth), 1e-12, None)
        times = np.where(inside, np.sqrt(squared), np.nan)
        return (times, spline.ev(distance, depth, dx=1) / (2 * times), spline.ev(distance, depth, dy=1) / (2 * times))

    def time(self, phase: str, distance_km, depth_km, elevation_km=0.0) -> np.ndarray:
        """Travel time (s) of the first ``phase`` ("P" or "S") from a source at ``depth_km``
        to a station ``distance_km`` away (epicentral) at ``elevation_km``: the elevation adds
        a vertical path through the top layer (as PyOcto's elevation correction)."""
        times = self.time_and_derivatives(phase, distance_km, depth_km)[0]
        return times + np.asarray(elevation_km, float) / self.surface_velocity_km_s[str(phase).upper()]

    def horizontal_slowness(self, phase: str, distance_km, depth_km) -> np.ndarray:
        """dT/dΔ (s/km) of the first arrival: the ray parameter, which sets the ray's angles."""
        return self.time_and_derivatives(phase, distance_km, depth_km)[1]


def travel_times_reaching(layers, max_distance_km: float, max_depth_km: float, cache_dir=None) -> TravelTimes:
    """:class:`TravelTimes` reaching at least ``max_distance_km`` and ``max_depth_km`` (both rounded
    up to :data:`DISTANCE_ROUNDING_KM` and :data:`DEPTH_ROUNDING_KM`), kept between calls of a
    process: building the splines costs a fraction of a second, a relocation a few milliseconds."""
    values = read_layers(layers)[["depth_km", "vp_km_s", "vs_km_s"]]
    rows = tuple(map(tuple, values.to_numpy().round(6).tolist()))
    return _travel_times(rows, _round_up(max_distance_km, DISTANCE_ROUNDING_KM), _round_up(max_depth_km, DEPTH_ROUNDING_KM),
                         str(cache_dir) if cache_dir else None)


def _round_up(extent_km: float, step_km: float) -> float:
    return float(np.ceil(max(extent_km, 1.0) / step_km - 1e-9) * step_km)


@functools.lru_cache(maxsize=4)
def _travel_times(layer_rows: tuple, max_distance_km: float, max_depth_km: float, cache_dir) -> TravelTimes:
    layers = pd.DataFrame(list(layer_rows), columns=["depth_km", "vp_km_s", "vs_km_s"])
    return TravelTimes(layers, max_distance_km, max_depth_km, cache_dir=cache_dir)
