"""Pick scoring: one matching rule and one set of metric names for every caller.

A pick matches a true arrival of its phase within a tolerance, one to one, pairs chosen to match
as many as possible and then to minimise the total time error (:func:`one_to_one`). Scores
(:func:`pick_scores`): ``recall`` = matched / reference arrivals, ``precision`` = matched /
picks, counts ``n_ref``, ``n_pred``, ``tp``, and the residuals (pick − reference, s) of the
matches: ``residual_median_s``, ``residual_mad_s``, ``residual_rms_s``. Nothing to score against
(no reference arrival) gives a None precision and recall with a ``reason``, never 0: every pick
"false" against a reference that holds nothing is not known to be false. Several tolerances:
:func:`scores_by_tolerance`, keyed ``"0.1s"``, ``"0.5s"``. The catalog evaluation, the
labelled-waveform evaluation (``quakesnake eval-picker``) and the training's dev/test scores all
report these.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def one_to_one(pred_s: np.ndarray, ref_s: np.ndarray, time_tolerance_s: float, pair_cost=None) -> tuple[np.ndarray, np.ndarray]:
    """Maximum matching with minimum total cost between predicted and reference times (s).

    ``pair_cost(p, r) -> (cost, valid)`` for index arrays; by default the time difference, valid
    within ``time_tolerance_s``. Pairs never span more than the tolerance in time, so each cluster
    of times closer than it is solved on its own (SciPy's ``linear_sum_assignment``).
    Returns the matched (pred, ref) positions.
    """
    pred_s, ref_s = np.asarray(pred_s, dtype=float), np.asarray(ref_s, dtype=float)
    if pair_cost is None:
        def pair_cost(p, r):
            dt = np.abs(pred_s[p][:, None] - ref_s[r][None, :])
            return dt, dt <= time_tolerance_s
    times = np.concatenate([pred_s, ref_s])
    is_ref = np.concatenate([np.zeros(len(pred_s), bool), np.ones(len(ref_s), bool)])
    position = np.concatenate([np.arange(len(pred_s)), np.arange(len(ref_s))])
    order = np.argsort(times, kind="stable")
    breaks = np.flatnonzero(np.diff(times[order]) > time_tolerance_s) + 1
    pred_matched, ref_matched = [], []
    for cluster in np.split(order, breaks):
        pred = position[cluster[~is_ref[cluster]]]
        ref = position[cluster[is_ref[cluster]]]
        if len(pred) == 0 or len(ref) == 0:
            continue
        cost, valid = pair_cost(pred, ref)
        if not valid.any():
            continue
        # a bonus larger than any total cost makes every extra pair worth more than lower costs
        bonus = float(cost[valid].sum()) + 1.0
        rows, cols = linear_sum_assignment(np.where(valid, cost - bonus, 0.0))
        kept = valid[rows, cols]
        pred_matched.append(pred[rows[kept]])
        ref_matched.append(ref[cols[kept]])
    if not pred_matched:
        return np.array([], np.int64), np.array([], np.int64)
    return np.concatenate(pred_matched), np.concatenate(ref_matched)


def _ratio(numerator: int, denominator: int):
    return numerator / denominator if denominator else None


def pick_scores(n_ref: int, n_pred: int, residuals_s, phase: str = "") -> dict:
    """The scores of one phase from its counts and the residuals (pick − reference, s) of its matches."""
    residuals = np.asarray(residuals_s, dtype=float)
    median = float(np.median(residuals)) if len(residuals) else None
    reason = None
    if n_ref == 0:
        reason = f"the reference has no {phase + ' ' if phase else ''}picks here: nothing to score against"
    elif n_pred == 0:
        reason = f"no {phase + ' ' if phase else ''}picks were made"
    return {
        "recall": _ratio(len(residuals), n_ref),
        "precision": _ratio(len(residuals), n_pred) if n_ref else None,
        "n_ref": int(n_ref),
        "n_pred": int(n_pred),
        "tp": int(len(residuals)),
        "residual_median_s": median,
        "residual_mad_s": float(np.median(np.abs(residuals - median))) if len(residuals) else None,
        "residual_rms_s": float(np.sqrt(np.mean(residuals ** 2))) if len(residuals) else None,
        "reason": reason,
    }


def tolerance_key(tolerance_s: float) -> str:
    return f"{float(tolerance_s):g}s"


def scores_by_tolerance(groups, tolerances_s, phase: str = "") -> dict:
    """``{"0.1s": pick_scores, ...}`` over ``groups`` of (reference times, picked times) in seconds
    (e.g. one group per record, trace or station): matched one to one within each group."""
    groups = [(np.asarray(t, dtype=float), np.asarray(p, dtype=float)) for t, p in groups]
    n_ref = sum(len(t) for t, _ in groups)
    n_pred = sum(len(p) for _, p in groups)
    out = {}
    for tolerance in sorted(float(t) for t in tolerances_s):
        residuals = []
        for true_s, picked_s in groups:
            p, r = one_to_one(picked_s, true_s, tolerance)
            residuals.append(picked_s[p] - true_s[r])
        out[tolerance_key(tolerance)] = pick_scores(n_ref, n_pred, np.concatenate(residuals) if residuals else [], phase)
    return out
