"""The figures and tables of the HTML report, per picker × associator, beside the reference.

They are drawn from what evaluation wrote (:func:`quakesnake.evaluation.evaluate_files`: the
detections with their outcome, the reference events with ``found``, the pick matches with the
epicentral distance) and from the catalog's own tables, so no match is computed twice:

* ``event_map.png``: stations and events (found, missed, new) on a map and in a depth section;
* ``frequency_magnitude.png``: the frequency–magnitude distributions, Mc and b-value
  (:mod:`quakesnake.seismicity`), ours and the reference's;
* ``cumulative_events.png``: cumulative number of events in time;
* ``magnitudes.png``: our ML against the reference magnitude of matched events;
* ``pick_residuals.png``: matched pick residuals per phase, histogram and against distance;
* ``stations.csv``: per station the picks per day, the residual medians and the share of
  picks that events used, to spot a bad station.

Figures are bare matplotlib ``Figure`` objects (Agg canvas): no pyplot state, no display.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from quakesnake import seismicity
from quakesnake.evaluation import event_magnitude, station_code_map
from quakesnake.tabular import PICK_COLUMNS, atomic_write, concat_tables, phase_letters, read_stations, read_table, write_table

# (outcome, label, marker style) of detections on the map: matched, real (generated, not in the
# reference), false, and unmatched against a reference that cannot tell which
DETECTION_STYLES = {
    "matched": ("found (matched)", dict(s=10, c="tab:green")),
    "fp_real": ("new, real (generated, not catalogued)", dict(s=16, c="tab:blue", marker="D")),
    "fp_false": ("new, false", dict(s=18, c="tab:orange", marker="s")),
    "unmatched": ("new (candidate for review)", dict(s=16, c="tab:purple", marker="D")),
}
STATION_TABLE_COLUMNS = [
    "network", "station", "latitude", "longitude", "days_with_picks", "p_picks_per_day", "s_picks_per_day",
    "share_used_by_events", "association_residual_median_s", "reference_picks", "reference_recall",
    "reference_residual_median_s",
]


def save_figure(fig: Figure, path, dpi: int = 110) -> None:
    """Lay out and write a figure as PNG atomically (a half-written image never has the final name)."""
    fig.tight_layout()
    atomic_write(path, lambda partial: fig.savefig(partial, dpi=dpi), suffix=".png")


def _aspect(ax, latitudes) -> None:
    latitudes = pd.Series(latitudes, dtype=float).dropna()
    if len(latitudes):
        # "box": the axes shrink to the map's aspect; "datalim" would move limits and hide events
        ax.set_aspect(1.0 / np.cos(np.radians(latitudes.mean())), adjustable="box")


def plot_event_map(detections: pd.DataFrame, reference: pd.DataFrame, stations: pd.DataFrame, path, title: str = "") -> None:
    """Map of stations and events (reference found and missed; detections matched and new), and
    below it the same events in an east–west depth section (longitude against depth)."""
    fig = Figure(figsize=(8, 9.5))
    ax, section = fig.subplots(2, 1, gridspec_kw={"height_ratios": [3, 1.3]})
    found = reference["found"].to_numpy(bool)
    ax.scatter(stations["longitude"], stations["latitude"], marker="^", s=50, c="0.6", edgecolors="k", linewidths=0.5,
               label=f"station ({len(stations)})", zorder=1)
    for axis, y_column in ((ax, "latitude"), (section, "depth_km")):
        axis.scatter(reference.loc[found, "longitude"], reference.loc[found, y_column], s=34, facecolors="none",
                     edgecolors="tab:green", label=f"reference, found ({int(found.sum())})", zorder=2)
        axis.scatter(reference.loc[~found, "longitude"], reference.loc[~found, y_column], s=34, marker="x", c="tab:red",
                     label=f"reference, missed ({int((~found).sum())})", zorder=3)
        for outcome, (label, style) in DETECTION_STYLES.items():
            chosen = detections["outcome"] == outcome
            if chosen.any():
                axis.scatter(detections.loc[chosen, "longitude"], detections.loc[chosen, y_column], **style,
                             label=f"{label} ({int(chosen.sum())})", zorder=4)
    _aspect(ax, pd.concat([stations["latitude"], reference["latitude"], detections["latitude"]]))
    ax.set_ylabel("latitude (°)")
    ax.legend(loc="best", fontsize="small", framealpha=0.85)
    ax.set_title(title or "stations and events", fontsize="medium")
    section.set_xlim(ax.get_xlim())
    section.invert_yaxis()
    section.set_xlabel("longitude (°)")
    section.set_ylabel("depth (km)")
    section.set_title("depth section (all latitudes)", fontsize="small")
    save_figure(fig, path)


def plot_pick_residuals(pick_matches: pd.DataFrame, path) -> None:
    """Matched pick residuals (predicted − reference) per phase: histogram and against epicentral
    distance (a trend with distance points at the velocity model, a scatter at the picker)."""
    fig = Figure(figsize=(10, 6.5))
    axes = fig.subplots(2, 2, sharex="row")
    residuals = pick_matches["residual_s"].to_numpy(float)
    limit = max(float(np.abs(residuals).max()) if len(residuals) else 0.0, 0.1)
    bins = np.linspace(-limit, limit, 41)
    for column, (phase, colour) in enumerate((("P", "tab:blue"), ("S", "tab:red"))):
        chosen = pick_matches[pick_matches["phase"] == phase]
        values = chosen["residual_s"].to_numpy(float)
        histogram, scatter = axes[0, column], axes[1, column]
        histogram.hist(values, bins=bins, color=colour, alpha=0.8)
        summary = f"n={len(values)}" + (f", median {np.median(values):+.3f} s" if len(values) else "")
        histogram.set_title(f"{phase}: {summary}", fontsize="medium")
        histogram.set_xlabel("predicted − reference (s)")
        histogram.set_ylabel("matched picks")
        distance = chosen["epicentral_distance_km"].to_numpy(float) if "epicentral_distance_km" in chosen else np.full(len(values), np.nan)
        scatter.scatter(distance, values, s=6, c=colour, alpha=0.6)
        scatter.axhline(0.0, c="k", lw=0.6)
        scatter.set_ylim(-limit, limit)
        scatter.set_xlabel("epicentral distance (km)")
        scatter.set_ylabel(f"{phase} residual (s)")
    save_figure(fig, path)


def plot_frequency_magnitude(catalog_magnitudes, reference_magnitudes, statistics: dict, path, label: str = "this catalog") -> None:
    """Cumulative (markers) and per-bin (steps) numbers of events per magnitude, ours and the
    reference's, each with its Mc and, where defined, the Gutenberg–Richter line of its b-value."""
    fig = Figure(figsize=(8, 5.5))
    ax = fig.subplots()
    for magnitudes, stats, name, colour in (
        (catalog_magnitudes, statistics["catalog"], label, "tab:blue"),
        (reference_magnitudes, statistics["reference"], "reference", "0.3"),
    ):
        bin_width = stats.get("bin_width", seismicity.DEFAULTS["magnitude_bin_width"])
        distribution = seismicity.frequency_magnitude(magnitudes, bin_width)
        if distribution.empty:
            ax.plot([], [], c=colour, label=f"{name}: no magnitudes")
            continue
        description = f"{name}: {stats['n_events']} events"
        if stats.get("mc") is not None:
            description += f", Mc {stats['mc']:.1f}"
        if stats.get("b_value") is not None:
            description += f", b = {stats['b_value']:.2f} ± {stats['b_uncertainty']:.2f} (n={stats['n_above_mc']})"
        ax.semilogy(distribution["magnitude"], distribution["cumulative"], "o", ms=4, c=colour, label=description)
        ax.step(distribution["magnitude"], distribution["count"].where(distribution["count"] > 0), where="mid", c=colour, alpha=0.6)
        if stats.get("mc") is not None:
            ax.axvline(stats["mc"], c=colour, ls=":", lw=1)
        if stats.get("b_value") is not None:
            fitted = distribution["magnitude"][distribution["magnitude"] >= stats["mc"] - 1e-9]
            ax.semilogy(fitted, 10 ** (stats["a_value"] - stats["b_value"] * fitted), "-", c=colour, lw=1)
    ax.set_xlabel("magnitude")
    ax.set_ylabel("number of events (markers: ≥ M, steps: per bin)")
    ax.set_title("frequency–magnitude distribution (Mc: maximum curvature + correction; b: Aki–Utsu, σ Shi & Bolt)",
                 fontsize="small")
    ax.legend(loc="upper right", fontsize="small")
    save_figure(fig, path)


def plot_cumulative_events(catalog_times, reference_times, found_times, path, label: str = "this catalog") -> None:
    """Cumulative number of events in time: ours, the reference's and the reference events found."""
    fig = Figure(figsize=(9, 4))
    ax = fig.subplots()
    for times, name, colour in ((catalog_times, label, "tab:blue"), (reference_times, "reference", "0.3"),
                                (found_times, "reference, found", "tab:green")):
        times = np.sort(pd.to_datetime(pd.Series(times)).dropna().to_numpy("datetime64[ns]"))
        ax.step(times, np.arange(1, len(times) + 1), where="post", c=colour, label=f"{name} ({len(times)})")
    ax.set_xlabel("origin time (UTC)")
    ax.set_ylabel("cumulative number of events")
    ax.legend(loc="upper left", fontsize="small")
    fig.autofmt_xdate()
    save_figure(fig, path)


def plot_magnitude_comparison(detections: pd.DataFrame, path, label: str = "this catalog") -> None:
    """Our magnitude against the reference magnitude of every matched event, with the 1:1 line."""
    fig = Figure(figsize=(5.5, 5.5))
    ax = fig.subplots()
    matched = detections[detections["outcome"] == "matched"]
    ours = event_magnitude(matched).to_numpy(float)
    theirs = matched["reference_magnitude"].to_numpy(float)
    both = np.isfinite(ours) & np.isfinite(theirs)
    if both.any():
        low = float(min(ours[both].min(), theirs[both].min())) - 0.2
        high = float(max(ours[both].max(), theirs[both].max())) + 0.2
        ax.plot([low, high], [low, high], c="k", lw=0.8, label="1:1")
        difference = ours[both] - theirs[both]
        ax.scatter(theirs[both], ours[both], s=12, c="tab:blue",
                   label=f"{int(both.sum())} matched events: bias {difference.mean():+.2f}, σ {difference.std():.2f}")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.legend(loc="upper left", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no matched event has a magnitude on both sides", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("reference magnitude")
    ax.set_ylabel(f"{label} magnitude")
    save_figure(fig, path)


def station_table(stations: pd.DataFrame, picks: pd.DataFrame, assignments: pd.DataFrame, pick_matches: pd.DataFrame,
                  reference_picks_per_station: pd.Series, n_days: int) -> pd.DataFrame:
    """Per station of the run: picks per day (P, S), the share of its picks events used, the median
    association residual, and against the reference: its picks, the share found, the median residual.

    ``reference_picks_per_station`` counts the reference picks in the window per reference code;
    reference codes are mapped to the run's codes as evaluation maps them (exact, else a unique
    4-character prefix).
    """
    table = stations[["network", "station", "latitude", "longitude"]].drop_duplicates(["network", "station"]).copy()
    keys = list(zip(table["network"], table["station"]))
    phase = phase_letters(picks["phase"])
    counts = picks.assign(phase=phase).groupby(["network", "station", "phase"]).size()
    days_with_picks = picks.assign(day=picks["time"].dt.floor("D")).groupby(["network", "station"])["day"].nunique()
    used = assignments.groupby(["network", "station"]).size()
    residual = assignments.groupby(["network", "station"])["residual_s"].median()
    table["days_with_picks"] = [int(days_with_picks.get(key, 0)) for key in keys]
    table["p_picks_per_day"] = [counts.get((*key, "P"), 0) / n_days for key in keys]
    table["s_picks_per_day"] = [counts.get((*key, "S"), 0) / n_days for key in keys]
    n_picks = np.array([counts.get((*key, "P"), 0) + counts.get((*key, "S"), 0) for key in keys], float)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["share_used_by_events"] = np.where(n_picks > 0, np.array([used.get(key, 0) for key in keys]) / n_picks, np.nan)
    table["association_residual_median_s"] = [residual.get(key, np.nan) for key in keys]
    code = table["station"].astype(str).map(station_code_map(table["station"], reference_picks_per_station.index))
    matched_count = pick_matches.groupby("station").size()
    matched_median = pick_matches.groupby("station")["residual_s"].median()
    table["reference_picks"] = code.map(reference_picks_per_station).fillna(0).astype(int).to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        table["reference_recall"] = np.where(table["reference_picks"] > 0,
                                             code.map(matched_count).fillna(0).to_numpy() / table["reference_picks"], np.nan)
    table["reference_residual_median_s"] = code.map(matched_median).to_numpy(float)
    return table[STATION_TABLE_COLUMNS].sort_values(["network", "station"]).reset_index(drop=True)


def report_figures_files(metrics_path, detections_path, reference_events_path, pick_matches_path, assignments_path,
                         pick_paths, stations_path, reference_picks_path, days, outputs: dict, label: str = "this catalog") -> None:
    """Every figure and the station table of one picker × associator (``outputs``: event_map,
    frequency_magnitude, cumulative_events, magnitudes, pick_residuals, stations → paths)."""
    metrics = json.loads(Path(metrics_path).read_text())
    detections = read_table(detections_path, ["time", "latitude", "longitude", "depth_km", "outcome"])
    reference = read_table(reference_events_path, ["time", "latitude", "longitude", "depth_km", "found"])
    pick_matches = read_table(pick_matches_path, ["station", "phase", "residual_s"])
    stations = read_stations(stations_path)
    plot_event_map(detections, reference, stations, outputs["event_map"], title=label)
    plot_frequency_magnitude(event_magnitude(detections), event_magnitude(reference), metrics["magnitude_distribution"],
                             outputs["frequency_magnitude"], label=label)
    plot_cumulative_events(detections["time"], reference["time"], reference.loc[reference["found"].astype(bool), "time"],
                           outputs["cumulative_events"], label=label)
    plot_magnitude_comparison(detections, outputs["magnitudes"], label=label)
    plot_pick_residuals(pick_matches, outputs["pick_residuals"])

    window_start, window_end = pd.Timestamp(metrics["window"]["start"]), pd.Timestamp(metrics["window"]["end"])
    picks = concat_tables([read_table(path, ["network", "station", "phase", "time"]) for path in pick_paths], PICK_COLUMNS)
    picks = picks[(picks["time"] >= window_start) & (picks["time"] < window_end)]
    assignments = read_table(assignments_path, ["network", "station", "phase", "time", "residual_s"])
    assignments = assignments[(assignments["time"] >= window_start) & (assignments["time"] < window_end)]
    reference_picks = read_table(reference_picks_path, ["station", "time"])
    reference_picks = reference_picks[(reference_picks["time"] >= window_start) & (reference_picks["time"] < window_end)]
    table = station_table(stations, picks, assignments, pick_matches,
                          reference_picks.groupby(reference_picks["station"].astype(str)).size(), n_days=len(days))
    write_table(table, outputs["stations"])
