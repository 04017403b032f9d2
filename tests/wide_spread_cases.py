"""Logits of the three wide-spread regimes, and their high-precision references.

Regimes (CC label smoothing drives logits to the first; the others bracket it):
``top``: one node ``spread`` above a dense cluster of K - 1 standard normal nodes;
``uniform``: nodes uniform on [0, spread]; ``two_clusters``: half the nodes standard normal,
half ``spread`` above them. References come from ``cc_reference`` at a precision where two
precisions agree; the mean by central differences at that precision (never float64).

Run as a script to regenerate tests/data/cc_wide_spread_cases.json (the K = 1000 cases,
minutes of mpmath each; cases stored with the same logits are kept):
``python tests/wide_spread_cases.py``.
"""

import json
import pathlib
import sys

import cc_reference
import numpy as np

from keras_cc_runs import run_directory

REGIMES = ("top", "uniform", "two_clusters")
DATA = pathlib.Path(__file__).parent / "data" / "cc_wide_spread_cases.json"


def make_logits(regime, num_classes, spread, rng):
    """float64 logits of ``regime`` with the given number of classes and spread."""
    if regime == "top":
        cluster = rng.standard_normal(num_classes - 1)
        return np.append(cluster, cluster.max() + spread)
    if regime == "uniform":
        return rng.uniform(0.0, spread, num_classes)
    if regime == "two_clusters":
        low = rng.standard_normal(num_classes // 2)
        high = rng.standard_normal(num_classes - num_classes // 2)
        return np.concatenate([low, high - high.min() + low.max() + spread])
    raise ValueError(regime)


def mean_components(logits):
    """Classes whose mean the tests check: the smallest, a middle one and the largest."""
    order = np.argsort(logits)
    return [int(order[0]), int(order[len(order) // 2]), int(order[-1])]


def reference(logits):
    """{"log_inv_norm", "components", "mean"} at a converged precision."""
    value, digits = cc_reference.converged_table_log_inverse_normalizer(logits)
    components = mean_components(logits)
    mean = cc_reference.finite_difference_mean(logits, components, digits + 60)
    return {"log_inv_norm": value, "components": components, "mean": mean.tolist()}


def series_reference(logits):
    """:func:`reference` by the positive series at 50 digits (cc_reference), for dense
    clusters, where the table's subtractions would need thousands of digits."""
    components = mean_components(logits)
    value = cc_reference.log_inverse_normalizer(logits)
    base = np.asarray(logits, np.float64)
    mean = [
        float(np.exp(cc_reference.log_inverse_normalizer(np.append(base, base[k])) - value))
        for k in components
    ]
    return {"log_inv_norm": value, "components": components, "mean": mean}


def main():
    """Writes the stored cases, reusing those already in the file with the same logits."""
    rng = np.random.default_rng(2026)
    stored = json.loads(DATA.read_text()) if DATA.exists() else []
    cases = []
    # Dense clusters by the series (its cost grows with the spread), the rest by the table.
    for regime, spread, method in (
        ("uniform", 1e4, reference),
        ("top", 1e3, series_reference),
        ("two_clusters", 1e3, series_reference),
        ("top", 1e4, series_reference),
    ):
        logits = make_logits(regime, 1000, spread, rng)
        case = {"regime": regime, "spread": spread, "eta": logits.tolist()}
        known = [old for old in stored if old["eta"] == case["eta"]]
        case.update(known[0] if known else method(logits))
        cases.append(case)
        print(regime, spread, case["log_inv_norm"], file=sys.stderr, flush=True)
        run_directory.write_json(str(DATA), cases, indent=None)  # atomic


if __name__ == "__main__":
    main()
