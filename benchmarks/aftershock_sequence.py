"""Run the aftershock-sequence scenario (config/aftershocks.yaml on top of config/config.yaml) and
print the scores per picker × associator.

Pick scores are against the truth's visible arrivals, events against its catalogued events; event
recall is also given by time after the mainshock, where overlapping events are densest.

    python benchmarks/aftershock_sequence.py [--update-readme] [--phasenetlight]

Pickers: those of config/config.yaml (PhaseNet with the shipped weights, STA/LTA); with
--phasenetlight and ../shared's SeisBench cache also PhaseNetLight 'ethz'. Associators: those of
config/config.yaml.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import pandas as pd
import yaml

from common import OUT, ROOT, machine, markdown_table, seisbench_cache, update_readme

# Windows after the mainshock (minutes) for recall by time.
WINDOWS_MIN = [(0, 10), (10, 60), (60, 360), (360, 1440)]


def recall_by_window(reference_events: pd.DataFrame, mainshock: pd.Timestamp) -> list[str]:
    """'found/catalogued' of the truth events per window after the mainshock."""
    minutes = (pd.to_datetime(reference_events["time"]).dt.tz_localize(None) - mainshock).dt.total_seconds() / 60.0
    cells = []
    for low, high in WINDOWS_MIN:
        inside = reference_events[(minutes >= low) & (minutes < high)]
        cells.append(f"{int(inside['found'].sum())}/{len(inside)}")
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update-readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--phasenetlight", action="store_true", help="also PhaseNetLight 'ethz' (../shared cache)")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()

    workdir = OUT / "aftershock-sequence"
    workdir.mkdir(parents=True, exist_ok=True)
    scenario = ROOT / "config" / "aftershocks.yaml"
    configs = [ROOT / "config" / "config.yaml", scenario]
    env = dict(os.environ)
    if args.phasenetlight:
        cache = seisbench_cache()
        if cache is None:
            raise SystemExit("../shared/models/seisbench-cache absent: no PhaseNetLight")
        configs.append(ROOT / "config" / "phasenetlight.yaml")
        env["SEISBENCH_CACHE_ROOT"] = str(cache)
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--cores", str(args.cores), "--configfile", *map(str, configs)]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=workdir)
    wall = time.perf_counter() - started

    settings = yaml.safe_load(scenario.read_text())["synthetic"]
    mainshock = pd.Timestamp(settings["aftershocks"]["mainshock_time"])
    truth = pd.read_csv(workdir / "results" / "truth" / "events_all.csv")
    rows = []
    for metrics_path in sorted((workdir / "results" / "evaluation").glob("*/*/metrics.json")):
        picker, associator = metrics_path.parts[-3], metrics_path.parts[-2]
        metrics = json.loads(metrics_path.read_text())
        picks, events = metrics["picks"], metrics["events"]
        reference = pd.read_parquet(metrics_path.parent / "reference_events.parquet")
        rows.append([
            picker, associator, events["recall"], events["precision"], events["n_ref"],
            *recall_by_window(reference, mainshock),
            picks["P"]["recall"], picks["P"]["precision"], picks["S"]["recall"], picks["S"]["precision"],
        ])
    header = ["picker", "associator", "event recall", "event precision", "ref events",
              *[f"found {low}–{high} min" for low, high in WINDOWS_MIN],
              "P recall", "P precision", "S recall", "S precision"]
    table = markdown_table(header, rows)
    kinds = truth["kind"].value_counts().to_dict()
    text = (f"Aftershock sequence (config/aftershocks.yaml: ML {settings['aftershocks']['mainshock_magnitude']} at "
            f"{mainshock:%H:%M} UTC, {kinds.get('aftershock', 0)} aftershocks and {kinds.get('background', 0)} "
            f"background events generated, {settings['n_stations']} stations × 1 day, seed {settings['seed']}), "
            f"measured by `python benchmarks/aftershock_sequence.py` on {machine()}; whole run {wall:.0f} s "
            f"({args.cores} cores). 'found a–b min': catalogued truth events found / catalogued, by origin "
            f"time after the mainshock.\n\n{table}\n")
    print(text)
    if args.update_readme:
        update_readme("aftershock-sequence", text)


if __name__ == "__main__":
    main()
