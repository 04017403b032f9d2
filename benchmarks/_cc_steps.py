"""The contenders the CC-LS cost benchmarks time: jit-compiled loss + gradient of CC label
smoothing and of the fused softmax cross-entropy on label-smoothed targets; the logits of
the CC-LS trajectory; the methods rows take. Shared by ``cc_trajectory.py``,
``cc_wide_row.py`` and ``compile_cost.py``; it defines no flags."""

import numpy as np
import tensorflow as tf

import keras_cc
from keras_cc import ops


def trajectory_logits(batch_size, num_classes, t, epsilon, seed=0):
    """[B, K] float32 logits: unit-normal rows whose target (row index mod K) stands
    t K / epsilon above the rest, and the one-hot targets."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((batch_size, num_classes))
    labels = np.arange(batch_size) % num_classes
    logits[np.arange(batch_size), labels] += t * num_classes / epsilon
    return tf.constant(logits, tf.float32), tf.one_hot(labels, num_classes)


def loss_and_gradient(name, epsilon):
    """A jit-compiled ``(logits, one_hot) -> (sum of losses, gradient)``."""

    def cc_ls(logits, one_hot):
        return keras_cc.losses.cc_label_smoothing(
            one_hot, logits, from_logits=True, label_smoothing=epsilon
        )

    def ce_ls(logits, one_hot):
        num_classes = tf.cast(tf.shape(one_hot)[-1], one_hot.dtype)
        targets = one_hot * (1.0 - epsilon) + epsilon / num_classes
        return tf.nn.softmax_cross_entropy_with_logits(targets, logits)

    loss = {"cc_ls": cc_ls, "ce_ls": ce_ls}[name]

    @tf.function(jit_compile=True)
    def step(logits, one_hot):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = tf.reduce_sum(loss(logits, one_hot))
        return value, tape.gradient(value, logits)

    return step


def row_methods(logits):
    """``{method name: rows}`` of the methods the rows of ``logits`` take
    (``keras_cc.ops.continuous_categorical.row_methods``)."""
    methods = ops.continuous_categorical.row_methods(logits).numpy()
    names = ops.continuous_categorical.METHODS
    return {names[i]: int((methods == i).sum()) for i in np.unique(methods)}
