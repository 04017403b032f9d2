"""AMN (eq. 10) and CC-AMN (eq. 11) losses against direct NumPy/SciPy computations.

The reference CC normalizer is the divided difference of exp over the logits (Hermite-
Genocchi: the integral of exp(eta . y) over the simplex), computed stably as an entry of
the matrix exponential of a bidiagonal matrix, so it is exact at and near the uniform
point where the CC paper's closed form (eq. 4) breaks.
"""

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf

from keras_cc_agents.actor_mimic import config, losses


def _divided_difference_of_exp(nodes):
    nodes = np.asarray(nodes, np.float64)
    shift = nodes.max()
    k = len(nodes)
    matrix = np.diag(nodes - shift) + np.diag(np.ones(k - 1), 1)
    return np.exp(shift) * scipy.linalg.expm(matrix)[0, k - 1]


def reference_log_normalizer(eta):
    return np.log(_divided_difference_of_exp(eta))


def reference_mean(eta):
    total = _divided_difference_of_exp(eta)
    return np.array(
        [_divided_difference_of_exp(np.append(eta, eta[k])) / total for k in range(len(eta))]
    )


def _log_softmax(z):
    z = np.asarray(z, np.float64)
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


K = 6
UNIFORM = np.full(K, 1.0 / K)
_TILT = np.array([1.0, -1.0, 0.5, -0.5, 0.25, -0.25])
GUIDANCE = np.stack(
    [
        UNIFORM,  # exactly uniform
        UNIFORM + 1e-7 * _TILT,  # near-uniform: the closed form's failure region
        UNIFORM + 1e-5 * _TILT,
        UNIFORM + 1e-3 * _TILT,
        np.exp(_log_softmax(np.array([0.3, 0.1, 0.0, -0.2, 0.05, 0.1]))),  # typical softmax(Q)
        np.exp(_log_softmax(np.array([4.0, 0.0, -1.0, 1.0, 0.0, -2.0]))),  # peaked
    ]
)
STUDENT_LOGITS = np.stack(
    [
        np.zeros(K),  # student exactly uniform
        1e-6 * _TILT,
        1e-4 * _TILT[::-1],
        np.array([0.2, -0.1, 0.0, 0.3, -0.2, 0.1]),
        np.array([1.0, 0.5, -0.5, 0.0, 2.0, -1.0]),
        np.array([3.0, -2.0, 0.0, 1.0, -1.0, 0.5]),
    ]
)


def _loss_and_gradient(fn, guidance, logits):
    logits = tf.constant(logits, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = fn(tf.constant(guidance, tf.float32), logits)
    return value.numpy(), tape.gradient(value, logits).numpy()


def test_amn_cross_entropy_matches_numpy():
    value, gradient = _loss_and_gradient(losses.amn_cross_entropy, GUIDANCE, STUDENT_LOGITS)
    expected = -(GUIDANCE * _log_softmax(STUDENT_LOGITS)).sum(-1)
    np.testing.assert_allclose(value, expected, rtol=1e-6, atol=1e-6)
    # d/dz of eq. 10 is softmax(z) - y (y sums to one).
    np.testing.assert_allclose(
        gradient, np.exp(_log_softmax(STUDENT_LOGITS)) - GUIDANCE, rtol=1e-5, atol=1e-6
    )


def test_cc_amn_matches_numpy_including_near_uniform_guidance():
    value, gradient = _loss_and_gradient(
        losses.cc_amn_negative_log_likelihood, GUIDANCE, STUDENT_LOGITS
    )
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(gradient))
    log_lambda = _log_softmax(STUDENT_LOGITS)
    expected = np.array(
        [
            -(y * ll).sum() + reference_log_normalizer(ll)
            for y, ll in zip(GUIDANCE, log_lambda, strict=True)
        ]
    )
    np.testing.assert_allclose(value, expected, rtol=1e-5, atol=1e-5)
    # d/dz of eq. 11 is E_CC(lambda)[y] - y: the CC mean replaces softmax in the CE gradient.
    expected_gradient = np.stack([reference_mean(ll) for ll in log_lambda]) - GUIDANCE
    np.testing.assert_allclose(gradient, expected_gradient, rtol=1e-4, atol=2e-6)
    # At the uniform point the gradient vanishes exactly when the guidance is uniform too.
    np.testing.assert_allclose(gradient[0], 0.0, atol=1e-6)


def test_cc_is_cross_entropy_plus_log_normalizer():
    ce, _ = _loss_and_gradient(losses.amn_cross_entropy, GUIDANCE, STUDENT_LOGITS)
    cc, _ = _loss_and_gradient(losses.cc_amn_negative_log_likelihood, GUIDANCE, STUDENT_LOGITS)
    normalizers = [reference_log_normalizer(ll) for ll in _log_softmax(STUDENT_LOGITS)]
    np.testing.assert_allclose(cc - ce, normalizers, rtol=1e-5, atol=1e-5)


def test_guidance_vectors_are_tempered_softmax_and_closed_form_fails_near_uniform():
    q = np.array([[1.0, 2.0, 0.5, 0.0], [10.0, 10.0001, 10.0, 9.9999]])
    for temperature in (0.1, 1.0, 5.0):
        y = losses.guidance_vectors(tf.constant(q, tf.float32), temperature).numpy()
        np.testing.assert_allclose(y, np.exp(_log_softmax(q / temperature)), rtol=1e-5)
    log_y = losses.guidance_log_probs(tf.constant(q, tf.float32), 1.0)
    failed = losses.closed_form_failures(log_y).numpy()
    # Q-values that barely differ give near-uniform guidance: eq. 4 breaks there.
    assert not failed[0] and failed[1]


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan"), float("inf"), "hot"])
def test_temperature_must_be_positive(bad):
    with pytest.raises(ValueError, match="temperature"):
        config.check_temperature(bad)


def test_unknown_loss_is_named():
    with pytest.raises(ValueError, match="loss must be one of"):
        losses.policy_regression_loss("mse")


def test_feature_regression_is_squared_error():
    predicted = tf.constant([[1.0, 2.0], [0.0, 0.0]])
    target = tf.constant([[0.0, 0.0], [3.0, 4.0]])
    np.testing.assert_allclose(losses.feature_regression_loss(predicted, target), [5.0, 25.0])


def test_published_cc_amn_falls_back_to_cross_entropy_where_its_closed_form_fails():
    ce, ce_gradient = _loss_and_gradient(losses.amn_cross_entropy, GUIDANCE, STUDENT_LOGITS)
    exact, _ = _loss_and_gradient(losses.cc_amn_negative_log_likelihood, GUIDANCE, STUDENT_LOGITS)
    published, gradient = _loss_and_gradient(
        losses.published_cc_amn_negative_log_likelihood, GUIDANCE, STUDENT_LOGITS
    )
    fallback = losses.published_fallbacks(tf.constant(STUDENT_LOGITS, tf.float32)).numpy()
    # The float32 closed form fails on the (near-)uniform students and holds on spread ones.
    assert fallback[:3].all() and not fallback[4:].any()
    np.testing.assert_allclose(published[fallback], ce[fallback], rtol=1e-6)
    np.testing.assert_allclose(gradient[fallback], ce_gradient[fallback], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(published[~fallback], exact[~fallback], rtol=1e-3, atol=1e-3)
    assert np.isfinite(gradient).all()
    assert config.MODEL_NAMES["cc_published"] == "CC-AMN (published)"
    assert losses.policy_regression_loss("cc_published") is (
        losses.published_cc_amn_negative_log_likelihood
    )


def test_centroid_distance_is_zero_at_the_centroid_and_one_at_a_vertex():
    probs = np.stack([UNIFORM, np.eye(K)[2], 0.5 * (UNIFORM + np.eye(K)[0])])
    distance = losses.centroid_distance(tf.constant(probs, tf.float64)).numpy()
    np.testing.assert_allclose(distance, [0.0, 1.0, 0.5], atol=1e-12)
