# Helpers shared by the stage files (config validation, the shard table, input functions,
# the final targets), so that each stage file holds only its rules.
import os
from pathlib import Path

from quakesnake.config import validate_config
from quakesnake.picking.settings import asks_for_cuda, runs_a_model
from quakesnake import shards as _shards
from quakesnake.adapt import adapt_settings, model_base, round_picker_name, round_pickers

validate_config(config)  # against the package's schema (quakesnake.config.SCHEMA_PATH)

DAYS = _shards.day_range(config["days"]["start"], config["days"]["end"])
STATIONS = _shards.station_table(config)
PICKERS = list(config["pickers"])
ASSOCIATORS = list(config["associators"])
# The pickers the pick stage knows: the configured ones (PICKERS, which every result covers) and
# the rounds' pickers of `snakemake adapt` (quakesnake.adapt), which only its targets ask for.
PICKER_ENTRIES = {**config["pickers"], **round_pickers(config["adapt"], config["pickers"])}
# The rounds' picks, events and locations come from their own rules (adapt_pick, adapt_associate,
# adapt_locate: the pick, associate and locate rules under other names), told apart by the picker
# name: a profile can place them apart, and its groups of day jobs never hold two rounds at once
# (round 2's association waits on round 1's, through its fine-tune: a cycle for the group).
RUN_PICKER = r"(?!adapt-round[0-9])[a-z0-9][a-z0-9_-]*"
ROUND_PICKER_NAMES = r"adapt-round[1-9][0-9]*"
# `snakemake adapt`'s settings (workflow/rules/adapt.smk)
ADAPT = adapt_settings(config["adapt"])
ADAPT_ASSOCIATOR = ADAPT["associator"] or ASSOCIATORS[0]
if ADAPT_ASSOCIATOR not in config["associators"]:
    raise ValueError(f"adapt.associator {ADAPT_ASSOCIATOR!r} is none of the associators ({', '.join(ASSOCIATORS)})")
ADAPT_ROUNDS = list(range(1, ADAPT["rounds"] + 1))
REFERENCE_DIR = config["reference"] or "results/truth"
# What the noise of the workflow's own station-days is, for the training datasets' provenance.
RECORDED_NOISE = "synthetic" if config["source"]["type"] == "synthetic" else "recorded"
# Every rule's software, for `--sdm conda` (the default runs in the current environment, as the
# README installs it); relative to the rule files. The same packages and pins as pyproject.toml.
SOFTWARE = "../../envs/quakesnake.yaml"

# File-valued settings are rule inputs, so that editing a file reruns the rules reading it. The
# velocity model is a file (VELOCITY_MODEL_FILES, read from the rule's input) or inline layers.
VELOCITY_MODEL_FILES = [config["velocity_model"]] if isinstance(config["velocity_model"], str) else []
VELOCITY_LAYERS = None if VELOCITY_MODEL_FILES else config["velocity_model"]
STATION_CORRECTION_FILES = [config["magnitude"]["station_corrections"]] if config["magnitude"]["station_corrections"] else []
# The twin catalog's events and picks (its stations reach the scenario through the station table).
TWIN_CATALOG_FILES = (
    [f"{config['synthetic']['catalog_dir']}/{name}.csv" for name in ("events", "picks")]
    if config["source"]["type"] == "synthetic" and config["synthetic"]["catalog_dir"] else []
)

# The locate stage runs between associate and magnitude when relocation is on (the default: on the
# default scenario it cut PyOcto's epicentral MAE from 0.65 to 0.18 km, see README "Results");
# off, magnitude reads the associator's tables and the DAG has no locate jobs.
RELOCATE = config["relocation"]["enabled"]
RELOCATION_OPTIONS = {key: value for key, value in config["relocation"].items() if key != "enabled"}
LOCATED_EVENTS = "results/located/{picker}/{associator}/{day}.parquet" if RELOCATE else "results/events/{picker}/{associator}/{day}.parquet"
LOCATED_ASSIGNMENTS = (
    "results/located/{picker}/{associator}/{day}.assignments.parquet" if RELOCATE
    else "results/assignments/{picker}/{associator}/{day}.parquet"
)


# The stations of a day-level job are its per-station outputs, which Snakemake fixes at parse time:
# every day of a run has the same stations (those of the station table).
SHARD_CODES = [f"{net}.{sta}" for net, sta in zip(STATIONS["network"], STATIONS["station"])]
# One dict lookup per station: a DataFrame filter per job costs seconds in DAGs of 10^4 shards.
STATION_RECORDS = {(r["network"], r["station"]): r for r in STATIONS.to_dict("records")}
STATION_LIST = [STATION_RECORDS[(net, sta)] for net, sta in zip(STATIONS["network"], STATIONS["station"])]


def raw_waveforms(wildcards):
    """The raw station-days of a day."""
    return [f"results/waveforms/{wildcards.day}/{code}.mseed" for code in SHARD_CODES]


# Jobs share no file system (e.g. Ada cloud's S3 storage): every file a job reads must be an input.
SHARED_FILESYSTEM = not workflow.storage_settings.default_storage_provider
# A raw file touched this long after its day's status table was written was replaced since.
REPLACED_AFTER_S = 2.0


def replaced_waveforms(wildcards):
    """The raw station-days of a day that a day-level job reading them must list besides the day's
    download status table: those replaced or removed since the download wrote it.

    Listing all of the day's 150 raw files would cost the DAG 150 producer look-ups per job, each
    trying the download rule's outputs one by one (the OGS-sized dry run of benchmarks/dag_scale.py
    took 22.1 s so, 11.6 s with this); a stat call per file is far cheaper. A replaced file is listed from
    then on, so Snakemake reruns the job whenever that file is newer than the job's outputs, and a
    removed one makes the day download again. Without a shared file system every file is listed.
    """
    if not SHARED_FILESYSTEM:
        return raw_waveforms(wildcards)
    try:
        written = os.stat(f"results/waveforms/{wildcards.day}/status.csv").st_mtime
    except FileNotFoundError:
        return []
    changed = []
    for path in raw_waveforms(wildcards):
        try:
            if os.stat(path).st_mtime > written + REPLACED_AFTER_S:
                changed.append(path)
        except FileNotFoundError:
            changed.append(path)
    return changed


def real_noise_files(wildcards):
    """The files of training.real_noise.files (globs expanded): inputs of the dataset jobs, so that
    editing them rebuilds the datasets. Read here, not at parse time: only `snakemake train`
    builds those jobs, and every other call need not import the real-noise module."""
    from quakesnake.real_noise import expand_files

    return expand_files(config["training"]["real_noise"]["files"])


def pick_priority(wildcards):
    """Scheduling order of the pick jobs: above every later stage, model pickers above the rest.

    The pick jobs are the long ones (a model picker's day runs ~4x an STA/LTA day and ~20x an
    associate job): started first, longest first, they leave no core idle while the short jobs
    downstream fill in behind them (longest-processing-time-first). Without it, Snakemake runs a
    fast picker's downstream chain while a model day waits, and the run ends on that model day alone.
    """
    return 2 if runs_a_model(PICKER_ENTRIES[wildcards.picker]) else 1


def neighbour_day_picks(wildcards):
    """This day's merged picks and those of the days around it that the run holds (midnight)."""
    return [
        f"results/picks/{wildcards.picker}/{day}.parquet"
        for day in _shards.neighbour_days(wildcards.day, DAYS)
    ]


def day_files(pattern):
    def files(wildcards):
        return [pattern.format(day=day, **wildcards) for day in DAYS]

    return files


def final_targets():
    targets = []
    for picker in PICKERS:
        for associator in ASSOCIATORS:
            targets += [
                f"results/evaluation/{picker}/{associator}/metrics.json",
                f"results/catalog/{picker}/{associator}.csv",
                f"results/catalog/{picker}/{associator}.xml",
                f"results/evaluation/{picker}/{associator}/event_map.png",
                f"results/review/{picker}/{associator}/candidates.csv",
            ]
    targets.append("results/evaluation/summary.csv")
    targets.append("results/status/shards.csv")
    return targets


def previous_model_files(round_number):
    """The weights a round picks with and fine-tunes, where an earlier round trains them."""
    base = model_base(round_number - 1)
    return [f"{base}.json", f"{base}.pt"] if round_number > 1 else []


def adapt_round_weights(wildcards):
    """The pick stage's weights inputs: those of a round's picker (none for other pickers)."""
    rounds = {round_picker_name(r): r for r in ADAPT_ROUNDS}
    return previous_model_files(rounds[wildcards.picker]) if wildcards.picker in rounds else []


def replay_metadata(wildcards):
    """The metadata files of adapt.replay's datasets (globs expanded): inputs of every round's
    fine-tune, read only when `snakemake adapt` builds it."""
    from quakesnake.adapt import replay_dataset_dirs

    return [f"{directory}/metadata.csv" for directory in replay_dataset_dirs(ADAPT["replay"])]


def training_dataset_settings(training_cfg):
    """The dataset-shaping part of the training settings (imported here, when a dataset job is
    planned: the training module is too heavy for every Snakemake call)."""
    from quakesnake.training import dataset_settings

    return dataset_settings(training_cfg)
