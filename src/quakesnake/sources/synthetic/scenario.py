"""A whole scenario: events, arrivals and stations (:class:`Scenario`), the truth catalog an
analyst would have made of it, and its tables on disk."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from quakesnake import tabular
from quakesnake.sources.synthetic.arrivals import arrival_table, calibrate_and_predict, event_station_pairs
from quakesnake.sources.synthetic.events import catalog_events, generate_events
from quakesnake.sources.synthetic.settings import midnight, resolve_config
from quakesnake.traveltimes import DEFAULT_LAYERS, TravelTimes, read_layers

# OGS-style pick weight from snr / visibility threshold: ≥ 8 → 0, ≥ 3 → 1, ≥ 1.5 → 2, else 3.
# With Gutenberg–Richter amplitudes this gives roughly the OGS bulletin's P weights
# (0: 6 %, 1: 19 %, 2: 38 %, 3–4: 37 %).
SNR_WEIGHTS = [(8.0, 0), (3.0, 1), (1.5, 2)]
# The OGS bulletin's columns; location errors and duration magnitude stay empty.
TRUTH_EVENT_COLUMNS = [
    "event_id", "time", "latitude", "longitude", "depth_km", "ML",
    "erh_km", "erz_km", "azimuthal_gap", "n_picks", "MD", "region",
]


@dataclass
class Scenario:
    """Everything a synthetic run knows: all events, all arrivals, the stations.

    ``events`` holds every generated event (event_id, time, latitude, longitude, depth_km, ML,
    source parameters); ``arrivals`` one row per event × station × phase with the amplitude
    parameters :func:`synthesize_station_day` needs and the analyst view (snr, visible).
    """

    events: pd.DataFrame
    arrivals: pd.DataFrame
    stations: pd.DataFrame
    truth_min_picks: int
    region_label: str = "synthetic"

    def truth_tables(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """The reference catalog an analyst would have made: (events, picks, stations)."""
        visible = self.arrivals[self.arrivals["visible"]]
        n_picks = visible.groupby("event_id").size()
        catalogued = n_picks[n_picks >= self.truth_min_picks].index
        events = self.events[self.events["event_id"].isin(catalogued)].copy()
        events["n_picks"] = events["event_id"].map(n_picks).astype(int)
        events["azimuthal_gap"] = events["event_id"].map(
            visible.groupby("event_id")["backazimuth_deg"].agg(_azimuthal_gap)
        )
        for column in ["erh_km", "erz_km", "MD"]:
            events[column] = np.nan
        events["region"] = self.region_label
        events = events[TRUTH_EVENT_COLUMNS]

        picks = visible[visible["event_id"].isin(catalogued)].copy()
        picks["weight"] = (picks["snr"] / picks["min_snr"]).map(_pick_weight)
        picks = picks.sort_values(["time", "station", "phase"])[["event_id", "station", "phase", "time", "weight"]]
        stations = self.stations[["station", "network", "latitude", "longitude", "elevation_m"]].copy()
        return events.reset_index(drop=True), picks.reset_index(drop=True), stations.reset_index(drop=True)


def _azimuthal_gap(backazimuths: pd.Series) -> float:
    azimuths = np.sort(np.unique(np.mod(backazimuths.to_numpy(), 360.0)))
    if len(azimuths) < 2:
        return 360.0
    return float(np.max(np.diff(np.append(azimuths, azimuths[0] + 360.0))))


def _pick_weight(snr_over_threshold: float) -> int:
    for ratio, weight in SNR_WEIGHTS:
        if snr_over_threshold >= ratio:
            return weight
    return 3


def generate_scenario(cfg: dict, stations: pd.DataFrame, days: list[str], layers: pd.DataFrame | None = None,
                      traveltime_cache_dir=None) -> Scenario:
    """Events and all their arrivals at ``stations`` for ``days`` ('YYYY-MM-DD').

    Generated events (or, with ``catalog_dir``, the catalog's events whose origin falls inside
    ``days``), P and S arrivals at every station with amplitude parameters, and the analyst
    view: an arrival is visible when its snr (against the noise and the codas of other events
    ringing at its onset) reaches ``truth_min_snr`` (S: times
    ``truth_s_snr_factor``), it is not in a data gap and it falls inside ``days``.
    """
    cfg = resolve_config(cfg)
    layers = read_layers(DEFAULT_LAYERS if layers is None else layers)
    stations = stations[tabular.STATION_COLUMNS].reset_index(drop=True).copy()
    stations["location"] = tabular.location_codes(stations["location"])
    day_starts = sorted({midnight(day) for day in days})
    if cfg["catalog_dir"]:
        events, catalog_picks = catalog_events(cfg, day_starts)
        region_label = f"twin of {Path(cfg['catalog_dir']).name}"
    else:
        events = generate_events(cfg, days, stations)
        catalog_picks, region_label = None, "synthetic"
    events = events.reset_index(drop=True)
    arrival_columns = ["event_id", "network", "station", "location", "phase", "time"]
    if len(events) == 0 or len(stations) == 0:
        empty = tabular.empty_table(arrival_columns + ["snr", "min_snr", "visible", "backazimuth_deg"])
        empty["visible"] = empty["visible"].astype(bool)
        events["n_visible"] = 0
        return Scenario(events, empty, stations, int(cfg["truth_min_picks"]), region_label)

    pairs = event_station_pairs(events, stations)
    max_distance = 100.0 * math.ceil(pairs["epicentral_km"].max() / 100.0 + 1e-9)
    max_depth = 20.0 * math.ceil(max(events["depth_km"].max(), 1.0) / 20.0 + 1e-9)
    table = TravelTimes(layers, max_distance_km=max_distance, max_depth_km=max_depth, cache_dir=traveltime_cache_dir)
    arrivals = arrival_table(cfg, pairs, layers, table, catalog_picks)
    arrivals = calibrate_and_predict(cfg, arrivals, day_starts)
    arrivals = arrivals.sort_values(["time", "network", "station", "phase"], ignore_index=True)
    n_visible = arrivals[arrivals["visible"]].groupby("event_id").size()
    events["n_visible"] = events["event_id"].map(n_visible).fillna(0).astype(int)
    return Scenario(events, arrivals, stations, int(cfg["truth_min_picks"]), region_label)


def write_scenario(scenario: Scenario, outdir) -> None:
    """Truth catalog (events.csv, picks.csv, stations.csv) plus arrivals.parquet and events_all.csv."""
    outdir = Path(outdir)
    events, picks, stations = scenario.truth_tables()
    tabular.write_table(events, outdir / "events.csv")
    tabular.write_table(picks, outdir / "picks.csv")
    tabular.write_table(stations, outdir / "stations.csv")
    tabular.write_table(scenario.events, outdir / "events_all.csv")
    tabular.write_table(scenario.arrivals, outdir / "arrivals.parquet")


def read_arrivals(outdir) -> pd.DataFrame:
    """The arrivals table written by :func:`write_scenario`."""
    return tabular.read_table(Path(outdir) / "arrivals.parquet", ["event_id", "network", "station", "location", "phase", "time"])
