"""keras_cc.ContinuousCategorical: TFP conventions, special cases, sampler, KL, bad input."""

import keras_cc  # noqa: I001  (before TFP: loads TFP 0.23 with the Keras routing it needs)
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp
from scipy import integrate, stats

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


# ------------------------------------------------- dtypes and validate_args, every path

FLOAT_DTYPES = [tf.float16, tf.bfloat16, tf.float32, tf.float64]
# Relative tolerance of each dtype's results against float64 at the same rounded inputs.
RTOL = {tf.float16: 4e-3, tf.bfloat16: 3e-2, tf.float32: 1e-5, tf.float64: 1e-10}


def test_bfloat16_validate_args_log_prob_of_the_issue():
    point = [0.2, 0.3, 0.5]
    by_logits = ContinuousCategorical(
        logits=tf.constant([0.0, 1.0, 2.0], tf.bfloat16), validate_args=True
    )
    value = by_logits.log_prob(point)
    assert value.dtype == tf.bfloat16
    assert float(value) == pytest.approx(0.91049747, abs=8e-3)
    probs = tf.constant([0.2, 0.3, 0.5], tf.bfloat16)
    reference = ContinuousCategorical(probs=tf.cast(probs, tf.float64)).log_prob(
        tf.cast(tf.constant(point, tf.bfloat16), tf.float64)
    )
    by_probs = ContinuousCategorical(probs=probs, validate_args=True).log_prob(point)
    assert float(by_probs) == pytest.approx(float(reference), abs=8e-3)


def _rounded(values, dtype):
    """values rounded to dtype, and the same rounded values in float64."""
    rounded = tf.cast(tf.constant(values, tf.float64), dtype)
    return rounded, tf.cast(rounded, tf.float64)


def _assert_close(value, reference, dtype):
    assert value.dtype == dtype
    np.testing.assert_allclose(
        tf.cast(value, tf.float64), reference, rtol=RTOL[dtype], atol=RTOL[dtype]
    )


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("parameterization", ["logits", "probs"])
def test_validate_args_accepts_valid_input_in_every_float_dtype(dtype, parameterization):
    values = [[0.0, 1.0, 2.0], [-0.5, 0.25, 0.0]]
    if parameterization == "probs":
        values = scipy_softmax(values)
    parameter, parameter64 = _rounded(values, dtype)
    point, point64 = _rounded([[0.2, 0.3, 0.5], [0.6, 0.1, 0.3]], dtype)
    dist = ContinuousCategorical(validate_args=True, **{parameterization: parameter})
    reference = ContinuousCategorical(**{parameterization: parameter64})
    other = ContinuousCategorical(logits=tf.constant([0.5, -1.0, 0.0], dtype), validate_args=True)
    other64 = ContinuousCategorical(logits=tf.constant([0.5, -1.0, 0.0], tf.float64))
    assert dist.dtype == dtype
    _assert_close(dist.log_prob(point), reference.log_prob(point64), dtype)
    _assert_close(dist.prob(point), reference.prob(point64), dtype)
    _assert_close(dist.mean(), reference.mean(), dtype)
    _assert_close(dist.variance(), reference.variance(), dtype)
    _assert_close(dist.covariance(), reference.covariance(), dtype)
    _assert_close(dist.entropy(), reference.entropy(), dtype)
    _assert_close(tfd.kl_divergence(dist, other), tfd.kl_divergence(reference, other64), dtype)
    _assert_close(dist.probs_parameter(), reference.probs_parameter(), dtype)
    samples = dist.sample(5, seed=3)
    assert samples.dtype == dtype and samples.shape == (5, 2, 3)
    assert np.all(np.isfinite(dist.log_prob(samples).numpy().astype("float64")))
    bijector = dist.experimental_default_event_space_bijector()
    y = bijector(tf.zeros([2, 2], dtype))
    assert y.dtype == dtype
    _assert_close(
        dist.log_prob(y),
        reference.log_prob(tf.fill([2, 3], tf.constant(1.0 / 3.0, tf.float64))),
        dtype,
    )


def scipy_softmax(values):
    return list(np.exp(values) / np.exp(values).sum(-1, keepdims=True))


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(probs=[0.5, 0.6, -0.1]), "`probs` must be positive"),
        (dict(probs=[0.5, 0.5, 0.0]), "`probs` must be positive"),
        (dict(probs=[0.5, 0.25, 0.125]), "`probs` must sum to 1"),
        (dict(probs=[0.5, np.nan, 0.5]), "`probs` must be finite"),
        (dict(probs=[0.5, np.inf, 0.5]), "`probs` must be finite"),
        (dict(logits=[0.0, np.inf, 1.0]), "`logits` must be finite"),
        (dict(logits=[0.0, np.nan, 1.0]), "`logits` must be finite"),
    ],
)
def test_validate_args_rejects_bad_parameters_in_every_float_dtype(dtype, kwargs, message):
    ((argument, values),) = kwargs.items()
    with pytest.raises(tf.errors.InvalidArgumentError, match=message) as error:
        ContinuousCategorical(validate_args=True, **{argument: tf.constant(values, dtype)}).mean()
    if np.isnan(values).any():
        assert "positive" not in str(error.value) and "sum to 1" not in str(error.value)


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize(
    "point, message",
    [
        ([0.5, 0.75, -0.25], "found a negative entry"),
        ([0.5, 0.25, 0.125], "entries must sum to 1"),
        ([0.5, 0.2, 0.2], "entries must sum to 1"),
        ([np.nan, 0.5, 0.5], "found a NaN or infinite entry"),
        ([np.inf, 0.5, 0.5], "found a NaN or infinite entry"),
    ],
)
def test_validate_args_rejects_points_off_the_simplex_in_every_float_dtype(dtype, point, message):
    dist = ContinuousCategorical(logits=tf.constant([0.0, 1.0, 2.0], dtype), validate_args=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message) as error:
        dist.log_prob(tf.constant(point, dtype))
    if np.isnan(point).any():
        assert "negative" not in str(error.value) and "sum to 1" not in str(error.value)


def test_nan_in_a_point_is_reported_as_nan_in_graph_mode_too():
    dist = ContinuousCategorical(logits=[0.0, 1.0, 2.0], validate_args=True)
    log_prob = tf.function(dist.log_prob)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or infinite") as error:
        log_prob(tf.constant([np.nan, 0.5, 0.5]))
    assert "negative" not in str(error.value) and "sum to 1" not in str(error.value)


@pytest.mark.parametrize("validate_args", [False, True])
def test_a_point_with_another_event_size_is_refused(validate_args):
    dist = ContinuousCategorical(logits=[[0.0, 1.0, 2.0]], validate_args=validate_args)
    with pytest.raises(ValueError, match=r"one entry per class \(3, the last axis of `logits`\)"):
        dist.log_prob([[1.0]])
    with pytest.raises(ValueError, match="one entry per class"):
        dist.prob([[0.5, 0.5, 0.0, 0.0]])
    with pytest.raises(ValueError, match="a scalar"):
        dist.log_prob(1.0)


def test_a_point_of_unknown_event_size_is_checked_at_run_time():
    dist = ContinuousCategorical(probs=[0.2, 0.3, 0.5], validate_args=True)
    log_prob = tf.function(dist.log_prob, input_signature=[tf.TensorSpec([None], tf.float32)])
    with pytest.raises(tf.errors.InvalidArgumentError, match="last axis of `probs`"):
        log_prob(tf.constant([1.0]))
    np.testing.assert_allclose(
        log_prob(tf.constant([0.2, 0.3, 0.5])), dist.log_prob([0.2, 0.3, 0.5])
    )


@pytest.mark.parametrize(
    "integers", [[0, 1, 2], np.array([0, 1, 2]), tf.constant([0, 1, 2], tf.int64)], ids=str
)
def test_integer_logits_are_float32(integers):
    dist = ContinuousCategorical(logits=integers)
    floats = ContinuousCategorical(logits=[0.0, 1.0, 2.0])
    assert dist.dtype == tf.float32 and dist.logits.dtype == tf.float32
    for method in ("entropy", "mean", "variance", "covariance"):
        np.testing.assert_allclose(getattr(dist, method)(), getattr(floats, method)(), rtol=1e-6)
    np.testing.assert_allclose(dist.log_prob([0.2, 0.3, 0.5]), 0.91049747, rtol=1e-6)
    assert dist[None].batch_shape == (1,)


def test_integer_probs_are_float32_and_validated_as_probabilities():
    assert ContinuousCategorical(probs=tf.constant([0, 0, 1])).dtype == tf.float32
    with pytest.raises(tf.errors.InvalidArgumentError, match="`probs` must be positive"):
        ContinuousCategorical(probs=tf.constant([0, 0, 1]), validate_args=True)


@pytest.mark.parametrize("dtype", [tf.float32, tf.float64], ids=lambda d: d.name)
@pytest.mark.parametrize("point_dtype", [tf.int32, tf.int64, tf.bool], ids=lambda d: d.name)
def test_integer_points_are_cast_not_truncated(dtype, point_dtype):
    dist = ContinuousCategorical(logits=tf.constant([0.0, 1.0, 2.0], dtype), validate_args=True)
    corner = tf.cast(tf.constant([0, 0, 1]), point_dtype)
    value = dist.log_prob(corner)
    assert value.dtype == dtype
    np.testing.assert_allclose(value, dist.log_prob(tf.constant([0.0, 0.0, 1.0], dtype)))
    np.testing.assert_allclose(
        value, 2.0 - keras_cc.ops.cc_log_normalizer([0.0, 1.0, 2.0]), rtol=1e-6
    )


def test_parameters_of_other_kinds_are_refused_by_name():
    with pytest.raises(TypeError, match="`logits` must be a real"):
        ContinuousCategorical(logits=tf.constant([1 + 1j, 0j]))
    with pytest.raises(ValueError, match="`probs` needs a class"):
        ContinuousCategorical(probs=0.5)
    with pytest.raises(ValueError, match="at least 2 classes"):
        ContinuousCategorical(logits=[1.0])
