"""The day-level stages: content-keyed cache, download of a day (staging, failures), picking a day."""
from __future__ import annotations

import logging

import numpy as np
import obspy
import pandas as pd
import pytest

from quakesnake import analyst, download, tabular
from quakesnake.cache import ContentCache, content_key
from quakesnake.picking import pick_day
from quakesnake.sources.fdsn import StationDay
from test_picking import event_stream

DAY = "2024-01-01"
START = obspy.UTCDateTime(DAY) + 600


def test_content_cache_keeps_one_key_per_name_and_never_a_half_entry(tmp_path):
    cache = ContentCache(tmp_path / "cache")
    source = tmp_path / "a.txt"
    source.write_text("first")
    key = content_key("x", 1)
    assert key == content_key("x", 1) and key != content_key("x", 2)
    assert cache.get("XX.AAA", key, (".txt",)) is None
    stored = cache.put("XX.AAA", key, {".txt": source})
    assert cache.get("XX.AAA", key, (".txt",)) == stored and stored[".txt"].read_text() == "first"
    assert source.exists()  # copied, not moved
    other = content_key("x", 2)
    cache.put("XX.AAA", other, {".txt": source})
    cache.put("XX.AAAB", other, {".txt": source})  # a longer name with the same prefix is another entry
    assert cache.get("XX.AAA", key, (".txt",)) is None
    assert sorted(p.name for p in cache.root.iterdir()) == sorted([f"XX.AAA.{other}.txt", f"XX.AAAB.{other}.txt"])
    assert cache.get("XX.AAA", other, (".txt", ".json")) is None  # every suffix or nothing


def raw_station_day(station: str, seed: int) -> obspy.Stream:
    """Three components of int32 counts, 10 minutes from START with one local event."""
    stream = event_stream([(200.0, 206.5)], seconds=600.0, start=START, station=station, seed=seed)
    for trace in stream:
        trace.data = np.round(trace.data * 100).astype(np.int32)
    return stream


def inventory_of(station: str) -> obspy.Inventory:
    from obspy.core.inventory import Channel, Inventory, Network, Station

    channels = [Channel(f"HH{c}", "", 46.0, 13.0, 100.0, 0.0) for c in "ZNE"]
    return Inventory(networks=[Network("XX", stations=[Station(station, 46.0, 13.0, 100.0, channels=channels)])])


def test_download_day_stages_what_arrived_and_refetches_only_what_failed(tmp_path, monkeypatch):
    calls = []
    broken = {"BBB"}

    def fake_fetch(source, station, day, margin_s, **kwargs):
        calls.append(station["station"])
        if station["station"] in broken:
            raise RuntimeError("HTTP 503 from every client")
        if station["station"] == "CCC":
            return StationDay(None, None, "no_data", "no data at any data centre", {"source": "fdsn"})
        return StationDay(raw_station_day(station["station"], 1), inventory_of(station["station"]), "ok",
                          "3 trace(s)", {"source": "fdsn", "client": "FAKE"})

    monkeypatch.setattr(download, "fetch_station_day", fake_fetch)
    stations = [{"network": "XX", "station": code, "latitude": 46.0, "longitude": 13.0} for code in ("AAA", "BBB", "CCC")]
    folder = tmp_path / "waveforms" / DAY
    outputs = dict(out_status=folder / "status.csv", out_inventory=folder / "inventory.xml",
                   out_waveforms=[folder / f"XX.{s['station']}.mseed" for s in stations],
                   staging_dir=tmp_path / "staging")
    source = {"type": "fdsn", "channels": ["HH?"], "locations": ["*"], "clients": ["FAKE"]}

    with pytest.raises(download.DownloadError, match=r"1 of 3 station-day\(s\).*XX.BBB: HTTP 503.*2 fetched are staged"):
        download.download_day(source, stations, DAY, 60.0, workers=2, **outputs)
    assert not (folder / "status.csv").exists()
    assert sorted(calls) == ["AAA", "BBB", "CCC"]

    broken.clear()
    calls.clear()
    changed_clients = {**source, "clients": ["OTHER", "FAKE"]}  # how data is fetched: the staged data still serves
    table = download.download_day(changed_clients, stations, DAY, 60.0, workers=2, **outputs)
    assert calls == ["BBB"]
    assert table[["station", "stage", "status"]].values.tolist() == [
        ["AAA", "download", "ok"], ["BBB", "download", "ok"], ["CCC", "download", "no_data"]]
    assert tabular.read_table(folder / "status.csv")["reason"].tolist()[2] == "no data at any data centre"
    assert len(obspy.read(str(folder / "XX.AAA.mseed"))) == 3 and (folder / "XX.CCC.mseed").stat().st_size == 0
    inventory = obspy.read_inventory(str(folder / "inventory.xml"))
    assert sorted(s.code for n in inventory for s in n) == ["AAA", "BBB"]
    assert not list((tmp_path / "staging" / DAY).iterdir())  # moved into place, nothing left behind


def write_raw(folder, station: str, seed: int):
    path = folder / f"XX.{station}.mseed"
    raw_station_day(station, seed).write(str(path), format="MSEED")
    return path


def test_pick_day_picks_every_station_day_once_and_reuses_unchanged_ones(tmp_path, caplog):
    raw_dir = tmp_path / "waveforms"
    raw_dir.mkdir()
    raws = [write_raw(raw_dir, "AAA", 1), write_raw(raw_dir, "BBB", 2), raw_dir / "XX.CCC.mseed"]
    raws[2].write_bytes(b"")  # no data that day
    outputs = dict(out_picks=tmp_path / "picks" / f"{DAY}.parquet", out_status=tmp_path / "picks" / f"{DAY}.status.csv",
                   out_station_picks=[tmp_path / "picks" / DAY / f"XX.{s}.parquet" for s in ("AAA", "BBB", "CCC")],
                   cache_dir=tmp_path / "cache", margin_s=60.0)
    caplog.set_level(logging.INFO, logger="quakesnake")

    first = pick_day(raws, DAY, {"type": "stalta"}, "stalta", **outputs)
    assert "3 station-days, 2 picked, 1 without usable data, 0 unchanged" in caplog.text
    assert sorted(first.groupby("station").size().items()) == [("AAA", 2), ("BBB", 2)]
    assert first["time"].is_monotonic_increasing
    status = tabular.read_table(outputs["out_status"])
    assert status[["station", "stage", "status"]].values.tolist() == [
        ["AAA", "preprocess", "ok"], ["BBB", "preprocess", "ok"], ["CCC", "preprocess", "skipped"]]
    per_station = [p.read_bytes() for p in outputs["out_station_picks"]]
    assert tabular.read_table(outputs["out_station_picks"][2]).empty

    caplog.clear()
    again = pick_day(raws, DAY, {"type": "stalta"}, "stalta", **outputs)
    assert "0 picked, 0 without usable data, 3 unchanged" in caplog.text
    pd.testing.assert_frame_equal(again, first)
    assert [p.read_bytes() for p in outputs["out_station_picks"]] == per_station
    assert tabular.read_table(outputs["out_status"]).equals(status)

    ahead = pick_day(raws, DAY, {"type": "stalta"}, "stalta", **{**outputs, "cache_dir": tmp_path / "cache2"},
                     preprocess_workers=3)  # three station-days preprocessed ahead (a GPU job's way)
    pd.testing.assert_frame_equal(ahead, first)

    caplog.clear()
    write_raw(raw_dir, "BBB", 3)  # one station-day replaced by other data
    pick_day(raws, DAY, {"type": "stalta"}, "stalta", **outputs)
    assert "1 picked, 0 without usable data, 2 unchanged" in caplog.text

    caplog.clear()
    pick_day(raws, DAY, {"type": "stalta", "trigger_on": 5.0}, "stalta", **outputs)  # new settings: all anew
    assert "2 picked, 1 without usable data, 0 unchanged" in caplog.text
    assert len(list((tmp_path / "cache").iterdir())) == 3 * 2  # one entry (picks + status) per station-day


def test_pick_day_gates_the_days_picks_by_snr_and_reuses_its_station_days(tmp_path, caplog, monkeypatch):
    """The station-days' picks (and their cache) keep every pick with its SNR; the picker's SNR
    gate applies to the day's picks, so changing it picks nothing again."""
    raw_dir = tmp_path / "waveforms"
    raw_dir.mkdir()
    raws = [write_raw(raw_dir, "AAA", 1), write_raw(raw_dir, "BBB", 2)]
    outputs = dict(out_picks=tmp_path / "picks" / f"{DAY}.parquet", out_status=tmp_path / "picks" / f"{DAY}.status.csv",
                   out_station_picks=[tmp_path / "picks" / DAY / f"XX.{s}.parquet" for s in ("AAA", "BBB")],
                   cache_dir=tmp_path / "cache", margin_s=60.0)
    caplog.set_level(logging.INFO, logger="quakesnake")
    everything = pick_day(raws, DAY, {"type": "stalta"}, "stalta", **outputs)
    assert everything["snr"].notna().all()
    gate = float(everything.loc[everything["phase"] == "P", "snr"].min()) + 0.01  # the weaker P goes

    caplog.clear()
    gated = pick_day(raws, DAY, {"type": "stalta", "p_min_snr": gate}, "stalta", **outputs)
    assert "0 picked, 0 without usable data, 2 unchanged" in caplog.text
    assert len(gated) == len(everything) - 1 and (gated.loc[gated["phase"] == "P", "snr"] >= gate).all()
    assert tabular.read_table(outputs["out_picks"]).equals(gated)
    station_picks = pd.concat([tabular.read_table(path) for path in outputs["out_station_picks"]])
    assert len(station_picks) == len(everything)

    caplog.clear()  # another way of measuring SNR: the cached SNRs are stale, all is picked again
    monkeypatch.setitem(analyst.CONVENTION, "signal_s", 3.0)
    pick_day(raws, DAY, {"type": "stalta", "p_min_snr": gate}, "stalta", **outputs)
    assert "2 picked, 0 without usable data, 0 unchanged" in caplog.text


def test_pick_day_loads_a_seisbench_model_once_for_the_whole_day(tmp_path, monkeypatch):
    from quakesnake.picking import shards as day_picking
    from test_picking import ENVELOPE, EnvelopePicker

    loads = []
    model = EnvelopePicker().eval()
    monkeypatch.setattr(day_picking, "picker_model", lambda cfg: loads.append(1) or model)
    raw_dir = tmp_path / "waveforms"
    raw_dir.mkdir()
    raws = [write_raw(raw_dir, code, seed) for seed, code in enumerate(("AAA", "BBB", "CCC"))]
    pick_day(raws, DAY, ENVELOPE, "envelope", out_picks=tmp_path / "day.parquet", out_status=tmp_path / "status.csv",
             out_station_picks=[tmp_path / f"{p.stem}.parquet" for p in raws], cache_dir=tmp_path / "cache",
             margin_s=60.0, threads=1)
    assert loads == [1]
    picks = tabular.read_table(tmp_path / "day.parquet")
    assert sorted(picks.groupby("station").size().items()) == [("AAA", 2), ("BBB", 2), ("CCC", 2)]


def test_on_a_gpu_all_cores_but_one_preprocess_ahead(monkeypatch):
    import torch

    from quakesnake import picking
    from quakesnake.picking import shards as day_picking

    phasenet = picking.picker_settings({"type": "seisbench", "model": "PhaseNet", "device": "auto"})
    assert day_picking._preprocess_workers(phasenet, 8) == 1  # no CUDA here: the CPU picks, one thread reads ahead
    monkeypatch.setattr(day_picking, "resolve_device", lambda requested: torch.device("cuda"))
    assert day_picking._preprocess_workers(phasenet, 8) == 7
    assert day_picking._preprocess_workers(picking.picker_settings({"type": "stalta"}), 8) == 1
    assert day_picking._preprocess_workers(phasenet, 1) == 1
