"""waveforms: whole-file reads (no data, corrupt files) and windows cut from a record index."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import obspy
import pytest

from quakesnake.waveforms import NoData, WaveformError, WindowReader, read_miniseed

SHARED = Path(__file__).resolve().parents[2] / "shared"
SALTON = SHARED / "data" / "real" / "salton-sea-2020-10-01" / "mseed"


def day_file(path: Path, record_length: int = 512, gap=(1800.0, 1900.0)) -> Path:
    """An hour of three int32 channels in Steim2, with a gap, as ObsPy writes station-days."""
    rng = np.random.default_rng(7)
    start = obspy.UTCDateTime("2024-01-01T00:00:00")
    stream = obspy.Stream()
    for channel in ("HHZ", "HHN", "HHE"):
        data = np.cumsum(rng.integers(-50, 50, 360_000)).astype(np.int32)
        trace = obspy.Trace(data, header={"network": "XX", "station": "A", "channel": channel,
                                          "sampling_rate": 100.0, "starttime": start})
        stream.extend([trace.slice(start, start + gap[0]), trace.slice(start + gap[1], start + 3600)])
    stream.write(str(path), format="MSEED", encoding="STEIM2", reclen=record_length)
    return path


def assert_same(got: obspy.Stream, expected: obspy.Stream):
    key = lambda trace: (trace.id, trace.stats.starttime)  # noqa: E731
    assert [key(t) for t in sorted(got, key=key)] == [key(t) for t in sorted(expected, key=key)]
    for mine, theirs in zip(sorted(got, key=key), sorted(expected, key=key)):
        assert mine.stats.npts == theirs.stats.npts and mine.stats.sampling_rate == theirs.stats.sampling_rate
        np.testing.assert_array_equal(mine.data, theirs.data)


def windows_of(start: obspy.UTCDateTime) -> list[tuple]:
    return [(start + 10.003, start + 55.5), (start + 1790.0, start + 1850.0),  # into the gap
            (start + 1850.0, start + 1860.0),  # inside the gap: nothing
            (start + 3590.0, start + 3700.0), (start - 100.0, start + 0.5),  # past both ends
            (start + 2000.004, start + 2000.004)]  # one sample


@pytest.mark.parametrize("record_length", [512, 4096])
def test_windows_equal_obspy_slices_of_the_whole_file(tmp_path, record_length):
    path = day_file(tmp_path / "XX.A.mseed", record_length)
    whole = obspy.read(str(path))
    windows = windows_of(obspy.UTCDateTime("2024-01-01T00:00:00"))
    for (start, end), got in zip(windows, WindowReader().read(path, windows)):
        assert_same(got, whole.slice(start, end))
    assert not WindowReader().read(path, [windows[2]])[0]


def test_mixed_record_lengths_are_read_whole_with_the_same_windows(tmp_path):
    first, second = day_file(tmp_path / "a.mseed", 512), day_file(tmp_path / "b.mseed", 4096, gap=(0.0, 3000.0))
    mixed = tmp_path / "mixed.mseed"
    mixed.write_bytes(first.read_bytes() + second.read_bytes())
    whole = obspy.read(str(mixed))
    windows = windows_of(obspy.UTCDateTime("2024-01-01T00:00:00"))
    for (start, end), got in zip(windows, WindowReader().read(mixed, windows)):
        assert_same(got, whole.slice(start, end))


@pytest.mark.skipif(not SALTON.is_dir(), reason=f"real miniSEED not found at {SALTON} (../shared absent)")
def test_windows_of_real_recordings_equal_obspy_slices():
    reader = WindowReader()
    for path in sorted(SALTON.glob("*.mseed"))[:6]:
        whole = obspy.read(str(path))
        start, end = min(t.stats.starttime for t in whole), max(t.stats.endtime for t in whole)
        windows = [(start + 5.0, start + 35.0), (start + 60.01, end - 20.0), (end - 3.0, end + 10.0)]
        for (a, b), got in zip(windows, reader.read(path, windows)):
            assert_same(got, whole.slice(a, b))


def test_no_data_and_unreadable_files_name_the_file_and_the_reason(tmp_path):
    empty = tmp_path / "XX.EMPTY.mseed"
    empty.write_bytes(b"")
    with pytest.raises(NoData, match=r"XX\.EMPTY\.mseed: empty input file \(0 bytes\)"):
        read_miniseed(empty)
    with pytest.raises(NoData):
        WindowReader().read(empty, [(obspy.UTCDateTime(0), obspy.UTCDateTime(10))])
    broken = tmp_path / "XX.BROKEN.mseed"
    broken.write_bytes(b"this is not miniSEED" * 100)
    with pytest.raises(WaveformError, match=r"XX\.BROKEN\.mseed: corrupt miniSEED") as caught:
        WindowReader().read(broken, [(obspy.UTCDateTime(0), obspy.UTCDateTime(10))])
    assert caught.value.reason.startswith("corrupt miniSEED")
