"""keras_cc_analysis.rank_correlation: Spearman's rho and average ranks (SciPy's)."""

import numpy as np
import pytest
import scipy.stats

import keras_cc_analysis as analysis


@pytest.mark.parametrize("ties", [False, True])
def test_spearman_equals_scipy(rng, ties):
    for _ in range(20):
        n = int(rng.integers(2, 60))
        if ties:
            x, y = rng.integers(0, 5, n).astype(float), rng.integers(0, 4, n).astype(float)
        else:
            x, y = rng.normal(size=n), rng.normal(size=n)
        np.testing.assert_allclose(
            analysis.average_ranks(x), scipy.stats.rankdata(x, method="average")
        )
        expected = scipy.stats.spearmanr(x, y).statistic
        got = analysis.spearman_rho(x, y)
        if np.isnan(expected):
            assert np.isnan(got)
        else:
            assert got == pytest.approx(expected, abs=1e-12)


def test_spearman_without_ties_is_eq8(rng):
    x, y = rng.normal(size=40), rng.normal(size=40)
    d = scipy.stats.rankdata(x) - scipy.stats.rankdata(y)
    eq8 = 1 - 6 * np.sum(d**2) / (40**3 - 40)
    assert analysis.spearman_rho(x, y) == pytest.approx(eq8, abs=1e-12)
    assert analysis.spearman_rho(x, x**3) == 1.0
    assert analysis.spearman_rho(x, -x) == -1.0


def test_spearman_rejects_bad_input():
    with pytest.raises(ValueError, match="shapes"):
        analysis.spearman_rho([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        analysis.spearman_rho([1, np.nan, 3], [1, 2, 3])
    assert np.isnan(analysis.spearman_rho([1, 1, 1], [1, 2, 3]))
