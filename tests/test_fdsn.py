"""The fdsn source against a local mock FDSN server: fallback, retries, no-data records, the token, the DAG."""
from __future__ import annotations

import json
import logging
import os
import socket
from pathlib import Path

import obspy
import pytest
import yaml
from mock_fdsn import MockFDSN, make_inventory, make_stream, self_signed_certificate
from obspy import UTCDateTime
from workflow_runs import ROOT, planned_jobs, snakemake

from quakesnake import tabular
from quakesnake.config import SCHEMA_PATH, validate_config
from quakesnake.shards import day_range, station_table
from quakesnake.sources import fdsn
from quakesnake.traveltimes import DEFAULT_LAYERS

SCHEMA = SCHEMA_PATH
DAY = "2024-03-20"
STATIONS = [
    {"network": "OX", "station": "AAA", "latitude": 46.0, "longitude": 13.0},  # HH and HN: HH wins
    {"network": "IV", "station": "BBB", "latitude": 45.5, "longitude": 12.0, "channels": ["HNZ", "HNN", "HNE"]},
    {"network": "SL", "station": "CCC", "latitude": 46.2, "longitude": 14.5},
    {"network": "IV", "station": "FAR", "latitude": 40.0, "longitude": 15.5},  # outside the OGS rectangle
    {"network": "OX", "station": "LONG", "latitude": 46.1, "longitude": 13.1, "channels": ["LHZ"]},  # no wanted channel
]
OGS_BOX = {"type": "rectangle", "lat_min": 44.3, "lat_max": 47.5, "lon_min": 9.5, "lon_max": 15.0}


def network(stations=STATIONS):
    inventory = make_inventory([dict(s, channels=s.get("channels", ["HHZ", "HHN", "HHE", "HNZ", "HNN", "HNE"]))
                                for s in stations])
    return inventory, make_stream(inventory, "2024-03-19", "2024-03-22")


def source(*clients, **settings) -> dict:
    """The validated ``source`` section: fast timeouts and backoff so that faults cost milliseconds."""
    given = {"type": "fdsn", "clients": list(clients), "timeout_s": 0.5, "retries": 2, "backoff_s": 0.01, **settings}
    return validate_config({"source": given}, SCHEMA)["source"]


@pytest.fixture
def server():
    with MockFDSN(*network()) as mock:
        yield mock


def fetch(src, net="OX", sta="AAA", **station):
    return fdsn.fetch_station_day(src, {"network": net, "station": sta, **station}, DAY, 60.0)


def test_station_day_carries_its_margins_raw_counts_and_responses(server, tmp_path):
    result = fetch(source(server.url))
    assert result.status == "ok" and result.details["client"] == server.url
    start, end = fdsn.time_window(DAY, 60.0)
    assert start == UTCDateTime("2024-03-19T23:59:00") and end == UTCDateTime("2024-03-21T00:01:00")
    assert sorted(tr.stats.channel for tr in result.stream) == ["HHE", "HHN", "HHZ"]  # HH before HN
    for trace in result.stream:
        assert trace.stats.starttime == start and trace.stats.endtime == end
        assert trace.data.dtype.kind == "i"  # counts, untouched
    channels = result.inventory.get_contents()["channels"]
    assert sorted(channels) == ["OX.AAA..HHE", "OX.AAA..HHN", "OX.AAA..HHZ"]
    assert all(c.response.instrument_sensitivity for n in result.inventory for s in n for c in s)
    assert [q["level"] for q in server.queries("station")] == ["response"]
    assert [q["channel"] for q in server.queries("dataselect")] == ["HH?"]

    paths = {k: tmp_path / f"OX.AAA.{k}" for k in ("mseed", "xml", "status.json")}
    fdsn.write_station_day(result, paths["mseed"], paths["xml"], paths["status.json"])
    assert len(obspy.read(str(paths["mseed"]))) == 3
    assert obspy.read_inventory(str(paths["xml"])).get_contents()["channels"] == channels
    status = tabular.read_shard_status(paths["status.json"])
    assert status["stage"] == "download" and status["status"] == "ok" and status["channels"] == "HH?"
    assert not list(tmp_path.glob("*.part"))


def test_station_without_the_first_channel_group_gets_the_next(server):
    result = fetch(source(server.url), "IV", "BBB")
    assert result.status == "ok" and result.details["channels"] == "HN?"
    assert [q["channel"] for q in server.queries("dataselect")] == ["HN?"]  # no request for a group it lacks


@pytest.mark.parametrize("service", ["station", "dataselect"])
@pytest.mark.parametrize("fault", ["slow", "500", "503", "short", "cut"])
def test_transient_faults_are_retried_until_the_answer_is_whole(server, service, fault):
    server.fail(service, fault)
    result = fetch(source(server.url))
    assert result.status == "ok"
    assert len(server.queries(service)) == 2  # the spoiled answer, then the good one
    assert sum(tr.stats.npts for tr in result.stream) == 3 * 86521  # nothing of the spoiled answer kept


@pytest.mark.parametrize("fault", ["204", "empty"])
def test_no_waveforms_is_a_no_data_record_with_the_stationxml(server, tmp_path, fault):
    server.fail("dataselect", fault, fault)  # neither HH nor HN
    result = fetch(source(server.url))
    assert result.status == "no_data" and result.stream is None
    assert result.details["tried"] == [{"client": server.url, "outcome": "station metadata but no waveforms"}]
    paths = [tmp_path / "w.mseed", tmp_path / "w.xml", tmp_path / "w.status.json"]
    fdsn.write_station_day(result, *paths)
    assert paths[0].stat().st_size == 0  # downstream reads a 0-byte file as "no data"
    assert obspy.read_inventory(str(paths[1])).get_contents()["stations"]
    assert tabular.read_shard_status(paths[2])["status"] == "no_data"


def test_not_found_is_an_error_not_an_empty_archive(server):
    server.fail("dataselect", "404")  # no nodata=404 is asked for: a 404 means a wrong URL
    with pytest.raises(fdsn.SourceError, match="Unknown HTTP code: 404"):
        fetch(source(server.url))
    assert len(server.queries("dataselect")) == 1  # not retried either


def test_station_unknown_everywhere_is_no_data_without_stationxml(server, tmp_path):
    server.fail("station", "204")
    result = fetch(source(server.url))
    assert result.status == "no_data" and result.inventory is None
    assert server.queries("dataselect") == []
    fdsn.write_station_day(result, tmp_path / "w.mseed", tmp_path / "w.xml", tmp_path / "w.json")
    assert (tmp_path / "w.xml").stat().st_size == 0


def test_failures_after_every_retry_and_client_fail_the_job_naming_each_client():
    inventory, stream = network()
    with MockFDSN(inventory, stream) as broken, MockFDSN(inventory, stream) as cut:
        broken.fail("station", *["500"] * 3)
        cut.fail("dataselect", *["cut"] * 3)
        with pytest.raises(fdsn.SourceError) as error:
            fetch(source(broken.url, cut.url))
    message = str(error.value)
    assert "OX.AAA 2024-03-20" in message and "a rerun asks again" in message
    assert f"{broken.url}: failed: FDSNInternalServerException" in message
    assert f"{cut.url}: failed: TruncatedAnswer: cut miniSEED" in message
    assert len(broken.queries("station")) == 3 and len(cut.queries("dataselect")) == 3


def test_one_failing_client_and_no_data_elsewhere_is_a_failure_not_a_gap():
    inventory, stream = network()
    with MockFDSN(inventory, stream) as broken, MockFDSN(make_inventory(STATIONS[2:3])) as other:
        broken.fail("station", *["503"] * 3)
        with pytest.raises(fdsn.SourceError, match="no station metadata"):
            fetch(source(broken.url, other.url))


def test_fallback_to_the_next_client_and_home_client_first():
    inventory, stream = network()
    with MockFDSN(make_inventory(STATIONS[2:3])) as first, MockFDSN(inventory, stream) as second:
        result = fetch(source(first.url, second.url))
        assert result.status == "ok" and result.details["client"] == second.url
        assert result.details["tried"][0] == {"client": first.url, "outcome": "no station metadata"}
        asked_first = len(first.requests)
        result = fetch(source(first.url, second.url), client=second.url)  # the station table's client
        assert result.details["client"] == second.url and len(first.requests) == asked_first


def test_station_table_selects_by_patterns_channels_and_domain(server):
    days = day_range("2024-03-20", "2024-03-21")
    stations, failures = fdsn.query_station_table(source(server.url, domain=OGS_BOX, channels=["HH?", "EH?", "HN?"]), days)
    assert failures == []
    assert sorted(stations["network"] + "." + stations["station"]) == ["IV.BBB", "OX.AAA", "SL.CCC"]
    assert set(stations["client"]) == {server.url}
    query = server.queries("station")[0]
    assert query["level"] == "station" and query["channel"] == "HH?,EH?,HN?"
    assert float(query["minlatitude"]) == 44.3 and float(query["maxlongitude"]) == 15.0
    assert query["starttime"].startswith("2024-03-20") and query["endtime"].startswith("2024-03-22")

    circle = {"type": "circle", "latitude": 46.0, "longitude": 13.0, "radius_km": 100.0}
    stations, _ = fdsn.query_station_table(source(server.url, domain=circle, networks=["OX", "SL"]), days)
    assert list(stations["station"]) == ["AAA"]  # CCC is 116 km away, BBB not in OX/SL


def test_station_table_is_asked_once_and_again_when_the_selection_changes(server, tmp_path):
    config = {"days": {"start": DAY, "end": DAY}, "source": source(server.url, domain=OGS_BOX)}
    first = station_table(config, cache_dir=tmp_path)
    assert len(first) == 3 and len(server.queries("station")) == 1
    again = station_table(config, cache_dir=tmp_path)
    assert again[["network", "station", "client"]].equals(first[["network", "station", "client"]])
    assert len(server.queries("station")) == 1  # cached
    config["source"]["networks"] = ["OX"]
    assert list(station_table(config, cache_dir=tmp_path)["network"]) == ["OX"]
    assert len(server.queries("station")) == 2
    cached = json.loads(next(tmp_path.glob("fdsn-*.json")).read_text())
    assert set(cached) == {"clients", "networks", "stations", "locations", "channels", "domain", "days"}


def refusing_url() -> str:
    """The URL of a port nothing listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def test_incomplete_station_table_is_used_but_not_cached(server, tmp_path):
    down = refusing_url()
    config = {"days": {"start": DAY, "end": DAY}, "source": source(down, server.url, retries=1)}
    assert len(station_table(config, cache_dir=tmp_path)) == 4  # AAA, BBB, CCC, FAR (no domain); LONG: LHZ only
    assert not list(tmp_path.glob("fdsn-*"))
    config["source"]["clients"] = [down]
    with pytest.raises(fdsn.SourceError, match="no FDSN client answered"):
        station_table(config, cache_dir=tmp_path)


def test_station_file_wins_and_bad_client_names_are_rejected_before_any_request(server, tmp_path):
    path = tmp_path / "stations.csv"
    path.write_text("network,station,latitude,longitude\nOX,AAA,46.0,13.0\n")
    config = {"days": {"start": DAY, "end": DAY}, "stations_file": str(path), "source": source(server.url)}
    assert list(station_table(config, cache_dir=tmp_path)["station"]) == ["AAA"]
    assert server.requests == []
    config["source"]["clients"] = ["NOSUCHCENTRE"]
    with pytest.raises(fdsn.SourceError, match="source.clients: .*NOSUCHCENTRE"):
        station_table(config, cache_dir=tmp_path)


# ------------------------------------------------------------------------------ the token

TOKEN_TEXT = "-----BEGIN PGP MESSAGE-----\nquakesnake-secret-token-4f1c9e\n-----END PGP MESSAGE-----\n"


@pytest.fixture
def tls_server(tmp_path_factory, monkeypatch):
    """A mock speaking HTTPS (ObsPy sends tokens only there), trusted through SSL_CERT_FILE."""
    tls = self_signed_certificate(tmp_path_factory.mktemp("tls"))
    if tls is None:
        pytest.skip("needs the openssl command to make a certificate for the HTTPS mock server")
    monkeypatch.setenv("SSL_CERT_FILE", str(tls[0]))
    with MockFDSN(*network(), tls=tls) as mock:
        yield mock


@pytest.fixture
def token_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("secret-dir-7d2a") / "eida-token-8b3e.asc"
    path.write_text(TOKEN_TEXT)
    return path


def test_token_reaches_the_data_centre_and_nothing_else(tls_server, token_file, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    token = fdsn.eida_token(str(token_file))
    result = fdsn.fetch_station_day(source(tls_server.url), {"network": "OX", "station": "AAA"}, DAY, 60.0, token=token)
    assert result.status == "ok"
    assert tls_server.tokens == [TOKEN_TEXT]
    assert [r for s, r, _ in tls_server.requests if s == "dataselect"] == ["queryauth"]
    fdsn.write_station_day(result, tmp_path / "w.mseed", tmp_path / "w.xml", tmp_path / "w.json")
    for text in [caplog.text, (tmp_path / "w.json").read_text(), (tmp_path / "w.xml").read_text()]:
        assert "secret-token" not in text and str(token_file) not in text and "secret-dir" not in text


def test_token_problems_are_reported_without_the_token_or_its_path(tmp_path, tls_server, monkeypatch):
    missing = tmp_path / "secret-dir-7d2a" / "nothing-here.asc"
    with pytest.raises(fdsn.SourceError) as error:
        fdsn.eida_token(str(missing))
    assert "source.eida_token" in str(error.value) and "secret-dir" not in str(error.value)
    monkeypatch.setenv(fdsn.TOKEN_ENV, str(missing))
    with pytest.raises(fdsn.SourceError, match="QUAKESNAKE_EIDA_TOKEN"):
        fdsn.eida_token(None)
    with pytest.raises(fdsn.SourceError) as error:
        fdsn.fetch_station_day(source(tls_server.url), {"network": "OX", "station": "AAA"}, DAY, 60.0,
                               token="not a pgp message: quakesnake-secret-token-4f1c9e")
    assert "PGP" in str(error.value) and "secret-token" not in str(error.value)


# --------------------------------------------------------------------------- the workflow

def ogs_config_against(mock: MockFDSN, workdir: Path, **source_settings) -> list[Path]:
    """config/ogs.yaml and, after it, an override pointing the source at the mock (and a reference)."""
    reference = workdir.parent / f"{workdir.name}-reference"
    reference.mkdir()
    (reference / "events.csv").write_text("event_id,time,latitude,longitude,depth_km\n")
    (reference / "picks.csv").write_text("event_id,station,phase,time\n")
    (reference / "stations.csv").write_text("station,network,latitude,longitude\n")
    # the OGS model lives in ../shared; these tests need a 1D model, not that one
    velocity_model = workdir.parent / f"{workdir.name}-velocity.csv"
    velocity_model.write_text(DEFAULT_LAYERS.to_csv(index=False))
    override = workdir.parent / f"{workdir.name}-override.yaml"
    override.write_text(yaml.safe_dump({
        "reference": str(reference),
        "velocity_model": str(velocity_model),
        "source": {"clients": [mock.url], "timeout_s": 5, "retries": 1, "backoff_s": 0.1, **source_settings},
    }))
    return [ROOT / "config" / "ogs.yaml", override]


def test_ogs_dry_run_builds_every_station_day_from_the_station_service(server, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    configs = ogs_config_against(server, workdir)
    result = snakemake(workdir, "-n", "--configfile", *map(str, configs))
    jobs = planned_jobs(result.stdout + result.stderr)
    ogs = yaml.safe_load((ROOT / "config" / "ogs.yaml").read_text())
    days = day_range(ogs["days"]["start"], ogs["days"]["end"])
    assert len(days) == 93
    stations = {tuple(Path(path).name.split(".")[:2]) for j in jobs if j["rule"] == "download"
                for path in j["output"] if path.endswith(".mseed")}
    assert stations == {("OX", "AAA"), ("IV", "BBB"), ("SL", "CCC")}  # OX.LONG: no HH/EH/HN; IV.FAR: outside
    rules = [j["rule"] for j in jobs]
    assert rules.count("download") == len(days)  # one job per day fetches its 3 station-days
    assert rules.count("pick") == len(days) * len(ogs["pickers"])
    assert {j["wildcards"]["picker"] for j in jobs if j["rule"] == "pick"} == {"phasenetlight-ethz", "stalta"}
    assert rules.count("associate") == len(days) * 2 * 2
    assert "scenario" not in rules
    assert len(server.queries("station")) == 1 and server.queries("dataselect") == []
    assert list((workdir / "results" / "station_queries").glob("fdsn-*.csv"))
    snakemake(workdir, "-n", "--configfile", *map(str, configs))
    assert len(server.queries("station")) == 1  # the second dry run reads the cached list


@pytest.mark.slow
def test_downloads_run_once_and_keep_the_token_out_of_every_file(tls_server, token_file, tmp_path):
    workdir = tmp_path / "run"
    workdir.mkdir()
    configs = ogs_config_against(tls_server, workdir)
    days = ["2024-03-20", "2024-03-21"]
    tls_server.fail("dataselect", "500")  # retried within the job
    targets = [f"results/waveforms/{day}/status.csv" for day in days]
    env = dict(os.environ, QUAKESNAKE_EIDA_TOKEN=str(token_file))
    result = snakemake(workdir, *targets, "--cores", "2", "--configfile", *map(str, configs), env=env)
    for target in targets:
        status = tabular.read_table(workdir / target).set_index(["network", "station"])
        assert sorted(status.index) == [("IV", "BBB"), ("OX", "AAA"), ("SL", "CCC")]
        for code in (("OX", "AAA"), ("SL", "CCC")):
            assert status.loc[code, "status"] == "ok"
            assert json.loads(status.loc[code, "details"])["client"] == tls_server.url
            assert (workdir / target).with_name(".".join(code) + ".mseed").stat().st_size > 0
    assert len(tls_server.tokens) == 2 * 3 and {r for s, r, _ in tls_server.requests if s == "dataselect"} == {"queryauth"}
    leaks = [str(path) for path in workdir.rglob("*") if path.is_file()
             if any(secret in path.read_bytes() for secret in (b"secret-token", b"secret-dir", str(token_file).encode()))]
    assert leaks == []
    assert "secret-token" not in result.stdout + result.stderr and "secret-dir" not in result.stdout + result.stderr

    asked = len(tls_server.requests)
    again = snakemake(workdir, *targets, "--cores", "2", "--configfile", *map(str, configs), env=env)
    assert "Nothing to be done" in again.stdout + again.stderr
    override = yaml.safe_load(configs[1].read_text())
    override["source"].update(retries=3, timeout_s=7)  # how data is fetched does not make it stale
    configs[1].write_text(yaml.safe_dump(override))
    snakemake(workdir, *targets, "--cores", "2", "--configfile", *map(str, configs), env=env)
    assert len(tls_server.requests) == asked
