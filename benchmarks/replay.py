"""Replay the OGS manual picks through every associator and write the README table.

    python benchmarks/replay.py [--update-readme]

Per associator (PyOcto with the OGS 1D model, PyOcto 0D, GaMMA), with the thesis settings and the
tuned ones of config/ogs-associators.yaml (PyOcto 0D: the tuned PyOcto settings with the
homogeneous model), without and with 30 % false picks (each within ±30 s of a real pick):
`quakesnake.replay.replay_catalog` over the whole study window, day by day, scored before and
after relocation in the 1D model. A second table relocates the tuned runs as if every station
were at sea level, the way the OGS bulletin locates. About 5 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time

import pandas as pd
import yaml

from common import machine, markdown_table, update_readme
from tune_associators import CONFIG_PATH, THESIS, load_ogs

from quakesnake.evaluation import match_events
from quakesnake.replay import replay_catalog

FALSE_PICK_RATE = 0.3
SEED = 0


def associator_settings() -> list[tuple[str, str, dict]]:
    """(associator label, settings label, config) for every row of the table."""
    tuned = yaml.safe_load(CONFIG_PATH.read_text())["associators"]
    rows = []
    for settings, pyocto, gamma in (("thesis", THESIS["pyocto"], THESIS["gamma"]), ("tuned", tuned["pyocto"], tuned["gamma"])):
        rows += [
            ("PyOcto 1D", settings, {**pyocto, "velocity_model": "1d"}),
            ("PyOcto 0D", settings, {**pyocto, "velocity_model": "0d"}),
            ("GaMMA", settings, dict(gamma)),
        ]
    return rows


def pair(first, second, digits: int = 2) -> str:
    return " / ".join("–" if v is None else f"{v:.{digits}f}" for v in (first, second))


def location_cells(events: dict) -> list:
    depth = pair(events["depth_mae_km"], events["depth_rmse_km"])
    bias = "–" if events["depth_bias_km"] is None else f"{events['depth_bias_km']:+.2f}"
    return [pair(events["epicentral_mae_km"], events["epicentral_rmse_km"]), f"{depth} ({bias})"]


def missed_summary(found: pd.DataFrame, data) -> str:
    """How many reference events the run missed, and how many of those have few picks or no S pick on located stations."""
    ref_events, ref_picks, stations, _ = data
    missed = ref_events.loc[~ref_events.index.isin(match_events(found, ref_events)["ref_index"]), "event_id"]
    on_located = ref_picks[ref_picks["station"].isin(stations.dropna(subset=["latitude", "longitude"])["station"])]
    counts = on_located.groupby("event_id")["phase"].agg(n="size", n_s=lambda p: int((p == "S").sum())).reindex(missed).fillna(0)
    return (f"{len(missed)} missed, {int((counts['n'] < 5).sum())} of them with fewer than 5 picks on located stations and "
            f"{int(((counts['n'] >= 5) & (counts['n_s'] == 0)).sum())} more with no S pick")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update-readme", action="store_true", help="write the tables into README.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data = load_ogs()
    events, picks, stations, layers = data

    started = time.perf_counter()
    rows, sea_level_rows, notes = [], [], []
    for associator, settings, cfg in associator_settings():
        for rate in (0.0, FALSE_PICK_RATE):
            metrics, found, _ = replay_catalog(events, picks, stations, cfg, layers, false_pick_rate=rate, seed=SEED, relocate=True)
            before, after, wall = metrics["events_before_relocation"], metrics["events"], metrics["replay"]["wall_s"]
            rows.append([
                associator, settings, f"{rate:.0%}", before["recall"], before["precision"], before["origin_time_mae_s"],
                *location_cells(before), after["recall"], after["precision"], after["origin_time_mae_s"], *location_cells(after),
                round(wall["association"], 1), round(wall["relocation"], 1),
            ])
            print(" | ".join(map(str, rows[-1])), file=sys.stderr, flush=True)
            if settings == "tuned" and rate == 0.0:
                notes.append(f"{associator}: {missed_summary(found, data)}")
        if settings == "tuned":
            metrics, _, _ = replay_catalog(events, picks, stations, cfg, layers, relocate=True,
                                           relocation_options={"station_elevations": False})
            after = metrics["events"]
            sea_level_rows.append([associator, after["recall"], after["precision"], after["origin_time_mae_s"], *location_cells(after),
                                   metrics["relocation"]["rms_residual_s_median"]])
    wall_total = time.perf_counter() - started

    n_kept = metrics["replay"]["picks"]["fed"]
    n_dropped = metrics["replay"]["picks"]["without_station_coordinates"]
    header = ["associator", "settings", "false picks", "recall", "precision", "origin-time MAE (s)", "epicentral MAE / RMSE (km)",
              "depth MAE / RMSE (bias) (km)", "relocated: recall", "precision", "origin-time MAE (s)", "epicentral MAE / RMSE (km)",
              "depth MAE / RMSE (bias) (km)", "association wall (s)", "relocation wall (s)"]
    sea_header = ["associator (tuned, no false picks)", "recall", "precision", "origin-time MAE (s)", "epicentral MAE / RMSE (km)",
                  "depth MAE / RMSE (bias) (km)", "median pick RMS (s)"]
    text = (
        f"Catalog replay of the OGS manual picks, 2024-03-20..06-20 ({len(events)} events; {n_kept} picks fed, {n_dropped} on "
        f"stations without coordinates dropped), day by day as the workflow associates, matched one-to-one "
        f"(|dt| ≤ 2 s, ≤ 8 km). Measured by `python benchmarks/replay.py` on {machine()}; all {len(rows) + len(sea_level_rows)} "
        f"runs {wall_total:.0f} s. Settings: thesis = the package defaults; tuned = `config/ogs-associators.yaml` "
        f"(`python benchmarks/tune_associators.py`; PyOcto 0D takes its PyOcto entry with the homogeneous model). False picks: {FALSE_PICK_RATE:.0%} × picks, each within ±30 s of a real "
        f"pick on a random station and phase (seed {SEED}). Relocated = `quakesnake.location.relocate` (1D OGS model, "
        f"station elevations, robust least squares). Errors are ours minus OGS (negative depth bias: shallower).\n\n"
        f"{markdown_table(header, rows)}\n\n"
        f"Relocating the tuned runs with every station at sea level (`--sea-level-stations`), as the OGS bulletin "
        f"locates, lands closer to the OGS hypocentres (with station elevations the relocations agree with one another, "
        f"whatever the associator, and are shallower than OGS by the depth bias above):\n\n"
        f"{markdown_table(sea_header, sea_level_rows)}\n\n"
        f"Missed events (tuned, no false picks, after relocation): {'; '.join(notes)}.\n"
    )
    print(text)
    if args.update_readme:
        update_readme("replay", text)


if __name__ == "__main__":
    main()
