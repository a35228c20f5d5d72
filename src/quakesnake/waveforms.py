"""Reading miniSEED: the project's one way to read a station-day's waveforms.

:func:`read_miniseed` reads a whole file and keeps every readable record (ObsPy fails a whole
file for one undecodable record); a 0-byte file is a station-day without data
(:class:`NoData`), an unreadable one an error naming the file. :class:`WindowReader` cuts short
windows out of day-long files without decoding the rest: a magnitude job reads a few seconds
around each event from every station-day, and decoding a whole day (26 M samples, ~0.25 s) for
each of 150 stations is most of such a job.
"""
from __future__ import annotations

import io as _bytes_io
import logging
import warnings
from pathlib import Path

import numpy as np
import obspy
from obspy.io.mseed.util import get_record_information

from quakesnake.errors import QuakesnakeError

logger = logging.getLogger(__name__)

# Selected records reach this far (s) past a window on both sides: record times here come from
# the fixed header alone (no time correction, no blockette 1001 microseconds), ObsPy trims exactly.
WINDOW_SLACK_S = 2.0


class WaveformError(QuakesnakeError, ValueError):
    """A waveform file cannot be read: ``str()`` names it and why; ``reason`` is the why alone
    (what a station-day's status table records)."""

    def __init__(self, path, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = Path(path), reason


class NoData(WaveformError):
    """A 0-byte waveform file: the station-day has no data (its status table says why)."""


def require_data(path) -> Path:
    """``path`` when it holds data; :class:`NoData` for the 0-byte file of a station-day without
    data, :class:`WaveformError` for a missing file."""
    path = Path(path)
    if not path.exists():
        raise WaveformError(path, "file not found")
    if path.stat().st_size == 0:
        raise NoData(path, "empty input file (0 bytes): no data from download")
    return path


def read_miniseed(path, details: dict | None = None) -> obspy.Stream:
    """Read a miniSEED file keeping every readable record.

    :class:`NoData` for a 0-byte file; :class:`WaveformError` when no record is readable. When
    ObsPy cannot read the file, it is read in halves, down to single records, and the broken ones
    are counted in ``details["corrupt_records_dropped"]``; ObsPy's warnings (skipped bytes, short
    last record) go to ``details["read_warnings"]``.
    """
    path = require_data(path)
    details = {} if details is None else details
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            stream = obspy.read(str(path), format="MSEED")
        except Exception as exc:  # ObsPy raises many types for unreadable files
            stream = _readable_records(path, exc, details)
    messages = [" ".join(str(w.message).split()) for w in caught if not issubclass(w.category, ResourceWarning)]
    if messages:
        details["read_warnings"] = {"count": len(messages), "first": sorted(set(messages))[:5]}
        logger.warning("%s: %d warning(s) while reading, e.g. %s", path, len(messages), messages[0])
    return stream


def _readable_records(path: Path, error: Exception, details: dict) -> obspy.Stream:
    reason = f"corrupt miniSEED: {type(error).__name__}: {' '.join(str(error).split())}"
    try:
        record_length = get_record_information(str(path))["record_length"]
    except Exception:  # not even the first record header is readable
        raise WaveformError(path, reason) from error
    raw = path.read_bytes()
    stream, broken = obspy.Stream(), []

    def read(first: int, last: int) -> None:
        try:
            stream.extend(obspy.read(_bytes_io.BytesIO(raw[first * record_length : last * record_length]), format="MSEED"))
        except Exception:
            if last - first == 1:
                broken.append(first)
                return
            middle = (first + last) // 2
            read(first, middle)
            read(middle, last)

    read(0, len(raw) // record_length)
    if not stream:
        raise WaveformError(path, f"{reason} (no record of {record_length} bytes readable)")
    details["corrupt_records_dropped"] = len(broken)
    logger.warning("%s: %d unreadable record(s) of %d bytes dropped (%s)", path, len(broken), record_length, reason)
    return stream


class WindowReader:
    """Time windows of miniSEED files, each file's records indexed once.

    Why by hand: ObsPy's ``read(starttime=, endtime=)`` has libmseed scan every record of the
    file again for each window (30 ms a window on a station-day, more than decoding it whole
    once a station holds a dozen events); neither ObsPy nor libmseed keeps an index. Here the
    fixed headers of a file whose records share one length (what ObsPy, SeisComP and FDSN
    services write) are read at once with numpy; a window decodes only its records. Files of
    mixed record lengths are decoded whole, once.
    """

    def __init__(self):
        self._files: dict[Path, tuple] = {}

    def read(self, path, windows) -> list[obspy.Stream]:
        """The traces of ``path`` inside each (starttime, endtime) of ``windows``, cut as ObsPy's
        ``Stream.slice`` cuts, one stream per window (``NoData`` for a 0-byte file,
        :class:`WaveformError` for an unreadable one). The records of all windows are decoded in one
        ObsPy read: each call resolves the format plugin anew (~10 ms)."""
        path = Path(path)
        windows = list(windows)
        if path not in self._files:
            self._files[path] = self._index(path)
        raw, record_length, starts, ends, whole = self._files[path]
        if whole is not None:
            return [_slice(whole, start, end) for start, end in windows]
        chosen = np.zeros(len(starts), dtype=bool)
        for start, end in windows:
            chosen |= (starts <= float(end.timestamp) + WINDOW_SLACK_S) & (ends >= float(start.timestamp) - WINDOW_SLACK_S)
        if not chosen.any():
            return [obspy.Stream() for _ in windows]
        data = b"".join(raw[i * record_length:(i + 1) * record_length] for i in np.flatnonzero(chosen))
        try:
            stream = obspy.read(_bytes_io.BytesIO(data), format="MSEED")
        except Exception as exc:  # a corrupt record among them: read the file the careful way
            logger.warning("%s: records of %d window(s) unreadable (%s); reading the whole file", path, len(windows), exc)
            self._files[path] = (raw, record_length, starts, ends, read_miniseed(path))
            return self.read(path, windows)
        stream.merge(method=-1)  # consecutive records back into one trace, as a whole read gives
        return [_slice(stream, start, end) for start, end in windows]

    @staticmethod
    def _index(path: Path) -> tuple:
        raw = require_data(path).read_bytes()
        try:
            info = get_record_information(_bytes_io.BytesIO(raw))
        except Exception:
            return raw, 0, None, None, read_miniseed(path)
        record_length, order = int(info["record_length"]), ">" if info["byteorder"] == ">" else "<"
        headers = _fixed_headers(raw, record_length, order)
        if headers is None:
            return raw, record_length, None, None, read_miniseed(path)
        return raw, record_length, *headers, None


def _slice(stream: obspy.Stream, start: obspy.UTCDateTime, end: obspy.UTCDateTime) -> obspy.Stream:
    """``stream.slice(start, end)`` as a copy; traces outside the window skipped before ObsPy
    slices (each slice, even an empty one, copies the trace's header: ~1 ms)."""
    inside = obspy.Stream([trace for trace in stream if trace.stats.starttime <= end and trace.stats.endtime >= start])
    return inside.slice(start, end).copy()


def _fixed_headers(raw: bytes, record_length: int, order: str):
    """(start, end) epoch seconds of every record from the SEED fixed data header, or None when
    the file is not a sequence of data records of ``record_length`` bytes."""
    if record_length < 64 or len(raw) % record_length:
        return None
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, record_length)
    if not np.isin(records[:, 6], np.frombuffer(b"DRQM", dtype=np.uint8)).all():
        return None  # not all data records (SEED volumes carry headers, or the length varies)
    fields = np.ascontiguousarray(records[:, 20:36]).view(np.dtype([
        ("year", order + "u2"), ("day", order + "u2"), ("hour", "u1"), ("minute", "u1"), ("second", "u1"),
        ("unused", "u1"), ("fract", order + "u2"), ("npts", order + "u2"), ("factor", order + "i2"),
        ("multiplier", order + "i2")])).ravel()
    year = fields["year"].astype(np.int64)
    if ((year < 1900) | (year > 2100) | (fields["day"] < 1) | (fields["day"] > 366)).any():
        return None
    days = (np.array(year - 1970, dtype="datetime64[Y]").astype("datetime64[D]") - np.datetime64("1970-01-01", "D")).astype(np.int64)
    starts = ((days + fields["day"] - 1) * 86400.0 + fields["hour"] * 3600.0 + fields["minute"] * 60.0
              + fields["second"] + fields["fract"] * 1e-4)
    factor, multiplier = fields["factor"].astype(float), fields["multiplier"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(factor > 0, np.where(multiplier >= 0, factor * np.maximum(multiplier, 1), -factor / multiplier),
                        np.where(multiplier > 0, -multiplier / factor, 1.0 / (factor * multiplier)))
        span = np.where(rate > 0, fields["npts"] / rate, 0.0)
    return starts, starts + span
