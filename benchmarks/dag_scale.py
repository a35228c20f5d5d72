"""What the workflow costs outside the science: DAG build and dry run at a network's scale, and the
wall time and disk of a real local run of the default scenario.

    python benchmarks/dag_scale.py [--only ogs|ogs-listing|leonardo|year|toy|run ...] [--update-readme]

Dry runs (nothing runs; each is one `snakemake -n` in a fresh working directory, measured as a
child process: wall time, CPU time, peak resident memory from getrusage), on a station table of
`--stations` (150) stations written to a temp dir and an FDSN source (the OGS study's; the
station table spares the station query, so nothing touches the network):

- `ogs`: 92 days from 2024-03-20 (the 2024-03-20..06-19 OGS campaign), 3 pickers (STA/LTA, a
  stricter STA/LTA, PhaseNet) x 2 associators (PyOcto, GaMMA), `-n --quiet rules`;
- `ogs-listing`: the same, printing every job (to a file), what `snakemake -n` shows a user;
- `leonardo`: the same DAG with `--profile profiles/leonardo` (its groups);
- `year`: 365 days, STA/LTA + PhaseNet x 2 associators, `-n --quiet rules`;
- `toy`: as many jobs as the `ogs` DAG in chains of one-line shell rules: what Snakemake itself
  costs for a DAG of that size, whatever the rules do.

`run`: the README quick start as typed (`snakemake --cores 2`, then `snakemake --report
results/report.html`) on the default configuration in a temp dir; then the bytes the run keeps per
station-day (raw waveforms against everything else), and the workflow's wall time per station-day
against the pick stage's compute (the pick jobs' CPU time, from their Snakemake benchmark files).

Goals (issue 12): OGS dry run <= 15 s and 1 GB, with the Leonardo profile <= 20 s; the year
<= 60 s and 2 GB; quick start (run + report) <= 300 s; kept bytes besides the raw waveforms <= 10 %
of the raw; workflow wall per station-day <= 1.25 x the pick stage's compute per station-day.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from common import ROOT, machine, markdown_table, update_readme

from quakesnake.runner import JOB_DONE_PATTERN


# measure one child process: wall time, CPU time and peak RSS (ru_maxrss is in KiB on Linux)
MEASURE = r"""
import json, resource, subprocess, sys, time
started = time.perf_counter()
with open(sys.argv[1], "w") as out:
    code = subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.STDOUT).returncode
wall = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"returncode": code, "wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
                  "peak_mb": usage.ru_maxrss / 1024}))
"""


def write_inputs(directory: Path, days: int, stations: int, pickers: dict, name: str) -> Path:
    rng = np.random.default_rng(2024)
    networks = ["OX"] * (stations * 2 // 3) + ["IV"] * (stations - stations * 2 // 3)
    table = pd.DataFrame({
        "network": networks,
        "station": [f"S{i:03d}" for i in range(stations)],
        "latitude": rng.uniform(45.8, 46.9, stations).round(4),
        "longitude": rng.uniform(12.3, 13.9, stations).round(4),
        "elevation_m": rng.uniform(0, 2000, stations).round(1),
    })
    table.to_csv(directory / "stations.csv", index=False)
    end = (pd.Timestamp("2024-03-20") + pd.Timedelta(days=days - 1)).date().isoformat()
    config = {
        "days": {"start": "2024-03-20", "end": end},
        "stations_file": str(directory / "stations.csv"),
        "source": {"type": "fdsn", "clients": ["INGV", "GFZ"]},
        "reference": str(directory / "reference"),
        "pickers": pickers,
        "associators": {"pyocto": {"type": "pyocto"}, "gamma": {"type": "gamma"}},
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


OGS_PICKERS = {
    "stalta": {"type": "stalta"},
    "stalta-strict": {"type": "stalta", "trigger_on": 6.0},
    "phasenet": {"type": "seisbench", "model": "PhaseNet", "weights": "instance"},
}
YEAR_PICKERS = {"stalta": {"type": "stalta"}, "phasenet": {"type": "seisbench", "model": "PhaseNet", "weights": "instance"}}


TOY = """
N = {chains}
rule all:
    input: expand("c/{{i}}.txt", i=range(N))
rule a:
    output: "a/{{i}}.txt"
    shell: "touch {{output}}"
rule b:
    input: "a/{{i}}.txt"
    output: "b/{{i}}.txt"
    shell: "touch {{output}}"
rule c:
    input: "b/{{i}}.txt"
    output: "c/{{i}}.txt"
    shell: "touch {{output}}"
"""


def measure(name: str, snakefile: Path, config: Path | None, directory: Path, extra: list[str]) -> dict:
    workdir = directory / re.sub(r"\W+", "-", name)
    workdir.mkdir()
    log = workdir / "snakemake.log"
    command = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir),
               *(["--configfile", str(config)] if config else []), "--cores", "2", "-n", *extra]
    row = run_measured(command, log, workdir)
    text = log.read_text(errors="replace")
    if row["returncode"] != 0:
        raise SystemExit(f"{name}: snakemake failed\n{text[-3000:]}")
    totals = re.findall(r"^total\s+(\d+)$", text, re.M)
    row["jobs"] = int(totals[-1]) if totals else None
    row["name"] = name
    print(f"{name}: {row['jobs']} jobs, {row['wall_s']:.1f} s wall, {row['cpu_s']:.1f} s CPU, "
          f"{row['peak_mb']:.0f} MB", file=sys.stderr)
    return row


def run_measured(command: list[str], log: Path, cwd: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE_")}
    result = subprocess.run([sys.executable, "-c", MEASURE, str(log), *command],
                            capture_output=True, text=True, env=env, cwd=cwd, check=True)
    return json.loads(result.stdout)


def du(path: Path) -> int:
    """Bytes of the files under ``path`` (hard links counted once)."""
    seen, total = set(), 0
    for file in [path] if path.is_file() else path.rglob("*"):
        if file.is_file() and not file.is_symlink():
            stat = file.stat()
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total


def job_costs(logs: Path) -> dict[str, list[tuple[float, float]]]:
    """(wall, CPU) of every job of a run by rule, from the closing line each job logs (quakesnake.runner)."""
    costs = {}
    for log in logs.rglob("*.log"):
        for match in JOB_DONE_PATTERN.finditer(log.read_text(errors="replace")):
            costs.setdefault(match.group(1), []).append((float(match.group(2)), float(match.group(3))))
    if "pick" not in costs:
        raise SystemExit(f"{logs}: no pick job's closing line found (quakesnake.runner logs one per job)")
    return costs


def default_run(snakefile: Path, directory: Path) -> str:
    """The README quick start on the default configuration; the tables of what it costs."""
    workdir = directory / "default-run"
    workdir.mkdir()
    config = snakefile.parent / "config" / "config.yaml"
    base = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--directory", str(workdir), "--configfile", str(config)]
    run = run_measured([*base, "--cores", "2"], workdir / "run.log", workdir)
    report = run_measured([*base, "--report", "results/report.html"], workdir / "report.log", workdir)
    for name, row in (("run", run), ("report", report)):
        if row["returncode"] != 0:
            raise SystemExit(f"default run: {name} failed\n{(workdir / (name + '.log')).read_text()[-3000:]}")
    print(f"default run: {run['wall_s']:.0f} s, report {report['wall_s']:.1f} s", file=sys.stderr)

    settings = yaml.safe_load(config.read_text())
    station_days = settings["synthetic"]["n_stations"] * len(pd.date_range(settings["days"]["start"], settings["days"]["end"]))
    jobs = job_costs(workdir / "logs")
    pick_wall = sum(w for w, _ in jobs["pick"])
    pick_cpu = sum(c for _, c in jobs["pick"])

    results = workdir / "results"
    raw = sum(du(p) for p in (results / "waveforms").glob("*/*.mseed"))
    kept = {
        "raw waveforms (miniSEED, counts)": raw,
        "StationXML and status tables beside them": du(results / "waveforms") - raw,
        "picks (per station-day, per day, status tables)": du(results / "picks"),
        "content-keyed cache (results/cache)": du(results / "cache"),
        "everything else in results/ (truth, events, catalogs, evaluation, report)":
            du(results) - du(results / "waveforms") - du(results / "picks") - du(results / "cache"),
        "Snakemake metadata and logs (.snakemake/, logs/)": du(workdir / ".snakemake") + du(workdir / "logs"),
    }
    besides = sum(kept.values()) - raw
    bytes_table = markdown_table(
        ["kept after the run", "MB", "kB per station-day", "share of the raw"],
        [[what, size / 1e6, size / station_days / 1e3, f"{size / raw:.1%}"] for what, size in kept.items()]
        + [["all but the raw waveforms", besides / 1e6, besides / station_days / 1e3,
            f"{besides / raw:.1%} ({'met' if besides <= 0.10 * raw else 'missed'}: goal 10 %)"]],
    )
    stage_rows = [[stage, len(rows), sum(w for w, _ in rows), sum(c for _, c in rows), sum(c for _, c in rows) / station_days]
                  for stage, rows in sorted(jobs.items())]
    jobs_cpu = sum(c for rows in jobs.values() for _, c in rows)
    stage_rows += [["all jobs", sum(map(len, jobs.values())), None, jobs_cpu, jobs_cpu / station_days],
                   ["the run's processes, Snakemake's own included (getrusage)", None, run["wall_s"], run["cpu_s"],
                    run["cpu_s"] / station_days]]
    wall_per_day = run["wall_s"] / station_days
    # Pick jobs run side by side (one core each), so the sum of their wall times can exceed the
    # run's; their CPU time is the pick stage's compute (each job's own getrusage: Snakemake's
    # benchmark files sample CPU every 30 s after a job's first 30 s and miss up to 30 s of it).
    ratio = run["wall_s"] / pick_cpu
    wall_table = markdown_table(
        ["", "s", "s per station-day"],
        [["quick start: run (`snakemake --cores 2`)", run["wall_s"], wall_per_day],
         ["quick start: report (`snakemake --report results/report.html`)", report["wall_s"], report["wall_s"] / station_days],
         [f"quick start, both ({'met' if run['wall_s'] + report['wall_s'] <= 300 else 'missed'}: goal 300 s)",
          run["wall_s"] + report["wall_s"], (run["wall_s"] + report["wall_s"]) / station_days],
         ["pick stage: its jobs' wall time after imports, summed (preprocessing in memory + picking, all pickers; jobs run side by side)",
          pick_wall, pick_wall / station_days],
         ["pick stage: its jobs' CPU time (its compute; each job's getrusage, imports included)", pick_cpu, pick_cpu / station_days],
         [f"workflow wall per station-day / pick compute per station-day: {ratio:.2f} "
          f"({'met' if ratio <= 1.25 else 'missed'}: goal 1.25)", None, None]],
    )
    jobs_table = markdown_table(["stage (each job's closing log line)", "jobs", "wall after imports (s), summed", "CPU (s), imports included", "CPU per station-day (s)"], stage_rows)
    return (f"A real run of the default scenario ({station_days} station-days, PhaseNet + STA/LTA × PyOcto + GaMMA), "
            f"the README quick start as typed:\n\n{wall_table}\n\nPer stage:\n\n{jobs_table}\n\n"
            f"Bytes kept after the run:\n\n{bytes_table}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=150)
    parser.add_argument("--snakefile", type=Path, default=ROOT / "Snakefile")
    parser.add_argument("--only", choices=["ogs", "ogs-listing", "leonardo", "year", "toy", "run"], action="append",
                        help="run only these variants (default: all)")
    parser.add_argument("--update-readme", action="store_true", help="write the tables into README.md")
    args = parser.parse_args()

    profile = args.snakefile.resolve().parent / "profiles" / "leonardo"
    # name, days, pickers, extra arguments, goal (s, MB)
    variants = {
        "ogs": ("OGS study: 92 d × 150 st, 3 pickers × 2 associators, `-n --quiet rules`", 92, OGS_PICKERS, ["--quiet", "rules"], (15, 1024)),
        "ogs-listing": ("OGS study, `-n` (full listing)", 92, OGS_PICKERS, [], (15, 1024)),
        "leonardo": ("OGS study, `--profile profiles/leonardo -n --quiet rules`", 92, OGS_PICKERS,
                     ["--profile", str(profile), "--quiet", "rules"], (20, 1024)),
        "year": ("a year: 365 d × 150 st, 2 pickers × 2 associators, `-n --quiet rules`", 365, YEAR_PICKERS, ["--quiet", "rules"], (60, 2048)),
    }
    chosen = args.only or [*variants, "toy", "run"]
    rows, text = [], ""
    with tempfile.TemporaryDirectory(prefix="quakesnake-dag-") as tmp:
        directory = Path(tmp)
        (directory / "reference").mkdir()
        for name in ("events", "picks", "stations"):
            (directory / "reference" / f"{name}.csv").write_text("")
        for key in [k for k in chosen if k in variants]:
            name, days, pickers, extra, goal = variants[key]
            config = write_inputs(directory, days, args.stations, pickers, key)
            row = measure(name, args.snakefile, config, directory, extra)
            row["goal"] = goal
            rows.append(row)
        if "toy" in chosen:
            jobs = next((r["jobs"] for r in rows if r["jobs"]), 92 * 15)
            toy = directory / "toy.smk"
            toy.write_text(TOY.format(chains=max(1, (jobs - 1) // 3)))
            row = measure("toy DAG of as many jobs as the OGS study's", toy, None, directory, ["--quiet", "rules"])
            row["goal"] = None
            rows.append(row)
        if rows:
            table = markdown_table(
                ["dry run", "jobs", "wall (s)", "CPU (s)", "peak memory (MB)", "goal"],
                [[r["name"], r["jobs"], r["wall_s"], r["cpu_s"], r["peak_mb"],
                  (f"{'met' if r['wall_s'] <= r['goal'][0] and r['peak_mb'] <= r['goal'][1] else 'missed'} "
                   f"({r['goal'][0]} s, {r['goal'][1] / 1024:g} GB)") if r["goal"] else "–"] for r in rows],
            )
            load = os.getloadavg()[0]
            text += (f"DAG scale, measured by `python benchmarks/dag_scale.py` on {machine()} (load average "
                     f"{load:.1f} at the end; the machine is shared, so CPU time is the steadier number). "
                     f"Station tables of {args.stations} stations, an FDSN source.\n\n{table}\n\n")
        if "run" in chosen:
            text += default_run(args.snakefile, directory)
    print(text)
    if args.update_readme:
        update_readme("dag-scale", text)


if __name__ == "__main__":
    main()
