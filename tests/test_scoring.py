"""scoring: one-to-one matching within a tolerance and the metric names every caller reports."""
import numpy as np
import pytest

from quakesnake.scoring import one_to_one, pick_scores, scores_by_tolerance


def test_one_to_one_matches_as_many_as_possible_then_the_closest():
    truth = np.array([10.0, 10.6, 30.0])
    picked = np.array([10.3, 10.35, 29.0, 50.0])
    p, r = one_to_one(picked, truth, 0.5)
    pairs = sorted(zip(p.tolist(), r.tolist()))
    # 10.3 and 10.35 both reach 10.0 and 10.6: two matches, not one greedy closest; 29.0 is too far
    assert len(pairs) == 2 and {r for _, r in pairs} == {0, 1}
    assert one_to_one(np.array([]), truth, 0.5)[0].size == 0


def test_scores_are_none_when_there_is_nothing_to_divide_by():
    empty = pick_scores(0, 0, [])
    assert empty["recall"] is None and empty["precision"] is None and empty["residual_median_s"] is None
    scores = pick_scores(4, 5, [0.1, -0.1, 0.2])
    assert scores["recall"] == pytest.approx(0.75) and scores["precision"] == pytest.approx(0.6)
    assert scores["tp"] == 3 and scores["residual_median_s"] == pytest.approx(0.1)


def test_scores_by_tolerance_match_within_each_group():
    # the same times in two records never match across them
    groups = [([1.0], [1.05, 3.0]), ([2.0], [])]
    scores = scores_by_tolerance(groups, [0.5, 0.01])
    assert list(scores) == ["0.01s", "0.5s"]
    assert scores["0.5s"]["recall"] == 0.5 and scores["0.5s"]["precision"] == 0.5
    assert scores["0.01s"]["tp"] == 0 and scores["0.5s"]["residual_median_s"] == pytest.approx(0.05)
