"""Pick recall and precision of consensus pickers on the default synthetic scenario; print the table.

    python benchmarks/consensus_picks.py [--day 2024-01-01] [--update-readme]

The default scenario's network and events (config/config.yaml), one day, every station-day
synthesized and preprocessed as the workflow does; every visible arrival is a reference pick
(truth_min_picks 1), so a pick of an uncatalogued but visible arrival is no false pick. The members
(shipped PhaseNet, STA/LTA and, with ../shared's SeisBench cache, PhaseNetLight ethz) pick each
station-day once; each consensus is :func:`quakesnake.picking.consensus.agreed_picks` of their
picks with the schema's tolerances, which is what a ``type: consensus`` picker computes.
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from common import ROOT, machine, markdown_table, seisbench_cache, shipped_phasenet_weights, update_readme

from quakesnake import picking, tabular
from quakesnake.config import typed_defaults, validate_config
from quakesnake.evaluation import match_picks
from quakesnake.picking.consensus import agreed_picks
from quakesnake.preprocess import preprocess_stream
from quakesnake.sources import synthetic

SHIPPED_WEIGHTS = shipped_phasenet_weights()
PHASENET = f"PhaseNet {SHIPPED_WEIGHTS}"
MEMBERS = {
    PHASENET: {"type": "seisbench", "model": "PhaseNet", "weights": SHIPPED_WEIGHTS, "device": "cpu"},
    "STA/LTA": {"type": "stalta"},
    "PhaseNetLight ethz": {"type": "seisbench", "model": "PhaseNetLight", "weights": "ethz", "version": "2", "device": "cpu"},
}
CONSENSUS = {
    f"consensus 2 of ({PHASENET}, STA/LTA)": [PHASENET, "STA/LTA"],
    f"consensus 2 of ({PHASENET}, PhaseNetLight ethz, STA/LTA)": [PHASENET, "PhaseNetLight ethz", "STA/LTA"],
}


def scores(predicted: pd.DataFrame, reference: pd.DataFrame) -> list:
    matches = match_picks(predicted, reference, tolerance_s=0.5)
    row = []
    for phase in ("P", "S"):
        n_ref = int((reference["phase"].str.upper().str[0] == phase).sum())
        n_pred = int((predicted["phase"] == phase).sum())
        tp = int((matches["phase"] == phase).sum())
        row += [round(tp / n_ref, 3) if n_ref else None, round(tp / n_pred, 3) if n_pred else None, n_pred]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--day", default="2024-01-01")
    parser.add_argument("--update-readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()

    members = dict(MEMBERS)
    cache = seisbench_cache()
    if cache is not None:
        os.environ["SEISBENCH_CACHE_ROOT"] = str(cache)  # read when SeisBench is first imported
    else:
        members.pop("PhaseNetLight ethz")
    consensus = {name: names for name, names in CONSENSUS.items() if all(n in members for n in names)}

    cfg = validate_config(yaml.safe_load((ROOT / "config" / "config.yaml").read_text()))
    scenario_cfg = {**cfg["synthetic"], "truth_min_picks": 1}
    stations = synthetic.station_table(scenario_cfg)
    scenario = synthetic.generate_scenario(scenario_cfg, stations, [args.day])
    arrivals = scenario.arrivals
    truth_dir = Path(tempfile.mkdtemp(prefix="quakesnake-consensus-"))
    synthetic.write_scenario(scenario, truth_dir)
    _, reference, _ = tabular.read_reference(truth_dir)
    shutil.rmtree(truth_dir)
    day_start = pd.Timestamp(args.day)
    reference = reference[(reference["time"] >= day_start) & (reference["time"] < day_start + pd.Timedelta(days=1))]

    models = {name: picking.picker_model(cfg_) for name, cfg_ in members.items()}
    picks = {name: [] for name in members}
    seconds = {name: 0.0 for name in members}
    try:
        for _, station in stations.iterrows():
            raw, _ = synthetic.synthesize_station_day(scenario_cfg, station, args.day, arrivals,
                                                      margin_s=cfg["source"]["margin_s"])
            stream = preprocess_stream(raw, **cfg["preprocess"])
            for name, member_cfg in members.items():
                started = time.perf_counter()
                picks[name].append(picking.pick_stream(stream, member_cfg, day=args.day, model=models[name]))
                seconds[name] += time.perf_counter() - started
    finally:
        if cache is not None:
            shutil.rmtree(cache.parent, ignore_errors=True)
    picks = {name: pd.concat(tables, ignore_index=True) for name, tables in picks.items()}
    defaults = typed_defaults("picker", "consensus")
    for name, names in consensus.items():
        per_station = [agreed_picks([picks[n][picks[n]["station"] == code] for n in names], defaults["min_agree"],
                                    defaults["tolerance_s"]) for code in stations["station"]]
        picks[name] = pd.concat(per_station, ignore_index=True)

    header = ["picker", "P recall", "P precision", "P picks", "S recall", "S precision", "S picks"]
    rows = [[name, *scores(table, reference)] for name, table in picks.items()]
    n_p = int((tabular.phase_letters(reference["phase"]) == "P").sum())
    n_s = int((tabular.phase_letters(reference["phase"]) == "S").sum())
    timing = ", ".join(f"{name} {wall:.0f} s" for name, wall in seconds.items())
    text = (f"Consensus pickers on the default synthetic scenario, {args.day}: {len(stations)} stations, "
            f"{n_p} visible P and {n_s} visible S arrivals (every one a reference pick), matched within 0.5 s; "
            f"tolerances {defaults['tolerance_s']}, min_agree {defaults['min_agree']}. Measured by "
            f"`python benchmarks/consensus_picks.py` on {machine()} (picking: {timing}). A pick without a "
            f"visible arrival may still be of a real arrival below the analyst's SNR (the synthetic truth "
            f"has every event), so precision here is a lower bound.\n\n"
            f"{markdown_table(header, rows)}\n")
    print(text)
    if args.update_readme:
        update_readme("consensus-picks", text)


if __name__ == "__main__":
    main()
