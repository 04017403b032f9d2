"""Actor-mimic objectives: the AMN cross-entropy and the CC-AMN likelihood (CC paper, section 4).

Pure TensorFlow functions over a batch of one game's states. ``guidance`` holds the
experts' guidance vectors ``y = softmax(Q_E(s) / T)`` (eq. 9 with a Boltzmann expert
policy at temperature ``T``) and ``student_logits`` the student's outputs gathered to the
game's legal actions, both ``[B, A_g]``. The CC math comes from ``keras_cc.ops`` (exact
log-normalizer for any number of actions; no gradient is ever zeroed out), beside the
authors' published CC-AMN (float32 closed form, cross-entropy on the rows where it fails;
``keras_cc_experiments.published``) as a third arm that separates the normalizer's effect
from the likelihood's.
"""

from __future__ import annotations

import tensorflow as tf

from keras_cc import ops
from keras_cc_agents.actor_mimic.config import check_loss_name
from keras_cc_experiments import published


def guidance_log_probs(expert_q_values: tf.Tensor, temperature: float) -> tf.Tensor:
    """``log softmax(Q_E(s) / T)``: the log of the guidance vector (eq. 9), ``[..., A]``."""
    q = tf.convert_to_tensor(expert_q_values)
    return tf.nn.log_softmax(q / tf.cast(temperature, q.dtype), axis=-1)


def guidance_vectors(expert_q_values: tf.Tensor, temperature: float) -> tf.Tensor:
    """The guidance vector ``y = softmax(Q_E(s) / T)`` of eq. 9, ``[..., A]``."""
    q = tf.convert_to_tensor(expert_q_values)
    return tf.nn.softmax(q / tf.cast(temperature, q.dtype), axis=-1)


def amn_cross_entropy(guidance: tf.Tensor, student_logits: tf.Tensor) -> tf.Tensor:
    """AMN loss per state (eq. 10): ``-sum_k y_k log pi_AM(a_k | s)``, shape ``[...]``.

    ``pi_AM = softmax(student_logits)`` over the game's legal actions.
    """
    log_pi = tf.nn.log_softmax(student_logits, axis=-1)
    return -tf.reduce_sum(tf.cast(guidance, log_pi.dtype) * log_pi, axis=-1)


def cc_amn_negative_log_likelihood(guidance: tf.Tensor, student_logits: tf.Tensor) -> tf.Tensor:
    """CC-AMN loss per state (eq. 11): ``-log C(lambda) - sum_k y_k log lambda_k``, ``[...]``.

    ``lambda = softmax(student_logits)``; equal to the cross-entropy of eq. 10 plus
    ``log C^{-1}(log lambda)``, i.e. ``-cc_log_prob(y, log lambda)`` (CC paper eq. 2),
    with keras_cc's exact log-normalizer: finite with exact gradients at and near the
    uniform point, where the closed form (eq. 4) breaks.
    """
    log_lambda = tf.nn.log_softmax(student_logits, axis=-1)
    return -ops.cc_log_prob(tf.cast(guidance, log_lambda.dtype), log_lambda)


def published_cc_amn_negative_log_likelihood(
    guidance: tf.Tensor, student_logits: tf.Tensor
) -> tf.Tensor:
    """CC-AMN loss per state as the authors' code computed it, ``[B]`` float32: eq. 11 with
    the float32 closed form (eq. 4) on rows where the student's closed-form mean is
    positive and finite, the cross-entropy of eq. 10 on the others
    (:func:`keras_cc_experiments.published.published_cc_negative_log_likelihood`)."""
    return published.published_cc_negative_log_likelihood(guidance, student_logits)


def policy_regression_loss(loss: str):
    """The per-state objective named ``loss``: ``'ce'`` (eq. 10), ``'cc'`` (eq. 11) or
    ``'cc_published'`` (eq. 11 as published)."""
    return {
        "ce": amn_cross_entropy,
        "cc": cc_amn_negative_log_likelihood,
        "cc_published": published_cc_amn_negative_log_likelihood,
    }[check_loss_name(loss)]


def feature_regression_loss(predicted_features: tf.Tensor, expert_features: tf.Tensor) -> tf.Tensor:
    """Feature-regression term of actor-mimic (Parisotto et al., 2015, eq. 3), per state.

    ``||f_i(h_AMN(s)) - h_E_i(s)||_2^2``: squared error between the student's features
    mapped by the game's regression head and the expert's hidden features.
    """
    expert_features = tf.cast(expert_features, predicted_features.dtype)
    return tf.reduce_sum(tf.math.squared_difference(predicted_features, expert_features), -1)


def centroid_distance(probs: tf.Tensor) -> tf.Tensor:
    """Distance of points of the simplex ``[B, A]`` from its centroid ``(1/A, ..., 1/A)``,
    relative to a vertex's, ``[B]`` in [0, 1]: 0 at the centroid (uniform guidance, where
    the closed form's pairwise differences vanish), 1 at a vertex (a one-hot policy)."""
    probs = tf.convert_to_tensor(probs)
    actions = tf.cast(tf.shape(probs)[-1], probs.dtype)
    distance = tf.norm(probs - 1.0 / actions, axis=-1)
    return tf.math.divide_no_nan(distance, tf.sqrt(1.0 - 1.0 / actions))


def published_fallbacks(logits: tf.Tensor) -> tf.Tensor:
    """Bool ``[B]``: the rows of student ``logits`` ``[B, A]`` on which the published
    CC-AMN falls back to the cross-entropy (its float32 closed-form mean has a component
    that is not positive, or NaN; :func:`keras_cc_experiments.published.unstable_rows`)."""
    return published.unstable_rows(logits)


def closed_form_failures(log_probs: tf.Tensor, rtol: float = 1e-3) -> tf.Tensor:
    """Bool ``[...]``: where the CC paper's closed-form normalizer (eq. 4) would fail.

    The paper's CC-AMN zeroed the gradients of these states; here they are only counted.
    """
    return ops.cc_closed_form_failure(log_probs, rtol=rtol)
