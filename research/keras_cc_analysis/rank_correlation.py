"""Spearman's rank correlation with ties (the correlations paper's eq. 8, generalized).

Thin checks over SciPy: ``scipy.stats.rankdata(method="average")`` and
``scipy.stats.spearmanr`` (Pearson's r of average ranks; equal to eq. 8,
``1 - 6 Σ d² / (T³ - T)``, when no value is tied).
"""

import warnings

import numpy as np
import scipy.stats

__all__ = ["average_ranks", "spearman_rho"]


def average_ranks(values):
    """Ranks 1..n of a 1-D array; tied values share the mean of the ranks they span.

    ``scipy.stats.rankdata(values, method="average")`` as float64 ``[n]``.

    Raises:
      ValueError: `values` is not 1-D.
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"average_ranks expects a 1-D array; received shape {values.shape}.")
    return scipy.stats.rankdata(values, method="average").astype(np.float64)


def spearman_rho(x, y):
    """Spearman's rho between paired samples ``x`` and ``y`` (``scipy.stats.spearmanr``).

    Ties get average ranks. A constant input gives NaN (no ordering to preserve).

    Raises:
      ValueError: the inputs are not two 1-D arrays of one length >= 2, or hold NaN.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(
            f"spearman_rho expects two 1-D arrays of one length; received shapes "
            f"{x.shape} and {y.shape}."
        )
    if x.size < 2:
        raise ValueError(f"spearman_rho needs at least 2 pairs; received {x.size}.")
    if np.isnan(x).any() or np.isnan(y).any():
        raise ValueError("spearman_rho received NaN values.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.stats.ConstantInputWarning)
        rho = scipy.stats.spearmanr(x, y).statistic
    return float(np.clip(rho, -1.0, 1.0)) if np.isfinite(rho) else float("nan")
