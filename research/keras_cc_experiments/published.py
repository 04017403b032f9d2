"""The CC paper's CC-LS as its authors ran it: the float32 closed form with a fallback.

The CC paper (Gordon-Rodriguez et al., 2020, "The continuous categorical", eq. 4) gives
the CC normalizer in closed form, ``C⁻¹(η) = Σ_k e^{η_k} / Π_{i≠k} (η_k − η_i)``. The
authors' public code for Table 1 (``cunningham-lab/cb_and_cc``, ``cc/cc_funcs.py`` and
``cc/icbinb/ls/cifar10_model.py``) evaluates it in float32 and drops it where it fails.
This module reimplements that behaviour (not their code) so that the ablation can run
their "CC-LS" beside the exact one:

* natural parameters ``η = z[:, :K−1] − z[:, K−1]`` from the ``K`` logits ``z``, a
  trailing 0 node, every node divided by ``s``, the population standard deviation of
  ``η`` (held constant under differentiation), before the pairwise differences, and
  ``(K−1)·log s`` added back (an exact identity, a float32 difference);
* the mean ``E[y] = ∇ log C⁻¹(η)`` by automatic differentiation, the last component
  ``1 − Σ`` of the others; a row is **unstable** when any component is ``≤ 0`` or NaN;
* on unstable rows the normalizer term is dropped: the loss of the row is the plain
  cross-entropy against the smoothed target ``y_LS = (1 − ε) y + ε/K``;
* the whole optimizer step is skipped when any gradient is non-finite
  (:class:`SkipNonFiniteAdam`).

How often rows fall back (K = 10, logits ~ N(0, σ²)): about 100 % at σ ≤ 0.3, 99.9 % at
σ = 1, 36 % at σ = 3, 0.8 % at σ = 10; early in training their "CC-LS" is label
smoothing on almost every row. This is an experiment, not a loss to use: the exact CC-LS
is :class:`keras_cc.CCLabelSmoothing`.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_cc.core import hyperparameters

__all__ = [
    "FallbackShare",
    "LogitSpread",
    "PublishedCCLabelSmoothing",
    "SkipNonFiniteAdam",
    "published_cc_label_smoothing",
    "published_cc_negative_log_likelihood",
    "published_log_normalizer",
    "published_mean",
    "unstable_rows",
]


def _nodes(logits: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """``(η [B, K−1], nodes [B, K])``: ``η = z_{<K} − z_K`` and ``nodes = (η, 0)``."""
    eta = logits[:, :-1] - logits[:, -1:]
    return eta, tf.concat([eta, tf.zeros_like(eta[:, :1])], axis=-1)


def _log_ratio(eta: tf.Tensor) -> tf.Tensor:
    """``log C⁻¹(η, 0) − logsumexp(η, 0)`` ``[B]``, the closed form as published."""
    count = tf.cast(tf.shape(eta)[-1], eta.dtype)
    scale = tf.stop_gradient(tf.math.reduce_std(eta, axis=-1))
    nodes = tf.concat([eta, tf.zeros_like(eta[:, :1])], axis=-1)
    scaled = nodes / scale[:, None]
    # differences[b, j, i] = u_j − u_i, with 1 on the diagonal.
    differences = scaled[:, :, None] - scaled[:, None, :]
    differences += tf.eye(tf.shape(nodes)[-1], dtype=eta.dtype)
    # Σ_j λ_j / Π_{i≠j}(u_j − u_i) with λ = softmax(nodes) is the divided difference of
    # exp at the nodes times s^{K−1} / Σ_k e^{η_k}.
    ratio = tf.reduce_sum(tf.nn.softmax(nodes) / tf.reduce_prod(differences, axis=-1), axis=-1)
    return tf.math.log(ratio) - count * tf.math.log(scale)


def published_log_normalizer(eta: tf.Tensor) -> tf.Tensor:
    """``log C⁻¹`` of nodes ``(η, 0)`` by the closed form (CC paper eq. 4), as published.

    Args:
        eta: ``[B, K−1]`` float32 natural parameters (the K-th is 0).

    Returns:
        ``[B]`` float32. The pairwise differences are taken between nodes divided by
        ``s = std(η)`` (population, held constant under differentiation), and
        ``(K−1)·log s`` is added back. NaN where the float32 sum is not positive, and for
        all-equal nodes (``s = 0``); no error is raised.
    """
    nodes = tf.concat([eta, tf.zeros_like(eta[:, :1])], axis=-1)
    return tf.reduce_logsumexp(nodes, axis=-1) + _log_ratio(eta)


def published_mean(logits: tf.Tensor) -> tf.Tensor:
    """The CC mean ``[B, K]`` the published code computes (autodiff of the closed form).

    The first ``K−1`` components are ``∂ log C⁻¹ / ∂η``, the last ``1 − Σ`` of them; no
    gradient flows back to ``logits``. NaN or non-positive components mark rows where
    the float32 closed form failed.
    """
    eta, _ = _nodes(tf.stop_gradient(logits))
    with tf.GradientTape() as tape:
        tape.watch(eta)
        total = tf.reduce_sum(published_log_normalizer(eta))
    gradient = tape.gradient(total, eta)
    rest = 1.0 - tf.reduce_sum(gradient, axis=-1, keepdims=True)
    return tf.stop_gradient(tf.concat([gradient, rest], axis=-1))


def unstable_rows(logits: tf.Tensor) -> tf.Tensor:
    """``[B]`` bool: rows whose published mean has a component ``≤ 0`` or NaN."""
    mean = published_mean(logits)
    return tf.reduce_any(tf.logical_or(mean <= 0.0, tf.math.is_nan(mean)), axis=-1)


def published_cc_negative_log_likelihood(target: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-row CC negative log-likelihood ``[B]`` as published (float32), with its fallback.

    Args:
        target: ``[B, K]`` points of the simplex (smoothed labels, guidance vectors).
        logits: ``[B, K]`` logits (K ≥ 2).

    Returns:
        On stable rows ``CE(target, z) + log C⁻¹(η) − logsumexp(z)`` (CC paper eq. 2 with
        ``λ = softmax(z)``); on unstable rows (:func:`unstable_rows` of ``logits``) the
        cross-entropy ``CE(target, z)``. The closed form sees a fixed well-separated
        stand-in on unstable rows, so their gradient is the cross-entropy's alone, with no
        NaN leaking in.
    """
    logits = tf.cast(logits, tf.float32)
    target = tf.cast(target, tf.float32)
    eta, nodes = _nodes(logits)
    cross_entropy = tf.nn.softmax_cross_entropy_with_logits(target, nodes)
    unstable = unstable_rows(logits)
    stand_in = tf.broadcast_to(tf.range(1, tf.shape(eta)[-1] + 1, dtype=eta.dtype), tf.shape(eta))
    safe_eta = tf.where(unstable[:, None], stand_in, eta)
    return tf.where(unstable, cross_entropy, cross_entropy + _log_ratio(safe_eta))


def published_cc_label_smoothing(
    y_true: tf.Tensor, logits: tf.Tensor, label_smoothing: float = 0.1
) -> tf.Tensor:
    """Per-row loss ``[B]`` of the published CC-LS (float32):
    :func:`published_cc_negative_log_likelihood` of the smoothed target
    ``y_LS = (1 − ε) y + ε/K``.

    Args:
        y_true: ``[B, K]`` one-hot (or any simplex) targets.
        logits: ``[B, K]`` logits (K ≥ 2).
        label_smoothing: ``ε``.
    """
    y_true = tf.cast(y_true, tf.float32)
    classes = tf.cast(tf.shape(y_true)[-1], tf.float32)
    target = (1.0 - label_smoothing) * y_true + label_smoothing / classes
    return published_cc_negative_log_likelihood(target, logits)


@keras.saving.register_keras_serializable(package="keras_cc_experiments")
class PublishedCCLabelSmoothing(keras.losses.Loss):
    """The published CC-LS (see the module docstring) as a Keras loss on logits.

    Args:
        label_smoothing: ``ε`` in ``(0, 1)``.
        reduction: as in ``keras.losses.Loss``; the authors summed over the batch
            (``"sum"``).
        name: default ``"published_cc_label_smoothing"``.

    Raises:
        ValueError: ``label_smoothing`` outside ``(0, 1)``.
    """

    def __init__(
        self,
        label_smoothing: float = 0.1,
        reduction: str = "sum_over_batch_size",
        name: str = "published_cc_label_smoothing",
        dtype=None,
    ):
        label_smoothing = hyperparameters.label_smoothing(label_smoothing, positive=True)
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        return published_cc_label_smoothing(y_true, y_pred, self.label_smoothing)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="keras_cc_experiments")
class FallbackShare(keras.metrics.Mean):
    """Share of rows (0–1) on which the published CC-LS fell back to the cross-entropy.

    Takes logits ``[B, K]`` as ``y_pred``; ``y_true`` is ignored.
    """

    def __init__(self, name: str = "fallback", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        rows = tf.cast(unstable_rows(tf.cast(y_pred, tf.float32)), self.dtype)
        return super().update_state(rows, sample_weight=sample_weight)


@keras.saving.register_keras_serializable(package="keras_cc_experiments")
class LogitSpread(keras.metrics.Mean):
    """Mean over rows of the logit spread ``max_k z_k − min_k z_k`` (logits ``y_pred``)."""

    def __init__(self, name: str = "spread", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        spread = tf.reduce_max(y_pred, axis=-1) - tf.reduce_min(y_pred, axis=-1)
        return super().update_state(spread, sample_weight=sample_weight)


@keras.saving.register_keras_serializable(package="keras_cc_experiments")
class SkipNonFiniteAdam(keras.optimizers.Adam):
    """Adam that skips the whole step when any gradient is non-finite.

    A skipped step changes nothing: no variable, moment or step counter moves. The
    variable ``skipped_steps`` (int64) counts the skipped steps and is saved with the
    optimizer's other variables. Same arguments as ``keras.optimizers.Adam``.
    """

    def build(self, variables):
        super().build(variables)
        self.skipped_steps = self.add_variable(
            shape=(), dtype="int64", initializer="zeros", name="skipped_steps"
        )

    def apply(self, grads, trainable_variables=None):
        grads = list(grads)
        if not self.built:  # variables must exist before the conditional below
            self.build(trainable_variables)
        finite = tf.reduce_all(
            [tf.reduce_all(tf.math.is_finite(g)) for g in grads if g is not None]
        )

        def step():
            super(SkipNonFiniteAdam, self).apply(grads, trainable_variables)
            return tf.constant(0, tf.int64)

        skipped = tf.cond(finite, step, lambda: tf.constant(1, tf.int64))
        self.skipped_steps.assign_add(skipped)
