"""Score the shipped PhaseNet, PhaseNetLight 'ethz', STA/LTA and consensus pickers of them on the
labelled waveforms; print the table.

    python benchmarks/labelled_waveforms.py [--update-readme] [--phasenet-weights PATH] [--unmatched]
    python benchmarks/labelled_waveforms.py --experiments LABEL=PATH [LABEL=PATH ...] [--update-readme]

``--phasenet-weights`` scores other PhaseNet weights (e.g. results/training/model/model) in place
of the shipped ones, in every row that uses them. ``--experiments`` scores trained PhaseNet weights
(each under a label, e.g. the recipe's name) beside the shipped ones, with where their unmatched picks lie.

The 100 real records of ../shared/data/labelled-waveforms (Northern California, manual P and S
picks), each picked alone as `quakesnake eval-picker` does. PhaseNetLight needs the SeisBench
cache of ../shared; without it only STA/LTA is scored.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

import yaml
from common import ROOT, SHARED, machine, markdown_table, seisbench_cache, shipped_phasenet_weights, update_readme

from quakesnake.config import section_defaults
from quakesnake.picker_evaluation import evaluate_picker, read_labelled_records

DATA = SHARED / "data" / "labelled-waveforms"
# the shipped default picker as it picks by default: the weights' own thresholds (P 0.3 / S 0.4, the
# F1-best on their dev split) and the dense pass near possible picks; and the earlier weights
SHIPPED_NAME = shipped_phasenet_weights()
SHIPPED = {"type": "seisbench", "model": "PhaseNet", "weights": SHIPPED_NAME, "device": "cpu"}
AT_03 = {"p_threshold": 0.3, "s_threshold": 0.3}
ETHZ = {"type": "seisbench", "model": "PhaseNetLight", "weights": "ethz", "version": "2",
        "p_threshold": 0.3, "s_threshold": 0.3, "device": "cpu"}
STALTA = {"type": "stalta"}
# the default until issue 15's last change (config/train-phasenet.yaml), and it fine-tuned with real
# noise (config/train-phasenet-realnoise.yaml), which the shipped default fine-tunes further
FIRST = {**SHIPPED, **AT_03, "weights": "quakesnake-synthetic"}
REALNOISE = {**SHIPPED, **AT_03, "weights": "quakesnake-synthetic-realnoise"}


def snr_gate(synthetic: dict) -> tuple[str, dict]:
    """The SNR gate at a synthetic truth's rule for an arrival an analyst could pick, and its name."""
    gate = {"p_min_snr": synthetic["truth_min_snr"], "s_min_snr": synthetic["truth_min_snr"] * synthetic["truth_s_snr_factor"]}
    return f"SNR >= {gate['p_min_snr']:g} P / {gate['s_min_snr']:g} S", gate


# the rule of the shipped model's training labels, and that of the default scenario's analyst
TRAINING_GATE = snr_gate({**section_defaults("synthetic"),
                          **yaml.safe_load((ROOT / "config" / "train-phasenet.yaml").read_text())["synthetic"]})
ANALYST_GATE = snr_gate(section_defaults("synthetic"))

PICKERS = {
    f"PhaseNet {SHIPPED_NAME} (shipped default: its thresholds P 0.3 / S 0.4, dense pass)": SHIPPED,
    # what each of the two changes does alone: thresholds 0.3 / 0.3; no dense pass near possible
    # picks (quakesnake.picking.dense), SeisBench's two window positions per sample; neither (as before)
    f"PhaseNet {SHIPPED_NAME} (threshold 0.3, dense pass)": {**SHIPPED, **AT_03},
    f"PhaseNet {SHIPPED_NAME} (its thresholds, no dense pass)": {**SHIPPED, "dense_overlap": None},
    f"PhaseNet {SHIPPED_NAME} (threshold 0.3, no dense pass: the default before)": {
        **SHIPPED, **AT_03, "dense_overlap": None},
    "PhaseNet quakesnake-synthetic (default until now, threshold 0.3)": FIRST,
    "PhaseNet quakesnake-synthetic-realnoise (threshold 0.3)": REALNOISE,
    "PhaseNetLight ethz (threshold 0.3, as config/phasenetlight.yaml sets it)": ETHZ,
    "PhaseNetLight ethz (its own thresholds, P 0.44 / S 0.45)": {
        key: value for key, value in ETHZ.items() if not key.endswith("_threshold")},
    "STA/LTA + AIC": STALTA,
    # the SNR gate (quakesnake.analyst) at the training labels' rule and at the default analyst's
    f"PhaseNet {SHIPPED_NAME} (shipped default), {TRAINING_GATE[0]} (training labels)": {**SHIPPED, **TRAINING_GATE[1]},
    f"PhaseNet {SHIPPED_NAME} (shipped default), {ANALYST_GATE[0]} (default analyst)": {**SHIPPED, **ANALYST_GATE[1]},
    # the default scenario's two pickers, and with a second network; schema tolerances (P 0.3 s, S 0.5 s)
    f"consensus 2 of (PhaseNet {SHIPPED_NAME}, STA/LTA)": {"type": "consensus", "members": [SHIPPED, STALTA]},
    f"consensus 2 of (PhaseNet {SHIPPED_NAME}, PhaseNetLight ethz, STA/LTA)": {
        "type": "consensus", "members": [SHIPPED, ETHZ, STALTA]},
}


def _uses_ethz(picker_cfg: dict) -> bool:
    return picker_cfg.get("weights") == "ethz" or any(_uses_ethz(m) for m in picker_cfg.get("members", []))


def _with_phasenet_weights(picker_cfg: dict, weights: str) -> dict:
    """``picker_cfg`` with ``weights`` wherever it names the shipped PhaseNet weights."""
    if picker_cfg.get("members"):
        return {**picker_cfg, "members": [_with_phasenet_weights(m, weights) for m in picker_cfg["members"]]}
    return {**picker_cfg, "weights": weights} if picker_cfg.get("weights") == SHIPPED_NAME else picker_cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update-readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--phasenet-weights", help="PhaseNet weights scored in place of the shipped ones")
    parser.add_argument("--unmatched", action="store_true",
                        help="instead: where the picks that match no label lie, for the single models")
    parser.add_argument("--experiments", nargs="+", metavar="LABEL=PATH",
                        help="instead: these PhaseNet weights beside the shipped ones, scores and unmatched picks")
    args = parser.parse_args()
    if not (DATA / "labels.csv").is_file():
        raise SystemExit(f"needs the labelled waveforms in {DATA}")

    pickers = dict(PICKERS)
    cache = seisbench_cache()
    if cache is not None:
        # SeisBench reads the variable when first imported, which happens inside evaluate_picker.
        os.environ["SEISBENCH_CACHE_ROOT"] = str(cache)
    else:
        print("../shared/models/seisbench-cache absent: PhaseNetLight skipped", file=sys.stderr)
        pickers = {name: cfg for name, cfg in pickers.items() if not _uses_ethz(cfg)}
    if args.phasenet_weights:
        pickers = {name.replace(f"{SHIPPED_NAME} (shipped default: ", f"{args.phasenet_weights} (")
                   .replace(SHIPPED_NAME, args.phasenet_weights): _with_phasenet_weights(cfg, args.phasenet_weights)
                   for name, cfg in pickers.items()}

    records = read_labelled_records(DATA / "npz", DATA / "labels.csv")
    if args.experiments:
        return experiments(records, args.experiments, args.update_readme)
    if args.unmatched:
        try:
            return unmatched(records, {name: cfg for name, cfg in pickers.items() if cfg["type"] == "seisbench"},
                             args.update_readme)
        finally:
            if cache is not None:
                shutil.rmtree(cache.parent, ignore_errors=True)
    rows, seconds = [], {}
    try:
        for name, picker_cfg in pickers.items():
            started = time.perf_counter()
            metrics = evaluate_picker(records, picker_cfg, tolerances=(0.1, 0.5))
            seconds[name] = time.perf_counter() - started
            p, s = metrics["P"], metrics["S"]
            rows.append([
                name,
                p["0.1s"]["recall"], p["0.1s"]["precision"], p["0.5s"]["recall"], p["0.5s"]["precision"],
                s["0.1s"]["recall"], s["0.1s"]["precision"], s["0.5s"]["recall"], s["0.5s"]["precision"],
                p["0.5s"]["residual_median_s"], s["0.5s"]["residual_median_s"],
            ])
    finally:
        if cache is not None:
            shutil.rmtree(cache.parent, ignore_errors=True)

    header = ["model", "P recall 0.1 s", "P precision 0.1 s", "P recall 0.5 s", "P precision 0.5 s",
              "S recall 0.1 s", "S precision 0.1 s", "S recall 0.5 s", "S precision 0.5 s",
              "P residual median (s)", "S residual median (s)"]
    timing = ", ".join(f"{name} {wall:.1f} s" for name, wall in seconds.items())
    text = (f"Labelled waveforms ({len(records)} real records with manual P and S picks, "
            f"../shared/data/labelled-waveforms), each record picked alone; measured by "
            f"`python benchmarks/labelled_waveforms.py` on {machine()} ({timing}). Precision counts every pick of "
            f"the phase on the record; residual = pick - manual pick, of matches within 0.5 s.\n\n"
            f"{markdown_table(header, rows)}\n")
    print(text)
    if args.update_readme:
        update_readme("labelled-waveforms", text)


def unmatched(records, pickers: dict, write_readme: bool) -> None:
    """The table of where each model's unmatched picks lie (quakesnake.picker_evaluation)."""
    from quakesnake.picker_evaluation import SECOND_EVENT, UNMATCHED_PLACES, unmatched_pick_places

    rows = []
    for name, picker_cfg in pickers.items():
        metrics = evaluate_picker(records, picker_cfg, tolerances=(0.5,))
        places = unmatched_pick_places(records, picker_cfg).set_index("phase")
        for phase in places.index:
            scores = metrics[phase]["0.5s"]
            second = int(places.loc[phase, SECOND_EVENT])
            rows.append([name, phase, *[int(places.loc[phase, place]) for place in UNMATCHED_PLACES],
                         int(places.loc[phase, list(UNMATCHED_PLACES)].sum()), second,
                         round(scores["precision"], 3), round(scores["tp"] / max(scores["n_pred"] - second, 1), 3),
                         round(places.loc[phase, "median SNR, matched"], 1),
                         round(places.loc[phase, "median SNR, unmatched"], 1),
                         round(places.loc[phase, "median probability, matched"], 2),
                         round(places.loc[phase, "median probability, unmatched"], 2)])
    header = ["model", "pick phase", *UNMATCHED_PLACES, "unmatched in all", SECOND_EVENT, "precision",
              "precision, second events left out", "median SNR, matched", "median SNR, unmatched",
              "median probability, matched", "median probability, unmatched"]
    text = (f"Where the picks that match no label lie on the {len(records)} labelled records (each record "
            f"labels one event; a pick of one phase is matched only by that phase's label within 0.5 s; 'at' = "
            f"within 1 s of the record's P or S label; a second event's P and S: unmatched picks that pair "
            f"with an unmatched pick of the other phase at the record's own S - P within 0.5 s, most likely "
            f"an unlabelled event from the same source), measured by `python benchmarks/labelled_waveforms.py "
            f"--unmatched` on {machine()}.\n\n{markdown_table(header, rows)}\n")
    print(text)
    if write_readme:
        update_readme("labelled-unmatched", text)


def experiments(records, labelled_paths: list[str], write_readme: bool) -> None:
    """Trained PhaseNet weights beside the shipped ones: scores within 0.5 s and where the picks that
    match no label lie (quakesnake.picker_evaluation), threshold 0.3 and one window pass for all, as
    the training experiments were measured."""
    from quakesnake.picker_evaluation import SECOND_EVENT, UNMATCHED_PLACES, unmatched_pick_places

    models = {f"{SHIPPED_NAME} (shipped default)": SHIPPED_NAME}
    for item in labelled_paths:
        label, separator, path = item.partition("=")
        if not separator or not label or not path:
            raise SystemExit(f"--experiments {item!r}: give LABEL=PATH")
        models[label] = path
    places = [place for place in UNMATCHED_PLACES if place != "no label"]  # every record has both labels
    rows = []
    for label, weights in models.items():
        picker_cfg = {**SHIPPED, **AT_03, "dense_overlap": None, "weights": weights}
        metrics = evaluate_picker(records, picker_cfg, tolerances=(0.5,))
        unmatched_places = unmatched_pick_places(records, picker_cfg).set_index("phase")
        rows.append([label, metrics["P"]["0.5s"]["recall"], metrics["P"]["0.5s"]["precision"],
                     metrics["S"]["0.5s"]["recall"], metrics["S"]["0.5s"]["precision"],
                     *[int(unmatched_places.loc["P", place]) for place in places],
                     *[int(unmatched_places.loc["S", place]) for place in places],
                     int(unmatched_places.loc["P", SECOND_EVENT]), int(unmatched_places.loc["S", SECOND_EVENT])])
    header = ["weights", "P recall", "P precision", "S recall", "S precision",
              *[f"extra P: {place}" for place in places], *[f"extra S: {place}" for place in places],
              "extra P: a second event's", "extra S: a second event's"]
    text = (f"Trained PhaseNet weights on the {len(records)} labelled records (threshold 0.3, within 0.5 s; "
            f"one window pass; 'extra': picks that match no label, by where they lie, 'at' = within 1 s of the P or S label), "
            f"measured by `python benchmarks/labelled_waveforms.py --experiments` on {machine()}.\n\n"
            f"{markdown_table(header, rows)}\n")
    print(text)
    if write_readme:
        update_readme("labelled-training-experiments", text)


if __name__ == "__main__":
    main()
