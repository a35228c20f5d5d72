"""Self-training on a network's own unlabelled waveforms (``snakemake adapt``).

A round ``r`` (1..``adapt.rounds``) of the workflow's days:

1. pick with the round's picker: the model of round ``r - 1`` (round 1: ``adapt.picker``), or a
   consensus of it and ``adapt.committee.members`` (the workflow's pick stage, picker name
   :func:`round_picker_name`);
2. associate and locate the picks (the workflow's stages, with ``adapt.associator``);
3. :func:`split_picks`: the picks of well-constrained events (enough stations and P picks, a
   small RMS residual, each pick's residual small) become labels; the other associated picks are
   kept away from every noise window; the picks no event took are the round's false picks;
4. :func:`quakesnake.training.build_dataset` cuts event traces around the labels, noise traces
   clear of every pick, and (``hard_negatives_per_station_day``) noise traces around false picks;
5. :func:`quakesnake.training.train` fine-tunes the round's model on those datasets.

:func:`rounds_table` reports, per round, how many events and labels the round produced and what
the fine-tune scored. Only the file layout and the label rule live here; picking, association,
datasets and training are the workflow's own stages.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from quakesnake import tabular
from quakesnake.config import section_defaults
from quakesnake.errors import QuakesnakeError

ROUND_PICKER_PREFIX = "adapt-round"
ROUNDS_DIR = "results/adapt"
# Every key and default: the schema's adapt section.
DEFAULTS = section_defaults("adapt")
# The columns of the three pick tables of a round and day (labels in the reference-picks layout).
LABEL_COLUMNS = tabular.REFERENCE_PICK_COLUMNS + ["network", "location", "residual_s", "probability"]
OTHER_PICK_COLUMNS = ["station", "phase", "time"]


class AdaptError(QuakesnakeError, ValueError):
    """The adapt settings cannot run (a picker that is no model, an unknown associator, ...)."""


def adapt_settings(cfg: dict | None) -> dict:
    """``cfg`` over :data:`DEFAULTS`, one level deep for the nested dicts."""
    cfg = dict(cfg or {})
    settings = {**DEFAULTS, **cfg}
    for key in ("labels", "committee", "training"):
        settings[key] = {**DEFAULTS[key], **cfg.get(key, {})}
    return settings


def round_picker_name(round_number) -> str:
    """The pick stage's name of a round's picker (``round_number`` may be the ``{round}`` wildcard)."""
    return f"{ROUND_PICKER_PREFIX}{round_number}"


def model_base(round_number: int) -> str:
    """Where round ``round_number``'s fine-tuned weights are saved (``<base>.json`` + ``<base>.pt``)."""
    return f"{ROUNDS_DIR}/round{int(round_number)}/model/model"


def round_weights(settings: dict, round_number: int) -> str:
    """The weights round ``round_number`` picks with and fine-tunes: the previous round's."""
    return settings["picker"]["weights"] if round_number == 1 else model_base(round_number - 1)


def round_pickers(adapt_cfg: dict, configured_pickers) -> dict[str, dict]:
    """Picker entries of every round, by :func:`round_picker_name` (the pick stage's wildcard).

    The round's model picks alone, or first in a consensus with the committee's members (the
    consensus pick takes the time of its first member, so the labels keep the model's timing).
    """
    settings = adapt_settings(adapt_cfg)
    picker = settings["picker"]
    if picker.get("type") != "seisbench":
        raise AdaptError(f"adapt.picker must be a seisbench picker (the model to adapt), got type {picker.get('type')!r}")
    taken = sorted(name for name in configured_pickers if name.startswith(ROUND_PICKER_PREFIX))
    if taken:
        raise AdaptError(f"picker name(s) {', '.join(taken)}: the prefix {ROUND_PICKER_PREFIX!r} is kept for adapt's rounds")
    committee = settings["committee"]
    pickers = {}
    for round_number in range(1, settings["rounds"] + 1):
        model = {**picker, "weights": round_weights(settings, round_number)}
        if committee["members"]:
            model = {"type": "consensus", "members": [model, *committee["members"]],
                     "min_agree": committee["min_agree"], "tolerance_s": committee["tolerance_s"]}
        pickers[round_picker_name(round_number)] = model
    return pickers


def training_settings_of_round(training_cfg: dict, adapt_cfg: dict, round_number: int) -> dict:
    """The training section with adapt's overrides, fine-tuning the round's weights."""
    from quakesnake.training import training_settings

    settings = adapt_settings(adapt_cfg)
    merged = {**training_cfg, **settings["training"]}
    for key in ("split", "augmentation", "real_noise"):
        merged[key] = {**training_cfg.get(key, {}), **settings["training"].get(key, {})}
    merged.update(model=settings["picker"].get("model", "PhaseNet"), init_weights=round_weights(settings, round_number),
                  seed=training_cfg.get("seed", 1) + round_number)
    return training_settings(merged)


def replay_dataset_dirs(patterns: list[str]) -> list[str]:
    """The dataset directories of ``adapt.replay`` (directories or glob patterns of them, each
    holding a ``metadata.csv``), sorted; a pattern that matches none raises."""
    import glob

    directories = []
    for pattern in patterns:
        matched = sorted(p for p in glob.glob(pattern) if Path(p, "metadata.csv").is_file())
        if not matched:
            raise AdaptError(f"adapt.replay {pattern!r}: no dataset directory (with a metadata.csv) matches")
        directories += matched
    return sorted(set(directories))


def fine_tune_round(round_number: int, round_dirs: list, replay_dirs: list, out_dir, training: dict,
                    replay_fraction: float | None = None, num_threads: int | None = None) -> dict:
    """Round ``round_number``'s fine-tune (:func:`quakesnake.training.train`) on its datasets and the
    replay datasets. A round whose datasets hold no labelled trace stops with an error: training
    on its noise alone would teach the model to pick nothing (the previous round's model picked
    too little for any event to pass adapt.labels)."""
    from quakesnake.training import train

    event_traces = sum(int((pd.read_csv(Path(d, "metadata.csv"), usecols=["trace_category"])["trace_category"]
                            == "earthquake").sum()) for d in round_dirs)
    if event_traces == 0:
        raise AdaptError(
            f"round {round_number}: no event passed adapt.labels on any day ({', '.join(map(str, round_dirs))}): "
            "nothing to fine-tune on; loosen adapt.labels, give fewer rounds, or see the round's picks and events")
    return train(list(round_dirs), out_dir, training, num_threads=num_threads, replay_dirs=list(replay_dirs),
                 replay_fraction=replay_fraction if replay_dirs else None)


# --------------------------------------------------------------------------------------------
# Labels


def split_picks(picks: pd.DataFrame, events: pd.DataFrame, assignments: pd.DataFrame,
                label_cfg: dict | None = None) -> dict[str, pd.DataFrame]:
    """The round's picks of one day as ``labels``, ``associated`` and ``false`` picks.

    An event is well constrained when its picks with a residual within ``max_pick_residual_s``
    number at least ``min_picks``, with ``min_p_picks`` P picks, on ``min_stations`` stations,
    and their RMS residual is at most ``max_rms_residual_s``; those picks are its labels
    (:data:`LABEL_COLUMNS`, event ids as in ``events``). ``associated`` holds every other pick an
    event took (labels of weaker events are not certain, nor noise); ``false`` the picks no event
    took. Residuals are the assignments' ``residual_s`` (the located solution's after locate): a
    pick without one does not count.
    """
    cfg = {**DEFAULTS["labels"], **(label_cfg or {})}
    assigned = assignments.copy()
    assigned["event_id"] = assigned["event_id"].astype(str)
    assigned["phase"] = tabular.phase_letters(assigned["phase"])
    residual = pd.to_numeric(assigned["residual_s"], errors="coerce")
    good = assigned[residual.abs() <= cfg["max_pick_residual_s"]].copy()
    good["residual_s"] = residual[good.index]
    by_event = good.groupby("event_id")
    summary = pd.DataFrame({
        "picks": by_event.size(),
        "p_picks": by_event["phase"].apply(lambda phase: int((phase == "P").sum())),
        "stations": by_event["station"].nunique(),
        "rms_residual_s": by_event["residual_s"].apply(lambda r: float(np.sqrt(np.mean(np.square(r))))),
    })
    constrained = summary.index[
        (summary["picks"] >= cfg["min_picks"]) & (summary["p_picks"] >= cfg["min_p_picks"])
        & (summary["stations"] >= cfg["min_stations"]) & (summary["rms_residual_s"] <= cfg["max_rms_residual_s"])
    ]
    known = set(events["event_id"].astype(str))
    labels = good[good["event_id"].isin(constrained) & good["event_id"].isin(known)]
    labels = labels.sort_values(["time", "station", "phase"], kind="stable")[LABEL_COLUMNS].reset_index(drop=True)

    pick_keys = _pick_keys(picks)
    taken = pick_keys.isin(set(_pick_keys(assigned)))
    label_keys = set(_pick_keys(labels))
    associated = picks[taken & ~pick_keys.isin(label_keys)]
    false = picks[~taken]
    return {"labels": labels,
            "associated": associated.assign(phase=tabular.phase_letters(associated["phase"]))[OTHER_PICK_COLUMNS],
            "false": false.assign(phase=tabular.phase_letters(false["phase"]))[OTHER_PICK_COLUMNS]}


def _pick_keys(table: pd.DataFrame) -> pd.Series:
    """One key per pick: station, phase letter and time to the ns (assignments copy pick times)."""
    times = pd.to_datetime(table["time"]).astype("datetime64[ns]").astype("int64").astype(str)
    return (table["network"].astype(str) + "." + table["station"].astype(str) + ":"
            + tabular.phase_letters(table["phase"]) + ":" + times).reset_index(drop=True).set_axis(table.index)


def write_day_labels(picks_file, events_file, assignments_file, out: dict, label_cfg: dict | None = None) -> dict:
    """:func:`split_picks` of one day's tables, written to ``out``: ``labels``, ``associated``,
    ``false_picks`` (CSV, the reference-picks layout the dataset stage reads) and ``counts``
    (JSON). Returns the counts."""
    picks = tabular.read_table(picks_file, tabular.PICK_COLUMNS)
    events = tabular.read_table(events_file, ["event_id"])
    assignments = tabular.read_table(assignments_file, tabular.ASSIGNMENT_COLUMNS)
    tables = split_picks(picks, events, assignments, label_cfg)
    for name, key in (("labels", "labels"), ("associated", "associated"), ("false", "false_picks")):
        tabular.write_table(tables[name], out[key])
    labels = tables["labels"]
    counts = {"picks": len(picks), "events": int(events["event_id"].nunique()),
              "labelled_events": int(labels["event_id"].nunique()),
              "p_labels": int((labels["phase"] == "P").sum()), "s_labels": int((labels["phase"] == "S").sum()),
              "associated_unlabelled_picks": len(tables["associated"]), "false_picks": len(tables["false"])}
    tabular.atomic_write(out["counts"], lambda tmp: Path(tmp).write_text(json.dumps(counts, indent=1) + "\n"))
    return counts


# --------------------------------------------------------------------------------------------
# The rounds' report


def rounds_table(rounds: dict[int, dict]) -> pd.DataFrame:
    """One row per round: what it picked, how many labels and traces it made, what training scored.

    ``rounds[r]`` holds ``picks`` (the round's day pick files), ``events`` (its day event files),
    ``labels`` (its day label files), ``datasets`` (its day dataset metadata files) and
    ``metrics`` (the fine-tune's metrics.json). Dev scores are within 0.5 s, on the dev split of
    the round's own labels (pseudo-labels: a check that training fit them, not a score of truth).
    """
    from quakesnake.training import FALSE_PICK_COLUMN

    rows = []
    for round_number, files in sorted(rounds.items()):
        picks = pd.concat([tabular.read_table(f, ["phase"]) for f in files["picks"]], ignore_index=True)
        events = pd.concat([tabular.read_table(f, ["event_id"]) for f in files["events"]], ignore_index=True)
        labels = pd.concat([tabular.read_table(f, LABEL_COLUMNS) for f in files["labels"]], ignore_index=True)
        datasets = pd.concat([pd.read_csv(f) for f in files["datasets"]], ignore_index=True)
        metrics = json.loads(Path(files["metrics"]).read_text())
        dev = metrics["scores"]["dev"]
        row = {
            "round": round_number,
            "picks": len(picks),
            "events": len(events),
            "labelled_events": int(labels["event_id"].nunique()),
            "p_labels": int((tabular.phase_letters(labels["phase"]) == "P").sum()),
            "s_labels": int((tabular.phase_letters(labels["phase"]) == "S").sum()),
            "stations_labelled": int(labels["station"].nunique()),
            "event_traces": int((datasets["trace_category"] == "earthquake").sum()),
            "noise_traces": int((datasets["trace_category"] == "noise").sum()),
            "false_pick_traces": int(datasets[FALSE_PICK_COLUMN].notna().sum()) if FALSE_PICK_COLUMN in datasets else 0,
            "best_epoch": metrics["best_epoch"],
            "initial_dev_loss": metrics["initial_dev_loss"],
            "best_dev_loss": metrics["best_dev_loss"],
        }
        for phase in ("P", "S"):
            scores = dev[phase]["0.5s"]
            row[f"dev_{phase.lower()}_recall"] = scores["recall"]
            row[f"dev_{phase.lower()}_precision"] = scores["precision"]
        rows.append(row)
    return pd.DataFrame(rows)


MODEL_FILES = ("model.json", "model.pt", "metrics.json", "history.csv", "training_curve.png")


def write_report(rounds: list[int], n_days: int, inputs, outputs) -> pd.DataFrame:
    """The adapt_report rule: :func:`rounds_table` into ``outputs.rounds`` (CSV) and the last
    round's model files copied to ``outputs`` (model, metrics, history, curve), so the adapted
    model has one path whatever the number of rounds. ``inputs`` lists each kind of file round by
    round, day by day (as ``expand`` writes them), the model files round by round."""
    import shutil

    def of_round(files, per_round):
        files = list(files)
        return {r: files[i * per_round:(i + 1) * per_round] for i, r in enumerate(rounds)}

    picks, events = of_round(inputs.picks, n_days), of_round(inputs.events, n_days)
    labels, datasets = of_round(inputs.labels, n_days), of_round(inputs.datasets, n_days)
    models = of_round(inputs.model, len(MODEL_FILES))
    table = rounds_table({r: {"picks": picks[r], "events": events[r], "labels": labels[r], "datasets": datasets[r],
                              "metrics": models[r][MODEL_FILES.index("metrics.json")]} for r in rounds})
    tabular.write_table(table, outputs.rounds)
    last = dict(zip(MODEL_FILES, models[rounds[-1]]))
    targets = {"model.json": outputs.model[0], "model.pt": outputs.model[1], "metrics.json": outputs.metrics,
               "history.csv": outputs.history, "training_curve.png": outputs.curve}
    for name, target in targets.items():
        tabular.atomic_write(target, lambda tmp, source=last[name]: shutil.copyfile(source, tmp))
    return table
