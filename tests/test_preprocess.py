"""preprocess: instrument choice, merging, gaps, detrending, resampling, file I/O."""
from __future__ import annotations

import json

import numpy as np
import obspy
import pytest

from quakesnake import tabular
from quakesnake.preprocess import PreprocessError, preprocess_file, preprocess_stream

START = obspy.UTCDateTime("2024-01-01T00:00:00")


def trace(channel="HHZ", *, station="STA", location="", seconds=120.0, rate=100.0, start=START, data=None, seed=0):
    if data is None:
        data = np.random.default_rng(seed).normal(0, 100, int(seconds * rate)).astype(np.int32) + 5000
    header = dict(network="XX", station=station, location=location, channel=channel)
    return obspy.Trace(np.asarray(data), header={**header, "sampling_rate": rate, "starttime": start})


def ids(stream):
    return sorted(tr.id for tr in stream)


def test_output_is_float32_detrended_and_continuous():
    ramp = 1000.0 + 3.0 * np.arange(12000) + np.random.default_rng(1).normal(0, 5, 12000)
    out = preprocess_stream(obspy.Stream([trace(data=ramp)]))
    assert len(out) == 1
    data = out[0].data
    assert data.dtype == np.float32 and not np.ma.isMaskedArray(data)
    assert abs(data.mean()) < 0.5
    assert abs(np.polyfit(np.arange(data.size), data, 1)[0]) < 1e-4  # the trend is gone
    assert data.std() == pytest.approx(5, rel=0.1)


def test_short_gap_is_interpolated_and_long_gap_zero_filled():
    full = trace(seconds=300).data
    rate = 100
    short_gap = (100 * rate, 100 * rate + 50)  # 0.5 s
    long_gap = (200 * rate, 230 * rate)  # 30 s
    pieces = [(0, short_gap[0]), (short_gap[1], long_gap[0]), (long_gap[1], full.size)]
    stream = obspy.Stream([trace(data=full[a:b], start=START + a / rate) for a, b in pieces])

    out = preprocess_stream(stream)[0]
    assert out.stats.npts == full.size and out.stats.starttime == START
    data = out.data
    assert np.all(data[long_gap[0] : long_gap[1]] == 0)
    bridged = data[short_gap[0] : short_gap[1]]
    assert np.all(bridged != 0)
    # linear interpolation: evenly spaced between the neighbouring samples
    before, after = data[short_gap[0] - 1], data[short_gap[1]]
    assert np.allclose(np.diff(bridged), (after - before) / (short_gap[1] - short_gap[0] + 1), atol=1e-3)


def test_short_stretch_between_long_gaps_is_dropped_and_edges_trimmed():
    rate = 100
    segments = [(0, 60), (120, 125), (185, 245)]  # seconds; the 5 s island sits between two 60 s gaps
    stream = obspy.Stream([trace(seconds=b - a, start=START + a, seed=i) for i, (a, b) in enumerate(segments)])
    stream += trace(seconds=3, start=START + 300, seed=9)  # a 3 s sliver after the end: trimmed away
    out = preprocess_stream(stream, min_segment_s=10.0)[0]
    assert out.stats.starttime == START and out.stats.npts == 245 * rate
    assert np.all(out.data[60 * rate : 185 * rate] == 0)


def test_overlapping_records_merge_to_one_trace():
    full = trace(seconds=200).data
    overlapping = obspy.Stream([trace(data=full[:12000]), trace(data=full[10000:], start=START + 100)])
    merged = preprocess_stream(overlapping)[0]
    reference = preprocess_stream(obspy.Stream([trace(data=full)]))[0]
    assert merged.stats.npts == reference.stats.npts == full.size
    np.testing.assert_allclose(merged.data, reference.data, atol=1e-2)


def test_mixed_sampling_rates_in_one_channel_become_one_rate():
    stream = obspy.Stream([trace(seconds=60, rate=200.0), trace(seconds=60, rate=100.0, start=START + 60)])
    out = preprocess_stream(stream)[0]
    assert out.stats.sampling_rate == 100.0
    assert out.stats.npts == 120 * 100 and out.stats.starttime == START


@pytest.mark.parametrize(
    ("rate", "seconds", "expected"),
    [(200.0, 3600, 360_000), (40.0, 100, 10_000), (50.0, 100, 10_000), (125.0, 80, 8_000), (100.0, 90, 9_000)],
)
def test_resampling_gives_exact_lengths(rate, seconds, expected):
    out = preprocess_stream(obspy.Stream([trace(channel="HHZ", seconds=seconds, rate=rate)]), min_segment_s=1.0)[0]
    assert out.stats.sampling_rate == 100.0
    assert out.stats.npts == expected
    assert out.stats.starttime == START


def test_resampling_keeps_timing_and_amplitude():
    """A 5 Hz sine recorded at 200 Hz is the same sine at 100 Hz: no delay, no attenuation."""
    times = np.arange(60 * 200) / 200.0
    out = preprocess_stream(obspy.Stream([trace(data=1000 * np.sin(2 * np.pi * 5 * times), rate=200.0)]))[0]
    expected = 1000 * np.sin(2 * np.pi * 5 * np.arange(out.stats.npts) / 100.0)
    middle = slice(500, -500)  # away from the edges
    np.testing.assert_allclose(out.data[middle], expected[middle], atol=10)


def test_instrument_priority_then_location_order():
    stream = obspy.Stream()
    for channel in ("BHZ", "BHN", "BHE", "EHZ", "HHZ", "HHN", "HHE"):
        stream += trace(channel=channel, station="A")
    for location in ("10", "00"):
        for channel in ("EHZ", "EHN", "EHE"):
            stream += trace(channel=channel, station="B", location=location)
    stream += trace(channel="LHZ", station="C", rate=1.0, seconds=600)  # not in the priority list

    out = preprocess_stream(stream)
    assert ids(out) == [
        "XX.A..HHE", "XX.A..HHN", "XX.A..HHZ", "XX.B.00.EHE", "XX.B.00.EHN", "XX.B.00.EHZ",
    ]
    out = preprocess_stream(stream, channel_priority=("BH", "HH"))
    assert [tr.id for tr in out.select(station="A")] == ["XX.A..BHE", "XX.A..BHN", "XX.A..BHZ"]


def test_component_sets():
    z12 = obspy.Stream([trace(channel=c) for c in ("HHZ", "HH1", "HH2")])
    assert ids(preprocess_stream(z12)) == ["XX.STA..HH1", "XX.STA..HH2", "XX.STA..HHZ"]
    both = obspy.Stream([trace(channel=c) for c in ("HHZ", "HHN", "HHE", "HH1", "HH2")])
    assert ids(preprocess_stream(both)) == ["XX.STA..HHE", "XX.STA..HHN", "XX.STA..HHZ"]
    assert ids(preprocess_stream(obspy.Stream([trace(channel="EHZ")]))) == ["XX.STA..EHZ"]
    two = obspy.Stream([trace(channel="HHZ"), trace(channel="HHN")])
    assert ids(preprocess_stream(two)) == ["XX.STA..HHN", "XX.STA..HHZ"]


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (obspy.Stream(), "no data"),
        (obspy.Stream([trace(data=np.array([], dtype=np.int32))]), "no data"),
        (obspy.Stream([trace(channel="LHZ", rate=1.0, seconds=600)]), "no channel"),
        (obspy.Stream([trace(channel="HHR")]), "no channel"),
        (obspy.Stream([trace(seconds=5)]), "longer than"),
    ],
)
def test_nothing_usable_raises(stream, reason):
    with pytest.raises(PreprocessError, match=reason):
        preprocess_stream(stream)


def test_preprocess_file_writes_float32_atomically(tmp_path):
    raw = obspy.Stream([trace(channel=c, seconds=100, rate=200.0, seed=i) for i, c in enumerate("ZNE")])
    for tr in raw:
        tr.stats.channel = "HH" + tr.stats.channel
    source = tmp_path / "XX.STA.mseed"
    raw.write(str(source), format="MSEED", encoding="STEIM2")

    target = tmp_path / "out" / "XX.STA.mseed"
    preprocess_file(source, target)
    assert not target.with_name(target.name + ".part").exists()
    back = obspy.read(str(target))
    assert ids(back) == ["XX.STA..HHE", "XX.STA..HHN", "XX.STA..HHZ"]
    for tr in back:
        assert tr.data.dtype == np.float32
        assert tr.stats.mseed.encoding == "FLOAT32"
        assert tr.stats.sampling_rate == 100.0 and tr.stats.npts == 10_000


def test_preprocess_file_skips_a_corrupt_file_with_the_reason_and_names_it_in_the_log(tmp_path, caplog):
    corrupt = tmp_path / "broken.mseed"
    corrupt.write_bytes(b"this is not miniSEED" * 100)
    out, status = tmp_path / "out.mseed", tmp_path / "out.status.json"
    record = preprocess_file(corrupt, out, status)
    assert out.stat().st_size == 0 and not out.with_name("out.mseed.part").exists()
    assert tabular.read_shard_status(status) == json.loads(json.dumps(record, default=str))
    assert record["stage"] == "preprocess" and record["status"] == "skipped"
    assert record["reason"].startswith("corrupt miniSEED: InternalMSEEDParseTimeError: julday out of bounds")
    assert any("broken.mseed: skipped: corrupt miniSEED" in message for message in caplog.messages)


def test_preprocess_file_names_the_channels_when_none_is_usable(tmp_path):
    source = tmp_path / "XX.LONG.mseed"
    obspy.Stream([trace(channel="LHZ", station="LONG", rate=1.0, seconds=600)]).write(str(source), format="MSEED")
    record = preprocess_file(source, tmp_path / "out.mseed", tmp_path / "status.json")
    assert record["status"] == "skipped"
    assert record["reason"] == "no channel of the priority list HH,EH,HN,HG,BH with component Z, N, E, 1 or 2; has XX.LONG..LHZ"


@pytest.mark.parametrize(
    ("options", "message"),
    [({"sampling_rate": 0}, "sampling_rate must be positive"), ({"min_segment_s": -1}, "min_segment_s must be >= 0"),
     ({"channel_priority": ["HHZ"]}, "two-letter codes"), ({"sampling_rte": 50}, "unknown preprocess option")],
)
def test_impossible_options_raise_even_before_the_data_is_read(tmp_path, options, message):
    empty = tmp_path / "XX.STA.mseed"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match=message):
        preprocess_file(empty, tmp_path / "out.mseed", tmp_path / "status.json", **options)
    assert not (tmp_path / "out.mseed").exists()
