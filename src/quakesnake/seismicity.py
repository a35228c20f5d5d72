"""Catalog statistics a seismologist reads first: the frequency–magnitude distribution, the
magnitude of completeness Mc and the Gutenberg–Richter b-value.

* Mc by maximum curvature (Wiemer & Wyss 2000): the magnitude bin holding the most events in the
  non-cumulative distribution, plus a correction (Woessner & Wiemer 2005 found +0.2 brings the
  maximum-curvature estimate, which sits low on gradually curved distributions, close to the
  other methods).
* b-value by maximum likelihood (Aki 1965, with Utsu's 1965 correction for binned magnitudes:
  ``b = log10(e) / (mean(M) − (Mc − ΔM/2))``), uncertainty after Shi & Bolt (1982):
  ``σ_b = 2.3 b² sqrt(Σ(M − mean)² / (n (n − 1)))``.

Written here by hand because they are a few lines each and no dependency of this project has
them (ObsPy, SciPy and NumPy do not; the seismicity packages that do, e.g. ZMAP ports, pull in
far more than these formulas).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from quakesnake.config import section_defaults

DEFAULTS = section_defaults("report")  # every key and default: the schema's report section


def binned_magnitudes(magnitudes, bin_width: float = DEFAULTS["magnitude_bin_width"]) -> np.ndarray:
    """Finite magnitudes rounded to the nearest multiple of ``bin_width`` (bin centres), halves up."""
    if not bin_width > 0:
        raise ValueError(f"magnitude bin width must be positive, got {bin_width}")
    values = np.asarray(pd.to_numeric(pd.Series(magnitudes, dtype=object), errors="coerce"), float)
    values = values[np.isfinite(values)]
    # the quotient rounded first: 1.15 / 0.1 is 11.499999… in binary, and a bin edge must not move;
    # halves go up (NumPy's round would send 10.5 to 10 and 11.5 to 12)
    return np.floor(np.round(values / bin_width, 6) + 0.5) * bin_width


def frequency_magnitude(magnitudes, bin_width: float = DEFAULTS["magnitude_bin_width"]) -> pd.DataFrame:
    """Per magnitude bin (centre, ascending) the number of events and the number at or above it."""
    binned = binned_magnitudes(magnitudes, bin_width)
    if len(binned) == 0:
        return pd.DataFrame({"magnitude": np.array([], float), "count": np.array([], int), "cumulative": np.array([], int)})
    low, high = int(round(binned.min() / bin_width)), int(round(binned.max() / bin_width))
    centres = np.arange(low, high + 1) * bin_width
    index = np.round(binned / bin_width).astype(int) - low
    counts = np.bincount(index, minlength=len(centres))
    return pd.DataFrame({"magnitude": np.round(centres, 6), "count": counts, "cumulative": counts[::-1].cumsum()[::-1]})


def magnitude_statistics(magnitudes, magnitude_bin_width: float = DEFAULTS["magnitude_bin_width"],
                         mc_correction: float = DEFAULTS["mc_correction"],
                         min_events_for_b_value: int = DEFAULTS["min_events_for_b_value"]) -> dict:
    """Mc (maximum curvature + ``mc_correction``), b-value and its uncertainty, as a JSON-safe dict.

    Keys: ``n_events`` (with a magnitude), ``mc``, ``n_above_mc``, ``b_value``, ``b_uncertainty``,
    ``a_value`` (log10 of the number at or above Mc plus b Mc), and ``reason``: None when every
    value is defined, else why not (no magnitudes, fewer than ``min_events_for_b_value`` events at
    or above Mc, all of them the same magnitude).
    """
    bin_width = magnitude_bin_width
    binned = binned_magnitudes(magnitudes, bin_width)
    result = {"n_events": int(len(binned)), "mc": None, "n_above_mc": 0, "b_value": None, "b_uncertainty": None,
              "a_value": None, "bin_width": bin_width, "mc_correction": mc_correction, "reason": None}
    if len(binned) == 0:
        result["reason"] = "no event has a magnitude"
        return result
    distribution = frequency_magnitude(binned, bin_width)
    mc = float(distribution["magnitude"].iloc[int(distribution["count"].to_numpy().argmax())]) + mc_correction
    mc = round(mc, 6)
    above = binned[binned >= mc - bin_width / 2 + 1e-9]
    result.update(mc=mc, n_above_mc=int(len(above)))
    if len(above) < min_events_for_b_value:
        result["reason"] = f"{len(above)} event(s) at or above Mc {mc:.2f}: a b-value needs {min_events_for_b_value}"
        return result
    if np.unique(np.round(above / bin_width)).size < 2:
        # the formula would still give a number (log10 e / (ΔM/2)), but no slope was measured
        result["reason"] = f"every event at or above Mc {mc:.2f} has the same magnitude: no b-value"
        return result
    excess = float(above.mean()) - (mc - bin_width / 2)
    b_value = math.log10(math.e) / excess
    n = len(above)
    b_uncertainty = 2.3 * b_value ** 2 * math.sqrt(float(((above - above.mean()) ** 2).sum()) / (n * (n - 1)))
    result.update(b_value=b_value, b_uncertainty=b_uncertainty, a_value=math.log10(n) + b_value * mc)
    return result
