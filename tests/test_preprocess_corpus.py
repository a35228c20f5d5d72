"""A corpus of bad station-days, each made here: every case gives a processed shard or a precise skip reason.

Every case runs through :func:`preprocess_file` as the workflow runs it (shard XX.STA, day
2024-01-01, 60 s margin) and checks the status record and the output file; masked arrays,
which miniSEED cannot hold, go through :func:`preprocess_stream`. The last tests follow a
skipped shard through picking and the status table, and through a whole workflow run.
"""
from __future__ import annotations

import io as bytes_io
import json
from dataclasses import dataclass
from typing import Callable

import numpy as np
import obspy
import pandas as pd
import pytest

from quakesnake import tabular
from quakesnake.picking import pick_file
from quakesnake.preprocess import preprocess_file, preprocess_stream

START = obspy.UTCDateTime("2024-01-01T00:00:00")
RATE = 100.0
PRIORITY = "HH,EH,HN,HG,BH"


def noise(seconds=120.0, rate=RATE, seed=0, std=100.0, offset=5000) -> np.ndarray:
    return (np.random.default_rng(seed).normal(0, std, int(round(seconds * rate))) + offset).astype(np.int32)


def trace(channel="HHZ", data=None, *, rate=RATE, start=START, station="STA", network="XX", seed=0) -> obspy.Trace:
    data = noise(rate=rate, seed=seed) if data is None else np.asanyarray(data)
    header = dict(network=network, station=station, channel=channel, sampling_rate=rate, starttime=start)
    return obspy.Trace(data, header=header)


def three_components(seconds=120.0, rate=RATE) -> obspy.Stream:
    return obspy.Stream([trace("HH" + c, noise(seconds, rate, seed=i), rate=rate) for i, c in enumerate("ZNE")])


def mseed_bytes(stream: obspy.Stream, **kwargs) -> bytes:
    buffer = bytes_io.BytesIO()
    stream.write(buffer, format="MSEED", **kwargs)
    return buffer.getvalue()


def fragments(full: np.ndarray, cuts, *, channel="HHZ", rate=RATE, drop=()) -> list[obspy.Trace]:
    """``full`` cut at ``cuts`` (sample indices); ``drop[i]`` samples removed before cut i (a gap)."""
    bounds = [0, *cuts, full.size]
    pieces = []
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        end = b - (drop[i] if i < len(drop) else 0)
        pieces.append(trace(channel, full[a:end], rate=rate, start=START + a / rate))
    return pieces


@dataclass
class Case:
    name: str
    content: Callable[[], bytes]  # the shard's raw miniSEED file
    check: Callable[[dict, obspy.Stream | None], None]  # (status record, processed output or None)


def skipped(reason: str, *, exact=True):
    def check(record, out):
        assert record["status"] == "skipped", record
        assert out is None
        if exact:
            assert record["reason"] == reason
        else:
            assert record["reason"].startswith(reason), record["reason"]
    return check


def ok(channels: list[str], *, npts: int | None = None, then=None):
    def check(record, out):
        assert record["status"] == "ok", record["reason"]
        assert record["output_channels"] == channels == sorted(tr.id for tr in out)
        for tr in out:
            assert tr.stats.sampling_rate == RATE and tr.data.dtype == np.float32
            assert np.isfinite(tr.data).all()
            if npts is not None:
                assert tr.stats.npts == npts, tr
        if then:  # a check function asserts itself; a lambda's comparison must hold
            assert then(record, out) is not False, record
    return check


ZNE = ["XX.STA..HHE", "XX.STA..HHN", "XX.STA..HHZ"]


# --------------------------------------------------------------------------------------------
# Cases


def corrupt_record_content() -> bytes:
    good = mseed_bytes(obspy.Stream([trace(data=noise(600))]), reclen=512, encoding="STEIM2")
    rng = np.random.default_rng(3)
    start = 512 * 10 + 64  # record 10 keeps its header, its Steim2 frames become noise
    return good[:start] + rng.bytes(448) + good[start + 448 :]


def check_corrupt_record(record, out):
    channel = record["channels"]["XX.STA..HHZ"]
    assert record["corrupt_records_dropped"] == 1
    assert channel["gaps"] == 1 and channel["gaps_zero_filled"] == 1
    assert out[0].stats.starttime == START and out[0].stats.npts == 60000
    assert "1 corrupt record(s) dropped" in record["reason"]


def many_small_gaps_content() -> bytes:
    rng = np.random.default_rng(5)
    traces = []
    for i, component in enumerate("ZNE"):
        cuts = 10 * np.sort(rng.choice(np.arange(10, 3600 * 10 - 10), 1999, replace=False))  # >= 10 samples apart
        traces += fragments(noise(3600, seed=i), cuts, channel="HH" + component, drop=rng.integers(1, 5, 1999))
    return mseed_bytes(obspy.Stream(traces))


def check_many_small_gaps(record, out):
    assert record["input_traces"] == 6000
    for trace_id in ZNE:
        channel = record["channels"][trace_id]
        assert channel["segments"] == 2000 and channel["gaps"] == channel["gaps_interpolated"] == 1999
        assert channel["gaps_zero_filled"] == 0
    assert all(np.count_nonzero(tr.data == 0) < 10 for tr in out)  # bridged, not zero-filled


def overlaps_content() -> bytes:
    full = noise(300)
    pieces = [trace(data=full[:12000]), trace(data=full[10000:20000], start=START + 100),
              trace(data=full[20000:], start=START + 200), trace(data=full[20000:25000], start=START + 200)]
    return mseed_bytes(obspy.Stream(pieces))


def check_overlaps(record, out):
    channel = record["channels"]["XX.STA..HHZ"]
    assert channel["overlaps"] == 2 and channel["overlap_s"] == pytest.approx(70.0)
    assert channel["conflicting_overlaps"] == 0 and channel["gaps"] == 0
    reference = preprocess_stream(obspy.Stream([trace(data=noise(300))]))[0]
    np.testing.assert_allclose(out[0].data, reference.data, atol=1e-2)


def conflicting_overlap_content() -> bytes:
    early, late = noise(120, seed=1), noise(120, seed=2)
    return mseed_bytes(obspy.Stream([trace(data=early), trace(data=late[3000:], start=START + 30)]))


def check_conflicting_overlap(record, out):
    assert record["channels"]["XX.STA..HHZ"]["conflicting_overlaps"] == 1
    assert "1 overlap(s) with differing samples" in record["reason"]
    # the later record wins: after 30 s the output follows the late data (up to the removed line)
    late = noise(120, seed=2)[3000:].astype(float)
    assert np.corrcoef(out[0].data[3000:], late)[0, 1] > 0.999


def mixed_rates_content() -> bytes:
    z = [trace("HHZ", noise(60, 200.0, seed=1), rate=200.0), trace("HHZ", noise(60, 100.0, seed=2), start=START + 60)]
    n = trace("HHN", noise(120, 100.0, seed=3))
    e = trace("HHE", noise(120, 50.0, seed=4), rate=50.0)
    return mseed_bytes(obspy.Stream([*z, n, e]))


def check_mixed_rates(record, out):
    assert record["sampling_rates_hz"] == [50.0, 100.0, 200.0]
    assert record["channels"]["XX.STA..HHZ"]["sampling_rates_hz"] == [100.0, 200.0]
    assert all(tr.stats.starttime == START for tr in out)


SINE_HZ = 2.0


def odd_rate_content() -> bytes:
    rate = 99.99  # a header that is no simple ratio of 100 Hz
    times = np.arange(int(3600 * rate)) / rate
    return mseed_bytes(obspy.Stream([trace(data=1000 * np.sin(2 * np.pi * SINE_HZ * times), rate=rate)]),
                       encoding="FLOAT64")


def check_odd_rate(record, out):
    data = out[0].data
    assert out[0].stats.starttime == START and abs(data.size - 360_000) <= 1
    times = np.arange(data.size) / RATE
    middle = slice(1000, -1000)
    # timing held over the hour: a rate taken as 100 Hz would be 36 samples (a quarter period) off by the end
    np.testing.assert_allclose(data[middle], 1000 * np.sin(2 * np.pi * SINE_HZ * times[middle]), atol=5)


def with_dead_channel_content() -> bytes:
    stream = three_components()
    stream.select(channel="HHN")[0].data[:] = 5000
    return mseed_bytes(stream)


def spike_content() -> bytes:
    data = noise(120)
    data[6000] += 1_000_000  # one sample, a telemetry bit error
    return mseed_bytes(obspy.Stream([trace(data=data)]))


def check_spike(record, out):
    assert record["channels"]["XX.STA..HHZ"]["spikes_removed"] == 1
    assert abs(out[0].data[6000]) < 5 * 100  # back among its neighbours (noise std 100)


def strong_signal_content() -> bytes:
    """A local event recorded close by: a 20 Hz burst 1000 times the noise, no spike in it."""
    times = np.arange(12000) / RATE
    burst = np.where(times > 60, 1e5 * np.exp(-(times - 60) / 0.5) * np.sin(2 * np.pi * 20 * (times - 60)), 0.0)
    return mseed_bytes(obspy.Stream([trace(data=(noise(120) + burst).astype(np.int32))]))


def check_strong_signal(record, out):
    assert record["channels"]["XX.STA..HHZ"]["spikes_removed"] == 0
    assert np.abs(out[0].data).max() > 0.9e5  # the peak is kept


CLIP = 2**23 - 1


def clipped_content() -> bytes:
    times = np.arange(12000) / RATE
    event = np.where(times > 60, 3e7 * np.exp(-(times - 60) / 3.0) * np.sin(2 * np.pi * 2 * (times - 60)), 0.0)
    return mseed_bytes(obspy.Stream([trace(data=np.clip(noise(120) + event, -CLIP, CLIP).astype(np.int32))]))


def check_clipped(record, out):
    raw = obspy.read(bytes_io.BytesIO(clipped_content()))[0].data
    expected = int(np.count_nonzero(np.abs(raw) == CLIP))
    assert expected > 100
    assert record["channels"]["XX.STA..HHZ"]["clipped_samples"] == expected
    assert f"{expected} clipped sample(s)" in record["reason"]
    assert np.ptp(out[0].data) == pytest.approx(2 * CLIP, rel=1e-3)  # reported, not altered


def nan_content() -> bytes:
    data = noise(300).astype(np.float64)
    data[5000:5030] = np.nan  # 0.3 s: interpolated
    data[15000:18000] = np.nan  # 30 s: zero-filled
    return mseed_bytes(obspy.Stream([trace(data=data)]), encoding="FLOAT64")


def check_nan(record, out):
    channel = record["channels"]["XX.STA..HHZ"]
    assert channel["nonfinite_samples"] == 3030
    assert channel["gaps_interpolated"] == 1 and channel["gaps_zero_filled"] == 1
    assert np.all(out[0].data[15000:18000] == 0) and np.all(out[0].data[5000:5030] != 0)


def lower_case_content() -> bytes:
    stream = three_components()
    for tr in stream:
        tr.stats.channel = tr.stats.channel.lower()
    return mseed_bytes(stream)


def mixed_encodings_content() -> bytes:
    full = noise(120)
    return mseed_bytes(obspy.Stream([trace(data=full[:6000])]), encoding="STEIM2") + mseed_bytes(
        obspy.Stream([trace(data=full[6000:].astype(np.float32), start=START + 60)]), encoding="FLOAT32")


def clock_glitch_content() -> bytes:
    glitched = trace(data=noise(30, seed=9), start=obspy.UTCDateTime("1970-01-01"))
    return mseed_bytes(obspy.Stream([glitched, *three_components()]))


def zero_rate_content() -> bytes:
    return mseed_bytes(obspy.Stream([trace("HHN", noise(10), rate=0.0), trace("HHZ")]))


def too_short_content() -> bytes:
    return mseed_bytes(obspy.Stream([trace(data=noise(5, seed=i), start=START + 35 * i) for i in range(20)]))


CASES = [
    Case("empty file", lambda: b"", skipped("empty input file (0 bytes): no data from download")),
    Case("random bytes", lambda: np.random.default_rng(1).bytes(5000), skipped("corrupt miniSEED: ", exact=False)),
    Case("text, not miniSEED", lambda: b"<html>503 Service Unavailable</html>\n" * 40,
         skipped("corrupt miniSEED: InternalMSEEDParseTimeError: julday out of bounds", exact=False)),
    Case("header only", lambda: mseed_bytes(obspy.Stream([trace()]))[:48],
         skipped("corrupt miniSEED: ObsPyMSEEDFilesizeTooSmallError: The smallest possible mini-SEED record",
                 exact=False)),
    Case("one undecodable record", corrupt_record_content, ok(["XX.STA..HHZ"], then=check_corrupt_record)),
    Case("trailing garbage", lambda: mseed_bytes(three_components()) + b"garbage!" * 100,
         ok(ZNE, npts=12000, then=lambda record, out: record["read_warnings"]["count"] > 0)),
    Case("truncated last record", lambda: mseed_bytes(obspy.Stream([trace()]), reclen=512)[:-200],
         ok(["XX.STA..HHZ"], then=lambda record, out: 11000 < out[0].stats.npts <= 12000)),
    Case("2000 fragments per channel with small gaps", many_small_gaps_content,
         ok(ZNE, npts=360_000, then=check_many_small_gaps)),
    Case("overlaps and duplicated records", overlaps_content, ok(["XX.STA..HHZ"], npts=30000, then=check_overlaps)),
    Case("overlap with differing samples", conflicting_overlap_content,
         ok(["XX.STA..HHZ"], npts=12000, then=check_conflicting_overlap)),
    Case("mixed sampling rates", mixed_rates_content, ok(ZNE, npts=12000, then=check_mixed_rates)),
    Case("99.99 Hz header", odd_rate_content, ok(["XX.STA..HHZ"], then=check_odd_rate)),
    Case("vertical only", lambda: mseed_bytes(obspy.Stream([trace("HHZ")])), ok(["XX.STA..HHZ"], npts=12000)),
    Case("horizontals only", lambda: mseed_bytes(three_components().select(component="[NE]")),
         ok(["XX.STA..HHE", "XX.STA..HHN"], npts=12000)),
    Case("one dead channel", with_dead_channel_content,
         ok(["XX.STA..HHE", "XX.STA..HHZ"], then=lambda record, out: record["dropped_channels"]
            == {"XX.STA..HHN": "constant at 5000 (dead channel)"})),
    Case("all channels dead", lambda: mseed_bytes(obspy.Stream([trace(data=np.zeros(12000, np.int32))])),
         skipped("no channel left: XX.STA..HHZ constant at 0 (dead channel)")),
    Case("single-sample spike", spike_content, ok(["XX.STA..HHZ"], then=check_spike)),
    Case("strong real signal is no spike", strong_signal_content, ok(["XX.STA..HHZ"], then=check_strong_signal)),
    Case("clipped event", clipped_content, ok(["XX.STA..HHZ"], then=check_clipped)),
    Case("NaN samples", nan_content, ok(["XX.STA..HHZ"], npts=30000, then=check_nan)),
    Case("lower-case channel codes", lower_case_content,
         ok(ZNE, then=lambda record, out: record["upper_cased_channel_codes"] == ["hhe", "hhn", "hhz"])),
    Case("channel codes outside the priority list",
         lambda: mseed_bytes(obspy.Stream([trace("XYZ"), trace("LHZ", noise(600, 1.0), rate=1.0)])),
         skipped(f"no channel of the priority list {PRIORITY} with component Z, N, E, 1 or 2; "
                 "has XX.STA..LHZ, XX.STA..XYZ")),
    Case("rotated components only", lambda: mseed_bytes(obspy.Stream([trace("HHR"), trace("HHT")])),
         skipped(f"no channel of the priority list {PRIORITY} with component Z, N, E, 1 or 2; "
                 "has XX.STA..HHR, XX.STA..HHT")),
    Case("another station's data", lambda: mseed_bytes(obspy.Stream([trace(station="OTHER", network="YY")])),
         skipped("no usable trace: 1 trace(s) of YY.OTHER, not XX.STA")),
    Case("another station mixed in", lambda: mseed_bytes(obspy.Stream([trace(station="OTHER"), trace()])),
         ok(["XX.STA..HHZ"], then=lambda record, out: record["dropped_traces"]
            == {"trace(s) of XX.OTHER, not XX.STA": 1})),
    Case("record stamped 1970 (clock glitch)", clock_glitch_content,
         ok(ZNE, npts=12000, then=lambda record, out: record["dropped_traces"]
            == {"trace(s) outside the shard window 2023-12-31T23:59:00.000000Z - 2024-01-02T00:01:00.000000Z": 1})),
    Case("sampling rate 0 in a header", zero_rate_content,
         ok(["XX.STA..HHZ"], then=lambda record, out: record["dropped_traces"]
            == {"trace(s) with sampling rate 0.0 Hz": 1})),
    Case("only fragments shorter than min_segment_s", too_short_content,
         skipped("no channel left: XX.STA..HHZ no stretch of data longer than 10.0 s")),
    Case("integer and float records in one channel", mixed_encodings_content, ok(["XX.STA..HHZ"], npts=12000)),
]


def run_case(case: Case, tmp_path):
    source = tmp_path / "raw" / "XX.STA.mseed"
    source.parent.mkdir()
    source.write_bytes(case.content())
    out, status = tmp_path / "pre" / "XX.STA.mseed", tmp_path / "pre" / "XX.STA.status.json"
    record = preprocess_file(source, out, status, day="2024-01-01", margin_s=60.0, station_id="XX.STA")
    assert tabular.read_shard_status(status) == json.loads(json.dumps(record, default=str))
    assert record["stage"] == "preprocess" and record["input"] == str(source)
    assert not out.with_name(out.name + ".part").exists()
    return record, (obspy.read(str(out)) if out.stat().st_size else None), out


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_corpus_case(case, tmp_path, caplog):
    record, processed, out = run_case(case, tmp_path)
    case.check(record, processed)
    if record["status"] == "skipped":
        assert out.stat().st_size == 0
        assert any(f"skipped: {record['reason']}" in message for message in caplog.messages)  # logged


def test_masked_samples_are_gaps():
    data = np.ma.masked_array(noise(300).astype(np.float64), mask=np.zeros(30000, bool))
    data.mask[5000:5030] = True  # 0.3 s: interpolated
    data.mask[15000:18000] = True  # 30 s: zero-filled
    details = {}
    out = preprocess_stream(obspy.Stream([trace(data=data)]), details=details)[0]
    channel = details["channels"]["XX.STA..HHZ"]
    assert channel["masked_samples"] == 3030 and channel["segments"] == 3
    assert channel["gaps_interpolated"] == 1 and channel["gaps_zero_filled"] == 1
    assert out.stats.npts == 30000 and not np.ma.isMaskedArray(out.data)
    assert np.all(out.data[15000:18000] == 0) and np.all(out.data[5000:5030] != 0)


def test_despike_can_be_turned_off():
    data = noise(120)
    data[6000] += 1_000_000
    details = {}
    out = preprocess_stream(obspy.Stream([trace(data=data)]), despike=False, details=details)[0]
    assert details["channels"]["XX.STA..HHZ"]["spikes_removed"] == 0
    assert out.data[6000] > 900_000


# --------------------------------------------------------------------------------------------
# After preprocess: picking a skipped shard, the status table


def test_pick_file_on_a_skipped_shard_writes_an_empty_table_without_loading_a_model(tmp_path):
    record, _, out = run_case(CASES[1], tmp_path)  # random bytes
    assert record["status"] == "skipped" and out.stat().st_size == 0
    # weights that do not exist: loading the model would fail, so passing proves it was not loaded
    picker = {"type": "seisbench", "model": "PhaseNet", "weights": str(tmp_path / "no-such-weights.pt")}
    picks_path = tmp_path / "picks" / "XX.STA.parquet"
    pick_file(out, picks_path, picker, day="2024-01-01", picker_name="phasenet")
    picks = tabular.read_table(picks_path, tabular.PICK_COLUMNS)
    assert picks.empty and list(picks.columns) == tabular.PICK_COLUMNS
    assert picks["time"].dtype == np.dtype("datetime64[ns]") and picks["probability"].dtype == np.float64


def test_shard_status_table_lists_every_shard_and_stage(tmp_path):
    paths = []
    for day, sta, stage, status, reason in [
        ("2024-01-02", "AAA", "download", "ok", "synthetic scenario"),
        ("2024-01-02", "AAA", "preprocess", "ok", "kept HHZ"),
        ("2024-01-01", "BBB", "download", "no_data", "no data at any data centre"),
        ("2024-01-01", "BBB", "preprocess", "skipped", "empty input file (0 bytes): no data from download"),
    ]:
        folder = "waveforms" if stage == "download" else "preprocessed"
        paths.append(tmp_path / folder / day / f"XX.{sta}.status.json")
        tabular.write_shard_status(paths[-1], stage, status, reason, extra=1)
    table = tabular.shard_status_table(paths)
    assert list(table.columns) == ["day", "network", "station", "stage", "status", "reason"]
    assert table.values.tolist() == [
        ["2024-01-01", "XX", "BBB", "download", "no_data", "no data at any data centre"],
        ["2024-01-01", "XX", "BBB", "preprocess", "skipped", "empty input file (0 bytes): no data from download"],
        ["2024-01-02", "XX", "AAA", "download", "ok", "synthetic scenario"],
        ["2024-01-02", "XX", "AAA", "preprocess", "ok", "kept HHZ"],
    ]
    paths[0].write_text("{not json")
    with pytest.raises(tabular.TableError, match="AAA.status.json: cannot read shard status"):
        tabular.shard_status_table(paths)


def test_shard_status_table_reads_the_stages_day_tables(tmp_path):
    STATUS_COLUMNS = tabular.SHARD_STATUS_TABLE_COLUMNS

    download = pd.DataFrame([["2024-01-01", "XX", "BBB", "download", "no_data", "no data at any data centre", "{}"],
                             ["2024-01-01", "XX", "AAA", "download", "ok", "synthetic scenario", "{}"]],
                            columns=STATUS_COLUMNS)
    preprocess = pd.DataFrame([["2024-01-01", "XX", "BBB", "preprocess", "skipped", "empty input file", "{}"],
                               ["2024-01-01", "XX", "AAA", "preprocess", "ok", "kept HHZ", "{}"]], columns=STATUS_COLUMNS)
    paths = [tmp_path / "waveforms/2024-01-01/status.csv", tmp_path / "picks/stalta/2024-01-01.status.csv"]
    tabular.write_table(download, paths[0])
    tabular.write_table(preprocess, paths[1])
    assert tabular.shard_status_table(paths).values.tolist() == [
        ["2024-01-01", "XX", "AAA", "download", "ok", "synthetic scenario"],
        ["2024-01-01", "XX", "AAA", "preprocess", "ok", "kept HHZ"],
        ["2024-01-01", "XX", "BBB", "download", "no_data", "no data at any data centre"],
        ["2024-01-01", "XX", "BBB", "preprocess", "skipped", "empty input file"],
    ]
    tabular.write_table(download.assign(status="lost"), paths[0])
    with pytest.raises(tabular.TableError, match="status.csv: shard status 'lost'"):
        tabular.shard_status_table(paths)


# --------------------------------------------------------------------------------------------
# The workflow completes with bad shards and says which and why

WORKFLOW_CONFIG = {
    "days": {"start": "2024-01-01", "end": "2024-01-01"},
    "synthetic": {"seed": 7, "n_stations": 4, "events_per_day": 10, "swarm_probability_per_day": 0.0,
                  "truth_min_picks": 4},
    "pickers": {"stalta": {"type": "stalta"}},
    "associators": {"pyocto": {"type": "pyocto", "n_picks": 4, "n_p_picks": 2, "n_s_picks": 1,
                               "n_p_and_s_picks": 1}},
}


@pytest.mark.slow
def test_workflow_completes_with_corrupt_and_empty_shards(tmp_path):
    import yaml
    from workflow_runs import snakemake

    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(WORKFLOW_CONFIG))
    common = ["--cores", "2", "--configfile", str(config)]
    snakemake(tmp_path, *common, "--until", "download")
    waveforms = tmp_path / "results/waveforms/2024-01-01"
    (waveforms / "SY.S001.mseed").write_bytes(b"<html>503 Service Unavailable</html>\n" * 40)
    (waveforms / "SY.S002.mseed").write_bytes(b"")
    snakemake(tmp_path, *common)

    table = pd.read_csv(tmp_path / "results/status/shards.csv", dtype=str, keep_default_na=False)
    preprocess = table[table["stage"] == "preprocess"].set_index("station")
    assert len(table) == 2 * 4 and len(preprocess) == 4
    assert preprocess.loc["S001", "status"] == "skipped"
    assert preprocess.loc["S001", "reason"].startswith("corrupt miniSEED: InternalMSEEDParseTimeError")
    assert preprocess.loc["S002", "reason"] == "empty input file (0 bytes): no data from download"
    assert (preprocess.loc[["S003", "S004"], "status"] == "ok").all()
    assert not (tmp_path / "results/preprocessed").exists()  # preprocessed in memory only
    for station in ("S001", "S002"):
        assert tabular.read_table(tmp_path / f"results/picks/stalta/2024-01-01/SY.{station}.parquet").empty
    assert (tmp_path / "results/catalog/stalta/pyocto.csv").exists()
    assert (tmp_path / "results/evaluation/summary.csv").exists()
