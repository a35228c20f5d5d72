"""Run the OGS synthetic twin (config/ogs-twin.yaml) through the whole workflow and print the scores.

    python benchmarks/ogs_twin.py [--update-readme] [--cores 2] [--days START END] [--stations CODE ...] [--pickers NAME ...]

Synthetic waveforms for the 81 real OGS stations and the real OGS bulletin's events, with arrivals at
the bulletin's pick times, picked by every picker of the config whose weights load here, associated
by the OGS-tuned PyOcto and GaMMA, scored against the real OGS picks and events (the run's `evaluate`)
and, for context, against the twin's own truth (results/truth/: the arrivals the synthetic noise
leaves visible to an analyst, bulletin-picked or not). ../shared must hold data/ogs; PhaseNetLight
needs its SeisBench cache (models/seisbench-cache). --days and --stations cut the run down while
developing (their results go to benchmarks/out/ogs-twin-subset and never into the README).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import yaml

from common import OUT, ROOT, SHARED, machine, markdown_table, seisbench_cache, update_readme

from quakesnake.evaluation import evaluate_files
from quakesnake.runner import JOB_DONE_PATTERN
from quakesnake.shards import day_range
from quakesnake.sources.synthetic import DEFAULTS as SYNTHETIC_DEFAULTS

CONFIG = ROOT / "config" / "ogs-twin.yaml"
# Keys holding paths: config/ogs-twin.yaml gives them relative to the checkout (its documented
# working directory); the benchmark runs elsewhere, so it passes them resolved.
PATH_KEYS = [("stations_file",), ("velocity_model",), ("reference",), ("synthetic", "catalog_dir")]


def path_overrides(config: dict) -> dict:
    overrides: dict = {}
    for keys in PATH_KEYS:
        value = config
        for key in keys:
            value = value[key]
        target = overrides
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        target[keys[-1]] = str((ROOT / value).resolve())
    return overrides


def loadable_pickers(pickers: dict) -> tuple[list[str], list[str]]:
    """(pickers whose model and weights load here, the others); the reasons go to stderr."""
    # imported here: SeisBench reads SEISBENCH_CACHE_ROOT once, when it is first imported
    from quakesnake.picking import PickerConfigError, load_model

    usable, skipped = [], []
    for name, settings in pickers.items():
        if settings["type"] == "seisbench":
            try:
                load_model({**settings, "device": "cpu"})
            except PickerConfigError as exc:
                print(f"picker {name} skipped: {exc}", file=sys.stderr)
                skipped.append(name)
                continue
        usable.append(name)
    return usable, skipped


def job_wall(workdir: Path, pattern: str) -> float:
    """Wall seconds summed over the jobs whose logs match ``pattern`` (under logs/), each from the
    closing line the job logs (quakesnake.runner; the last one of a log, its latest run)."""
    walls = []
    for log in (workdir / "logs").glob(pattern):
        matches = JOB_DONE_PATTERN.findall(log.read_text(errors="replace"))
        if matches:
            walls.append(float(matches[-1][1]))
    return sum(walls) if walls else float("nan")


def snakemake_wall(workdir: Path) -> tuple[float, int]:
    """Wall seconds summed over the Snakemake runs of ``workdir`` (their logs' "Elapsed time"), and their number:
    a run resumed after a stop, or extended by a picker, counts in full."""
    pattern = re.compile(r"Elapsed time: (?:(\d+) days?, )?(\d+):(\d+):([\d.]+)")
    seconds = []
    for log in (workdir / ".snakemake" / "log").glob("*.snakemake.log"):
        for days, hours, minutes, secs in pattern.findall(log.read_text()):
            seconds.append(int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(secs))
    return sum(seconds), len(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update-readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--cores", type=int, default=2)
    parser.add_argument("--days", nargs=2, metavar=("START", "END"), help="UTC days instead of the config's")
    parser.add_argument("--stations", nargs="+", metavar="CODE", help="only these OGS station codes")
    parser.add_argument("--pickers", nargs="+", metavar="NAME",
                        help="only these pickers of config/ogs-twin.yaml (the table says which ran)")
    args = parser.parse_args()
    subset = bool(args.days or args.stations)
    if args.update_readme and subset:
        parser.error("--update-readme takes the config's whole run: drop --days and --stations")
    if not (SHARED / "data" / "ogs").is_dir():
        raise SystemExit(f"{SHARED / 'data' / 'ogs'} is absent: the twin needs the OGS bulletin")

    config = yaml.safe_load(CONFIG.read_text())
    workdir = OUT / ("ogs-twin-subset" if subset else "ogs-twin")
    workdir.mkdir(parents=True, exist_ok=True)
    overrides = path_overrides(config)
    if args.days:
        overrides["days"] = {"start": args.days[0], "end": args.days[1]}
    if args.stations:
        stations = pd.read_csv(overrides["stations_file"])
        unknown = sorted(set(args.stations) - set(stations["station"]))
        if unknown:
            raise SystemExit(f"{overrides['stations_file']}: no station {', '.join(unknown)}")
        overrides["stations_file"] = str(workdir / "stations-subset.csv")
        stations[stations["station"].isin(args.stations)].to_csv(overrides["stations_file"], index=False)
    overrides_file = workdir / "overrides.yaml"
    overrides_file.write_text(yaml.safe_dump(overrides))
    days = overrides.get("days", config["days"])

    env = dict(os.environ)
    cache = seisbench_cache()
    if cache is not None:
        env["SEISBENCH_CACHE_ROOT"] = os.environ["SEISBENCH_CACHE_ROOT"] = str(cache)
    if args.pickers:
        unknown = sorted(set(args.pickers) - set(config["pickers"]))
        if unknown:
            raise SystemExit(f"{CONFIG}: no picker {', '.join(unknown)} (it has {', '.join(config['pickers'])})")
    pickers, skipped = loadable_pickers({name: settings for name, settings in config["pickers"].items()
                                         if not args.pickers or name in args.pickers})
    associators = list(config["associators"])
    targets = [f"results/evaluation/{p}/{a}/metrics.json" for p in pickers for a in associators]
    targets += [f"results/catalog/{p}/{a}.csv" for p in pickers for a in associators]
    targets.append("results/status/shards.csv")
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), *targets, "--directory",
               str(workdir), "--cores", str(args.cores), "--configfile", str(CONFIG), str(overrides_file)]
    subprocess.run(command, check=True, env=env, cwd=workdir)
    load = os.getloadavg()[0]
    wall, n_runs = snakemake_wall(workdir)

    run_days = day_range(days["start"], days["end"])
    rows, truth_rows = [], []
    for picker in pickers:
        pick_wall = job_wall(workdir, f"pick/{picker}/*.log")
        for associator in associators:
            metrics = json.loads((workdir / f"results/evaluation/{picker}/{associator}/metrics.json").read_text())
            picks, events = metrics["picks"], metrics["events"]
            associate_wall = job_wall(workdir, f"associate/{picker}/{associator}/*.log")
            rows.append([
                picker, associator,
                picks["P"]["recall"], picks["P"]["precision"], picks["S"]["recall"], picks["S"]["precision"],
                events["recall"], events["precision"], f"{events['tp']} / {events['n_ref']}", events["n_pred"],
                events["epicentral_mae_km"], events["origin_time_mae_s"], pick_wall, associate_wall,
            ])
            truth = evaluate_files(
                workdir / f"results/catalog/{picker}/{associator}.parquet",
                [workdir / f"results/picks/{picker}/{day}.parquet" for day in run_days],
                workdir / "results" / "truth", run_days,
                workdir / f"results/evaluation-truth/{picker}/{associator}/metrics.json",
            )
            truth_rows.append([
                picker, associator, truth["picks"]["P"]["recall"], truth["picks"]["P"]["precision"],
                truth["picks"]["S"]["recall"], truth["picks"]["S"]["precision"], truth["events"]["recall"],
                truth["events"]["precision"], f"{truth['events']['tp']} / {truth['events']['n_ref']}",
                truth["events"]["epicentral_mae_km"],
            ])
    header = ["picker", "associator", "P recall", "P precision", "S recall", "S precision", "event recall",
              "event precision", "events found / OGS", "events made", "epicentral MAE (km)", "origin MAE (s)",
              "pick wall (s)", "association wall (s)"]
    truth_header = ["picker", "associator", "P recall", "P precision", "S recall", "S precision", "event recall",
                    "event precision", "events found / truth", "epicentral MAE (km)"]
    n_stations = len(pd.read_csv(overrides["stations_file"]))
    synthesis_wall = job_wall(workdir, "download/*.log")
    arrivals = pd.read_parquet(workdir / "results" / "truth" / "arrivals.parquet")
    bulletin = arrivals[arrivals["time_source"] == "catalog"]
    ogs = json.loads((workdir / f"results/evaluation/{pickers[0]}/{associators[0]}/metrics.json").read_text())
    dropped = ogs["dropped"]
    bulletin_days = pd.read_csv(Path(overrides["reference"]) / "events.csv")["time"].str[:10].value_counts()
    busiest = set(bulletin_days.index[:len(run_days)]) == set(run_days)
    min_picks = config["synthetic"].get("truth_min_picks", SYNTHETIC_DEFAULTS["truth_min_picks"])
    skipped_note = f" ({', '.join(skipped)} skipped: its weights do not load here)" if skipped else ""
    not_run = [name for name in config["pickers"] if name not in pickers and name not in skipped]
    skipped_note += f"; not run this time (--pickers): {', '.join(not_run)}" if not_run else ""
    text = (
        f"OGS synthetic twin (config/ogs-twin.yaml): {n_stations} OGS stations, {days['start']}..{days['end']} "
        f"({' + '.join(str(bulletin_days.get(day, 0)) for day in run_days)} of the bulletin's {bulletin_days.sum()} "
        f"events{': its busiest days, the Ampezzo sequence' if busiest else ''}), the bulletin's events with arrivals "
        f"at its pick times (model times on stations it did not pick), scored against the real OGS picks ({ogs['picks']['P']['n_ref']} P, "
        f"{ogs['picks']['S']['n_ref']} S on located stations) and events ({ogs['events']['n_ref']}; evaluate keeps the "
        f"run's days only: {dropped['ref_events_outside_window']} bulletin events and "
        f"{dropped['ref_picks_outside_window']} picks outside them left out). Of the {len(bulletin)} bulletin "
        f"arrivals synthesized, {int(bulletin['visible'].sum())} reach the SNR an analyst needs in the twin's noise "
        f"(the truth's threshold). Measured by `python benchmarks/ogs_twin.py` on {machine()}, shared (load average "
        f"{load:.1f} at the end): workflow {wall:.0f} s ({n_runs} Snakemake run{'s' if n_runs > 1 else ''}), synthesis "
        f"{synthesis_wall:.0f} s summed over its day jobs; pick and association wall summed over jobs. "
        f"Pickers: {', '.join(pickers)}{skipped_note}.\n\n"
        f"{markdown_table(header, rows)}\n\n"
        f"The same runs scored against the twin's own truth (results/truth/: visible arrivals, bulletin-picked or "
        f"not, and the events with at least {min_picks} of them):\n\n{markdown_table(truth_header, truth_rows)}\n"
    )
    print(text)
    if args.update_readme:
        update_readme("ogs-twin", text)


if __name__ == "__main__":
    main()
