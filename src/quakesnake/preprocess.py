"""Preprocess one station-day shard: pick one instrument, merge, fill gaps, detrend, resample.

The output is what every picker reads: per station one instrument (three, two or one
components), one continuous float32 trace per channel at a common sampling rate.

Gaps are handled by length. Short gaps (telemetry hiccups of a few samples) are bridged by
linear interpolation. Long gaps are filled with zeros *after* the trace has been detrended,
so a gap looks like a quiet, dead station: a constant fill at the raw counts offset, or the
last sample held, would put a step into the data that ML pickers and STA/LTA read as an
onset. SeisBench imputes missing components with zeros for the same reason.

Bad data never fails a shard: :func:`preprocess_file` writes what can be used plus a shard
status (:func:`quakesnake.tabular.write_shard_status`) that says what was found and done, or why
nothing was usable; then the output is an empty file, which the pickers turn into an empty
picks table. Case by case:

- corrupt records: the readable records are kept (the file is read in halves until each broken
  record is isolated); a file with no readable record is skipped with ObsPy's message;
- masked or non-finite (NaN) samples are gaps;
- thousands of fragments a day: each fragment is placed on the sample grid at once. ObsPy's
  ``Stream.merge`` copies the growing trace once per fragment (35 s for one channel-day in
  5000 fragments, measured) and ``Stream.get_gaps`` is slower still;
- overlaps: the later record wins, as with ObsPy's ``merge(method=1)``; overlaps whose samples
  disagree are counted apart, as they point at timing errors rather than resent records;
- sampling rates: every fragment is resampled on its own, also at rates that are no simple
  ratio of the target (a 99.99 Hz header);
- spikes: a single sample that leaps far out of a quiet neighbourhood and straight back is
  replaced by the mean of its two neighbours. A digitiser's anti-alias filter spreads any real
  ground motion over many samples, so such a sample is a transmission error, never signal;
  anything less clear-cut is left alone;
- clipping: flat runs at the full scale of a 16-, 24- or 32-bit digitiser are counted, not
  altered (the onset before the clip still serves a picker);
- codes: lower-case channel codes are upper-cased; components other than Z, N, E, 1, 2 and
  constant (dead) channels are dropped; so are traces of another station (when the shard's
  station is given), outside the shard's time window (a clock glitch can stamp a record
  1970) or with an impossible sampling rate.
"""
from __future__ import annotations

import logging
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

import numpy as np
import obspy
from scipy.signal import resample_poly

from quakesnake import tabular
from quakesnake.config import section_defaults
from quakesnake.errors import QuakesnakeError
from quakesnake.waveforms import WaveformError, read_miniseed

logger = logging.getLogger(__name__)

# Every key and default: the schema's preprocess section.
PREPROCESS_DEFAULTS = section_defaults("preprocess")
DEFAULT_CHANNEL_PRIORITY = tuple(PREPROCESS_DEFAULTS["channel_priority"])
VERTICAL = "Z"
HORIZONTAL_SETS = ("NE", "12")  # geographic first; 1/2 (unoriented) only when N/E are absent
USABLE_COMPONENTS = VERTICAL + "".join(HORIZONTAL_SETS)
DAY_S = 86400.0

# Clipping: at least CLIP_MIN_RUN equal samples in a row within 1 % of a digitiser's full scale.
FULL_SCALE_COUNTS = (2**15, 2**23, 2**31)
CLIP_LEVEL = 0.99
CLIP_MIN_RUN = 3
# Spikes: further than SPIKE_MIN_NOISE robust noise scales from its neighbours' mean, and more than
# SPIKE_ISOLATION times further from the local median than any other sample within
# SPIKE_HALF_WINDOW samples (a strong but real signal has neighbours of the same size).
SPIKE_MIN_NOISE = 50.0
SPIKE_ISOLATION = 10.0
SPIKE_HALF_WINDOW = 10
NOISE_SCALE_SAMPLES = 1_000_000  # sample-to-sample changes behind the noise scale of a channel
# A rational resampling ratio may stretch a fragment by at most this many samples end to end.
MAX_RATIO_DRIFT_SAMPLES = 0.1


class PreprocessError(QuakesnakeError, ValueError):
    """Nothing usable remains of a shard (no wanted channel, no data, unreadable file)."""


def preprocess_settings(options: dict) -> dict:
    """``options`` over :data:`PREPROCESS_DEFAULTS`; ValueError for unknown keys or impossible values.

    These are configuration mistakes, not data problems: they raise even where bad data would not.
    """
    unknown = set(options) - set(PREPROCESS_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown preprocess option(s) {sorted(unknown)}; known: {sorted(PREPROCESS_DEFAULTS)}")
    settings = {**PREPROCESS_DEFAULTS, **options}
    if not settings["sampling_rate"] > 0:
        raise ValueError(f"preprocess sampling_rate must be positive, got {settings['sampling_rate']}")
    for key in ("max_gap_interpolate_s", "min_segment_s"):
        if not settings[key] >= 0:
            raise ValueError(f"preprocess {key} must be >= 0, got {settings[key]}")
    priority = tuple(settings["channel_priority"])
    if not priority or any(len(code) != 2 for code in priority):
        raise ValueError(f"preprocess channel_priority must list two-letter codes such as HH, got {list(priority)}")
    settings["channel_priority"] = tuple(code.upper() for code in priority)
    return settings


def preprocess_stream(
    stream: obspy.Stream,
    *,
    station_id: str | None = None,
    window: tuple[obspy.UTCDateTime, obspy.UTCDateTime] | None = None,
    details: dict | None = None,
    **options,
) -> obspy.Stream:
    """Return one detrended float32 trace per kept channel, at ``sampling_rate``.

    Options (:data:`PREPROCESS_DEFAULTS`):

    - Per (network, station) one instrument (band + instrument code, e.g. ``HH``) is chosen by
      ``channel_priority``, ties broken by location code order. Of it, Z and either N/E or
      1/2 are kept (1/2 keep their codes: SeisBench maps them onto N/E itself). Stations
      with one or two components are returned as they are.
    - Segments of one channel are resampled, then merged (where records overlap the later one
      wins). Gaps up to ``max_gap_interpolate_s`` are interpolated, longer ones are zero-filled
      after detrending (see the module docstring).
    - Stretches of data shorter than ``min_segment_s`` between long gaps are discarded: too
      short to hold an arrival with its coda or to warm up an STA/LTA, and usually glitches.
    - A straight line (mean and trend) fitted to the real samples is removed.
    - ``despike`` replaces isolated one-sample spikes (module docstring).

    ``station_id`` ('NET.STA') drops traces of other stations; ``window`` (start, end) drops
    data outside it. ``details``, when given, is filled with what was found and done (input
    traces, sampling rates, dropped traces and channels, per channel gaps, overlaps, spikes,
    clipped samples...), also when the stream turns out unusable.

    Raises :class:`PreprocessError` (the reason as message) when nothing usable remains, and
    ValueError for impossible options.
    """
    settings = preprocess_settings(options)
    rate = float(settings["sampling_rate"])
    details = {} if details is None else details
    details["input_traces"] = len(stream)
    details["sampling_rates_hz"] = sorted({float(tr.stats.sampling_rate) for tr in stream})
    stats: dict[str, Counter] = defaultdict(Counter)

    traces = _usable_traces(stream, station_id, window, details, stats)
    if not traces:
        dropped = details.get("dropped_traces")
        if dropped:
            raise PreprocessError("no usable trace: " + "; ".join(f"{n} {why}" for why, n in dropped.items()))
        raise PreprocessError("stream holds no data (no traces or only empty ones)")

    selected = _select_instruments(traces, settings["channel_priority"])
    unused = sorted({tr.id for tr in traces} - {tr.id for tr in selected})
    if unused:
        details["unused_channels"] = unused
    if not selected:
        found = sorted({tr.id for tr in traces})
        listed = ", ".join(found[:20]) + (f" and {len(found) - 20} more" if len(found) > 20 else "")
        raise PreprocessError(
            f"no channel of the priority list {','.join(settings['channel_priority'])} with component "
            f"Z, N, E, 1 or 2; has {listed}"
        )

    by_channel: dict[str, list[obspy.Trace]] = defaultdict(list)
    for trace in selected:
        by_channel[trace.id].append(trace)

    out = obspy.Stream()
    channels, dropped_channels = {}, {}
    for trace_id in sorted(by_channel):
        channel = stats[trace_id]
        cleaned, problem = _process_channel(by_channel[trace_id], rate, settings, channel)
        channels[trace_id] = {key: (round(value, 3) if isinstance(value, float) else value) for key, value in channel.items()}
        if cleaned is None:
            logger.warning("%s: %s; channel dropped", trace_id, problem)
            dropped_channels[trace_id] = problem
            continue
        out.append(cleaned)
    details["channels"] = channels
    if dropped_channels:
        details["dropped_channels"] = dropped_channels
    if not out:
        raise PreprocessError("no channel left: " + "; ".join(f"{k} {v}" for k, v in dropped_channels.items()))
    details["output_channels"] = [tr.id for tr in out]
    return out


def preprocess_station_day(
    in_mseed,
    *,
    day: str | None = None,
    margin_s: float = 0.0,
    station_id: str | None = None,
    **options,
) -> tuple[obspy.Stream | None, dict]:
    """Read and preprocess a raw miniSEED shard in memory; never raises on bad data.

    Returns (stream, status record): the stream of :func:`preprocess_stream`, or None when nothing
    usable remains (a 0-byte file is a station-day without data), and the record (stage
    ``preprocess``, status ``ok`` or ``skipped``, the reason and the details of
    :func:`preprocess_stream`). With ``day`` ('YYYY-MM-DD') data outside
    [day - margin_s, day + 1 d + margin_s] is dropped. Impossible options raise ValueError before
    the file is read. The pick stage calls this for every station-day it picks, so the float copy
    of a day (100 MB for three 100 Hz channels) lives only in memory.
    """
    preprocess_settings(options)
    in_mseed = Path(in_mseed)
    window = None
    if day is not None:
        start = obspy.UTCDateTime(day)
        window = (start - margin_s, start + DAY_S + margin_s)
    details: dict = {"input": str(in_mseed)}
    processed = None
    try:
        stream = read_miniseed(in_mseed, details)
        processed = preprocess_stream(stream, station_id=station_id, window=window, details=details, **options)
        status, reason = "ok", _summary(details)
    except PreprocessError as exc:
        status, reason = "skipped", str(exc)
    except WaveformError as exc:  # no data (0 bytes) or no readable record
        status, reason = "skipped", exc.reason
    except Exception as exc:  # data no rule above foresaw: skip this shard, keep the run going, log the traceback
        logger.exception("%s: preprocessing failed", in_mseed)
        status, reason = "skipped", f"preprocessing failed ({type(exc).__name__}: {exc}); traceback in the log"
    if status == "ok":
        logger.info("%s: %s", in_mseed, reason)
    else:
        logger.warning("%s: skipped: %s", in_mseed, reason)
    return processed, {"stage": "preprocess", "status": status, "reason": reason, **details}


def preprocess_file(
    in_mseed,
    out_mseed,
    out_status=None,
    *,
    day: str | None = None,
    margin_s: float = 0.0,
    station_id: str | None = None,
    **options,
) -> dict:
    """:func:`preprocess_station_day` written out: float32 miniSEED (0 bytes when nothing usable
    remains) and, when ``out_status`` is given, the shard status JSON; returns the status record.

    The workflow keeps no such copy (see :func:`preprocess_station_day`); this serves training
    data preparation by hand, benchmarks and the command line.
    """
    processed, record = preprocess_station_day(in_mseed, day=day, margin_s=margin_s, station_id=station_id, **options)
    tabular.atomic_write(out_mseed, lambda partial: partial.write_bytes(b"") if processed is None
                         else processed.write(str(partial), format="MSEED", encoding="FLOAT32"))
    if out_status is not None:
        tabular.write_shard_status(out_status, record["stage"], record["status"], record["reason"],
                              **{k: v for k, v in record.items() if k not in ("stage", "status", "reason")})
    return record


def _usable_traces(stream, station_id, window, details, stats) -> list[obspy.Trace]:
    """Traces with samples, a valid rate, the shard's station, inside the window; masks and NaNs split out."""
    dropped = Counter()
    upper_cased = set()
    usable = []
    for trace in stream:
        sampling_rate = trace.stats.sampling_rate
        if trace.stats.npts == 0:  # holds nothing, hides nothing
            continue
        if not (np.isfinite(sampling_rate) and sampling_rate > 0):
            dropped[f"trace(s) with sampling rate {sampling_rate} Hz"] += 1
            continue
        if station_id and f"{trace.stats.network}.{trace.stats.station}" != station_id:
            dropped[f"trace(s) of {trace.stats.network}.{trace.stats.station}, not {station_id}"] += 1
            continue
        if window is not None:
            if trace.stats.endtime < window[0] or trace.stats.starttime > window[1]:
                dropped[f"trace(s) outside the shard window {window[0]} - {window[1]}"] += 1
                continue
            if trace.stats.starttime < window[0] or trace.stats.endtime > window[1]:
                trace = trace.slice(window[0], window[1])
        if trace.stats.channel != trace.stats.channel.upper():
            upper_cased.add(trace.stats.channel)
            trace = trace.copy()
            trace.stats.channel = trace.stats.channel.upper()
        values = np.ma.getdata(trace.data)
        masked = np.ma.getmaskarray(trace.data)
        invalid = ~np.isfinite(values) if values.dtype.kind == "f" else np.zeros(values.size, bool)
        if masked.any() or invalid.any():
            stats[trace.id]["masked_samples"] += int(masked.sum())
            stats[trace.id]["nonfinite_samples"] += int((invalid & ~masked).sum())
            trace = trace.copy()
            trace.data = np.ma.masked_array(values, mask=masked | invalid)
            usable.extend(trace.split())  # ObsPy: the unmasked runs as traces of their own
        else:
            usable.append(trace)
    if dropped:
        details["dropped_traces"] = dict(dropped)
        logger.warning("dropped %s", "; ".join(f"{n} {why}" for why, n in dropped.items()))
    if upper_cased:
        details["upper_cased_channel_codes"] = sorted(upper_cased)
    return usable


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
            if len(tr.stats.channel) == 3 and tr.stats.channel[:2] in rank and tr.stats.channel[-1] in USABLE_COMPONENTS
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
        kept_components = "".join(sorted({tr.stats.channel[-1] for tr in kept}))
        logger.info("%s.%s: using %s? at location '%s' (components %s)", network, station, instrument, location,
                    kept_components)
        if VERTICAL not in kept_components:
            logger.warning("%s.%s: no vertical component", network, station)
        selected.extend(kept)
    return selected


def _process_channel(segments, rate: float, settings: dict, channel: Counter):
    """Despike, resample, merge, fill gaps and detrend one channel: (trace, None) or (None, why not)."""
    segments = sorted(segments, key=lambda tr: (tr.stats.starttime, tr.stats.endtime))
    channel["segments"] = len(segments)
    for key in ("masked_samples", "nonfinite_samples", "clipped_samples", "spikes_removed"):
        channel[key] += 0  # every channel reports every count, zeros too
    channel["sampling_rates_hz"] = sorted({float(tr.stats.sampling_rate) for tr in segments})

    _count_gaps_and_overlaps(segments, channel)
    noise = _noise_scale(segments) if settings["despike"] else 0.0
    resampled = []
    for segment in segments:
        values = segment.data.astype(np.float64)
        if segment.data.dtype.kind in "iu":
            channel["clipped_samples"] += _clipped_samples(segment.data)
        if noise > 0:
            channel["spikes_removed"] += _suppress_spikes(values, noise)
        resampled.append(_resample(segment, values, rate))
    if channel["clipped_samples"]:
        logger.warning("%s: %d clipped sample(s)", segments[0].id, channel["clipped_samples"])
    if channel["spikes_removed"]:
        logger.warning("%s: %d isolated spike(s) replaced", segments[0].id, channel["spikes_removed"])

    start, values, missing = _place_on_grid(resampled, rate, channel,
                                            [tr.stats.sampling_rate != rate for tr in segments])
    real = values if not missing.any() else values[~missing]  # no copy for a day without gaps
    if real.size and real.min() == real.max():
        return None, f"constant at {real[0]:g} (dead channel)"
    filled = _fill_gaps_and_detrend(
        values, missing, channel,
        max_gap_samples=int(round(settings["max_gap_interpolate_s"] * rate)),
        min_segment_samples=max(2, int(round(settings["min_segment_s"] * rate))),  # a line needs 2 points
    )
    if filled is None:
        return None, f"no stretch of data longer than {settings['min_segment_s']} s"
    first, data = filled
    out = obspy.Trace(data, header=_header(segments[0].stats, rate, start + first / rate))
    channel["npts"] = int(data.size)
    return out, None


def _header(stats, sampling_rate: float, starttime) -> dict:
    return {"network": stats.network, "station": stats.station, "location": stats.location,
            "channel": stats.channel, "sampling_rate": sampling_rate, "starttime": starttime}


def _noise_scale(segments) -> float:
    """Robust scale of the sample-to-sample changes (1.4826 * median |diff|); 0 when unknown."""
    # A median of a million evenly spaced changes is as robust a scale as that of a whole day
    # (8.6 million at 100 Hz) and a fraction of its cost.
    total = sum(tr.stats.npts for tr in segments)
    stride = max(1, total // NOISE_SCALE_SAMPLES)
    diffs = []
    for tr in segments:
        data = tr.data.astype(np.float64) if tr.data.dtype.kind != "f" else tr.data
        if data.size > 1:
            later = data[1::stride]
            diffs.append(np.abs(later - data[:-1:stride][: later.size]))
    if not diffs:
        return 0.0
    scale = 1.4826 * float(np.median(np.concatenate(diffs)))
    if segments[0].data.dtype.kind in "iu":
        scale = max(scale, 1.0)  # counts: the digitiser's step is the smallest change there is
    return scale


def _clipped_samples(counts: np.ndarray) -> int:
    """Samples in flat runs (>= CLIP_MIN_RUN) within 1 % of the full scale of the smallest word that holds them."""
    if counts.size < CLIP_MIN_RUN:
        return 0
    magnitude = np.abs(counts.astype(np.int64))
    peak = int(magnitude.max())
    full_scale = next((fs for fs in FULL_SCALE_COUNTS if peak <= fs), FULL_SCALE_COUNTS[-1])
    if peak < CLIP_LEVEL * full_scale:
        return 0  # nothing near the full scale: the usual case, decided without the run search
    at_limit = magnitude >= CLIP_LEVEL * full_scale
    same = counts[1:] == counts[:-1]
    flat = np.zeros(counts.size, bool)
    flat[1:] |= same
    flat[:-1] |= same
    starts, ends = true_runs(flat & at_limit)
    lengths = ends - starts
    return int(lengths[lengths >= CLIP_MIN_RUN].sum())


def _suppress_spikes(values: np.ndarray, noise: float) -> int:
    """Replace isolated one-sample spikes in place by their neighbours' mean; return how many."""
    half = SPIKE_HALF_WINDOW
    if values.size < 2 * half + 1:
        return 0
    deviation = values[1:-1] - 0.5 * (values[:-2] + values[2:])
    candidates = np.flatnonzero(np.abs(deviation) > SPIKE_MIN_NOISE * noise)  # rare: test the rest on them only
    agree = np.abs(values[candidates + 2] - values[candidates]) < 0.1 * np.abs(deviation[candidates])
    candidates = candidates[agree] + 1
    candidates = candidates[(candidates >= half) & (candidates < values.size - half)]
    if candidates.size == 0:
        return 0
    windows = values[candidates[:, None] + np.arange(-half, half + 1)]
    centre = np.median(windows, axis=1)
    others = np.abs(np.delete(windows, half, axis=1) - centre[:, None]).max(axis=1)
    spikes = candidates[np.abs(values[candidates] - centre) > SPIKE_ISOLATION * others]
    values[spikes] = 0.5 * (values[spikes - 1] + values[spikes + 1])
    return int(spikes.size)


def _resample(segment: obspy.Trace, values: np.ndarray, sampling_rate: float) -> obspy.Trace:
    """``values`` (the segment's samples, float64) at ``sampling_rate``, zero-phase polyphase FIR.

    Chosen over ObsPy's tools because ``Trace.decimate`` anti-aliases with a causal Chebyshev
    filter whose group delay shifts onsets, and FFT ``resample`` is slow for day-long traces
    of awkward lengths. ``resample_poly`` handles any rational ratio (200 -> 100, 40 -> 100,
    99.99 -> 100 as 10000/9999), is linear-phase with its delay compensated, and gives
    ``ceil(n * up / down)`` samples. The ratio is as coarse as the segment's length allows
    (a 1-s fragment at 99.99 Hz needs none); what no ratio with a denominator up to 10^5 gets
    right is finished by ObsPy's Lanczos interpolation.
    """
    out = obspy.Trace(values, header=_header(segment.stats, segment.stats.sampling_rate, segment.stats.starttime))
    native = float(segment.stats.sampling_rate)
    exact = sampling_rate / native
    for limit in (1000, 100_000):
        ratio = Fraction(exact).limit_denominator(limit)
        drift = abs(float(ratio) / exact - 1) * values.size * exact
        if drift <= MAX_RATIO_DRIFT_SAMPLES:
            break
    if ratio != 1:
        # padtype="line" extends each end with its trend, so the filter sees no step at the edges
        out.data = resample_poly(values, ratio.numerator, ratio.denominator, padtype="line" if values.size > 1 else "edge")
    out.stats.sampling_rate = native * float(ratio)
    if drift > MAX_RATIO_DRIFT_SAMPLES:
        out.interpolate(sampling_rate, method="lanczos", a=8)
    out.stats.sampling_rate = sampling_rate
    return out


def _count_gaps_and_overlaps(segments, channel: Counter) -> None:
    """Gaps and overlaps between segments (sorted by start) on their own clocks, as ObsPy counts them.

    Counted before resampling, which rounds fragment ends to the new grid and so would turn
    touching fragments into one-sample overlaps.
    """
    first = segments[0].stats.starttime
    starts = np.array([tr.stats.starttime - first for tr in segments])
    deltas = np.array([tr.stats.delta for tr in segments])
    ends = starts + np.array([tr.stats.npts for tr in segments]) * deltas
    covered = np.concatenate(([starts[0]], np.maximum.accumulate(ends)[:-1]))  # data end before each segment
    step = starts - covered
    gap, overlap = step > 0.5 * deltas, step < -0.5 * deltas
    channel["gaps"] = int(gap.sum())
    channel["gap_s"] = float(step[gap].sum())
    channel["overlaps"] = int(overlap.sum())
    channel["overlap_s"] = float((np.minimum(covered, ends) - starts)[overlap].sum())


def _place_on_grid(segments, rate: float, channel: Counter, resampled: list[bool]):
    """Merge segments (sorted by start) on one sample grid: (start, values, missing); later ones win.

    Where a segment that needed no resampling overlaps data already placed, differing samples
    are counted as a conflicting overlap (resent records agree; a timing error does not).
    """
    start = segments[0].stats.starttime
    offsets = np.array([int(round((tr.stats.starttime - start) * rate)) for tr in segments])
    ends = offsets + np.array([tr.stats.npts for tr in segments])
    values = np.zeros(ends.max(), dtype=np.float64)
    missing = np.ones(ends.max(), dtype=bool)
    conflicting = 0
    for trace, offset, end, was_resampled in zip(segments, offsets, ends, resampled):
        known = ~missing[offset:end]
        if not was_resampled and known.any() and not np.array_equal(values[offset:end][known], trace.data[known]):
            conflicting += 1
        values[offset:end] = trace.data
        missing[offset:end] = False
    channel["conflicting_overlaps"] = conflicting
    bad = ~np.isfinite(values)
    if bad.any():  # resampling cannot make NaNs from finite data, but a gap is the safe reading if it did
        values[bad], missing[bad] = 0.0, True
    return start, values, missing


def _fill_gaps_and_detrend(values, missing, channel: Counter, *, max_gap_samples: int, min_segment_samples: int):
    """Detrend on real samples, interpolate short gaps, zero long ones: (first kept index, float32 data) or None.

    Works on the runs of gaps and data rather than on sample masks: a day is 8.6 million samples
    per channel, and every mask operation over it costs as much as the detrending itself.
    """
    n = values.size
    gap_starts, gap_ends = true_runs(missing) if missing.any() else (np.zeros(0, int), np.zeros(0, int))
    is_long = (gap_ends - gap_starts) > max_gap_samples
    # Stretches of data between long gaps; those shorter than min_segment_samples count as gap.
    edges = np.concatenate(([0], np.column_stack((gap_starts[is_long], gap_ends[is_long])).ravel(), [n]))
    stretches = [(int(a), int(b)) for a, b in zip(edges[0::2], edges[1::2]) if b - a >= min_segment_samples]
    if not stretches:
        return None
    first, last = stretches[0][0], stretches[-1][1]  # trim leading/trailing gap: no data, nothing to pick
    values = values[first:last]
    stretches = [(a - first, b - first) for a, b in stretches]
    short = [(int(a) - first, int(b) - first) for a, b, long in zip(gap_starts, gap_ends, is_long)
             if not long and any(lo <= a - first and b - first <= hi for lo, hi in stretches)]

    # real samples: the kept stretches without their short gaps
    real, cursor_gaps = [], iter(short)
    gap = next(cursor_gaps, None)
    for lo, hi in stretches:
        cursor = lo
        while gap is not None and gap[1] <= hi:
            real.append((cursor, gap[0]))
            cursor = gap[1]
            gap = next(cursor_gaps, None)
        real.append((cursor, hi))
    _remove_line(values, [(a, b) for a, b in real if b > a])

    for a, b in short:  # straight between the real samples on either side, as np.interp would
        left, right = values[a - 1], values[b]
        slope = (right - left) / (b - a + 1)
        values[a:b] = slope * np.arange(1, b - a + 1, dtype=np.float64) + left
    for (_, gap_start), (gap_end, _) in zip(stretches[:-1], stretches[1:]):
        values[gap_start:gap_end] = 0.0
    channel["gaps_interpolated"] = len(short)
    channel["gaps_zero_filled"] = len(stretches) - 1
    return int(first), values.astype(np.float32)


def _remove_line(values: np.ndarray, segments: list[tuple[int, int]]) -> None:
    """Subtract in place the least-squares line through the samples of ``segments`` (index ranges).

    Sums per segment, in closed form where they are arithmetic series, so that no index or
    sample array of the day is built beyond one ramp (np.polyfit is ~10x slower).
    """
    ramp = np.arange(max(b - a for a, b in segments), dtype=np.float64)
    count = sum(b - a for a, b in segments)
    x_mean = sum((a + b - 1) / 2 * (b - a) for a, b in segments) / count
    y_sum = [float(values[a:b].sum()) for a, b in segments]
    y_mean = sum(y_sum) / count
    sxy = sxx = 0.0
    for (a, b), ys in zip(segments, y_sum):
        m, c = b - a, a - x_mean  # x - x_mean = j + c for j in 0..m-1
        sxy += float(np.dot(values[a:b], ramp[:m])) + c * ys
        sxx += (m - 1) * m * (2 * m - 1) / 6 + 2 * c * (m - 1) * m / 2 + m * c * c
    slope = sxy / sxx if sxx > 0 else 0.0
    values -= y_mean - slope * x_mean
    if slope:
        full = ramp if ramp.size == values.size else np.arange(values.size, dtype=np.float64)
        values -= slope * full


def _summary(details: dict) -> str:
    """One line for the status table: what was kept and what was repaired or dropped."""
    channels = details.get("channels", {})
    totals = Counter()
    for channel in channels.values():
        totals.update({k: v for k, v in channel.items() if isinstance(v, int)})
    parts = ["kept " + ",".join(trace_id.rsplit(".", 1)[-1] for trace_id in details.get("output_channels", []))]
    if totals["gaps"]:
        parts.append(f"{totals['gaps']} gap(s) ({totals['gaps_interpolated']} stretch(es) interpolated, "
                     f"{totals['gaps_zero_filled']} zero-filled)")
    for key, label in (("overlaps", "overlap(s) merged"), ("conflicting_overlaps", "overlap(s) with differing samples"),
                       ("masked_samples", "masked sample(s)"), ("nonfinite_samples", "NaN/inf sample(s)"),
                       ("spikes_removed", "spike(s) removed"), ("clipped_samples", "clipped sample(s)")):
        if totals[key]:
            parts.append(f"{totals[key]} {label}")
    if details.get("read_warnings"):
        parts.append(f"{details['read_warnings']['count']} read warning(s)")
    if details.get("corrupt_records_dropped"):
        parts.append(f"{details['corrupt_records_dropped']} corrupt record(s) dropped")
    for why, n in details.get("dropped_traces", {}).items():
        parts.append(f"dropped {n} {why}")
    for trace_id, why in details.get("dropped_channels", {}).items():
        parts.append(f"dropped {trace_id}: {why}")
    return "; ".join(parts)


# A run of one repeated value at least this long is no data: a zero-filled gap, a held last sample,
# a flat-lined or clipped-dead channel (picks inside one are dropped, its samples are no noise for an
# SNR, no real-noise training window holds one).
DEAD_RUN_S = 1.0


def dead_runs(data: np.ndarray, rate: float) -> tuple[np.ndarray, np.ndarray]:
    """First and last sample (both inclusive) of each run of one repeated value in ``data`` that
    lasts :data:`DEAD_RUN_S` or longer."""
    starts, ends = true_runs(np.diff(data) == 0)  # a run of diffs [start, end) is samples [start, end]
    long = ends - starts + 1 >= DEAD_RUN_S * rate
    return starts[long], ends[long]


def true_runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a boolean array."""
    edges = np.flatnonzero(np.diff(np.concatenate(([0], mask.astype(np.int8), [0]))))
    return edges[0::2], edges[1::2]
