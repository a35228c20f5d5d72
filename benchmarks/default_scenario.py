"""Run the default synthetic scenario with every picker available here and print the scores.

Pick scores are against the truth's visible arrivals; events against its catalogued events, ML
(the magnitude stage) against their true ML, over the matched events.

    python benchmarks/default_scenario.py [--update-readme]

Pickers: those of config/config.yaml (PhaseNet with the shipped weights, STA/LTA) and, when ../shared holds the SeisBench
cache, PhaseNetLight 'ethz' (config/phasenetlight.yaml). Associators: those of the default config.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from common import OUT, ROOT, machine, markdown_table, seisbench_cache, update_readme


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update-readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()

    workdir = OUT / "default-scenario"
    workdir.mkdir(parents=True, exist_ok=True)
    configs = [ROOT / "config" / "config.yaml"]
    env = dict(os.environ)
    cache = seisbench_cache()
    if cache is not None:
        configs.append(ROOT / "config" / "phasenetlight.yaml")
        env["SEISBENCH_CACHE_ROOT"] = str(cache)
    else:
        print("../shared/models/seisbench-cache absent: PhaseNetLight skipped", file=sys.stderr)
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
               "--cores", str(args.cores), "--configfile", *map(str, configs)]
    started = time.perf_counter()
    subprocess.run(command, check=True, env=env, cwd=workdir)
    wall = time.perf_counter() - started

    rows = []
    for metrics_path in sorted((workdir / "results" / "evaluation").glob("*/*/metrics.json")):
        picker, associator = metrics_path.parts[-3], metrics_path.parts[-2]
        metrics = json.loads(metrics_path.read_text())
        picks, events = metrics["picks"], metrics["events"]
        rows.append([
            picker, associator,
            picks["P"]["recall"], picks["P"]["precision"], picks["S"]["recall"], picks["S"]["precision"],
            events["recall"], events["precision"], events["n_ref"],
            events["origin_time_mae_s"], events["epicentral_mae_km"], events["depth_mae_km"],
            events["magnitude_bias"], events["magnitude_mae"],
        ])
    header = ["picker", "associator", "P recall", "P precision", "S recall", "S precision",
              "event recall", "event precision", "ref events", "origin MAE (s)", "epicentral MAE (km)",
              "depth MAE (km)", "ML bias", "ML MAE"]
    table = markdown_table(header, rows)
    text = (f"Default scenario (config/config.yaml: 12 stations × 2 days, seed 1), measured by "
            f"`python benchmarks/default_scenario.py` on {machine()}; whole run {wall:.0f} s "
            f"(all pickers, {args.cores} cores).\n\n{table}\n")
    print(text)
    if args.update_readme:
        update_readme("default-scenario", text)


if __name__ == "__main__":
    main()
