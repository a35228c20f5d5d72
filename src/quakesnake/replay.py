"""Catalog replay: association and location quality on a reference catalog's own picks.

No waveforms and no picker: the reference picks are fed to an associator day by day, exactly as
the workflow feeds merged picks (each day with its neighbours' picks within ``pad_s``, through
:func:`~quakesnake.association.picks_around_day` and
:func:`~quakesnake.association.associate_day`, so an event at midnight is found once), and the
events are scored against the reference events with the matching and metrics of
:func:`quakesnake.evaluation.score_catalog`. The associated picks stand in for the predicted
picks there, so pick recall is the share of reference picks that ended up in some event and,
with false picks added, pick precision the share of associated picks that are real.

Reference picks carry station codes only; networks come from the station table. Picks on
stations without coordinates are dropped and counted (``metrics["replay"]["picks"]``).

False picks (``false_pick_rate``): ``round(rate * n_picks)`` picks, each within ±30 s of a
randomly chosen real pick, on a random station (of those with coordinates that hold real picks)
and a random phase. False picks spread uniformly over the day would hardly ever fall near an
event and would test nothing.

With ``relocate=True`` the associator's events are relocated in the 1D model
(:func:`quakesnake.location.relocate`); the metrics then describe the relocated events and
``metrics["events_before_relocation"]`` holds the event metrics of the associator's locations.
"""
from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd

from quakesnake.association import EVENT_EXTRA_COLUMNS, associate_day, picks_around_day, resolve_config
from quakesnake.evaluation import score_catalog
from quakesnake.tabular import ASSIGNMENT_COLUMNS, EVENT_COLUMNS, PICK_COLUMNS, concat_tables, phase_letters
from quakesnake.location import relocate as relocate_events
from quakesnake.traveltimes import read_layers

logger = logging.getLogger(__name__)

FALSE_PICK_SPREAD_S = 30.0
DEFAULT_PAD_S = 600.0  # the workflow's association.pad_s default
REFERENCE_PICKER = "reference"
FALSE_PICKER = "false"


def picks_on_located_stations(picks: pd.DataFrame, stations: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Reference picks as associator input (PICK_COLUMNS), networks taken from ``stations``.

    Picks whose station has no coordinates are dropped; returns (picks, number dropped). A
    ``network`` column already in ``picks`` is kept and matched on (network, station).
    """
    located = stations.dropna(subset=["latitude", "longitude"])
    if "network" in picks:
        keys = ["network", "station"]
        table = picks.copy()
    else:
        duplicated = located["station"][located["station"].duplicated()]
        if len(duplicated):
            logger.warning("station codes in several networks (%s): their picks go to the first network listed",
                           ", ".join(sorted(set(duplicated))))
        networks = located.drop_duplicates("station").set_index("station")["network"]
        keys = ["station"]
        table = picks.assign(network=picks["station"].map(networks))
    known = pd.MultiIndex.from_frame(table[keys].astype(str)).isin(pd.MultiIndex.from_frame(located[keys].astype(str)))
    table = table[known]
    n_dropped = int((~known).sum())
    if n_dropped:
        missing = sorted(set(picks.loc[~known, "station"].astype(str)))
        logger.info("dropped %d of %d reference picks on %d stations without coordinates (%s)", n_dropped, len(picks),
                    len(missing), ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else ""))
    out = pd.DataFrame({
        "network": table["network"].astype(str).to_numpy(object), "station": table["station"].astype(str).to_numpy(object),
        "location": "", "phase": phase_letters(table["phase"]).to_numpy(object),
        "time": table["time"].to_numpy("datetime64[ns]"), "probability": 1.0, "picker": REFERENCE_PICKER,
        "snr": np.nan,
    })
    return out.sort_values("time", kind="stable").reset_index(drop=True)[PICK_COLUMNS], n_dropped


def false_picks(picks: pd.DataFrame, rate: float, seed: int = 0) -> pd.DataFrame:
    """``round(rate * len(picks))`` false picks (PICK_COLUMNS), each within ±30 s of a random pick
    of ``picks``, on a random one of their stations and a random phase; reproducible by ``seed``."""
    if rate < 0:
        raise ValueError(f"false pick rate must be >= 0, got {rate}")
    rng = np.random.default_rng(seed)
    n_false = int(round(rate * len(picks)))
    if n_false == 0 or picks.empty:
        return picks.iloc[:0].copy()
    stations = picks[["network", "station"]].drop_duplicates().to_numpy(object)
    on_station = stations[rng.integers(0, len(stations), n_false)]
    near = picks["time"].to_numpy("datetime64[ns]")[rng.integers(0, len(picks), n_false)]
    offset_ns = np.round(rng.uniform(-FALSE_PICK_SPREAD_S, FALSE_PICK_SPREAD_S, n_false) * 1e9).astype(np.int64)
    table = pd.DataFrame({
        "network": on_station[:, 0], "station": on_station[:, 1], "location": "",
        "phase": rng.choice(np.array(["P", "S"], dtype=object), n_false),
        "time": near + offset_ns.astype("timedelta64[ns]"), "probability": 1.0, "picker": FALSE_PICKER,
        "snr": np.nan,
    })
    return table.sort_values("time", kind="stable").reset_index(drop=True)[PICK_COLUMNS]


def replay_days(events: pd.DataFrame, picks: pd.DataFrame) -> list[str]:
    """Every UTC day from the first to the last reference event (the picks when there are none)."""
    times = events["time"] if len(events) else picks["time"]
    if times.empty:
        return []
    return [day.strftime("%Y-%m-%d") for day in pd.date_range(times.min().floor("D"), times.max().floor("D"), freq="D")]


def associate_days(
    picks: pd.DataFrame, stations: pd.DataFrame, days: list[str], associator_cfg: dict, layers=None, *,
    name: str, pad_s: float = DEFAULT_PAD_S,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Associate ``picks`` day by day, as the workflow's associate rule does; returns (events, assignments)."""
    event_frames, assignment_frames = [], []
    for day in days:
        events, assignments = associate_day(picks_around_day([picks], day, pad_s), stations, day, associator_cfg, layers, name=name)
        logger.debug("%s: %d events, %d assigned picks", day, len(events), len(assignments))
        event_frames.append(events)
        assignment_frames.append(assignments)
    return (concat_tables(event_frames, EVENT_COLUMNS + EVENT_EXTRA_COLUMNS),
            concat_tables(assignment_frames, ASSIGNMENT_COLUMNS))


def replay_catalog(
    events: pd.DataFrame,
    picks: pd.DataFrame,
    stations: pd.DataFrame,
    associator_cfg: dict,
    layers=None,
    *,
    false_pick_rate: float = 0.0,
    seed: int = 0,
    relocate: bool = False,
    relocation_options: dict | None = None,
    name: str | None = None,
    days: list[str] | None = None,
    pad_s: float = DEFAULT_PAD_S,
    event_time_tolerance_s: float = 2.0,
    event_distance_tolerance_km: float = 8.0,
    pick_tolerance_s: float = 0.5,
) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Replay a reference catalog (events, picks, stations in the shared layout, as
    :func:`quakesnake.tabular.read_reference` returns them) through one associator.

    ``layers`` (a 1D model) is needed for PyOcto's ``1d`` model and for ``relocate``
    (``relocation_options``: keyword arguments of :func:`quakesnake.location.relocate`). ``days``
    (UTC, 'YYYY-MM-DD') defaults to every day from the first to the last reference event; scores
    cover those days. Returns (metrics: :func:`~quakesnake.evaluation.score_catalog`'s keys plus
    ``replay`` and, when relocating, ``events_before_relocation`` and ``relocation``; events;
    assignments). Events of ``relocate`` carry the associator location in ``*_assoc`` columns.
    """
    cfg = resolve_config(associator_cfg)
    name = name or cfg["type"]
    if layers is not None:
        layers = read_layers(layers)
    if relocate and layers is None:
        raise ValueError("relocation needs a 1D velocity model (layers)")
    days = days if days is not None else replay_days(events, picks)
    if not days:
        raise ValueError("nothing to replay: the catalog holds no events and no picks")

    start, end = pd.Timestamp(days[0]), pd.Timestamp(days[-1]) + pd.Timedelta(days=1)
    # only the picks some day's association sees: counts and false picks refer to the replayed days
    reach = pd.Timedelta(seconds=pad_s)
    in_reach = picks[(picks["time"] >= start - reach) & (picks["time"] < end + reach)]
    real, n_without_coordinates = picks_on_located_stations(in_reach, stations)
    fake = false_picks(real, false_pick_rate, seed)
    fed = concat_tables([real, fake], PICK_COLUMNS).sort_values("time", kind="stable").reset_index(drop=True)
    started = time.perf_counter()
    pred_events, assignments = associate_days(fed, stations, days, associator_cfg, layers, name=name, pad_s=pad_s)
    association_s = time.perf_counter() - started
    logger.info("%s: %d days, %d picks (%d false) -> %d events in %.1f s", name, len(days), len(fed), len(fake),
                len(pred_events), association_s)

    def score(catalog: pd.DataFrame) -> dict:
        return score_catalog(
            catalog, assignments, events, picks, stations, start=start, end=end,
            pick_tolerance_s=pick_tolerance_s, event_time_tolerance_s=event_time_tolerance_s,
            event_distance_tolerance_km=event_distance_tolerance_km,
        ).metrics

    metrics = score(pred_events)
    wall_s = {"association": association_s}
    if relocate:
        started = time.perf_counter()
        relocated = relocate_events(pred_events, assignments, stations, layers, **(relocation_options or {}))
        wall_s["relocation"] = time.perf_counter() - started
        before = metrics["events"]
        metrics = score(relocated)
        metrics["events_before_relocation"] = before
        metrics["relocation"] = {
            "options": relocation_options or {},
            "n_relocated": int(relocated["relocated"].sum()),
            "n_kept_associator_location": int((~relocated["relocated"]).sum()),
            **{f"{column}_median": _median(relocated[column]) for column in ("erh_km", "erz_km", "time_std_s", "rms_residual_s")},
        }
        pred_events = relocated

    fake_keys = fake.set_index(["network", "station", "phase", "time"]).index
    metrics["replay"] = {
        "associator": name,
        "config": associator_cfg,
        "days": {"first": days[0], "last": days[-1], "count": len(days)},
        "pad_s": pad_s,
        "false_pick_rate": false_pick_rate,
        "seed": seed,
        "picks": {
            "reference": len(in_reach),
            "without_station_coordinates": n_without_coordinates,
            "fed": len(fed),
            "false": len(fake),
            "false_associated": int(assignments.set_index(["network", "station", "phase", "time"]).index.isin(fake_keys).sum()),
        },
        "wall_s": wall_s,
    }
    return metrics, pred_events, assignments


def _median(values: pd.Series):
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.median()) if len(values) else None
