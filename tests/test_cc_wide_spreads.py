"""keras_cc.ops at wide logit spreads (the divided-difference table) and at the extremes."""

import json

import cc_reference
import numpy as np
import pytest
import tensorflow as tf
import wide_spread_cases
from hypothesis import given, settings
from hypothesis import strategies as st

import keras_cc
from keras_cc import ops


def _relative_error(value, reference):
    return abs(value - reference) / max(1.0, abs(reference))


def _value_and_mean_of_rows(logits):
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = ops.cc_log_normalizer(logits)
    return value, tape.gradient(value, logits)


def _value_and_mean(logits):
    value, mean = _value_and_mean_of_rows(logits)
    return value.numpy()[0], mean.numpy()[0]


def _check(logits, reference, float32_reference=None):
    value, mean = _value_and_mean(tf.constant([logits], tf.float64))
    assert _relative_error(value, reference["log_inv_norm"]) <= 1e-10
    np.testing.assert_allclose(mean[reference["components"]], reference["mean"], atol=1e-8)
    np.testing.assert_allclose(mean.sum(), 1.0, atol=1e-12)
    if float32_reference is not None:
        value32, mean32 = _value_and_mean(tf.constant([logits], tf.float32))
        assert _relative_error(float(value32), float32_reference["log_inv_norm"]) <= 1e-5
        np.testing.assert_allclose(
            mean32[float32_reference["components"]], float32_reference["mean"], atol=1e-5
        )


@pytest.mark.parametrize("regime", wide_spread_cases.REGIMES)
@pytest.mark.parametrize("spread", (150.0, 1e3, 1e4))
@pytest.mark.parametrize("num_classes", (10, 100))
def test_matches_high_precision_reference(regime, spread, num_classes):
    rng = np.random.default_rng(num_classes + int(spread) + len(regime))
    logits = wide_spread_cases.make_logits(regime, num_classes, spread, rng)
    # float32 is compared with the reference at the float32-rounded logits.
    rounded = logits.astype(np.float32).astype(np.float64)
    _check(logits, wide_spread_cases.reference(logits), wide_spread_cases.reference(rounded))


def test_matches_stored_references_at_a_thousand_classes():
    cases = json.loads(wide_spread_cases.DATA.read_text())
    assert {case["regime"] for case in cases} == set(wide_spread_cases.REGIMES)
    for case in cases:
        _check(np.array(case["eta"]), case)


def test_every_row_of_a_mixed_batch_is_exact():
    """Rows of one batch take the table or the series each; neither spoils the other."""
    rng = np.random.default_rng(5)
    rows = [
        wide_spread_cases.make_logits("top", 30, 1e4, rng),
        rng.normal(0.0, 1.0, 30),
        wide_spread_cases.make_logits("uniform", 30, 500.0, rng),
        1e-9 * rng.standard_normal(30),
    ]
    values = ops.cc_log_normalizer(tf.constant(np.stack(rows))).numpy()
    for row, value in zip(rows, values):
        reference, _ = cc_reference.converged_table_log_inverse_normalizer(row)
        assert _relative_error(value, reference) <= 1e-10


def test_extreme_spreads_give_the_exact_limit():
    # exp[0, 0, q] = (e^q - 1 - q) / q^2.
    value = ops.cc_log_normalizer(tf.constant([[0.0, 1e10, 0.0]], tf.float64)).numpy()[0]
    assert _relative_error(value, 1e10 - 2.0 * np.log(1e10)) <= 1e-12
    value = ops.cc_log_normalizer(tf.constant([[0.0, 1e30, 2e30]], tf.float64)).numpy()[0]
    assert _relative_error(value, 2e30) <= 1e-12
    mean = ops.cc_mean(tf.constant([[0.0, 1e30, 2e30]], tf.float64)).numpy()[0]
    np.testing.assert_allclose(mean, [5e-31, 1e-30, 1.0], rtol=1e-10)
    # float32 inputs: the table runs in float64 (1e10 is within float32's rounding of 1e10).
    value32 = ops.cc_log_normalizer(tf.constant([[0.0, 1e10, 0.0]])).numpy()[0]
    assert _relative_error(float(value32), 1e10 - 2.0 * np.log(1e10)) <= 1e-7


def test_float32_statistics_at_a_spread_of_a_million():
    logits = [0.0, 1e6, 0.5e6]
    d64 = keras_cc.ContinuousCategorical(logits=tf.constant(logits, tf.float64))
    d32 = keras_cc.ContinuousCategorical(logits=tf.constant(logits, tf.float32))
    np.testing.assert_allclose(d32.mean().numpy(), d64.mean().numpy(), atol=1e-7)
    np.testing.assert_allclose(d32.entropy().numpy(), d64.entropy().numpy(), rtol=1e-6)
    # log C^{-1} - eta . E[y] with every large term cancelled: 1e6 - log(1e6 * 0.5e6) - ...
    assert -30.0 < float(d64.entropy().numpy()) < -20.0


def test_non_finite_logits_give_nan_statistics():
    logits = tf.constant([[np.nan, 1.0, 2.0], [0.0, np.inf, 1.0], [0.0, 1.0, 2.0]])
    values = ops.cc_log_normalizer(logits).numpy()
    assert np.isnan(values[:2]).all() and np.isfinite(values[2])
    assert np.isnan(ops.cc_mean(logits).numpy()[:2]).all()
    distribution = keras_cc.ContinuousCategorical(probs=[0.0, 0.5, 0.5])
    assert np.isnan(distribution.mean().numpy()).all()


def test_nested_and_persistent_tapes_inside_a_function():
    """A gradient penalty through CCLabelSmoothing: the Hessian is the CC covariance."""
    logits = tf.constant([[0.1, 2.0, -1.0], [3.0, 0.0, 1.0]], tf.float64)

    @tf.function
    def hessian(logits):
        with tf.GradientTape(persistent=True) as outer:
            outer.watch(logits)
            with tf.GradientTape() as inner:
                inner.watch(logits)
                value = tf.reduce_sum(ops.cc_log_normalizer(logits))
            gradient = inner.gradient(value, logits)
        return outer.batch_jacobian(gradient, logits, experimental_use_pfor=False)

    np.testing.assert_allclose(hessian(logits), ops.cc_covariance(logits), atol=1e-9)

    labels = tf.constant([[0.05, 0.9, 0.05], [0.05, 0.05, 0.9]], tf.float64)

    def loss(logits):  # the CC label-smoothing loss, in float64
        eta = tf.nn.log_softmax(logits)
        return tf.reduce_sum(ops.cc_log_normalizer(eta) - tf.reduce_sum(labels * eta, -1))

    def penalty(logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = loss(logits)
        return tf.reduce_sum(tape.gradient(value, logits) ** 2)

    def penalty_gradient(logits):
        with tf.GradientTape(persistent=True) as outer:
            outer.watch(logits)
            value = penalty(logits)
        return outer.gradient(value, logits)

    # A central difference of the penalty, direction by direction.
    step = 1e-5
    numeric = np.zeros(logits.shape)
    for index in np.ndindex(*logits.shape):
        shift = np.zeros(logits.shape)
        shift[index] = step
        numeric[index] = (penalty(logits + shift) - penalty(logits - shift)) / (2 * step)
    np.testing.assert_allclose(tf.function(penalty_gradient)(logits), numeric, atol=1e-8)
    np.testing.assert_allclose(penalty_gradient(logits), numeric, atol=1e-8)

    # The Keras loss object: the same in a function as in eager mode.
    keras_loss = keras_cc.CCLabelSmoothing(0.1, from_logits=True)
    hard = tf.one_hot([1, 2], 3)

    def keras_penalty_gradient(logits):
        with tf.GradientTape(persistent=True) as outer:
            outer.watch(logits)
            with tf.GradientTape() as inner:
                inner.watch(logits)
                value = keras_loss(hard, logits)
            penalty = tf.reduce_sum(inner.gradient(value, logits) ** 2)
        return outer.gradient(penalty, logits)

    logits32 = tf.cast(logits, tf.float32)
    np.testing.assert_allclose(
        tf.function(keras_penalty_gradient)(logits32), keras_penalty_gradient(logits32), atol=1e-5
    )


def test_variance_needs_no_k_by_k_matrix():
    num_classes = 20000
    logits = tf.random.stateless_normal([1, num_classes], seed=[1, 2], dtype=tf.float64)
    variance = ops.cc_variance(logits).numpy()
    mean = ops.cc_mean(logits).numpy()
    assert variance.shape == (1, num_classes)
    assert np.all(variance > 0) and np.all(variance < mean)
    small = logits[:, :6]
    np.testing.assert_allclose(
        ops.cc_variance(small), np.diagonal(ops.cc_covariance(small), axis1=1, axis2=2), atol=1e-14
    )
    wide = tf.constant([[0.0, 0.3, 500.0, 900.0]], tf.float64)
    np.testing.assert_allclose(
        ops.cc_variance(wide), np.diagonal(ops.cc_covariance(wide), axis1=1, axis2=2), atol=1e-9
    )


def test_tiny_temperatures_give_the_exact_limit():
    loss = keras_cc.ContinuousCategoricalLoss(temperature=1e-30, from_logits=True)
    value = float(loss([[0.1, 0.8, 0.1]], [[0.0, 1.0, 2.0]]).numpy())
    # eta = [0, 1, 2] / T: log C^{-1} = 2/T - log(1/T) - log(2/T) + o(1), y . eta = 1/T.
    assert _relative_error(value, 1e30) <= 1e-6


# Each number of classes compiles its own table (seconds each): sizes across 2..2000 rather
# than every integer keep the suite's time bounded; spreads and logits vary freely.
@pytest.mark.slow
@settings(max_examples=16, deadline=None)
@given(
    num_classes=st.sampled_from((2, 3, 10, 257, 2000)),
    log_spread=st.floats(0.0, 5.0),
    seed=st.integers(0, 2**16),
)
def test_loss_and_gradient_stay_finite_up_to_a_spread_of_1e5(num_classes, log_spread, seed):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((2, num_classes))
    logits = 10.0**log_spread * (logits - logits.min()) / max(np.ptp(logits), 1e-12)
    logits = tf.constant(logits, tf.float32)
    targets = tf.fill(logits.shape, 1.0 / num_classes)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = keras_cc.losses.cc_label_smoothing(targets, logits, from_logits=True)
    gradient = tape.gradient(loss, logits)
    assert np.all(np.isfinite(loss.numpy()))
    assert np.all(np.isfinite(gradient.numpy()))


@pytest.mark.slow
@pytest.mark.parametrize("jit_compile", (False, True))
def test_table_rows_of_a_large_batch_are_taken_in_chunks(monkeypatch, jit_compile):
    """A batch with more logits than the table takes at once: its wide rows go through the
    table a chunk at a time and give what they give on their own."""
    num_classes = 23  # a size no other test traces, so the patched chunk size is traced
    monkeypatch.setattr(ops.continuous_categorical, "_TABLE_LOGITS", 2 * num_classes)
    rng = np.random.default_rng(11)
    rows = [rng.normal(0.0, 1.0, num_classes) for _ in range(7)]
    for i in (0, 2, 3, 6):  # two dense clusters 1e4 apart: neither closed form certifies them
        rows[i][: num_classes // 2] += 1e4
    logits = tf.constant(np.stack(rows))
    value, mean = tf.function(_value_and_mean_of_rows, jit_compile=jit_compile)(logits)
    methods = ops.continuous_categorical.row_methods(logits).numpy()
    assert (methods[[0, 2, 3, 6]] == ops.continuous_categorical.METHODS.index("table")).all()
    for row, row_value, row_mean in zip(rows, value.numpy(), mean.numpy()):
        reference = wide_spread_cases.reference(row)
        assert _relative_error(row_value, reference["log_inv_norm"]) <= 1e-10
        np.testing.assert_allclose(row_mean[reference["components"]], reference["mean"], atol=1e-8)
