"""Spearman's rank correlation with ties (the correlations paper's eq. 8, generalized)."""

import numpy as np

__all__ = ["average_ranks", "spearman_rho"]


def average_ranks(values):
    """Ranks 1..n of a 1-D array; tied values share the mean of the ranks they span.

    Matches ``scipy.stats.rankdata(values, method="average")``.
    """
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"average_ranks expects a 1-D array; received shape {values.shape}.")
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start index of each run of equal values, and the run each sorted element belongs to.
    new_run = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])
    run_id = np.cumsum(new_run) - 1
    starts = np.flatnonzero(new_run)
    ends = np.concatenate([starts[1:], [values.size]])
    mean_rank = (starts + ends + 1) / 2.0  # mean of ranks start+1 .. end
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = mean_rank[run_id]
    return ranks


def spearman_rho(x, y):
    """Spearman's rho between paired samples ``x`` and ``y``: Pearson's r of their ranks.

    With distinct values this is eq. 8, ``1 - 6 Σ d² / (T³ - T)``; with ties, ranks are
    averaged (as ``scipy.stats.spearmanr`` does) and eq. 8 no longer applies, so the
    Pearson form is used. NaN entries are rejected; a constant input gives NaN (no
    ordering to preserve), as in SciPy.
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
    rx = average_ranks(x) - (x.size + 1) / 2.0
    ry = average_ranks(y) - (y.size + 1) / 2.0
    denominator = np.sqrt(np.dot(rx, rx) * np.dot(ry, ry))
    if denominator == 0.0:
        return float("nan")
    return float(np.clip(np.dot(rx, ry) / denominator, -1.0, 1.0))
