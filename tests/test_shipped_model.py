"""The PhaseNet weights the project ships as the default picker
(src/quakesnake/weights/phasenet/quakesnake-synthetic-realnoise-windows) pick a synthetic scenario
they were not trained on (config/train-phasenet*.yaml use seed 101 and other days) as the issue
asks: P recall >= 0.9 and S recall >= 0.8 within 0.5 s of the visible arrivals."""
from __future__ import annotations

import pandas as pd
import pytest

from quakesnake import picking, preprocess, tabular
from quakesnake.evaluation import match_picks
from quakesnake.sources import synthetic

DAY = "2024-02-10"
# A fresh seed, the default region and noise; every visible arrival is a reference pick.
SCENARIO = {"seed": 23, "n_stations": 4, "events_per_day": 60, "truth_min_picks": 1}
SHIPPED_DEFAULT = "quakesnake-synthetic-realnoise-windows"
PICKER = {"type": "seisbench", "model": "PhaseNet", "weights": SHIPPED_DEFAULT, "device": "cpu"}


def test_the_default_picker_is_the_shipped_model():
    import yaml

    from workflow_runs import ROOT

    pickers = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["pickers"]
    assert any(p.get("type") == "seisbench" and p.get("weights") == SHIPPED_DEFAULT for p in pickers.values())
    for suffix in ("json", "pt"):
        weights = picking.SHIPPED_WEIGHTS_DIR / "phasenet" / f"{SHIPPED_DEFAULT}.{suffix}"
        assert 0 < weights.stat().st_size < 5_000_000  # "a few MB at most"


@pytest.mark.slow
def test_shipped_phasenet_recalls_unseen_synthetic_arrivals(tmp_path):
    stations = synthetic.station_table(SCENARIO)
    scenario = synthetic.generate_scenario(SCENARIO, stations, [DAY])
    synthetic.write_scenario(scenario, tmp_path / "truth")
    model = picking.load_model(PICKER)
    picks = []
    for _, station in stations.iterrows():
        stream, _ = synthetic.synthesize_station_day(SCENARIO, station, DAY, scenario.arrivals, margin_s=60)
        raw, processed = tmp_path / f"{station.station}.raw.mseed", tmp_path / f"{station.station}.mseed"
        stream.write(str(raw), format="MSEED")
        preprocess.preprocess_file(raw, processed)
        picks.append(picking.pick_file(processed, tmp_path / f"{station.station}.parquet", PICKER, DAY,
                                       "phasenet", model=model))
    predicted = pd.concat(picks, ignore_index=True)
    _, reference, _ = tabular.read_reference(tmp_path / "truth")
    day_start = pd.Timestamp(DAY)
    reference = reference[(reference["time"] >= day_start) & (reference["time"] < day_start + pd.Timedelta(days=1))]
    matches = match_picks(predicted, reference, tolerance_s=0.5)
    for phase, goal in (("P", 0.9), ("S", 0.8)):
        n_reference = int((reference["phase"].str.upper().str[0] == phase).sum())
        recall = (matches["phase"] == phase).sum() / n_reference
        assert n_reference >= 30, (phase, n_reference)
        assert recall >= goal, (phase, recall, n_reference)
