"""The dense pass of the window pipeline: near possible picks, probabilities averaged over many
window positions (``dense_overlap``), everywhere else over the model's own few.

Why: a window model's output at a sample depends on where in the window that sample falls
(near the edges the model sees little context), so with SeisBench's default of two windows per
sample a weak pick comes and goes with the window layout. Measured on the real Colombian hour of
../shared (benchmarks/window_positions.py): at PhaseNet's default overlap (1,500 of 3,001 samples)
about a third of the shipped model's picks change when the recording starts a few hundred samples
later. Averaging many window positions (SeisBench's
own ``overlap``, turned up) makes picks independent of the layout, but costs its factor on every
window of a day, most of which hold nothing; this pass pays it only where the first pass comes
near a pick (:func:`densify_near_candidates`).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from quakesnake.picking.screen import touching, window_clusters

if TYPE_CHECKING:
    from quakesnake.picking.windows import Windows

logger = logging.getLogger(__name__)


def densify_near_candidates(stacked: np.ndarray, dense: Windows, floors: dict[int, float], trace_id: str) -> None:
    """Give, in place, every sample near a possible pick the value a stack of all the ``dense``
    windows would give it: a possible pick is a sample whose first-pass probability reaches
    ``floors`` (per phase channel: half the trigger threshold, where a trigger ends).

    Only the dense windows touching such samples run, once each, cluster by cluster; a sample
    takes its dense value where every dense window covering it ran (every window covering a
    possible pick touches it), elsewhere its first-pass value stays. So a sample outside every
    first-pass trigger could still reach the threshold densely stacked; measured on the real
    Colombian hour (benchmarks/window_positions.py), the picks differ from those of every dense
    window by a few in a thousand, at a fraction of the cost.
    """
    candidate = np.logical_or.reduce([stacked[:, channel] >= floor for channel, floor in floors.items()])
    offsets, in_samples = dense.offsets, dense.in_samples
    touched = touching(candidate, offsets, in_samples)
    if touched.size == 0:
        return
    clusters = window_clusters(touched, offsets, in_samples)
    for cluster in clusters:
        first, end = int(offsets[cluster[0]]), int(offsets[cluster[-1]]) + in_samples
        fresh = dense.stack(first, end - first, {dense.full: cluster})
        # every dense window reaching the span: starts sorted, so a slice, not a scan of the day's
        reaching = offsets[np.searchsorted(offsets, first - in_samples, "right"):np.searchsorted(offsets, end)]
        complete = _coverage(offsets[cluster], first, end, in_samples) == _coverage(reaching, first, end, in_samples)
        stacked[first:end][complete] = fresh[complete]
    logger.info("%s: %d stretches near possible picks stacked from %d of %d dense windows", trace_id, len(clusters),
                touched.size, len(offsets))


def _coverage(offsets: np.ndarray, first: int, end: int, in_samples: int) -> np.ndarray:
    """How many of the windows starting at ``offsets`` cover each sample of [first, end)."""
    changes = np.zeros(end - first + 1, dtype=np.int32)
    np.add.at(changes, np.clip(offsets - first, 0, end - first), 1)
    np.add.at(changes, np.clip(offsets + in_samples - first, 0, end - first), -1)
    return np.cumsum(changes[:-1])
