"""keras_cc.ops.sampler: the exact sampler's two methods, its choice between them, and its
errors. (The distribution's own sampler tests, narrow rows and Kolmogorov-Smirnov tests of
marginals, are in test_continuous_categorical.py.)"""

import math

import numpy as np
import pytest
import tensorflow as tf
import wide_spread_cases

from keras_cc import ops
from keras_cc.ops import sampler

NUM_SAMPLES = 20000


def _label_smoothing_optimum(num_classes, seed=0):
    """The target K / 0.1 above a unit-normal cluster: where CC label smoothing puts it."""
    return wide_spread_cases.make_logits(
        "top", num_classes, num_classes / 0.1, np.random.default_rng(seed)
    )


def _assert_moments(logits, samples):
    """Sample mean and covariance of each row within 5 standard errors of the exact ones;
    points on the simplex."""
    samples = samples.astype(np.float64)
    assert np.all(samples >= 0.0)
    np.testing.assert_allclose(samples.sum(-1), 1.0, atol=1e-6)
    logits64 = tf.constant(logits, tf.float64)
    means, covariances = ops.cc_mean(logits64).numpy(), ops.cc_covariance(logits64).numpy()
    n = len(samples)
    for row, (mean, covariance) in enumerate(zip(means, covariances, strict=True)):
        variance = np.diag(covariance)
        error = np.abs(samples[:, row].mean(0) - mean)
        # Coordinates whose variance underflows (the top node of a row of spread 1e17).
        assert np.all(error <= 5.0 * np.sqrt(variance / n) + 1e-30), (row, error, variance)
        # Fourth moments are not at hand: the sample variance's own spread is bounded by
        # that of a sample from an exponential law (relative standard error 2 / sqrt(n)),
        # which the coordinates of these rows do not exceed.
        np.testing.assert_allclose(
            samples[:, row].var(0), variance, rtol=12.0 / math.sqrt(n), atol=1e-30
        )


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
@pytest.mark.parametrize(
    "logits",
    [
        [[0.0, 5e4, 1e5]],  # spread 1e5: the mixture's tables would hold 1e5 terms
        pytest.param([[0.0, 5e16, 1e17]], marks=pytest.mark.slow),  # beyond the mixture
        [_label_smoothing_optimum(10), _label_smoothing_optimum(10, seed=1)],
        pytest.param([_label_smoothing_optimum(100)], marks=pytest.mark.slow),
        pytest.param([[0.0, 0.5, 40.0, 40.3]], marks=pytest.mark.slow),  # two close top nodes
        [[0.0, 1.0], [3.0, -2.0]],  # K = 2: the continuous Bernoulli, always kept
    ],
    ids=["spread1e5", "spread1e17", "K10_optimum", "K100_optimum", "two_top", "K2"],
)
def test_truncated_exponentials_have_the_exact_moments(logits, dtype):
    logits = np.asarray(logits, np.float64)
    assert sampler.sampler_methods(tf.constant(logits, dtype)).numpy().all()
    samples = ops.cc_sample(tf.constant(logits, dtype), NUM_SAMPLES, seed=(1, 2)).numpy()
    assert samples.dtype == dtype.as_numpy_dtype
    _assert_moments(logits, samples)


def test_mixture_rows_and_truncated_rows_in_one_batch():
    rng = np.random.default_rng(3)
    logits = np.stack(
        [
            np.linspace(-6.0, 6.0, 10),  # acceptance 0.095: the mixture
            rng.standard_normal(10),  # the mixture
            _label_smoothing_optimum(10),  # the truncated exponentials
        ]
    )
    methods = sampler.sampler_methods(tf.constant(logits)).numpy()
    np.testing.assert_array_equal(methods, [False, False, True])
    _assert_moments(logits, ops.cc_sample(logits, NUM_SAMPLES, seed=(5, 6)).numpy())


def test_acceptance_is_the_share_of_kept_draws():
    """log_acceptance against the share of independent truncated-exponential draws (NumPy)
    whose sum is at most 1."""
    rng = np.random.default_rng(7)
    rows = [[0.0, 0.0, 0.0], [1.5, -0.5, 0.3], np.linspace(-6.0, 6.0, 10), [0.0, 0.5, 4.0, 4.3]]
    n = 200_000
    for row in rows:
        row = np.asarray(row, np.float64)
        rates = row.max() - np.delete(row, np.argmax(row))
        u = rng.random((n, len(rates)))
        safe = np.where(rates > 0, rates, 1.0)
        draws = np.where(rates > 0, -np.log1p(u * np.expm1(-safe)) / safe, u)
        share = np.mean(draws.sum(-1) <= 1.0)
        acceptance = math.exp(float(sampler.log_acceptance(tf.constant([row]))[0]))
        assert abs(share - acceptance) < 5.0 * math.sqrt(acceptance * (1 - acceptance) / n)


def test_acceptance_at_the_known_points():
    """1 at K = 2, 1 / (K - 1)! for equal logits, tending to 1 as the top node stands apart."""
    np.testing.assert_allclose(
        np.exp(sampler.log_acceptance(tf.constant([[0.0, 0.7], [-3.0, 2.0]])).numpy()), 1.0
    )
    np.testing.assert_allclose(
        np.exp(sampler.log_acceptance(tf.zeros([1, 5], tf.float64)).numpy()),
        1.0 / math.factorial(4),
        rtol=1e-12,
    )
    far = np.exp(sampler.log_acceptance(tf.constant([_label_smoothing_optimum(1000)])).numpy())
    assert far[0] > 0.99


def test_same_seed_same_samples_eager_and_in_a_function():
    logits = tf.constant([_label_smoothing_optimum(10), np.linspace(-6.0, 6.0, 10)])
    eager = ops.cc_sample(logits, 50, seed=(9, 9)).numpy()
    graph = tf.function(lambda x: ops.cc_sample(x, 50, seed=(9, 9)))(logits).numpy()
    np.testing.assert_array_equal(eager, graph)
    other = ops.cc_sample(logits, 50, seed=(9, 8)).numpy()
    assert not np.array_equal(eager, other)


def test_non_finite_rows_give_nan_and_leave_the_others():
    logits = tf.constant([[np.nan, 0.0, 1.0], [0.0, 1.0, 2.0], [-np.inf, 0.0, 1.0]])
    samples = ops.cc_sample(logits, 100, seed=(1, 1)).numpy()
    assert np.isnan(samples[:, 0]).all() and np.isnan(samples[:, 2]).all()
    assert np.isfinite(samples[:, 1]).all()


def test_wide_rows_the_truncation_does_not_take_are_refused_by_name():
    """Five tied top nodes 2e5 above five tied others: draws kept with probability 1/4!,
    and the mixture would need 2e5 terms."""
    logits = tf.constant([[0.0] * 5 + [2e5] * 5], tf.float64)
    assert not sampler.sampler_methods(logits).numpy().any()
    with pytest.raises(tf.errors.InvalidArgumentError, match="spreads .* wider than 100000"):
        ops.cc_sample(logits, 10, seed=(1, 2))


def test_one_class_is_the_point_mass():
    samples = ops.cc_sample(tf.constant([[3.0], [-1.0]]), 4, seed=(1, 2)).numpy()
    np.testing.assert_array_equal(samples, np.ones((4, 2, 1)))
