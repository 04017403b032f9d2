"""keras_cc_analysis.plots."""

import numpy as np
import pytest

import keras_cc_analysis as analysis


def test_isotonic_fit_is_monotone(rng):
    x = rng.normal(size=200)
    y = x + rng.normal(scale=0.5, size=200)
    fx, fy = analysis.isotonic_fit(x, y)
    assert np.all(np.diff(fx) >= 0) and np.all(np.diff(fy) >= -1e-12)
    assert np.mean(fy) == pytest.approx(np.mean(y))  # isotonic regression preserves the mean
