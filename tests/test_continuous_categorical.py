"""keras_cc.ContinuousCategorical: TFP conventions, special cases, sampler, KL, bad input."""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import integrate, stats

import keras_cc
from keras_cc import ContinuousCategorical

tfd = tfp.distributions


def test_two_classes_equal_continuous_bernoulli():
    lam = tf.constant([0.1, 0.3, 0.5 + 1e-7, 0.8, 0.999], tf.float64)
    x = tf.constant([0.2, 0.7, 0.4, 0.05, 0.9], tf.float64)
    cc = ContinuousCategorical(probs=tf.stack([lam, 1 - lam], -1))
    cb = tfd.ContinuousBernoulli(probs=lam)
    np.testing.assert_allclose(cc.log_prob(tf.stack([x, 1 - x], -1)), cb.log_prob(x), atol=1e-9)
    np.testing.assert_allclose(cc.mean()[:, 0], cb.mean(), atol=1e-9)
    np.testing.assert_allclose(cc.variance()[:, 0], cb.variance(), atol=1e-9)


def test_equal_logits_give_flat_dirichlet():
    num_classes = 6
    cc = ContinuousCategorical(logits=tf.fill([num_classes], 0.7))
    dirichlet = tfd.Dirichlet(tf.ones([num_classes]))
    y = dirichlet.sample(5, seed=1)
    np.testing.assert_allclose(cc.log_prob(y), dirichlet.log_prob(y), atol=1e-5)
    np.testing.assert_allclose(cc.entropy(), dirichlet.entropy(), atol=1e-5)


def test_shapes_broadcasting_and_slicing():
    logits = tf.random.stateless_normal([4, 1, 5], seed=[1, 1])
    dist = ContinuousCategorical(logits=logits)
    assert dist.batch_shape == (4, 1) and dist.event_shape == (5,)
    x = tf.nn.softmax(tf.random.stateless_normal([3, 5], seed=[2, 2]))
    assert dist.log_prob(x).shape == (4, 3)
    assert dist[1:3].batch_shape == (2, 1)
    np.testing.assert_allclose(dist[2].mean(), dist.mean()[2], atol=1e-6)
    assert dist.sample([2, 3], seed=5).shape == (2, 3, 4, 1, 5)
    assert dist.covariance().shape == (4, 1, 5, 5)


def test_probs_and_logits_parameterizations_agree():
    probs = np.array([0.2, 0.5, 0.3])
    a = ContinuousCategorical(probs=probs)
    b = ContinuousCategorical(logits=np.log(probs) + 3.0)
    x = np.array([0.1, 0.6, 0.3])
    np.testing.assert_allclose(a.log_prob(x), b.log_prob(x), atol=1e-12)
    np.testing.assert_allclose(b.probs_parameter(), probs, atol=1e-12)


def test_xla_log_prob_mean_entropy_kl():
    @tf.function(jit_compile=True)
    def stats_of(logits, other, x):
        dist = ContinuousCategorical(logits=logits)
        return (
            dist.log_prob(x),
            dist.mean(),
            dist.entropy(),
            tfd.kl_divergence(dist, ContinuousCategorical(logits=other)),
        )

    logits = tf.random.stateless_normal([8, 4], seed=[3, 1])
    other = tf.random.stateless_normal([8, 4], seed=[3, 2])
    x = tf.nn.softmax(tf.random.stateless_normal([8, 4], seed=[3, 3]))
    compiled = stats_of(logits, other, x)
    dist = ContinuousCategorical(logits=logits)
    eager = (dist.log_prob(x), dist.mean(), dist.entropy())
    for a, b in zip(compiled, eager):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_sampling_is_reproducible_and_accepts_stateless_seeds():
    dist = ContinuousCategorical(logits=[0.0, 1.0, -2.0])
    np.testing.assert_array_equal(dist.sample(10, seed=42), dist.sample(10, seed=42))
    np.testing.assert_array_equal(dist.sample(10, seed=(1, 2)), dist.sample(10, seed=(1, 2)))
    assert not np.array_equal(dist.sample(10, seed=(1, 2)), dist.sample(10, seed=(1, 3)))


@pytest.mark.parametrize(
    "logits",
    [[0.0, 0.0, 0.0], [0.0, 1e-9, 3.0], [-2.0, 0.5, 1.0, 4.0, 0.0], list(np.linspace(-6, 6, 10))],
)
def test_sample_moments_match_analytic(logits):
    dist = ContinuousCategorical(logits=tf.constant(logits, tf.float64))
    samples = dist.sample(40000, seed=7).numpy()
    assert np.all(samples >= 0) and np.allclose(samples.sum(-1), 1.0)
    mean, covariance = dist.mean().numpy(), dist.covariance().numpy()
    z = (samples.mean(0) - mean) / np.sqrt(np.diag(covariance) / len(samples))
    assert np.max(np.abs(z)) < 4.5
    # Sample covariance: standard error of each entry is about sqrt(var_i var_j / n).
    scale = np.sqrt(np.outer(np.diag(covariance), np.diag(covariance)) / len(samples))
    assert np.max(np.abs(np.cov(samples.T) - covariance) / scale) < 6.0


def test_two_class_marginal_passes_ks_test_against_continuous_bernoulli():
    lam = 0.8
    dist = ContinuousCategorical(probs=tf.constant([lam, 1 - lam], tf.float64))
    samples = dist.sample(4000, seed=11).numpy()[:, 0]
    cdf = tfd.ContinuousBernoulli(probs=tf.constant(lam, tf.float64)).cdf
    assert stats.kstest(samples, lambda x: cdf(tf.constant(x, tf.float64)).numpy()).pvalue > 1e-3


def test_three_class_marginal_passes_ks_test_against_integrated_marginal():
    eta = np.array([1.5, -0.5, 0.3])
    dist = ContinuousCategorical(logits=tf.constant(eta, tf.float64))
    log_inverse = keras_cc.ops.cc_log_normalizer(tf.constant(eta)).numpy()

    def density(y1):
        # integral over y2 in [0, 1 - y1] of exp(eta1 y1 + eta2 y2 + eta3 (1 - y1 - y2))
        d = eta[1] - eta[2]
        inner = np.expm1(d * (1 - y1)) / d
        return np.exp(eta[0] * y1 + eta[2] * (1 - y1) - log_inverse) * inner

    grid = np.linspace(0.0, 1.0, 401)
    cdf_grid = np.array([integrate.quad(density, 0.0, g)[0] for g in grid])
    assert abs(cdf_grid[-1] - 1.0) < 1e-8
    samples = dist.sample(4000, seed=13).numpy()[:, 0]
    assert stats.kstest(samples, lambda x: np.interp(x, grid, cdf_grid)).pvalue > 1e-3


def test_kl_is_zero_for_equal_arguments_and_matches_monte_carlo():
    a = ContinuousCategorical(logits=tf.constant([0.5, -1.0, 2.0], tf.float64))
    b = ContinuousCategorical(logits=tf.constant([0.0, 1.0, -0.5], tf.float64))
    assert abs(tfd.kl_divergence(a, a).numpy()) < 1e-12
    samples = a.sample(40000, seed=17)
    log_ratio = (a.log_prob(samples) - b.log_prob(samples)).numpy()
    standard_error = log_ratio.std() / np.sqrt(len(log_ratio))
    assert abs(tfd.kl_divergence(a, b).numpy() - log_ratio.mean()) < 4 * standard_error


def test_entropy_matches_monte_carlo():
    dist = ContinuousCategorical(logits=tf.constant([0.5, -1.0, 2.0, 0.0], tf.float64))
    samples = dist.sample(40000, seed=19)
    negative_log_prob = -dist.log_prob(samples).numpy()
    standard_error = negative_log_prob.std() / np.sqrt(len(negative_log_prob))
    assert abs(dist.entropy().numpy() - negative_log_prob.mean()) < 4 * standard_error


def test_default_event_space_bijector_maps_onto_simplex():
    dist = ContinuousCategorical(logits=tf.zeros([4]))
    bijector = dist.experimental_default_event_space_bijector()
    y = bijector(tf.random.stateless_normal([10, 3], seed=[5, 5]))
    assert y.shape == (10, 4)
    np.testing.assert_allclose(tf.reduce_sum(y, -1), 1.0, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(probs=[0.5, 0.6, -0.1]), "`probs` must be positive"),
        (dict(probs=[0.5, 0.6, 0.1]), "`probs` must sum to 1"),
        (dict(logits=[0.0, np.inf, 1.0]), "`logits` must be finite"),
        (dict(logits=[0.0, np.nan, 1.0]), "`logits` must be finite"),
    ],
)
def test_validate_args_rejects_bad_parameters(kwargs, message):
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        ContinuousCategorical(validate_args=True, **kwargs).mean()


@pytest.mark.parametrize(
    "point, message", [([0.5, 0.7, -0.2], "negative entry"), ([0.5, 0.2, 0.2], "sum to 1")]
)
def test_validate_args_rejects_points_off_the_simplex(point, message):
    dist = ContinuousCategorical(logits=[0.0, 1.0, 2.0], validate_args=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        dist.log_prob(point)


def test_constructor_errors_name_the_problem():
    with pytest.raises(ValueError, match="exactly one of `logits` or `probs`"):
        ContinuousCategorical()
    with pytest.raises(ValueError, match="at least 2 classes"):
        ContinuousCategorical(logits=[1.0], validate_args=True)


def test_log_prob_gradient_and_samples_are_finite_for_extreme_logits():
    logits = tf.constant([[300.0, -300.0, 0.0, 1e-7], [1e-8, 0.0, -1e-8, 0.0]])
    dist = ContinuousCategorical(logits=logits)
    x = tf.constant([[0.97, 0.01, 0.01, 0.01], [0.25, 0.25, 0.25, 0.25]])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        log_prob = ContinuousCategorical(logits=logits).log_prob(x)
    assert np.all(np.isfinite(log_prob)) and np.all(np.isfinite(tape.gradient(log_prob, logits)))
    assert np.all(np.isfinite(dist.sample(50, seed=1)))
