"""The dense pass of the window pipeline: near possible picks, probabilities averaged over many
window positions (``dense_overlap``), everywhere else over the model's own few.

Why: a window model's output at a sample depends on where in the window that sample falls
(near the edges the model sees little context), so with SeisBench's default of two windows per
sample a weak pick comes and goes with the window layout. Measured on the real Colombian hour of
../shared (benchmarks/window_positions.py): at PhaseNet's default overlap (1,500 of 3,001 samples)
about a third of the shipped model's picks change when the recording starts a few hundred samples
later, and the picks that change are the weak ones. Averaging many window positions (SeisBench's
own ``overlap``, turned up) makes picks independent of the layout, but costs its factor on every
window of a day, most of which hold nothing; this pass pays it only where the first pass comes
near a pick (:func:`densify_near_candidates`).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import numpy as np

from quakesnake.picking.screen import touched_spans, touching

if TYPE_CHECKING:
    from quakesnake.picking.windows import Windows

logger = logging.getLogger(__name__)


def densify_near_candidates(stacked: np.ndarray, dense: Windows, floors: dict[int, float], trace_id: str) -> None:
    """Re-stack, in place, every stretch near a sample whose first-pass probability reaches
    ``floors`` (per phase channel: half the trigger threshold minus the screen margin) from all
    the ``dense`` windows overlapping it.

    Every span re-stacked is the extent of the dense windows touching such samples, so each of
    its samples ends up with exactly the value a run of every dense window would give it (and a
    candidate lies at least a window less one stride inside its span's ends). Elsewhere the first
    pass stays: a sample below the floor there could exceed the threshold densely stacked only if
    the dense windows between the first pass's ones disagreed with them by more than half the
    threshold, which the window positions' spread on real data (module docstring) does not reach.
    When more than half of the dense windows touch candidates, all are stacked.
    """
    candidate = np.logical_or.reduce([stacked[:, channel] >= floor for channel, floor in floors.items()])
    touched = touching(candidate, dense.offsets, dense.in_samples)
    if touched.size == 0:
        return
    if touched.size > len(dense.offsets) // 2:
        logger.info("%s: %d of %d dense windows near possible picks: stacking all densely",
                    trace_id, touched.size, len(dense.offsets))
        stacked[:] = dense.stack(0, stacked.shape[0], {dense.full: range(len(dense.offsets))})
        return
    spans, overlapping = touched_spans(touched, dense.offsets, dense.in_samples)
    for (first, end), indices in zip(spans, overlapping):
        stacked[first:end] = dense.stack(first, end - first, {dense.full: indices})
    logger.info("%s: %d spans near possible picks stacked from %d of %d dense windows", trace_id, len(spans),
                sum(len(indices) for indices in overlapping), len(dense.offsets))
