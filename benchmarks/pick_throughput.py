"""Picking throughput per station-day: SeisBench's classify against the project's pick stage.

    python benchmarks/pick_throughput.py [--timing-days 3] [--eqt-days 2] [--repeats 3]
        [--threads 2] [--weights NAME_OR_PATH] [--update-readme]

Station-days come from the default synthetic scenario (config/config.yaml: seed 1, 12 stations,
80 events per day; 2024-01-01 with 60 s margins), preprocessed by quakesnake.preprocess and held in
memory, so the pick timings hold picking only. Methods, run side by side on the same station-days:

- SeisBench ``classify`` with its defaults (batch 256, fp32, the model's overlap);
- the pick stage in one pass at the model's overlap (``dense_overlap: null``) with ``screen:
  none``: the window pipeline alone, fp32 (same windows, same numbers as classify), and with the
  default screen;
- the pick stage with the defaults (``pick_stream`` as the workflow runs it: the one pass, then
  the dense pass near possible picks, quakesnake.picking.dense): what the dense pass costs;
- the one pass with ``precision: bf16``: every window in bf16, no fp32 confirmation (the
  speed of the screening pass alone; picks near the threshold may change).

Every repeat runs the methods in a rotated order, one station-day after another, so the machine's
load (shared) falls on all of them alike; a method's time is the median over repeats and
station-days, its ratio the median of the paired ratios classify / method. Agreement: the
classify picks (the reference) reproduced by the method within 0.1 s (same station and phase),
and the method's picks with no reference pick within 0.1 s, per reference pick. Models:
PhaseNet (``--weights``, else the project's first shipped weights, ``quakesnake-synthetic``, which
the README's throughput tables measured (the later ones share their architecture), else a seeded random
init: timing only), EQTransformer (seeded random init: timing and exactness only) and
PhaseNetLight 'ethz' (real SeisBench weights from ../shared, when present), whose agreement is
also measured on all 12 station-days of the day. Peak memory, the cost of starting a picking
process, threads, and preprocessing + writing per station-day are measured in child processes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import quakesnake.picking  # noqa: F401  (before torch: it sets OMP_WAIT_POLICY, see there)
from common import machine, markdown_table, seisbench_cache, update_readme

DAY = "2024-01-01"
MARGIN_S = 60.0
SCENARIO = {"seed": 1, "n_stations": 12, "events_per_day": 80}
TOLERANCE_S = 0.1
ONE_PASS = {"dense_overlap": None}  # the model's own overlap only, as classify runs
METHODS = {  # name -> picker settings on top of the model's
    "SeisBench classify (defaults)": {"engine": "seisbench", "batch_size": 256, "precision": "fp32", **ONE_PASS},
    "pick stage, one pass, screen: none": {"screen": "none", **ONE_PASS},
    "pick stage, one pass": ONE_PASS,
    "pick stage (defaults: dense pass near possible picks)": {},
    "pick stage, one pass, precision: bf16": {"precision": "bf16", **ONE_PASS},
}
REFERENCE = "SeisBench classify (defaults)"
EXACT = "pick stage, one pass"  # classify's windows and numbers: its picks must be classify's
DEFAULTS = "pick stage (defaults: dense pass near possible picks)"


def picker(model_name: str, weights: str | None, method: str) -> dict:
    cfg = {"type": "seisbench", "model": model_name, "device": "cpu", **METHODS[method]}
    if weights is not None:
        cfg["weights"] = weights
        if weights == "ethz":
            cfg["version"] = "2"
    return cfg


def load(model_name: str, weights: str | None):
    """The model in fp32 on the CPU: loaded weights, or a seeded random init."""
    import torch

    from quakesnake.picking import load_model

    if weights is not None:
        return load_model({"type": "seisbench", "model": model_name, "weights": weights, "device": "cpu",
                           "precision": "fp32", **({"version": "2"} if weights == "ethz" else {})})
    import seisbench.models as sbm

    torch.manual_seed(0)
    return getattr(sbm, model_name)().eval()


def for_method(model, method: str):
    """The model as the method runs it: a bf16 copy for ``precision: bf16`` (what load_model gives)."""
    import copy

    import torch

    if METHODS.get(method, {}).get("precision") != "bf16":
        return model
    return copy.deepcopy(model).to(torch.bfloat16)


# ------------------------------------------------------------------------------------------ data


def make_station_days(folder: Path, count: int) -> tuple[list[Path], list[Path]]:
    """Raw (int32 counts, as download writes them) and preprocessed miniSEED of ``count`` station-days."""
    from quakesnake.preprocess import preprocess_file
    from quakesnake.sources import fdsn, synthetic

    stations = synthetic.station_table(SCENARIO)
    scenario = synthetic.generate_scenario(SCENARIO, stations, [DAY], traveltime_cache_dir=folder / "traveltimes")
    raw, preprocessed = [], []
    for index in range(count):
        station = stations.iloc[index]
        stream, inventory = synthetic.synthesize_station_day(SCENARIO, station, DAY, scenario.arrivals,
                                                             margin_s=MARGIN_S)
        name = f"{station['network']}.{station['station']}"
        raw.append(folder / "raw" / f"{name}.mseed")
        preprocessed.append(folder / "preprocessed" / f"{name}.mseed")
        raw[-1].parent.mkdir(parents=True, exist_ok=True)
        fdsn.write_station_day(fdsn.StationDay(stream, inventory, "ok", "synthetic", {}), raw[-1],
                               raw[-1].with_suffix(".xml"), raw[-1].with_suffix(".json"))
        preprocess_file(raw[-1], preprocessed[-1], day=DAY, margin_s=MARGIN_S)
    return raw, preprocessed


# ------------------------------------------------------------------------------------- agreement


def agreement(reference, picks) -> dict:
    """Reference picks reproduced within the tolerance, and picks without a reference one, per reference pick."""
    tolerance = np.timedelta64(int(TOLERANCE_S * 1e9), "ns")

    def matched(times, others):
        if len(others) == 0:
            return np.zeros(len(times), dtype=bool)
        others = np.sort(others)
        position = np.clip(np.searchsorted(others, times), 1, len(others) - 1)
        nearest = np.minimum(np.abs(others[position] - times), np.abs(others[position - 1] - times))
        return nearest <= tolerance

    reproduced = extra = 0
    keys = ["network", "station", "location", "phase"]
    groups = {key: g["time"].to_numpy() for key, g in picks.groupby(keys)}
    reference_groups = {key: g["time"].to_numpy() for key, g in reference.groupby(keys)}
    for key, times in reference_groups.items():
        reproduced += int(matched(times, groups.get(key, np.array([], dtype="datetime64[ns]"))).sum())
    for key, times in groups.items():
        extra += int((~matched(times, reference_groups.get(key, np.array([], dtype="datetime64[ns]")))).sum())
    n = len(reference)
    return {"reference": n, "picks": len(picks), "reproduced": reproduced / n if n else None,
            "extra": extra / n if n else None}


def curve_difference(stream, model, cfg: dict) -> float:
    """Largest difference between the P/S probability traces of the pipeline and SeisBench's annotate."""
    from quakesnake.picking import annotate_stream

    ours = annotate_stream(stream, cfg, model=model)
    theirs = model.annotate(stream, batch_size=256)
    worst = 0.0
    for trace in theirs:
        if trace.stats.channel.rsplit("_", 1)[-1] not in ("P", "S"):
            continue
        mine = ours.select(id=trace.id)
        if len(mine) != 1 or mine[0].stats.npts != trace.stats.npts or mine[0].stats.starttime != trace.stats.starttime:
            return float("inf")
        worst = max(worst, float(np.nanmax(np.abs(mine[0].data - trace.data))))
    return worst


# ---------------------------------------------------------------------------------------- timing


def time_methods(model_name, weights, streams, repeats) -> dict:
    """Wall and CPU seconds per station-day of every method, interleaved; picks of the first repeat."""
    from quakesnake.picking import pick_stream

    model = load(model_name, weights)
    models = {method: for_method(model, method) for method in METHODS}
    for method in METHODS:  # warm-up: fast copies, oneDNN kernels, SeisBench's first call
        pick_stream(streams[0].slice(streams[0][0].stats.starttime, streams[0][0].stats.starttime + 600),
                    picker(model_name, weights, method), model=models[method])
    wall = {m: [] for m in METHODS}
    cpu = {m: [] for m in METHODS}
    picks = {m: [] for m in METHODS}
    methods = list(METHODS)
    for repeat in range(repeats):
        order = methods[repeat % len(methods):] + methods[: repeat % len(methods)]
        for day, stream in enumerate(streams):
            for method in order:
                started, started_cpu = time.perf_counter(), time.process_time()
                result = pick_stream(stream, picker(model_name, weights, method), model=models[method], day=DAY)
                wall[method].append(time.perf_counter() - started)
                cpu[method].append(time.process_time() - started_cpu)
                if repeat == 0:
                    picks[method].append(result)
                print(f"  {model_name} repeat {repeat} station-day {day} {method}: {wall[method][-1]:.2f} s",
                      file=sys.stderr, flush=True)
    return {"wall": wall, "cpu": cpu, "picks": picks, "model": model}


def summarise(model_label, timing) -> list[list]:
    import pandas as pd

    reference_wall = np.array(timing["wall"][REFERENCE])
    reference_picks = pd.concat(timing["picks"][REFERENCE], ignore_index=True)
    rows = []
    for method in METHODS:
        wall = np.array(timing["wall"][method])
        found = agreement(reference_picks, pd.concat(timing["picks"][method], ignore_index=True))
        ratio = float(np.median(reference_wall / wall))
        rows.append([model_label, method, float(np.median(wall)), float(np.median(timing["cpu"][method])),
                     None if method == REFERENCE else round(ratio, 2), found["picks"],
                     None if method == REFERENCE else found["reproduced"],
                     None if method == REFERENCE else found["extra"]])
    return rows


def agreement_rows(model_label, model_name, weights, streams) -> list:
    """Classify against the pick stage at the same windows (one pass) on every station-day given: one row."""
    import pandas as pd

    from quakesnake.picking import pick_stream

    model = load(model_name, weights)
    reference, picks = [], []
    for stream in streams:
        reference.append(pick_stream(stream, picker(model_name, weights, REFERENCE), model=model, day=DAY))
        picks.append(pick_stream(stream, picker(model_name, weights, EXACT), model=model, day=DAY))
    reference, picks = pd.concat(reference, ignore_index=True), pd.concat(picks, ignore_index=True)
    found = agreement(reference, picks)
    same = len(reference) == len(picks) and bool((reference["time"].to_numpy() == picks["time"].to_numpy()).all())
    return [model_label, len(streams), found["reference"], found["picks"], found["reproduced"], found["extra"],
            "yes" if same else "no"]


# ------------------------------------------------------------------------------- child processes


def memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise SystemExit(f"no {field} in /proc/self/status")


def child(args) -> None:
    """One picking process: load the model, pick the files, report times and peak memory as JSON."""
    import obspy
    import torch

    from quakesnake import picking

    torch.set_num_threads(args.child_threads)
    model = for_method(load(args.child_model, args.child_weights), args.child_method)
    streams = [obspy.read(path) for path in args.files]
    baseline = memory_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # restart the peak (VmHWM) from here
    started = time.perf_counter()
    if args.child_method != "none":
        for stream in streams:
            picking.pick_stream(stream, picker(args.child_model, args.child_weights, args.child_method), model=model)
    print(json.dumps({"pick_s": time.perf_counter() - started, "baseline_mb": baseline,
                      "peak_mb": memory_mb("VmHWM")}))


def run_child(model_name, weights, method, files, threads, **environment) -> dict:
    command = [sys.executable, __file__, "--child-model", model_name, "--child-method", method,
               "--child-threads", str(threads), *map(str, files)]
    if weights is not None:
        command[2:2] = ["--child-weights", weights]
    env = {**os.environ, **environment}
    output = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(output.strip().splitlines()[-1])


def wait_policy_rows(model_name, weights, files, threads) -> list[list]:
    """Seconds per station-day with OpenMP threads sleeping (PASSIVE, what quakesnake.picking sets)
    against libgomp's default (spin, then sleep; an invalid value leaves libgomp at its default)."""
    rows = []
    for label, policy in (("libgomp default (spin first)", "default"), ("PASSIVE (quakesnake default)", "PASSIVE")):
        row = [label]
        for method in (REFERENCE, DEFAULTS):
            measured = run_child(model_name, weights, method, files, threads, OMP_WAIT_POLICY=policy)
            row.append(round(measured["pick_s"] / len(files), 1))
        rows.append(row)
    return rows


def threads_rows(model_name, weights, files) -> list[list]:
    """Two station-days: one process with 2 threads one after the other, against 2 one-thread processes at once."""
    started = time.perf_counter()
    run_child(model_name, weights, DEFAULTS, files, 2)
    sequential = time.perf_counter() - started
    started = time.perf_counter()
    command = lambda f: [sys.executable, __file__, "--child-model", model_name, "--child-method",  # noqa: E731
                         DEFAULTS, "--child-threads", "1", str(f)] + (
                             ["--child-weights", weights] if weights else [])
    processes = [subprocess.Popen(command(f), stdout=subprocess.DEVNULL) for f in files]
    for process in processes:
        if process.wait() != 0:
            raise SystemExit("a picking process failed")
    parallel = time.perf_counter() - started
    return [["1 process, 2 threads, station-days one after the other", round(sequential, 1),
             round(60 * len(files) / sequential, 2)],
            [f"{len(files)} processes at once, 1 thread each", round(parallel, 1), round(60 * len(files) / parallel, 2)]]


def preprocess_rows(raw: list[Path], folder: Path) -> list[list]:
    """Seconds per station-day of preprocess_file (read, preprocess, write) and of its parts."""
    import cProfile
    import pstats

    from quakesnake.preprocess import preprocess_file

    parts = {"read_miniseed": "read", "preprocess_stream": "preprocess_stream", "_write_mseed": "write float32 miniSEED"}
    totals, shares = [], {label: [] for label in parts.values()}
    for path in raw:
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.runcall(preprocess_file, path, folder / "out.mseed", day=DAY, margin_s=MARGIN_S)
        totals.append(time.perf_counter() - started)
        stats = pstats.Stats(profiler).stats
        for (_, _, function), (_, _, _, cumulative, _) in stats.items():
            if function in parts:
                shares[parts[function]].append(cumulative)
    rows = [["preprocess_file (whole)", float(np.median(totals))]]
    rows += [[label, float(np.median(values))] for label, values in shares.items() if values]
    return rows


# ------------------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--timing-days", type=int, default=3, help="station-days timed for PhaseNet(Light)")
    parser.add_argument("--eqt-days", type=int, default=2, help="station-days timed for EQTransformer (0: skip)")
    parser.add_argument("--agreement-days", type=int, default=SCENARIO["n_stations"],
                        help="station-days of the agreement table (real weights)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the timed process")
    parser.add_argument("--weights", help="PhaseNet weights (path or name); default: the shipped "
                                          "'quakesnake-synthetic' (the README tables' weights) when present, else a "
                                          "seeded random init")
    parser.add_argument("--update-readme", action="store_true", help="write the tables into README.md")
    parser.add_argument("--child-model", help=argparse.SUPPRESS)
    parser.add_argument("--child-weights", help=argparse.SUPPRESS)
    parser.add_argument("--child-method", help=argparse.SUPPRESS)
    parser.add_argument("--child-threads", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_model:
        return child(args)

    cache = seisbench_cache()
    if cache is not None:
        os.environ["SEISBENCH_CACHE_ROOT"] = str(cache)  # before SeisBench is first imported
    else:
        print("../shared/models/seisbench-cache absent: PhaseNetLight skipped", file=sys.stderr)
    import torch

    from quakesnake.picking import SHIPPED_WEIGHTS_DIR

    torch.set_num_threads(args.threads)
    phasenet_weights = args.weights
    if phasenet_weights is None and (SHIPPED_WEIGHTS_DIR / "phasenet" / "quakesnake-synthetic.json").is_file():
        phasenet_weights = "quakesnake-synthetic"
    models = [("PhaseNet", phasenet_weights, args.timing_days)]
    if args.eqt_days:
        models.append(("EQTransformer", None, args.eqt_days))
    if cache is not None:
        models.append(("PhaseNetLight", "ethz", args.timing_days))

    folder = Path(tempfile.mkdtemp(prefix="quakesnake-pick-throughput-"))
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    try:
        import obspy

        n_days = max(args.timing_days, args.eqt_days, 2, args.agreement_days if phasenet_weights or cache else 0)
        raw, preprocessed = make_station_days(folder, min(n_days, SCENARIO["n_stations"]))
        streams = [obspy.read(str(path)) for path in preprocessed]

        timing_rows, exactness = [], []
        for model_name, weights, days in models:
            label = f"{model_name} ({weights or 'random init'})"
            timing = time_methods(model_name, weights, streams[:days], args.repeats)
            timing_rows += summarise(label, timing)
            if weights is None:  # untrained: compare probability traces instead of (meaningless) picks
                cfg = picker(model_name, weights, EXACT)
                exactness.append([label, curve_difference(streams[0], timing["model"], cfg)])

        agreement_table = []
        for model_name, weights, _ in models:
            if weights is not None:
                agreement_table.append(agreement_rows(f"{model_name} ({weights})", model_name, weights,
                                                      streams[: args.agreement_days]))

        memory_rows = []
        for model_name, weights, _ in models:
            for method in METHODS:
                measured = run_child(model_name, weights, method, preprocessed[:1], args.threads)
                memory_rows.append([f"{model_name} ({weights or 'random init'})", method, round(measured["peak_mb"]),
                                    round(measured["peak_mb"] - measured["baseline_mb"])])
        started_child = time.perf_counter()
        run_child("PhaseNet", phasenet_weights, "none", [], args.threads)
        startup = time.perf_counter() - started_child
        thread_table = threads_rows("PhaseNet", phasenet_weights, preprocessed[:2])
        policy_table = wait_policy_rows("PhaseNet", phasenet_weights, preprocessed[:1], args.threads)
        preprocess_table = preprocess_rows(raw[: args.timing_days], folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if cache is not None:
            shutil.rmtree(cache.parent, ignore_errors=True)
    load_end = os.getloadavg()[0]
    wall = time.perf_counter() - started

    text = (
        f"Picking throughput per station-day (3 × 8.65 M samples at 100 Hz: a day plus 60 s margins), "
        f"measured by `python benchmarks/pick_throughput.py` on {machine()}, torch {torch.__version__}, "
        f"{args.threads} torch threads; the machine was shared (load average {load_start:.1f} at the start, "
        f"{load_end:.1f} at the end), so the methods ran interleaved on the same station-days and the ratio is "
        f"the median of paired ratios ({args.repeats} repeats; whole run {wall:.0f} s). Station-days: the "
        f"default synthetic scenario ({DAY}). Reproduced / extra: the classify picks found within "
        f"{TOLERANCE_S} s, and picks without a classify pick within {TOLERANCE_S} s, per classify pick.\n\n"
        + markdown_table(["model (weights)", "method", "s / station-day", "CPU s", "× classify", "picks",
                          "reproduced", "extra"], timing_rows)
        + "\n\nPick agreement of the default pick stage with classify on every station-day of the day "
          "(real weights only):\n\n"
        + markdown_table(["model (weights)", "station-days", "classify picks", "pick-stage picks", "reproduced",
                          "extra", "identical times"], agreement_table)
        + "\n\nUntrained models (picks meaningless): largest difference of the P and S probability traces of "
          "the default pick stage (`annotate_stream`) from SeisBench's `annotate`, one station-day:\n\n"
        + markdown_table(["model", "max |Δ probability|"], exactness)
        + f"\n\nPeak memory of a process picking one station-day ({args.threads} threads; above: over the same "
          f"process with the model and the station-day loaded):\n\n"
        + markdown_table(["model (weights)", "method", "peak RSS (MB)", "above loaded (MB)"], memory_rows)
        + f"\n\nStarting a picking process (Python, torch, SeisBench, PhaseNet loaded) takes {startup:.1f} s: "
          f"a workflow `pick` job (one picker, every station-day of one day) pays it once per day, as `quakesnake.picking.pick_files` (many station-days in one process) does. Two station-days, default pick stage:\n\n"
        + markdown_table(["processes", "wall (s)", "station-days / min"], thread_table)
        + f"\n\nOpenMP wait policy of the torch threads (PhaseNet, one station-day, {args.threads} threads, "
          f"s / station-day): threads that spin while the caller works between batches take the CPU "
          f"from it on a shared machine.\n\n"
        + markdown_table(["OMP_WAIT_POLICY", "SeisBench classify", "pick stage"], policy_table)
        + "\n\nThe rest of the chain per station-day (median of the timed station-days; parts by profile):\n\n"
        + markdown_table(["step", "s / station-day"], preprocess_table)
        + "\n"
    )
    print(text)
    if args.update_readme:
        update_readme("pick-throughput", text)


if __name__ == "__main__":
    main()
