"""Preprocess one station-day shard: pick one instrument, merge, fill gaps, detrend, resample.

The output is what every picker reads: per station one instrument (three, two or one
components), one continuous float32 trace per channel at a common sampling rate.

Gaps are handled by length. Short gaps (telemetry hiccups of a few samples) are bridged by
linear interpolation. Long gaps are filled with zeros *after* the trace has been detrended,
so a gap looks like a quiet, dead station: a constant fill at the raw counts offset, or the
last sample held, would put a step into the data that ML pickers and STA/LTA read as an
onset. SeisBench imputes missing components with zeros for the same reason.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import numpy as np
import obspy
from scipy.signal import resample_poly

logger = logging.getLogger(__name__)

DEFAULT_CHANNEL_PRIORITY = ("HH", "EH", "HN", "HG", "BH")
VERTICAL = "Z"
HORIZONTAL_SETS = ("NE", "12")  # geographic first; 1/2 (unoriented) only when N/E are absent
USABLE_COMPONENTS = VERTICAL + "".join(HORIZONTAL_SETS)


class PreprocessError(ValueError):
    """Nothing usable remains of a shard (no wanted channel, no data, unreadable file)."""


def preprocess_stream(
    stream: obspy.Stream,
    *,
    sampling_rate: float = 100.0,
    channel_priority: tuple[str, ...] = DEFAULT_CHANNEL_PRIORITY,
    max_gap_interpolate_s: float = 1.0,
    min_segment_s: float = 10.0,
) -> obspy.Stream:
    """Return one detrended float32 trace per kept channel, at ``sampling_rate``.

    - Per (network, station) one instrument (band + instrument code, e.g. ``HH``) is chosen by
      ``channel_priority``, ties broken by location code order. Of it, Z and either N/E or
      1/2 are kept (1/2 keep their codes: SeisBench maps them onto N/E itself). Stations
      with one or two components are returned as they are.
    - Segments of one channel are resampled, then merged (``merge(method=1)``: where records
      overlap the later one wins). Gaps up to ``max_gap_interpolate_s`` are interpolated,
      longer ones are zero-filled after detrending (see the module docstring).
    - Stretches of data shorter than ``min_segment_s`` between long gaps are discarded: too
      short to hold an arrival with its coda or to warm up an STA/LTA, and usually glitches.
    - A straight line (mean and trend) fitted to the real samples is removed.

    Raises :class:`PreprocessError` when no channel of the priority list holds usable data.
    """
    if sampling_rate <= 0:
        raise PreprocessError(f"sampling_rate must be positive, got {sampling_rate}")
    traces = [tr for tr in stream if tr.stats.npts > 0]
    if not traces:
        raise PreprocessError("stream holds no data (no traces or only empty ones)")

    selected = _select_instruments(traces, channel_priority)
    if not selected:
        found = sorted({tr.id for tr in traces})
        raise PreprocessError(
            f"no channel with band/instrument code in {list(channel_priority)} and component "
            f"Z, N, E, 1 or 2 (found: {', '.join(found)})"
        )

    by_channel: dict[str, list[obspy.Trace]] = defaultdict(list)
    for trace in selected:
        by_channel[trace.id].append(trace)

    out = obspy.Stream()
    for trace_id in sorted(by_channel):
        merged = _merge_channel(by_channel[trace_id], sampling_rate)
        cleaned = _fill_gaps_and_detrend(
            merged,
            max_gap_samples=int(round(max_gap_interpolate_s * sampling_rate)),
            min_segment_samples=max(2, int(round(min_segment_s * sampling_rate))),  # a line needs 2 points
        )
        if cleaned is None:
            logger.warning("%s: no stretch of data longer than %.1f s; channel dropped", trace_id, min_segment_s)
            continue
        out.append(cleaned)

    if not out:
        raise PreprocessError(f"no channel holds a stretch of data longer than {min_segment_s} s")
    return out


def preprocess_file(in_mseed, out_mseed, **kwargs) -> obspy.Stream:
    """Read a miniSEED shard, :func:`preprocess_stream` it, write float32 miniSEED atomically."""
    in_mseed, out_mseed = Path(in_mseed), Path(out_mseed)
    try:
        stream = obspy.read(str(in_mseed), format="MSEED")
    except Exception as exc:  # ObsPy raises many types for unreadable files; the user needs file and reason
        raise PreprocessError(f"{in_mseed}: cannot read miniSEED ({type(exc).__name__}: {exc})") from exc
    try:
        processed = preprocess_stream(stream, **kwargs)
    except PreprocessError as exc:
        raise PreprocessError(f"{in_mseed}: {exc}") from exc

    out_mseed.parent.mkdir(parents=True, exist_ok=True)
    partial = out_mseed.with_name(out_mseed.name + ".part")
    processed.write(str(partial), format="MSEED", encoding="FLOAT32")
    partial.replace(out_mseed)
    logger.info("%s: wrote %d channel(s) to %s", in_mseed.name, len(processed), out_mseed)
    return processed


def _select_instruments(traces: list[obspy.Trace], channel_priority) -> list[obspy.Trace]:
    """Keep, per (network, station), the traces of the best instrument's usable components."""
    rank = {code: i for i, code in enumerate(channel_priority)}
    by_station: dict[tuple[str, str], list[obspy.Trace]] = defaultdict(list)
    for trace in traces:
        by_station[trace.stats.network, trace.stats.station].append(trace)

    selected = []
    for (network, station), station_traces in sorted(by_station.items()):
        candidates = {
            (rank[tr.stats.channel[:2]], tr.stats.location, tr.stats.channel[:2])
            for tr in station_traces
            if tr.stats.channel[:2] in rank and tr.stats.channel[-1:] in USABLE_COMPONENTS
        }
        if not candidates:
            logger.warning("%s.%s: no channel in the priority list; station dropped", network, station)
            continue
        _, location, instrument = min(candidates)
        instrument_traces = [
            tr for tr in station_traces if tr.stats.location == location and tr.stats.channel[:2] == instrument
        ]
        components = {tr.stats.channel[-1] for tr in instrument_traces}
        horizontals = next((h for h in HORIZONTAL_SETS if components & set(h)), "")
        keep = VERTICAL + horizontals
        kept = [tr for tr in instrument_traces if tr.stats.channel[-1] in keep]
        logger.info(
            "%s.%s: using %s? at location '%s' (components %s)", network, station, instrument, location,
            "".join(sorted({tr.stats.channel[-1] for tr in kept})),
        )
        selected.extend(kept)
    return selected


def _merge_channel(segments: list[obspy.Trace], sampling_rate: float) -> obspy.Trace:
    """Resample every segment of one channel, then merge them; gaps stay masked."""
    resampled = obspy.Stream([_resample(segment, sampling_rate) for segment in segments])
    resampled.merge(method=1, fill_value=None)
    if len(resampled) != 1:  # merge keeps one trace per id; anything else is a bug upstream
        raise PreprocessError(f"{segments[0].id}: segments did not merge into one trace")
    return resampled[0]


def _resample(trace: obspy.Trace, sampling_rate: float) -> obspy.Trace:
    """Resample with a zero-phase polyphase FIR (scipy ``resample_poly``); float64 out.

    Chosen over ObsPy's tools because ``Trace.decimate`` anti-aliases with a causal Chebyshev
    filter whose group delay shifts onsets, and FFT ``resample`` is slow for day-long traces
    of awkward lengths. ``resample_poly`` handles any rational ratio (200 -> 100, 40 -> 100),
    is linear-phase with its delay compensated, and gives ``ceil(n * up / down)`` samples.
    """
    out = trace.copy()
    out.data = out.data.astype(np.float64)
    ratio = Fraction(sampling_rate / out.stats.sampling_rate).limit_denominator(1000)
    if ratio != 1:
        # padtype="line" extends each end with its trend, so the filter sees no step at the edges
        out.data = resample_poly(out.data, ratio.numerator, ratio.denominator, padtype="line")
    out.stats.sampling_rate = sampling_rate
    return out


def _fill_gaps_and_detrend(
    trace: obspy.Trace, *, max_gap_samples: int, min_segment_samples: int
) -> obspy.Trace | None:
    """Detrend on real samples, interpolate short gaps, zero long ones; None when nothing is left."""
    values = np.ma.getdata(trace.data).astype(np.float64)
    missing = np.ma.getmaskarray(trace.data).copy()

    gap_starts, gap_ends = true_runs(missing)
    long_gap = np.zeros_like(missing)
    for start, end in zip(gap_starts, gap_ends):
        if end - start > max_gap_samples:
            long_gap[start:end] = True

    # Short stretches of data between long gaps are dropped (treated as part of the gap).
    data_starts, data_ends = true_runs(~long_gap)
    for start, end in zip(data_starts, data_ends):
        if end - start < min_segment_samples:
            long_gap[start:end] = True
    kept = np.flatnonzero(~long_gap)
    if kept.size == 0:
        return None

    first, last = kept[0], kept[-1] + 1  # trim leading/trailing gap: no data, nothing to pick
    values, missing, long_gap = values[first:last], missing[first:last], long_gap[first:last]
    real = ~missing & ~long_gap

    positions = np.arange(values.size, dtype=np.float64)
    values -= _fitted_line(positions[real], values[real], positions)

    short_gap = missing & ~long_gap
    if short_gap.any():
        values[short_gap] = np.interp(positions[short_gap], positions[real], values[real])
    values[long_gap] = 0.0

    out = trace.copy()
    out.data = values.astype(np.float32)
    out.stats.starttime = trace.stats.starttime + first / trace.stats.sampling_rate
    return out


def _fitted_line(x: np.ndarray, y: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Least-squares line through (x, y) evaluated at ``at`` (closed form; np.polyfit is ~10x slower)."""
    x_mean, y_mean = x.mean(), y.mean()
    dx = x - x_mean
    slope = np.dot(dx, y - y_mean) / np.dot(dx, dx)
    return y_mean + slope * (at - x_mean)


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return edges[0::2], edges[1::2]
