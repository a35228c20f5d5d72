"""`snakemake adapt` on the Colombian hour of ../shared, then every round's model scored on the
100 labelled real records; print the table.

    python benchmarks/adapt_colombia.py [--update-readme] [--replay ci|recipe] [--replay-datasets GLOB]
                                        [--configfile F ...] [--label L]

Steps, in ``benchmarks/out/adapt-colombia/<label>/`` (kept, so a rerun only redoes what changed):
``quakesnake sds-archive`` of the 13 files, a replay dataset, then ``snakemake adapt --configfile
config/adapt-colombia.yaml [F ...]``. ``--replay ci`` cuts the replay CI cuts
(tests/test_adapt.py: one day of config/train-phasenet.yaml, 8 stations, 60 events); ``--replay
recipe`` all 8 days of the shipped model's recipe (config/train-phasenet.yaml, 16 stations). The
labelled records are only scored, never trained or tuned on: the Colombian hour has no labels,
the rounds' labels are the model's own picks.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import yaml
from common import OUT, ROOT, SHARED, machine, markdown_table, seisbench_cache, update_readme

HOUR = SHARED / "data" / "real" / "colombia-vmm-2017-10-15"
LABELLED = SHARED / "data" / "labelled-waveforms"
SNAKEMAKE = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "--cores", "2"]
RECIPE_DAYS = [f"2023-06-0{day}" for day in range(1, 9)]


def run(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, check=True)
    return time.perf_counter() - started


def replay_dataset(work: Path, kind: str) -> float:
    """Cut the replay datasets into ``work/synthetic`` (the path config/adapt-colombia.yaml names)."""
    synthetic = work / "synthetic"
    synthetic.mkdir(parents=True, exist_ok=True)
    configs = ["--configfile", str(ROOT / "config" / "train-phasenet.yaml")]
    days = RECIPE_DAYS
    if kind == "ci":
        small = work / "replay-ci.yaml"
        small.write_text('days: {start: "2023-06-01", end: "2023-06-01"}\nsynthetic: {n_stations: 8, events_per_day: 60}\n')
        configs.append(str(small))
        days = RECIPE_DAYS[:1]
    targets = [f"results/training/datasets/{day}/metadata.csv" for day in days]
    return run([*SNAKEMAKE, "--directory", str(synthetic), *targets, *configs], synthetic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update-readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--replay", choices=["ci", "recipe"], default="ci")
    parser.add_argument("--configfile", nargs="*", default=[], help="config files given after config/adapt-colombia.yaml")
    parser.add_argument("--label", default=None, help="name of the run (its directory and table rows)")
    parser.add_argument("--replay-datasets", metavar="GLOB",
                        help="replay datasets already cut (e.g. by `snakemake train --configfile "
                             "config/train-phasenet.yaml ...`, whose recipe --replay names) instead of cutting them")
    args = parser.parse_args()
    for needed in (HOUR / "mseed", LABELLED / "labels.csv"):
        if not needed.exists():
            raise SystemExit(f"needs {needed} (../shared beside the checkout)")
    label = args.label or f"replay-{args.replay}"
    work = OUT / "adapt-colombia" / label
    work.mkdir(parents=True, exist_ok=True)

    seconds = {}
    if not (work / "colombia" / "inventory.xml").is_file():
        seconds["sds-archive"] = run([sys.executable, "-m", "quakesnake.cli", "sds-archive",
                                      *sorted(map(str, (HOUR / "mseed").glob("*.mseed"))), "--root", "colombia/SDS",
                                      "--stations", str(HOUR / "stations.csv"), "--inventory", "colombia/inventory.xml"], work)
    configs = [str(ROOT / "config" / "adapt-colombia.yaml"), *map(str, (Path(f).resolve() for f in args.configfile))]
    if args.replay_datasets:
        given = work / "replay-given.yaml"
        given.write_text(yaml.safe_dump({"adapt": {"replay": [str(Path(args.replay_datasets).resolve())]}}))
        configs.append(str(given))
    else:
        seconds["replay datasets"] = replay_dataset(work, args.replay)
    seconds["snakemake adapt"] = run([*SNAKEMAKE, "--directory", str(work), "adapt", "--configfile", *configs], work)
    rounds = pd.read_csv(work / "results" / "adapt" / "rounds.csv")

    from quakesnake.adapt import adapt_settings, model_base
    from quakesnake.picker_evaluation import evaluate_picker, read_labelled_records

    settings = {}
    for path in configs:
        settings.update((yaml.safe_load(Path(path).read_text()) or {}).get("adapt", {}))
    picker = adapt_settings(settings)["picker"]
    cache = seisbench_cache()
    if cache is not None:
        os.environ["SEISBENCH_CACHE_ROOT"] = str(cache)
    records = read_labelled_records(LABELLED / "npz", LABELLED / "labels.csv")
    models = {0: picker["weights"], **{r: str(work / model_base(r)) for r in rounds["round"]}}
    scores = {}
    try:
        for round_number, weights in models.items():
            metrics = evaluate_picker(records, {**picker, "weights": weights, "device": "cpu"}, tolerances=(0.5,))
            scores[round_number] = {phase: metrics[phase]["0.5s"] for phase in ("P", "S")}
    finally:
        if cache is not None:
            shutil.rmtree(cache.parent, ignore_errors=True)

    rows = []
    for round_number, weights in models.items():
        row = rounds[rounds["round"] == round_number]
        counts = ([int(row[c].iloc[0]) for c in ("picks", "events", "labelled_events", "p_labels", "s_labels",
                                                  "event_traces", "noise_traces", "false_pick_traces")]
                  if len(row) else ["–"] * 8)
        s = scores[round_number]
        name = f"{label}: round {round_number}" if round_number else f"{label}: start ({weights})"
        rows.append([name, *counts, s["P"]["recall"], s["P"]["precision"], s["S"]["recall"], s["S"]["precision"]])
    header = ["model", "picks (hour)", "events", "labelled events", "P labels", "S labels", "event traces",
              "noise traces", "of them at false picks", "P recall", "P precision", "S recall", "S precision"]
    timing = ", ".join(f"{step} {wall:.0f} s" for step, wall in seconds.items())
    replay = (f"the datasets {args.replay_datasets}" if args.replay_datasets else
              {"ci": "one day of config/train-phasenet.yaml, 8 stations, 60 events, as CI", "recipe": "the 8 days of config/train-phasenet.yaml"}[args.replay])
    command = " ".join(arg for arg in sys.argv[1:] if arg != "--update-readme")
    text = (f"`snakemake adapt` on the Colombian hour (13 CM stations, 2017-10-15 06-07 UTC, no catalog; "
            f"config/adapt-colombia.yaml{' + ' + ', '.join(args.configfile) if args.configfile else ''}, replay: {replay}), "
            f"measured by `python benchmarks/adapt_colombia.py {command}` on {machine()} ({timing}). "
            f"Per round: what the round's model picked on the hour and the labels and traces it gave (the row of "
            f"round r is the model round r fine-tuned, its counts those of its training data, picked by the model "
            f"before it); then that model on the 100 labelled real records within 0.5 s.\n\n"
            f"{markdown_table(header, rows)}\n")
    print(text)
    if args.update_readme:
        update_readme(f"adapt-colombia-{label}", text)


if __name__ == "__main__":
    main()
