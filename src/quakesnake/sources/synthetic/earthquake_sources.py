"""What every generated earthquake is made of: a magnitude from a truncated Gutenberg–Richter law and
a random double-couple mechanism with a stress drop (background events, swarms, aftershocks and twin
events all draw theirs here)."""
from __future__ import annotations

import math

import numpy as np

STRESS_DROP_MEDIAN_MPA = 3.0
STRESS_DROP_SIGMA_LN = 0.6


def truncated_gutenberg_richter(rng: np.random.Generator, n: int, m_min: float, m_max: float, b: float) -> np.ndarray:
    """``n`` magnitudes in [m_min, m_max] with b-value ``b`` (inverse of the truncated exponential CDF)."""
    beta = b * math.log(10.0)
    u = rng.random(n)
    return m_min - np.log(1.0 - u * (1.0 - math.exp(-beta * (m_max - m_min)))) / beta


def source_parameters(rng: np.random.Generator, n: int) -> dict:
    """Random double-couple mechanisms and stress drops."""
    return {
        "strike_deg": rng.uniform(0.0, 360.0, n),
        "dip_deg": np.degrees(np.arccos(rng.uniform(0.0, 1.0, n))),  # uniform on the sphere
        "rake_deg": rng.uniform(-180.0, 180.0, n),
        "stress_drop_mpa": np.clip(
            STRESS_DROP_MEDIAN_MPA * np.exp(rng.normal(0.0, STRESS_DROP_SIGMA_LN, n)), 0.3, 30.0
        ),
    }
