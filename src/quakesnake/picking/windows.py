"""The window pipeline of array-output SeisBench pickers (PhaseNet, EQTransformer and kin), and
SeisBench's own ``classify`` for everything it does not reproduce.

The window pipeline: what SeisBench's classify does for array-output pickers (PhaseNet,
EQTransformer and their kin), step for step and with its numbers up to float rounding, minus
its overheads: no stream copies, one float32 array per instrument instead of float64, windows
batched straight from it (64 per batch on a CPU instead of 256: the activations of 256
PhaseNet windows spill the caches), predictions stacked as they come (no list of every
window's output), torch.inference_mode, BatchNorm folded into the convolutions, picks from
plain arrays; and, on CPUs with native bf16, a bf16 screen whose possible picks are
recomputed in fp32 (see confirm_in_full_precision).
"""
from __future__ import annotations

import logging
from collections import defaultdict, deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import obspy
from obspy.signal.trigger import trigger_onset

from quakesnake.picking import seisbench_adapter
from quakesnake.picking.dense import densify_near_candidates
from quakesnake.picking.fast_model import fast_copy, to_float32
from quakesnake.picking.models import phase_thresholds
from quakesnake.picking.picks import Pick
from quakesnake.picking.screen import confirm_in_full_precision, resolve_screen_dtype, screen_unprofitable
from quakesnake.picking.settings import ENGINES, PickerConfigError, default_batch_size
from quakesnake.preprocess import true_runs

logger = logging.getLogger(__name__)

def batch_size_of(model, settings: dict) -> int:
    if settings["engine"] not in ENGINES:
        raise PickerConfigError(f"engine must be one of {ENGINES}, got {settings['engine']!r}")
    return settings["batch_size"] or default_batch_size(model.device)


def uses_classify(model, settings: dict) -> bool:
    """True for ``engine: seisbench`` and for models the window pipeline does not reproduce."""
    if settings["engine"] == "seisbench":
        return True
    seisbench_adapter.check_compatible()  # a few attribute look-ups: before any window is cut
    unsupported = _window_pipeline_unsupported(model)
    if unsupported:
        logger.info("%s: %s; using SeisBench's classify", model.name, unsupported)
    return unsupported is not None


def window_results(stream: obspy.Stream, model, settings: dict, batch_size: int, leftovers: obspy.Stream):
    """Yield (instrument id, start, stacked predictions) per instrument of the stream; the traces
    of instruments the pipeline cannot take as SeisBench would are appended to ``leftovers``."""
    for trace_id, traces in _instruments(stream, model):
        prepared = _instrument_array(traces, model)
        if isinstance(prepared, str):
            logger.info("%s: %s; leaving it to SeisBench", trace_id, prepared)
            leftovers += obspy.Stream(traces)
            continue
        start, data = prepared
        yield trace_id, start, _stacked_predictions(trace_id, data, model, settings, batch_size)


def classify_picks(stream: obspy.Stream, model, settings: dict, batch_size: int) -> list[Pick]:
    """Picks of SeisBench's own ``classify`` (it runs ``forward`` under ``no_grad`` in a worker thread)."""
    thresholds = phase_thresholds(model, settings)
    arguments = {"P_threshold": thresholds["P"], "S_threshold": thresholds["S"],
                 "batch_size": batch_size, **classify_overlap(settings)}
    output = model.classify(stream, **arguments)

    rows = []
    for pick in output.picks:
        phase = str(pick.phase).upper()[:1]
        if phase not in ("P", "S"):
            continue
        network, station, location = pick.trace_id.split(".")[:3]
        rows.append(Pick(network, station, location, phase, pick.peak_time.ns, float(pick.peak_value)))
    return rows


def classify_overlap(settings: dict) -> dict:
    """The ``overlap`` argument of SeisBench's classify/annotate: the dense pass's overlap when
    there is one (classify has no two passes, so it runs every window at it), else ``overlap``
    (none: the model's default)."""
    overlap = settings["overlap"] if settings["dense_overlap"] is None else settings["dense_overlap"]
    return {} if overlap is None else {"overlap": overlap}


def _window_pipeline_unsupported(model) -> str | None:
    """Why the window pipeline cannot stand in for this model's classify, or None when it can."""
    if model.output_type != "array" or seisbench_adapter.grouping(model) != "instrument":
        return f"output type {model.output_type!r} with grouping {seisbench_adapter.grouping(model)!r}"
    if tuple(model.pred_sample) != (0, model.in_samples):
        return f"predictions cover samples {tuple(model.pred_sample)} of {model.in_samples}"
    if model.filter_args is not None or model.filter_kwargs is not None:
        return "the model filters its input"
    if model.sampling_rate is None:
        return "the model declares no sampling rate"
    if not seisbench_adapter.has_default_classify_aggregate(model):
        return "the model has its own classify_aggregate"
    if model.labels is None or callable(model.labels):
        return "the model's output channels are not named"
    phases = set(seisbench_adapter.phase_labels(model))
    if not phases <= {"P", "S"} or not phases <= set(model.labels):
        return f"phase labels {sorted(phases)} are not P and S output channels"
    return None


def _component_indices(model) -> dict[str, int]:
    """Component code -> input channel, with 1/2 standing in for N/E (SeisBench's flexible_horizontal_components)."""
    indices = {component: i for i, component in enumerate(model.component_order)}
    for unoriented, geographic in (("1", "N"), ("2", "E")):
        if geographic in indices:
            indices.setdefault(unoriented, indices[geographic])
        elif unoriented in indices:
            indices.setdefault(geographic, indices[unoriented])
    return indices


def _instruments(stream: obspy.Stream, model) -> list[tuple[str, list[obspy.Trace]]]:
    """The stream's traces of the model's components by instrument ('NET.STA.LOC'), sorted."""
    indices = _component_indices(model)
    by_instrument: dict[str, list[obspy.Trace]] = defaultdict(list)
    for trace in stream:
        if trace.stats.npts > 0 and trace.stats.channel[-1:] in indices:
            stats = trace.stats
            by_instrument[f"{stats.network}.{stats.station}.{stats.location}"].append(trace)
    return sorted(by_instrument.items())


def _instrument_array(traces: list[obspy.Trace], model) -> tuple[obspy.UTCDateTime, np.ndarray] | str:
    """(start time, float32 array components x samples) of one instrument, missing components zero.

    Times are aligned to the sample grid as SeisBench aligns them (the sub-sample offsets are
    averaged back into the start). Anything SeisBench groups in a way of its own (several
    traces of one component, a hole in the coverage, another sampling rate, masked data, a
    stretch shorter than one window) is returned as the reason, for ``classify`` to handle.
    """
    rate = float(model.sampling_rate)
    indices = _component_indices(model)
    if any(trace.stats.sampling_rate != rate for trace in traces):
        return f"sampling rate differs from the model's {rate:g} Hz (classify resamples)"
    if len({indices[trace.stats.channel[-1]] for trace in traces}) != len(traces):
        return "several traces for one component (gaps not filled, or both N/E and 1/2)"
    if any(np.ma.isMaskedArray(trace.data) for trace in traces):
        return "masked (gappy) data"
    timestamps = np.array([trace.stats.starttime.timestamp for trace in traces])
    aligned = np.round(timestamps * rate) / rate
    first = aligned.min()
    offsets = np.round((aligned - first) * rate).astype(np.int64)
    ends = offsets + np.array([trace.stats.npts for trace in traces])
    order = np.argsort(offsets, kind="stable")
    if np.any(offsets[order][1:] > np.maximum.accumulate(ends[order] - 1)[:-1]):
        return "the components do not overlap in time"
    n_samples = int(ends.max())
    if n_samples < model.in_samples:
        return f"shorter than one window ({n_samples} < {model.in_samples} samples)"
    data = np.zeros((len(model.component_order), n_samples), dtype=np.float32)
    for trace, offset in zip(traces, offsets):
        data[indices[trace.stats.channel[-1]], offset : offset + trace.stats.npts] = trace.data
    start = obspy.UTCDateTime(first) + float(np.mean(timestamps - aligned))
    return start, data


def _window_offsets(n_samples: int, in_samples: int, overlap: int) -> np.ndarray:
    """Window starts as SeisBench cuts them: a fixed stride, plus one window flush with the end."""
    if not 0 <= overlap < in_samples:
        raise PickerConfigError(f"overlap must be at least 0 and below the window of {in_samples} samples, got {overlap}")
    offsets = np.arange(0, n_samples - in_samples + 1, in_samples - overlap)
    if offsets[-1] + in_samples < n_samples:
        offsets = np.append(offsets, n_samples - in_samples)
    return offsets


def _stacked_predictions(trace_id: str, data: np.ndarray, model, settings: dict, batch_size: int) -> np.ndarray:
    """One instrument's predictions (samples x output channels, NaN where no window reaches),
    window by window and stacked.

    The same windows, normalisation (the model's ``annotate_batch_pre``), blinding
    (``annotate_batch_post``) and stacking (``avg``: mean of the non-NaN window values, summed
    in window order as SeisBench's ``stack_windows`` sums them; ``max``) as SeisBench's
    ``annotate``, with the model's forward run by its :func:`fast_copy` (equal up to float
    rounding). With a screening precision (see :func:`resolve_screen_dtype`) the windows first
    run through a low-precision copy, then :func:`confirm_in_full_precision` recomputes in full precision every
    window that touches a possible pick. With ``dense_overlap``, the stretches near possible picks
    are then stacked again from windows at that overlap (:func:`densify_near_candidates`).
    """
    argdict = dict(model.default_args)
    if settings["overlap"] is not None:
        argdict["overlap"] = settings["overlap"]
    overlap = seisbench_adapter.window_overlap(model, argdict)
    stacking = seisbench_adapter.annotate_argument(model, argdict, "stacking").lower()
    if stacking not in ("avg", "max"):
        raise PickerConfigError(f"{model.name}: unknown stacking method {stacking!r}")
    offsets = _window_offsets(data.shape[1], model.in_samples, overlap)
    windows = Windows(data, offsets, model, argdict, batch_size, stacking)
    thresholds = phase_thresholds(model, settings)
    labels = list(model.labels)
    phases = seisbench_adapter.phase_labels(model)

    screen_dtype = resolve_screen_dtype(settings["screen"], model)
    floors = {labels.index(phase): thresholds[phase] / 2 - settings["screen_margin"] for phase in phases}
    screen = None if screen_dtype is None else fast_copy(model, screen_dtype)
    if screen is not None and (unprofitable := screen_unprofitable(windows, screen, floors)):
        logger.info("%s: %s; no screening", trace_id, unprofitable)
        screen = None
    if screen is None:
        stacked = windows.stack(0, data.shape[1], {windows.full: range(len(offsets))})
    else:
        stacked = windows.stack(0, data.shape[1], {screen: range(len(offsets))})
        confirm_in_full_precision(stacked, windows, screen, floors, settings["screen_margin"], trace_id)
    if settings["dense_overlap"] is not None:
        dense_overlap = seisbench_adapter.window_overlap(model, {**argdict, "overlap": settings["dense_overlap"]})
        if dense_overlap > overlap:
            dense_offsets = _window_offsets(data.shape[1], model.in_samples, dense_overlap)
            # possible picks: samples the first pass puts at or above a trigger's off level
            trigger_off = {labels.index(phase): thresholds[phase] / 2 for phase in phases}
            densify_near_candidates(stacked, windows.at(dense_offsets), trigger_off, trace_id)
    return stacked


def trimmed(values: np.ndarray, start, rate: float):
    """(start, values) without the NaN edges, as SeisBench trims its annotation traces."""
    covered = np.flatnonzero(~np.isnan(values))
    if covered.size == 0:
        return start, values[:0]
    return start + int(covered[0]) / rate, values[int(covered[0]) : int(covered[-1]) + 1]


def triggers(probability: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """``trigger_onset(probability, threshold, threshold / 2)``, run only on the stretches at or
    above half the threshold that reach the threshold: a trigger ends at the last sample of such
    a stretch, so cutting between stretches changes nothing, and ObsPy's scan of a whole day
    costs ~0.35 s per phase (measured), most of it on samples that cannot trigger."""
    high = np.flatnonzero(probability >= threshold)
    if high.size == 0:
        return []
    if high.size > probability.size // 100:  # high most of the time (an untrained model): no stretches to skip
        return [(int(on), int(off)) for on, off in trigger_onset(probability, threshold, threshold / 2)]
    starts, ends = true_runs(probability >= threshold / 2)
    following = np.searchsorted(high, starts)  # first sample at or above the threshold from each start
    holds = following < high.size
    holds[holds] = high[following[holds]] < ends[holds]
    return [(int(start + on), int(start + off)) for start, end in zip(starts[holds], ends[holds])
            for on, off in trigger_onset(probability[start:end], threshold, threshold / 2)]


def triggered_picks(trace_id: str, start, stacked: np.ndarray, model, settings: dict) -> list[Pick]:
    """Picks as SeisBench's ``picks_from_annotations`` triggers them: on at the threshold, off at
    half of it, the peak in between."""
    rate, labels = float(model.sampling_rate), list(model.labels)
    thresholds = phase_thresholds(model, settings)
    network, station, location = trace_id.split(".")
    rows = []
    for phase in seisbench_adapter.phase_labels(model):
        trimmed_start, probability = trimmed(stacked[:, labels.index(phase)], start, rate)
        threshold = thresholds[phase]
        for on, off in triggers(probability, threshold):
            peak = on + int(np.argmax(probability[on : off + 1]))
            rows.append(Pick(network, station, location, phase, (trimmed_start + peak / rate).ns, float(probability[peak])))
    return rows


class Windows:
    """The windows of one instrument and the model steps around ``forward`` (SeisBench's own
    ``annotate_batch_pre``/``annotate_batch_post``), stacked over any span of samples."""

    def __init__(self, data, offsets, model, argdict, batch_size, stacking, full=None):
        self.data, self.offsets, self.model, self.argdict = data, offsets, model, argdict
        self.batch_size, self.stacking, self.in_samples = batch_size, stacking, model.in_samples
        self.n_classes = len(model.labels)
        self.full = fast_copy(model, model.dtype) if full is None else full  # the model's own precision

    def at(self, offsets: np.ndarray) -> Windows:
        """The same instrument and model steps, cut at other window starts."""
        return Windows(self.data, offsets, self.model, self.argdict, self.batch_size, self.stacking, self.full)

    def predictions(self, runner, indices):
        """(window index, prediction samples x classes as float32) for ``indices``, in their order.

        On a CPU the batches go to as many worker threads as torch has intra-op threads, each
        running whole batches with one thread of its own: PhaseNet's layers are too small to
        split well across threads (every op would end in a barrier), whole batches side by side
        need none. The caller stacks finished batches meanwhile. Each batch is computed the same
        way whichever worker takes it, so results do not depend on the thread count.
        """
        import torch

        chunks = [indices[first : first + self.batch_size] for first in range(0, len(indices), self.batch_size)]
        workers = torch.get_num_threads() if self.model.device.type == "cpu" else 1
        if workers == 1 or len(chunks) == 1:
            for chunk in chunks:
                yield from zip(chunk, self._predict(runner, chunk))
            return
        pending: deque = deque()
        with ThreadPoolExecutor(workers, initializer=torch.set_num_threads, initargs=(1,)) as pool:
            for chunk in chunks:
                pending.append((chunk, pool.submit(self._predict, runner, chunk)))
                if len(pending) > 2 * workers:  # a few batches ahead, never the whole day in memory
                    done, future = pending.popleft()
                    yield from zip(done, future.result())
            while pending:
                done, future = pending.popleft()
                yield from zip(done, future.result())

    def _predict(self, runner, chunk) -> np.ndarray:
        """Predictions (windows x samples x classes, float32) of the windows in ``chunk``."""
        import torch

        device = self.model.device
        with torch.inference_mode():  # thread-local: entered in the thread that computes
            batch = torch.from_numpy(np.stack([self.data[:, o : o + self.in_samples] for o in self.offsets[chunk]]))
            if device.type == "cuda":  # page-locked memory: the copy overlaps the GPU's work
                batch = batch.pin_memory().to(device, non_blocking=True)
            elif device.type != "cpu":
                batch = batch.to(device)
            prepared = self.model.annotate_batch_pre(batch, argdict=self.argdict)
            piggyback = None
            if isinstance(prepared, tuple):
                prepared, piggyback = prepared
            output = to_float32(runner(prepared.to(next(runner.parameters()).dtype)))
            output = self.model.annotate_batch_post(output, piggyback=piggyback, argdict=self.argdict)
            return output.cpu().numpy()

    def stack(self, first: int, length: int, runners: dict) -> np.ndarray:
        """Stacked predictions over samples [first, first + length) of the windows ``runners`` maps
        each runner to, streamed window by window when there is one runner."""
        if len(runners) == 1:
            (runner, indices), = runners.items()
            return self.accumulate(first, length, self.predictions(runner, np.asarray(indices)))
        predicted = {}
        for runner, indices in runners.items():
            predicted.update(self.predictions(runner, np.asarray(indices)))
        return self.accumulate(first, length, ((i, predicted[i]) for i in sorted(predicted)))

    def accumulate(self, first: int, length: int, ordered) -> np.ndarray:
        """Stack (window index, prediction) pairs, given in window order, over samples
        [first, first + length); each window contributes its part inside the span."""
        shape = (length, self.n_classes)
        if self.stacking == "max":
            stacked = np.full(shape, np.nan, dtype=np.float32)
        else:  # windows covering each sample, less its NaN (blinded) values
            sums, coverage, blinded = np.zeros(shape, dtype=np.float32), np.zeros(length + 1, dtype=np.int32), None
        for index, window in ordered:
            start = int(self.offsets[index]) - first
            window = window[max(0, -start) : length - start]
            span = slice(max(0, start), max(0, start) + window.shape[0])
            if self.stacking == "max":
                np.fmax(stacked[span], window, out=stacked[span])
                continue
            if np.isnan(window.sum()):  # one pass, no allocation, for the usual window without NaN
                nan = np.isnan(window)
                blinded = np.zeros(shape, dtype=np.int32) if blinded is None else blinded
                blinded[span] += nan
                window = np.where(nan, np.float32(0), window)
            sums[span] += window
            coverage[span.start] += 1
            coverage[span.stop] -= 1
        if self.stacking == "avg":  # divide in place, counts built run by run (a cumsum over the day is slow)
            changes = np.flatnonzero(coverage[:-1])
            levels = np.concatenate(([0], np.cumsum(coverage[changes]))).astype(np.float32)
            counts = np.repeat(levels, np.diff(np.concatenate(([0], changes, [length]))))[:, None]
            if blinded is not None:
                counts = counts - blinded.astype(np.float32)
            covered = np.broadcast_to(counts > 0, shape)
            np.divide(sums, counts, out=sums, where=covered)
            sums[~covered] = np.nan
            stacked = sums
        return stacked
