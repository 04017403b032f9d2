"""Tempered softmax, index of coincidence and measure of roughness.

Pure TensorFlow, event axis last, XLA-compilable. Equation numbers refer to the
correlations paper (Connor et al., Entropy 26 (2024) 491).
"""

import numbers

import numpy as np
import tensorflow as tf

from keras_cc.core import hyperparameters

__all__ = [
    "tempered_softmax",
    "tempered_log_softmax",
    "index_of_coincidence",
    "measure_of_roughness",
    "check_temperature",
]


def check_temperature(temperature, name="temperature"):
    """A Python or NumPy scalar ``temperature`` as a float, checked to be finite and > 0
    (``ValueError`` otherwise: :func:`keras_cc.core.hyperparameters.temperature`); None for
    tensors and arrays, which are checked at run time with ``tf.debugging.assert_positive``
    instead (an ``InvalidArgumentError``; XLA drops that assertion).
    """
    if isinstance(temperature, bool | np.bool_ | numbers.Real) or (
        isinstance(temperature, np.ndarray) and temperature.ndim == 0
    ):
        return hyperparameters.temperature(temperature, name)
    return None


def _scaled_logits(logits, temperature):
    logits = tf.convert_to_tensor(logits)
    if not logits.dtype.is_floating:
        logits = tf.cast(logits, tf.float32)
    if check_temperature(temperature) is not None:
        return logits / tf.cast(temperature, logits.dtype)
    temperature = tf.cast(temperature, logits.dtype)
    with tf.control_dependencies(
        [tf.debugging.assert_positive(temperature, message="`temperature` must be > 0")]
    ):
        return logits / temperature


def tempered_softmax(logits, temperature=1.0):
    """``softmax(z, t)_i = exp(z_i / t) / Σ_j exp(z_j / t)`` (eq. 1) over the last axis."""
    return tf.nn.softmax(_scaled_logits(logits, temperature), axis=-1)


def tempered_log_softmax(logits, temperature=1.0):
    """``log softmax(z, t)`` (eq. 1), computed stably without forming the softmax."""
    return tf.nn.log_softmax(_scaled_logits(logits, temperature), axis=-1)


def index_of_coincidence(p):
    """Index of coincidence ``IC(p) = Σ p_i²`` (eq. 16)."""
    p = tf.convert_to_tensor(p)
    if not p.dtype.is_floating:
        p = tf.cast(p, tf.float32)
    return tf.reduce_sum(tf.square(p), axis=-1)


def measure_of_roughness(p):
    """Measure of roughness ``MR(p) = Σ (p_i - 1/n)²`` (eq. 17), the distance to uniform.

    Equals ``χ²(p : U_n) / n`` (eqs. 18–19) and ``IC(p) - 1/n`` on the simplex.
    """
    p = tf.convert_to_tensor(p)
    if not p.dtype.is_floating:
        p = tf.cast(p, tf.float32)
    n = tf.cast(tf.shape(p)[-1], p.dtype)
    return tf.reduce_sum(tf.square(p - 1.0 / n), axis=-1)
