"""How long Snakemake takes to build and dry-run the DAG of an OGS-sized run, and its peak memory.

    python benchmarks/dag_scale.py [--days 92] [--stations 150] [--update-readme]

The run: `--days` days from 2024-03-20 × `--stations` stations (a station table CSV written to a
temp dir, passed as `stations_file`), 3 pickers (STA/LTA, a stricter STA/LTA, PhaseNet) × 2
associators (PyOcto, GaMMA): the 2024-03-20..06-19 OGS campaign at 92 days × 150 stations. Nothing
runs; each variant is one `snakemake -n` in a fresh working directory, measured as a child process
(wall time, CPU time, peak resident memory from getrusage). Variants:

- `-n --quiet rules`: build the DAG and dry-run it, print the job counts only;
- `-n` (full listing): as above, printing every job (to /dev/null), what `snakemake -n` shows a user;
- `--profile profiles/leonardo -n --quiet rules`: the same DAG with the Slurm profile's groups;
- toy DAG: as many jobs in chains of three one-line shell rules, `-n --quiet rules`: what Snakemake
  itself costs for a DAG of that size, whatever the rules do (the floor under the other rows).

Goal (issue 5): under 15 s and 1 GB on 2 cores. `--snakefile` measures another checkout (e.g. a copy
with a prototype change) against the same configuration.
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

GOAL_S, GOAL_MB = 15.0, 1024.0

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


def write_inputs(directory: Path, days: int, stations: int) -> Path:
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
        "pickers": {
            "stalta": {"type": "stalta"},
            "stalta-strict": {"type": "stalta", "trigger_on": 6.0},
            "phasenet": {"type": "seisbench", "model": "PhaseNet", "weights": "instance"},
        },
        "associators": {"pyocto": {"type": "pyocto"}, "gamma": {"type": "gamma"}},
    }
    path = directory / "ogs-sized.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


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
    env = {k: v for k, v in os.environ.items() if not k.startswith("SNAKEMAKE_")}
    result = subprocess.run([sys.executable, "-c", MEASURE, str(log), *command],
                            capture_output=True, text=True, env=env, cwd=workdir, check=True)
    row = json.loads(result.stdout)
    text = log.read_text(errors="replace")
    if row["returncode"] != 0:
        raise SystemExit(f"{name}: snakemake failed\n{text[-3000:]}")
    totals = re.findall(r"^total\s+(\d+)$", text, re.M)
    row["jobs"] = int(totals[-1]) if totals else None
    row["name"] = name
    print(f"{name}: {row['jobs']} jobs, {row['wall_s']:.1f} s wall, {row['cpu_s']:.1f} s CPU, "
          f"{row['peak_mb']:.0f} MB", file=sys.stderr)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=92)
    parser.add_argument("--stations", type=int, default=150)
    parser.add_argument("--snakefile", type=Path, default=ROOT / "Snakefile")
    parser.add_argument("--only", choices=["quiet", "listing", "leonardo", "toy"], action="append",
                        help="run only these variants (default: all)")
    parser.add_argument("--update-readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()

    profile = args.snakefile.resolve().parent / "profiles" / "leonardo"
    variants = {
        "quiet": ("`-n --quiet rules`", ["--quiet", "rules"]),
        "listing": ("`-n` (full listing)", []),
        "leonardo": ("`--profile profiles/leonardo -n --quiet rules`", ["--profile", str(profile), "--quiet", "rules"]),
    }
    chosen = args.only or [*variants, "toy"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="quakesnake-dag-") as tmp:
        directory = Path(tmp)
        config = write_inputs(directory, args.days, args.stations)
        for key in chosen:
            if key == "toy":
                jobs = next((r["jobs"] for r in rows if r["jobs"]), args.days * args.stations * 5)
                toy = directory / "toy.smk"
                toy.write_text(TOY.format(chains=max(1, (jobs - 1) // 3)))
                rows.append(measure("toy DAG of as many jobs", toy, None, directory, ["--quiet", "rules"]))
                continue
            name, extra = variants[key]
            rows.append(measure(name, args.snakefile, config, directory, extra))

    table = markdown_table(
        ["dry run", "jobs", "wall (s)", "CPU (s)", "peak memory (MB)", "goal (15 s, 1 GB)"],
        [[r["name"], r["jobs"], r["wall_s"], r["cpu_s"], r["peak_mb"],
          "met" if r["wall_s"] < GOAL_S and r["peak_mb"] < GOAL_MB else "missed"] for r in rows],
    )
    load = os.getloadavg()[0]
    text = (f"DAG scale: {args.days} days × {args.stations} stations, 3 pickers × 2 associators, measured "
            f"by `python benchmarks/dag_scale.py` on {machine()} (load average {load:.1f} at the end; "
            f"the machine is shared, so CPU time is the steadier number).\n\n{table}\n")
    by_name = {r["name"]: r for r in rows}
    quiet, toy = by_name.get(variants["quiet"][0]), by_name.get("toy DAG of as many jobs")
    if quiet and toy:
        text += (f"\nA toy DAG of as many jobs costs Snakemake {toy['cpu_s']:.0f} s of CPU and "
                 f"{toy['peak_mb']:.0f} MB, {toy['cpu_s'] / quiet['cpu_s']:.0%} of the workflow's "
                 f"{quiet['cpu_s']:.0f} s: the time goes with the number of jobs, not the rule code.\n")
    print(text)
    if args.update_readme:
        update_readme("dag-scale", text)


if __name__ == "__main__":
    main()
