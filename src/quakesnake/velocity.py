"""1D layered velocity models and first-arrival travel times from ObsPy TauP.

A model is a table of constant-velocity layers (``depth_km`` is the top of each layer, the last
layer is a half-space). :class:`TravelTimeTable` turns it into a TauP model (below the layers a
standard mantle and core are appended, since TauP needs a whole planet), evaluates first-arrival P
and S times once on a (distance, source depth) grid and interpolates that grid afterwards. Grids
are cached on disk keyed by a hash of the model and the grid, so every job after the first only
reads a small ``.npz``.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import obspy
import pandas as pd

LAYER_COLUMNS = ["depth_km", "vp_km_s", "vs_km_s", "rho_g_cm3"]

# A generic continental crust over a mantle half-space, written for this project.
DEFAULT_LAYERS = pd.DataFrame(
    {
        "depth_km": [0.0, 10.0, 20.0, 32.0],
        "vp_km_s": [5.5, 6.0, 6.5, 8.0],
        "vs_km_s": [3.15, 3.45, 3.72, 4.55],
        "rho_g_cm3": [2.60, 2.72, 2.85, 3.30],
    }
)

# TauP phase names whose earliest arrival is the first P (S): direct up-going, turning or
# refracted down-going (TauP approximates crustal head waves by grazing rays), Moho head wave.
TAUP_PHASES = {"P": ["p", "P", "Pn"], "S": ["s", "S", "Sn"]}

# Top of the first layer at least this fast is where the .nd file marks the Moho.
MANTLE_VP_KM_S = 7.6
# The layers' half-space reaches at least this deep before the reference mantle takes over.
MIN_HALF_SPACE_BASE_KM = 100.0
# found without importing obspy.taup, which loads matplotlib.pyplot (0.5 s in every job that only reads layers)
REFERENCE_MODEL = Path(obspy.__file__).parent / "taup" / "data" / "ak135f_no_mud.nd"
EARTH_RADIUS_KM = 6371.0
# Bump when the grid computation changes so stale cache files are not reused.
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
        source = str(spec)
        if not Path(spec).exists():
            raise ValueError(f"velocity model {source}: file not found")
        frame = pd.read_csv(spec)
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


def _reference_rows(below_km: float) -> tuple[list[str], tuple[float, float, float]]:
    """Lines of the reference model deeper than ``below_km`` and its values at that depth."""
    lines, points = [], []
    for line in REFERENCE_MODEL.read_text().splitlines():
        parts = line.split()
        if len(parts) == 1:
            if points and points[-1][0] > below_km:
                lines.append(parts[0])
            continue
        depth, vp, vs, rho = map(float, parts[:4])
        points.append((depth, vp, vs, rho))
        if depth > below_km:
            lines.append(f"{depth:.3f} {vp:.5f} {vs:.5f} {rho:.5f}")
    table = np.array(points)
    shallow = table[table[:, 0] <= below_km]
    deep = table[table[:, 0] > below_km][0]
    above = shallow[-1]
    weight = (below_km - above[0]) / (deep[0] - above[0]) if deep[0] > above[0] else 0.0
    at_base = tuple(above[1:] + weight * (deep[1:] - above[1:]))
    return lines, at_base


def layers_to_nd(layers: pd.DataFrame) -> str:
    """The layers as a TauP ``.nd`` model, continued below by the ak135 mantle and core."""
    layers = read_layers(layers)
    tops = layers["depth_km"].to_numpy()
    base = max(tops[-1] + 10.0, MIN_HALF_SPACE_BASE_KM)
    bottoms = np.append(tops[1:], base)
    mantle_rows = np.flatnonzero(layers["vp_km_s"].to_numpy() >= MANTLE_VP_KM_S)
    moho_index = mantle_rows[0] if len(mantle_rows) and mantle_rows[0] > 0 else None

    lines = []
    for i, row in enumerate(layers.itertuples(index=False)):
        if i == moho_index:
            lines.append("mantle")
        values = f"{row.vp_km_s:.5f} {row.vs_km_s:.5f} {row.rho_g_cm3:.5f}"
        lines.append(f"{tops[i]:.3f} {values}")
        lines.append(f"{bottoms[i]:.3f} {values}")
    reference_lines, at_base = _reference_rows(base)
    if moho_index is None:
        # No mantle-like layer: the reference mantle starts right under the half-space.
        lines.append("mantle")
        lines.append(f"{base:.3f} {at_base[0]:.5f} {at_base[1]:.5f} {at_base[2]:.5f}")
    return "\n".join(lines + reference_lines) + "\n"


def _first_arrival_times(phases: list, distance_rad: np.ndarray) -> np.ndarray:
    """Earliest arrival over all branches of ``phases`` at each distance (s; inf where none).

    TauP's own ``calc_time`` refines every branch by shooting rays (~2 ms per call); here each
    sampled segment of the travel-time curve is interpolated at once with the tau-p estimate
    TauP itself starts from (Buland & Chapman 1983), which is within a few ms at local distances.
    """
    x = distance_rad[:, None]
    best = np.full(distance_rad.shape, np.inf)
    for phase in phases:
        dist, time, ray_param = phase.dist, phase.time, phase.ray_param
        if len(dist) < 2:
            continue
        lo, hi = np.minimum(dist[:-1], dist[1:]), np.maximum(dist[:-1], dist[1:])
        theta_left = time[:-1] + ray_param[:-1] * (x - dist[:-1])
        theta_right = time[1:] + ray_param[1:] * (x - dist[1:])
        with np.errstate(divide="ignore", invalid="ignore"):
            dp_dx = (ray_param[:-1] - ray_param[1:]) / (dist[:-1] - dist[1:])
        estimate = np.where(dp_dx > 0, np.maximum(theta_left, theta_right), np.minimum(theta_left, theta_right))
        estimate = np.where((x >= lo) & (x <= hi), estimate, np.inf)
        best = np.minimum(best, estimate.min(axis=1))
    return best


class TravelTimeTable:
    """First-arrival P and S travel times for a 1D layered model, interpolated on a grid.

    ``time(phase, distance_km, depth_km, elevation_km)`` is vectorised. Interpolation runs on
    the mean slowness ``t / sqrt(distance² + depth²)``, which is smooth where ``t`` itself has a
    cone-shaped kink at the source. Outside the grid (distance or depth beyond the maxima) times
    are NaN; sources above depth 0 are evaluated at depth 0.
    """

    def __init__(
        self,
        layers=None,
        max_distance_km: float = 300.0,
        max_depth_km: float = 60.0,
        distance_step_km: float = 1.0,
        depth_step_km: float = 1.0,
        cache_dir=None,
    ):
        self.layers = read_layers(DEFAULT_LAYERS if layers is None else layers)
        self.distances_km = np.arange(0.0, max_distance_km + distance_step_km / 2, distance_step_km)
        self.depths_km = np.arange(0.0, max_depth_km + depth_step_km / 2, depth_step_km)
        if len(self.distances_km) < 2 or len(self.depths_km) < 2:
            raise ValueError("TravelTimeTable: the grid needs at least two distances and two depths")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir()) / "quakesnake-traveltimes"
        self.surface_vp_km_s = float(self.layers["vp_km_s"].iloc[0])
        self.surface_vs_km_s = float(self.layers["vs_km_s"].iloc[0])
        from scipy.interpolate import RegularGridInterpolator  # 0.4 s: only where a table is used

        grids = self._load_or_build()
        distance, depth = np.meshgrid(self.distances_km, self.depths_km, indexing="ij")
        radius = np.hypot(distance, depth)
        self._interpolators = {}
        for phase, times in grids.items():
            surface_slowness = 1.0 / (self.surface_vp_km_s if phase == "P" else self.surface_vs_km_s)
            with np.errstate(invalid="ignore", divide="ignore"):
                slowness = np.where(radius > 0, times / radius, surface_slowness)
            self._interpolators[phase] = RegularGridInterpolator(
                (self.distances_km, self.depths_km), slowness, bounds_error=False, fill_value=np.nan
            )

    @property
    def cache_key(self) -> str:
        payload = {
            "version": CACHE_VERSION,
            "obspy": obspy.__version__,
            "layers": np.round(self.layers.to_numpy(), 6).tolist(),
            "distances": [self.distances_km[-1], len(self.distances_km)],
            "depths": [self.depths_km[-1], len(self.depths_km)],
        }
        return hashlib.sha256(json.dumps(payload).encode()).hexdigest()[:20]

    def _load_or_build(self) -> dict[str, np.ndarray]:
        path = self.cache_dir / f"traveltimes-{self.cache_key}.npz"
        if path.exists():
            try:
                with np.load(path) as cached:
                    return {"P": cached["P"], "S": cached["S"]}
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                pass  # unreadable cache (e.g. written by another numpy): rebuild below
        grids = self._build()
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        # Another process may build the same grid now: each writes its own file, renames atomically.
        handle, tmp = tempfile.mkstemp(dir=self.cache_dir, prefix=path.stem, suffix=".part")
        with os.fdopen(handle, "wb") as stream:
            np.savez(stream, **grids)
        os.replace(tmp, path)
        return grids

    def _build(self) -> dict[str, np.ndarray]:
        # TauP is imported here, where a grid is built, not by every job that imports this module
        from obspy.taup import TauPyModel
        from obspy.taup.seismic_phase import SeismicPhase
        from obspy.taup.taup_create import build_taup_model

        self.cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache_dir) as workdir:
            nd_path = Path(workdir) / "layers.nd"
            nd_path.write_text(layers_to_nd(self.layers))
            build_taup_model(str(nd_path), output_folder=workdir, verbose=False)
            model = TauPyModel(str(nd_path.with_suffix(".npz"))).model
        distance_rad = self.distances_km / EARTH_RADIUS_KM
        grids = {phase: np.empty((len(self.distances_km), len(self.depths_km))) for phase in TAUP_PHASES}
        for j, depth in enumerate(self.depths_km):
            corrected = model.depth_correct(float(depth))
            for phase, names in TAUP_PHASES.items():
                times = _first_arrival_times([SeismicPhase(name, corrected) for name in names], distance_rad)
                grids[phase][:, j] = np.where(np.isfinite(times), times, np.nan)
        return grids

    def time(self, phase: str, distance_km, depth_km, elevation_km=0.0) -> np.ndarray:
        """Travel time (s) of the first ``phase`` ("P" or "S") from a source at ``depth_km``
        (below sea level) to a station ``distance_km`` away (epicentral) at ``elevation_km``.

        The station elevation adds a vertical path through the top layer.
        """
        phase = phase.upper()
        if phase not in self._interpolators:
            raise ValueError(f"phase must be 'P' or 'S', not {phase!r}")
        distance, depth, elevation = np.broadcast_arrays(
            np.abs(np.asarray(distance_km, dtype=float)),
            np.clip(np.asarray(depth_km, dtype=float), 0.0, None),
            np.asarray(elevation_km, dtype=float),
        )
        slowness = self._interpolators[phase](np.stack([distance.ravel(), depth.ravel()], axis=-1))
        times = slowness.reshape(distance.shape) * np.hypot(distance, depth)
        surface_speed = self.surface_vp_km_s if phase == "P" else self.surface_vs_km_s
        return times + elevation / surface_speed

    def horizontal_slowness(self, phase: str, distance_km, depth_km) -> np.ndarray:
        """dT/dΔ (s/km) of the first arrival, by a central difference over 0.5 km."""
        distance = np.asarray(distance_km, dtype=float)
        step = 0.25
        near = np.clip(distance - step, 0.0, None)
        far = np.clip(distance + step, None, self.distances_km[-1])
        return (self.time(phase, far, depth_km) - self.time(phase, near, depth_km)) / (far - near)
