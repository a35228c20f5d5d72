"""Mc, b-value and the frequency–magnitude distribution on samples whose answers are known."""
import math

import numpy as np
import pytest

from quakesnake.seismicity import binned_magnitudes, frequency_magnitude, magnitude_statistics


def gutenberg_richter(n: int, b: float, m_min: float, seed: int = 0) -> np.ndarray:
    """Magnitudes of an unbounded Gutenberg–Richter law above ``m_min`` (continuous)."""
    return m_min + np.random.default_rng(seed).exponential(1.0 / (b * math.log(10.0)), n)


def test_b_value_of_a_complete_sample_is_recovered_within_its_uncertainty():
    # binned to 0.1 from M 0.95: bin centres from 1.0, so the complete sample starts at Mc = 1.0
    magnitudes = gutenberg_richter(4000, b=1.0, m_min=0.95)
    stats = magnitude_statistics(magnitudes, magnitude_bin_width=0.1, mc_correction=0.0)
    assert stats["mc"] == pytest.approx(1.0)
    assert stats["n_above_mc"] == 4000
    assert abs(stats["b_value"] - 1.0) < 3 * stats["b_uncertainty"]
    # Shi & Bolt: about b / sqrt(n) for a Gutenberg–Richter sample
    assert stats["b_uncertainty"] == pytest.approx(1.0 / math.sqrt(4000), rel=0.15)
    assert stats["reason"] is None


def test_maximum_curvature_finds_the_roll_off_and_adds_the_correction():
    complete = gutenberg_richter(3000, b=1.0, m_min=1.45, seed=1)
    # an incompletely recorded tail below M 1.5: fewer and fewer events toward small magnitudes
    rng = np.random.default_rng(2)
    small = gutenberg_richter(20000, b=1.0, m_min=0.45, seed=3)
    small = small[small < 1.45]
    kept = small[rng.random(len(small)) < np.clip((small - 0.45) / 1.0, 0, 1) ** 3]
    stats = magnitude_statistics(np.concatenate([complete, kept]), mc_correction=0.2)
    assert stats["mc"] == pytest.approx(1.5 + 0.2)
    assert abs(stats["b_value"] - 1.0) < 3 * stats["b_uncertainty"]


def test_too_few_events_give_no_b_value_and_say_why():
    stats = magnitude_statistics([1.0, 1.2, 1.3], min_events_for_b_value=20)
    assert stats["mc"] is not None and stats["b_value"] is None and "needs 20" in stats["reason"]
    stats = magnitude_statistics([np.nan, None])
    assert stats["n_events"] == 0 and stats["mc"] is None and stats["reason"] == "no event has a magnitude"
    stats = magnitude_statistics([1.0] * 30, mc_correction=0.0)
    assert stats["b_value"] is None and "same magnitude" in stats["reason"]


def test_frequency_magnitude_counts_per_bin_and_cumulatively():
    table = frequency_magnitude([1.04, 1.05, 1.26, 0.96, np.nan], bin_width=0.1)
    assert table["magnitude"].tolist() == pytest.approx([1.0, 1.1, 1.2, 1.3])
    assert table["count"].tolist() == [2, 1, 0, 1]
    assert table["cumulative"].tolist() == [4, 2, 1, 1]
    assert binned_magnitudes([1.15], 0.1).tolist() == pytest.approx([1.2])
    with pytest.raises(ValueError, match="bin width"):
        binned_magnitudes([1.0], 0.0)
