"""The sds source on a small SeisComP Data Structure archive written in the test."""
from __future__ import annotations

from pathlib import Path

import obspy
import obspy.clients.filesystem.sds
import pandas as pd
import pytest
import yaml
from mock_fdsn import make_inventory, make_stream
from obspy import UTCDateTime
from workflow_runs import snakemake

from quakesnake import tabular
from quakesnake.config import SCHEMA_PATH, validate_config
from quakesnake.shards import station_table
from quakesnake.sources import fdsn, sds

SCHEMA = SCHEMA_PATH
DAY = "2024-03-20"
STATIONS = [
    {"network": "OX", "station": "AAA", "latitude": 46.0, "longitude": 13.0},
    {"network": "IV", "station": "BBB", "latitude": 45.5, "longitude": 12.0, "channels": ["HNZ", "HNN", "HNE"]},
    {"network": "SL", "station": "EMPTY", "latitude": 46.2, "longitude": 14.5},  # in the inventory, no files
    {"network": "IV", "station": "FAR", "latitude": 40.0, "longitude": 15.5},
]


def write_sds(root: Path, stream: obspy.Stream, days: list[str], spill_s: float = 30.0) -> None:
    """One file per channel and day in the SDS layout; each file runs ``spill_s`` past midnight,
    as archives filled from real-time streams do (records straddle the day boundary)."""
    for day in days:
        start = UTCDateTime(day)
        for trace in stream.slice(start, start + 86400 + spill_s):
            s = trace.stats
            path = root / f"{start.year}" / s.network / s.station / f"{s.channel}.D" / \
                f"{s.network}.{s.station}.{s.location}.{s.channel}.D.{start.year}.{start.julday:03d}"
            path.parent.mkdir(parents=True, exist_ok=True)
            trace.write(str(path), format="MSEED", reclen=512)


@pytest.fixture
def archive(tmp_path):
    """SDS tree with OX.AAA (HH) and IV.BBB (HN) for 2024-03-19..21, and an inventory directory."""
    inventory = make_inventory(STATIONS)
    stream = make_stream(inventory.select(station="AAA") + inventory.select(station="BBB"), "2024-03-19", "2024-03-22")
    root = tmp_path / "sds"
    write_sds(root, stream, ["2024-03-19", "2024-03-20", "2024-03-21"])
    stationxml = tmp_path / "stationxml"
    stationxml.mkdir()
    for network in inventory:
        for station in network:
            inventory.select(network=network.code, station=station.code).write(
                str(stationxml / f"{network.code}.{station.code}.xml"), format="STATIONXML")
    return root, stationxml


def source(root, inventory, **settings) -> dict:
    return validate_config({"source": {"type": "sds", "sds_root": str(root), "inventory": str(inventory), **settings}},
                           SCHEMA)["source"]


def test_station_day_spans_the_midnight_margins_of_the_neighbouring_files(archive, tmp_path):
    root, stationxml = archive
    assert (root / "2024/OX/AAA/HHZ.D/OX.AAA..HHZ.D.2024.080").is_file()  # 2024-03-20 is day 080
    result = sds.read_station_day(source(root, stationxml), {"network": "OX", "station": "AAA"}, DAY, 60.0)
    assert result.status == "ok" and result.details == {"source": "sds", "channels": "HH?"}
    start, end = UTCDateTime("2024-03-19T23:59:00"), UTCDateTime("2024-03-21T00:01:00")
    assert len(result.stream) == 3  # the straddling records of the day before merged, not doubled
    for trace in result.stream:
        assert trace.stats.starttime == start and trace.stats.endtime == end
        assert trace.stats.npts == 86521
    assert sorted(result.inventory.get_contents()["channels"]) == ["OX.AAA..HHE", "OX.AAA..HHN", "OX.AAA..HHZ"]
    paths = [tmp_path / "w.mseed", tmp_path / "w.xml", tmp_path / "w.status.json"]
    fdsn.write_station_day(result, *paths)
    assert tabular.read_shard_status(paths[2])["status"] == "ok"
    assert len(obspy.read(str(paths[0]))) == 3


def test_channel_groups_in_priority_order_and_a_single_inventory_file(archive, tmp_path):
    root, stationxml = archive
    combined = tmp_path / "all.xml"
    sds.read_inventory(stationxml).write(str(combined), format="STATIONXML")
    result = sds.read_station_day(source(root, combined), {"network": "IV", "station": "BBB"}, DAY, 60.0)
    assert result.status == "ok" and result.details["channels"] == "HN?"
    only_hh = sds.read_station_day(source(root, combined, channels=["HH?"]), {"network": "IV", "station": "BBB"}, DAY, 60.0)
    assert only_hh.status == "no_data"


def test_no_files_is_no_data_with_the_stationxml(archive, tmp_path):
    root, stationxml = archive
    result = sds.read_station_day(source(root, stationxml), {"network": "SL", "station": "EMPTY"}, DAY, 60.0)
    assert result.status == "no_data" and result.stream is None
    assert "SL.EMPTY" in result.reason and "SDS archive" in result.reason
    paths = [tmp_path / "w.mseed", tmp_path / "w.xml", tmp_path / "w.status.json"]
    fdsn.write_station_day(result, *paths)
    assert paths[0].stat().st_size == 0 and paths[1].stat().st_size > 0
    assert tabular.read_shard_status(paths[2])["status"] == "no_data"
    later = sds.read_station_day(source(root, stationxml), {"network": "OX", "station": "AAA"}, "2024-03-25", 60.0)
    assert later.status == "no_data"


def test_bad_archive_or_inventory_is_a_clear_error(archive, tmp_path):
    root, stationxml = archive
    with pytest.raises(fdsn.SourceError, match=f"source.sds_root {tmp_path / 'nowhere'}: not a directory"):
        sds.read_station_day(source(tmp_path / "nowhere", stationxml), {"network": "OX", "station": "AAA"}, DAY, 60.0)
    (stationxml / "OX.AAA.xml").unlink()
    with pytest.raises(fdsn.SourceError, match="no StationXML for OX.AAA..HH"):
        sds.read_station_day(source(root, stationxml), {"network": "OX", "station": "AAA"}, DAY, 60.0)
    (stationxml / "broken.xml").write_text("<FDSNStationXML")
    with pytest.raises(fdsn.SourceError, match="broken.xml: cannot read StationXML"):
        sds.read_inventory(stationxml)
    with pytest.raises(Exception, match="sds_root"):
        validate_config({"source": {"type": "sds"}}, SCHEMA)


def test_station_table_comes_from_the_inventory_selection(archive):
    root, stationxml = archive
    config = {"days": {"start": DAY, "end": DAY},
              "source": source(root, stationxml, domain={"type": "rectangle", "lat_min": 44.3, "lat_max": 47.5,
                                                         "lon_min": 9.5, "lon_max": 15.0})}
    stations = station_table(config)
    assert sorted(stations["network"] + "." + stations["station"]) == ["IV.BBB", "OX.AAA", "SL.EMPTY"]
    assert stations.set_index("station").loc["AAA", "latitude"] == 46.0
    config["source"]["networks"] = ["OX"]
    assert list(station_table(config)["station"]) == ["AAA"]
    config["source"]["networks"] = ["XX"]
    with pytest.raises(fdsn.SourceError, match="no station matches"):
        station_table(config)


def test_workflow_downloads_from_the_archive(archive, tmp_path):
    root, stationxml = archive
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = tmp_path / "sds.yaml"
    config.write_text(yaml.safe_dump({
        "days": {"start": DAY, "end": DAY},
        "source": {"type": "sds", "sds_root": str(root), "inventory": str(stationxml), "networks": ["OX", "SL"]},
    }))
    target = f"results/waveforms/{DAY}/status.csv"
    snakemake(workdir, target, "--cores", "2", "--configfile", str(config))
    status = tabular.read_table(workdir / target).set_index("station")["status"]
    assert status["AAA"] == "ok" and status["EMPTY"] == "no_data"
    assert (workdir / f"results/waveforms/{DAY}/SL.EMPTY.mseed").stat().st_size == 0
    assert len(obspy.read(str(workdir / f"results/waveforms/{DAY}/OX.AAA.mseed"))) == 3


def test_loose_files_become_an_archive_the_sds_source_reads(tmp_path):
    """`quakesnake sds-archive`: files cut across midnight land in day files, a second filing of
    the same data changes nothing, and the StationXML it writes lets the sds source read them."""
    from quakesnake.cli import main

    inventory = make_inventory(STATIONS[:1])
    stream = make_stream(inventory, "2024-03-19T22:00:00", "2024-03-20T02:00:00", sampling_rate=10.0)
    loose = tmp_path / "loose.mseed"
    stream.write(str(loose), format="MSEED")
    table = tmp_path / "stations.csv"
    pd.DataFrame(STATIONS[:1]).drop(columns=["channels"], errors="ignore").to_csv(table, index=False)
    root, stationxml = tmp_path / "sds", tmp_path / "inventory.xml"
    for _ in range(2):
        assert main(["sds-archive", str(loose), "--root", str(root), "--stations", str(table),
                     "--inventory", str(stationxml)]) == 0
    day_files = sorted(p.name for p in root.rglob("*.D.2024.*"))
    assert len(day_files) == 2 * len(stream) and {name[-3:] for name in day_files} == {"079", "080"}
    back = obspy.clients.filesystem.sds.Client(str(root)).get_waveforms("OX", "AAA", "*", "HH?", UTCDateTime("2024-03-19"),
                                                                          UTCDateTime("2024-03-21"))
    back.merge()
    for trace in stream:
        copy = back.select(id=trace.id)[0]
        assert copy.stats.starttime == trace.stats.starttime and (copy.data == trace.data).all()
    written = obspy.read_inventory(str(stationxml))
    assert sorted(c.code for c in written.select(station="AAA")[0][0]) == sorted(tr.stats.channel for tr in stream)
    day = sds.read_station_day(source(root, stationxml), STATIONS[0], "2024-03-20", 60.0)
    assert day.status == "ok" and len(day.stream) == len(stream)


def test_filing_data_of_a_station_the_table_lacks_is_a_clear_error(tmp_path, capsys):
    from quakesnake.cli import main

    inventory = make_inventory(STATIONS[:1])
    loose = tmp_path / "loose.mseed"
    make_stream(inventory, "2024-03-20T00:00:00", "2024-03-20T01:00:00").write(str(loose), format="MSEED")
    other = tmp_path / "stations.csv"
    pd.DataFrame([STATIONS[3]]).to_csv(other, index=False)
    assert main(["sds-archive", str(loose), "--root", str(tmp_path / "sds"), "--stations", str(other),
                 "--inventory", str(tmp_path / "inv.xml")]) == 2
    assert "OX.AAA is not in the station table" in capsys.readouterr().err
    assert main(["sds-archive", str(tmp_path / "missing.mseed"), "--root", str(tmp_path / "sds")]) == 2
    assert "no such file" in capsys.readouterr().err
