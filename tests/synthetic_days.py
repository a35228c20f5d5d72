"""Preprocessed synthetic station-days for the training tests."""
from __future__ import annotations

from pathlib import Path

from quakesnake import preprocess
from quakesnake.sources import synthetic


def preprocessed_station_days(root: Path, scenario_cfg: dict, day: str) -> list[Path]:
    """Every station-day of a scenario synthesized, preprocessed into ``root/NET.STA.mseed``; its
    truth in ``root/truth``. Returns the preprocessed files."""
    stations = synthetic.station_table(scenario_cfg)
    scenario = synthetic.generate_scenario(scenario_cfg, stations, [day])
    synthetic.write_scenario(scenario, root / "truth")
    files = []
    for _, station in stations.iterrows():
        stream, _ = synthetic.synthesize_station_day(scenario_cfg, station, day, scenario.arrivals, margin_s=60)
        raw = root / f"raw.{station.station}.mseed"
        stream.write(str(raw), format="MSEED")
        files.append(root / f"{station.network}.{station.station}.mseed")
        preprocess.preprocess_file(raw, files[-1])
    return files
