"""keras_cc.ops CC numerics against high-precision references."""

import json
import pathlib

import cc_reference
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings
from hypothesis import strategies as st

from keras_cc import ops

CASES = json.loads(
    (pathlib.Path(__file__).parent / "data" / "cc_log_normalizer_cases.json").read_text()
)
SIZES = (2, 3, 5, 10, 32, 100, 256)


def _error(value, reference):
    return abs(value - reference) / max(1.0, abs(reference))


@pytest.mark.parametrize("kind", cc_reference.KINDS)
@pytest.mark.parametrize("num_classes", SIZES)
def test_log_normalizer_matches_reference_float64(kind, num_classes):
    rng = np.random.default_rng(1000 * num_classes + len(kind))
    logits = np.stack([cc_reference.make_logits(kind, num_classes, rng) for _ in range(2)])
    values = ops.cc_log_normalizer(tf.constant(logits, tf.float64)).numpy()
    for row, value in zip(logits, values):
        assert _error(value, cc_reference.log_inverse_normalizer(row)) <= 1e-10


@pytest.mark.parametrize("kind", cc_reference.KINDS)
@pytest.mark.parametrize("num_classes", SIZES)
def test_log_normalizer_matches_reference_float32(kind, num_classes):
    rng = np.random.default_rng(7 + 1000 * num_classes + len(kind))
    logits = np.stack([cc_reference.make_logits(kind, num_classes, rng) for _ in range(2)])
    logits32 = logits.astype(np.float32)
    values = ops.cc_log_normalizer(tf.constant(logits32)).numpy()
    for row, value in zip(logits32, values):
        reference = cc_reference.log_inverse_normalizer(row.astype(np.float64))
        assert _error(float(value), reference) <= 1e-5


def test_shared_reference_cases_float64_and_means():
    for case in CASES:
        logits = tf.constant([case["eta"]], tf.float64)
        assert _error(ops.cc_log_normalizer(logits).numpy()[0], case["log_inv_norm"]) <= 1e-10
        if case.get("mean"):
            np.testing.assert_allclose(ops.cc_mean(logits).numpy()[0], case["mean"], atol=1e-8)


@pytest.mark.parametrize("kind", cc_reference.KINDS)
@pytest.mark.parametrize("num_classes", (2, 4, 10, 24))
def test_mean_matches_reference(kind, num_classes):
    rng = np.random.default_rng(num_classes + 31 * len(kind))
    logits = cc_reference.make_logits(kind, num_classes, rng)
    np.testing.assert_allclose(
        ops.cc_mean(tf.constant([logits], tf.float64)).numpy()[0],
        cc_reference.mean(logits),
        atol=1e-8,
    )
    logits32 = logits.astype(np.float32)
    np.testing.assert_allclose(
        ops.cc_mean(tf.constant([logits32])).numpy()[0],
        cc_reference.mean(logits32.astype(np.float64)),
        atol=1e-5,
    )


def test_reference_agrees_with_high_precision_closed_form():
    rng = np.random.default_rng(3)
    for num_classes in (3, 6, 12):
        logits = rng.normal(0.0, 2.0, num_classes)
        closed = cc_reference.closed_form_log_inverse_normalizer(logits, digits=80)
        assert abs(cc_reference.log_inverse_normalizer(logits) - closed) < 1e-13


def test_uniform_logits_give_flat_dirichlet_normalizer():
    for num_classes in (2, 7, 300):
        logits = tf.fill([1, num_classes], tf.constant(1.5, tf.float64))
        expected = 1.5 - np.sum(np.log(np.arange(1, num_classes)))
        assert abs(ops.cc_log_normalizer(logits).numpy()[0] - expected) < 1e-10
        np.testing.assert_allclose(ops.cc_mean(logits).numpy()[0], 1.0 / num_classes, atol=1e-14)


def test_shift_invariance_and_batch_shapes():
    logits = tf.random.stateless_normal([2, 3, 7], seed=[1, 2], dtype=tf.float64)
    value = ops.cc_log_normalizer(logits)
    assert value.shape == (2, 3)
    np.testing.assert_allclose(ops.cc_log_normalizer(logits + 4.0), value + 4.0, atol=1e-12)
    np.testing.assert_allclose(ops.cc_mean(logits + 4.0), ops.cc_mean(logits), atol=1e-14)


def test_gradient_is_mean_and_hessian_is_covariance():
    logits = tf.constant([[0.3, -1.2, 2.0, 0.0], [0.0, 1e-9, 2e-9, 0.0]], tf.float64)
    with tf.GradientTape(persistent=True) as outer:
        outer.watch(logits)
        mean = ops.cc_mean(logits)
        with tf.GradientTape() as inner:
            inner.watch(logits)
            value = tf.reduce_sum(ops.cc_log_normalizer(logits))
        gradient = inner.gradient(value, logits)
    np.testing.assert_allclose(gradient, mean, atol=1e-14)
    # pfor cannot vectorize the XLA-compiled loops; the Jacobian is taken row by row.
    hessian = outer.batch_jacobian(mean, logits, experimental_use_pfor=False)
    np.testing.assert_allclose(hessian, ops.cc_covariance(logits), atol=1e-9)


def test_covariance_of_flat_dirichlet():
    num_classes = 5
    covariance = ops.cc_covariance(tf.zeros([1, num_classes], tf.float64)).numpy()[0]
    # Dirichlet(1,...,1): var = (K-1)/(K^2 (K+1)), cov = -1/(K^2 (K+1)).
    scale = num_classes**2 * (num_classes + 1)
    expected = (num_classes * np.eye(num_classes) - 1.0) / scale
    np.testing.assert_allclose(covariance, expected, atol=1e-14)


def test_low_precision_inputs_are_computed_in_float32():
    logits = tf.constant([[0.5, -0.25, 1.0]], tf.float16)
    value = ops.cc_log_normalizer(logits)
    assert value.dtype == tf.float16
    reference = ops.cc_log_normalizer(tf.cast(logits, tf.float64)).numpy()
    np.testing.assert_allclose(value.numpy().astype(np.float64), reference, rtol=1e-3)


def test_xla_compiles_value_and_gradient():
    @tf.function(jit_compile=True)
    def value_and_gradient(logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = tf.reduce_sum(ops.cc_log_normalizer(logits))
        return value, tape.gradient(value, logits)

    logits = tf.random.stateless_normal([16, 12], seed=[3, 4])
    value, gradient = value_and_gradient(logits)
    np.testing.assert_allclose(value, tf.reduce_sum(ops.cc_log_normalizer(logits)), rtol=1e-6)
    np.testing.assert_allclose(gradient, ops.cc_mean(logits), atol=1e-6)


def test_closed_form_is_accurate_when_well_conditioned_and_fails_near_uniform():
    good = tf.constant([[0.0, 1.0, 2.5]], tf.float64)
    np.testing.assert_allclose(
        ops.cc_closed_form_log_normalizer(good), ops.cc_log_normalizer(good), atol=1e-12
    )
    near_uniform = tf.constant([[0.0, 1e-6, 2e-6, 3e-6, 4e-6, 5e-6, 6e-6, 7e-6, 8e-6, 9e-6]])
    assert bool(ops.cc_closed_form_failure(near_uniform).numpy()[0])
    assert not bool(ops.cc_closed_form_failure(tf.cast(good, tf.float32)).numpy()[0])


@tf.function(input_signature=[tf.TensorSpec([None, None], tf.float32)])
def _value_and_gradient(logits):
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = ops.cc_log_normalizer(logits)
    return value, tape.gradient(value, logits)


@settings(max_examples=40, deadline=None)
@given(
    # A few fixed numbers of classes, so that each shape compiles once for all examples.
    num_classes=st.sampled_from([2, 3, 10, 100, 1000]),
    log_scale=st.floats(np.log10(1e-8), 3.0),
    seed=st.integers(0, 2**16),
)
def test_any_finite_logits_give_finite_value_and_gradient(num_classes, log_scale, seed):
    rng = np.random.default_rng(seed)
    logits = tf.constant(10.0**log_scale * rng.standard_normal((2, num_classes)), tf.float32)
    value, gradient = _value_and_gradient(logits)
    assert np.all(np.isfinite(value.numpy()))
    assert np.all(np.isfinite(gradient.numpy()))
    np.testing.assert_allclose(gradient.numpy().sum(-1), 1.0, atol=1e-4)


def test_a_non_finite_row_leaves_the_other_rows_statistics_alone():
    """One NaN or -inf row gives NaN there and the exact values on the other rows."""
    good = [[0.0, 1.0, 2.0]]
    for bad in ([np.nan, 0.0, 1.0], [-np.inf, 0.0, 1.0]):
        batch = tf.constant(good + [bad], tf.float64)
        for statistic in (ops.cc_variance, ops.cc_covariance):
            values = statistic(batch).numpy()
            np.testing.assert_allclose(values[0], statistic(tf.constant(good, tf.float64))[0])
            assert np.isnan(values[1]).all()


@pytest.mark.parametrize("exponent", [53, 55, 58])
def test_exact_ties_far_above_the_rest_take_the_table(exponent):
    """[s, s, 0]: exp[s, s, 0] = (e^s - (e^s - 1) / s) / s, so log C^{-1} = s - log s to
    float64 rounding and E[y] = (1/2 - 1/(2s), 1/2 - 1/(2s), 1/s) to first order. Above
    2^53 the rounding of the table's cluster test once split such ties (NaN)."""
    s = 2.0**exponent
    logits = tf.constant([[s, s, 0.0], [s, 0.0, s]], tf.float64)
    np.testing.assert_allclose(ops.cc_log_normalizer(logits).numpy(), s - np.log(s), rtol=2.3e-16)
    mean = ops.cc_mean(logits).numpy()
    np.testing.assert_allclose(mean[0], [0.5, 0.5, 1.0 / s], rtol=1e-12)
    np.testing.assert_allclose(mean[1], [0.5, 1.0 / s, 0.5], rtol=1e-12)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("compiled", [False, True])
def test_rows_no_exact_method_reaches_give_nan_at_once(compiled):
    """Uncertified rows beyond the widest spread the table (eager) or the series (XLA)
    sums, and rows whose spread overflows float64, give NaN on their own row, promptly:
    never a wrong value, never a loop of 2^31 terms."""
    function = ops.cc_log_normalizer
    if compiled:
        function = tf.function(function, jit_compile=True)
    good = [0.0, 1.0, 2.0]
    for bad in ([1e19, 1e19, 0.0], [-1e308, 1e308, 0.0]) + (
        ([1e17, 1e17, 0.0],) if compiled else ()
    ):
        values = function(tf.constant([good, bad], tf.float64)).numpy()
        np.testing.assert_allclose(
            values[0], ops.cc_log_normalizer(tf.constant([good], tf.float64))[0]
        )
        assert np.isnan(values[1])


def test_covariance_of_a_wide_row_is_the_derivative_of_the_mean():
    """Rows past the table's threshold take Cov e_k from the exact mean (not the series,
    whose 1e6 terms of O(K^2) work took minutes): symmetric, rows summing to 0, diagonal
    equal to cc_variance's."""
    logits = tf.constant([[0.0, 1e6, 2e6, 5.0], [0.0, 1.0, 2.0, 3.0]], tf.float64)
    covariance = ops.cc_covariance(logits).numpy()
    variance = ops.cc_variance(logits).numpy()
    for row in range(2):
        np.testing.assert_allclose(np.diag(covariance[row]), variance[row], rtol=1e-6)
        # A mean near 1 has an absolute error of 1e-16 over a step of about 10 logits.
        np.testing.assert_allclose(covariance[row], covariance[row].T, rtol=1e-4, atol=1e-20)
        np.testing.assert_allclose(covariance[row].sum(-1), 0.0, atol=1e-5 * variance[row].max())


@pytest.mark.parametrize(
    "sample_shape, expected",
    [(3, (3,)), (np.int64(3), (3,)), ((2, 3), (2, 3)), (np.array([2, 3]), (2, 3)), ((), ())],
)
def test_sample_shape_takes_an_int_or_a_shape_as_tfp_does(sample_shape, expected):
    samples = ops.cc_sample([[0.0, 1.0, 2.0]], sample_shape=sample_shape, seed=(1, 2))
    assert tuple(samples.shape) == (*expected, 1, 3)
