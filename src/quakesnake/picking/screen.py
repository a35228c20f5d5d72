"""The low-precision screen of the window pipeline: windows run first in bf16 (or fp16), and
every window touching a possible pick is recomputed in fp32 (:func:`confirm_in_full_precision`)."""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from quakesnake.picking.settings import SCREENS, PickerConfigError

if TYPE_CHECKING:
    import torch

    from quakesnake.picking.windows import Windows

logger = logging.getLogger(__name__)

def resolve_screen_dtype(screen: str, model) -> torch.dtype | None:
    """The dtype of the screening pass, or None for a single pass in the model's own precision.

    Screening needs full-precision (fp32) weights to confirm with. ``auto`` is bf16 on a CPU
    with native bf16 instructions (AVX512-BF16 or AMX; there a PhaseNet window costs about
    half, see benchmarks/pick_throughput.py) and no screening elsewhere: emulated bf16 is slow,
    and on CUDA the gain has not been measured.
    """
    import torch

    if screen not in SCREENS:
        raise PickerConfigError(f"screen must be one of {SCREENS}, got {screen!r}")
    if screen == "none" or model.dtype != torch.float32:
        return None
    if screen == "auto":
        native_bf16 = model.device.type == "cpu" and torch.backends.mkldnn.is_available() and bool(
            torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
        return torch.bfloat16 if native_bf16 else None
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[screen]


def screen_unprofitable(windows: Windows, screen, floors: dict[int, float]) -> str | None:
    """Why screening would recompute most windows anyway (and so cost more than it saves), or None.

    Judged on the first batch of windows: a model whose probabilities sit above the floors in
    plain noise (an untrained one, or thresholds close to the margin) touches most of them.
    """
    if min(floors.values()) <= 0:
        return "half the threshold minus the margin is not above zero"
    probe = np.arange(min(len(windows.offsets), windows.batch_size))
    end = int(windows.offsets[probe[-1]]) + windows.in_samples
    stacked = windows.stack(0, end, {screen: probe})
    candidate = np.logical_or.reduce([stacked[:, channel] >= floor for channel, floor in floors.items()])
    touched = touching(candidate, windows.offsets[probe], windows.in_samples).size
    if touched > probe.size // 2:
        return f"{touched} of the first {probe.size} windows touch possible picks"
    return None


def touching(candidate: np.ndarray, offsets: np.ndarray, in_samples: int) -> np.ndarray:
    """Indices of the windows (starts sorted) whose span holds a candidate sample."""
    samples = np.flatnonzero(candidate)
    following = np.searchsorted(samples, offsets)  # first candidate at or after each window's start
    inside = following < samples.size
    inside[inside] = samples[following[inside]] < offsets[inside] + in_samples
    return np.flatnonzero(inside)


def window_clusters(touched: np.ndarray, offsets: np.ndarray, in_samples: int) -> list[np.ndarray]:
    """``touched`` (window indices, starts sorted) split into clusters whose extents overlap or meet."""
    return np.split(touched, np.flatnonzero(offsets[touched[1:]] > offsets[touched[:-1]] + in_samples) + 1)


def touched_spans(touched: np.ndarray, offsets: np.ndarray, in_samples: int):
    """The spans (first, end) of the clusters of ``touched`` windows, and per span the indices of
    every window overlapping it: what a span is re-stacked from."""
    clusters = window_clusters(touched, offsets, in_samples)
    spans = [(int(offsets[c[0]]), int(offsets[c[-1]]) + in_samples) for c in clusters]
    overlapping = [np.flatnonzero((offsets < end) & (offsets + in_samples > first)) for first, end in spans]
    return spans, overlapping


def confirm_in_full_precision(stacked: np.ndarray, windows: Windows, screen, floors: dict[int, float], margin: float,
             trace_id: str) -> None:
    """Recompute in full precision every window touching a sample whose screened probability
    reaches ``floors`` (per phase channel: half the trigger threshold minus the margin), in place.

    Picks depend only on where a probability exceeds its threshold, where it falls below half
    of it, and on the values in between (SeisBench's trigger). Every sample that can lie in a
    trigger, by the screened value give or take the margin, is covered only by recomputed
    windows, so it ends up with exactly the full-precision value; every other sample stays
    below half the threshold in both precisions as long as the low-precision error is under
    the margin. That error is measured on the recomputed samples about the floor (screened at
    or above it, below half the threshold in full precision); above half the margin the whole
    instrument is recomputed (the margin would not be safe). So is it when more than
    half of the windows need recomputing (the screening would not pay).
    """
    in_samples, offsets = windows.in_samples, windows.offsets
    candidates = {channel: stacked[:, channel] >= floor for channel, floor in floors.items()}  # NaN: False
    candidate = np.logical_or.reduce(list(candidates.values()))
    touched = touching(candidate, offsets, in_samples)
    if touched.size == 0:
        return
    if touched.size > len(offsets) // 2:
        logger.info("%s: %d of %d windows near possible picks: recomputing all in full precision",
                    trace_id, touched.size, len(offsets))
        stacked[:] = windows.stack(0, stacked.shape[0], {windows.full: range(len(offsets))})
        return
    # each span re-stacked from every window overlapping it: the touched ones in full precision,
    # their neighbours screened
    spans, overlapping = touched_spans(touched, offsets, in_samples)
    predicted = dict(windows.predictions(windows.full, touched))
    predicted.update(windows.predictions(screen, np.setdiff1d(np.concatenate(overlapping), touched)))
    worst = 0.0
    for (first, end), indices in zip(spans, overlapping):
        fresh = windows.accumulate(first, end - first, ((i, predicted[i]) for i in indices))
        for channel, is_candidate in candidates.items():
            # the error that matters is where the screen decides: values about the floor
            checked = is_candidate[first:end] & (fresh[:, channel] < floors[channel] + margin)
            if checked.any():
                worst = max(worst, float(np.abs(fresh[checked, channel] - stacked[first:end][checked, channel]).max()))
        stacked[first:end] = fresh
    logger.info("%s: %d of %d windows recomputed in full precision near possible picks (largest screening "
                "error %.2g)", trace_id, touched.size, len(offsets), worst)
    if worst > margin / 2:
        logger.warning("%s: screening error %.2g exceeds half the margin %.2g: recomputing all windows in full "
                       "precision", trace_id, worst, margin)
        stacked[:] = windows.stack(0, stacked.shape[0], {windows.full: range(len(offsets))})
