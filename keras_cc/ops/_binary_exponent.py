"""Positive float64 numbers as a mantissa and a binary exponent, scaled without rounding.

A value ``m * 2**e`` with ``m`` in [1, 2) and ``e`` an integer held in a float64 reaches far
beyond float64's range (log-values up to about 6e15 keep an exact exponent). Scaling by
powers of two is exact and needs no transcendental function: the exponent is read from and
written to the IEEE 754 bit pattern (:func:`exponent`, :func:`power_of_two`).
"""

import math

import tensorflow as tf

_MANTISSA_BITS = 52
_BIAS = 1023
_LOWEST = -1022.0  # smallest normal binary exponent
LN2 = math.log(2.0)


def exponent(x):
    """floor(log2 x) for positive normal float64 ``x`` (as float64), from its bits."""
    bits = tf.bitwise.right_shift(tf.bitcast(x, tf.int64), _MANTISSA_BITS)
    return tf.cast(tf.bitwise.bitwise_and(bits, 0x7FF) - _BIAS, tf.float64)


def power_of_two(k):
    """2**k for integer-valued float64 ``k``, exact; 0 below 2**-1022, clipped at 2**1023."""
    clipped = tf.clip_by_value(k, _LOWEST, float(_BIAS))
    bits = tf.bitwise.left_shift(tf.cast(clipped, tf.int64) + _BIAS, _MANTISSA_BITS)
    return tf.where(k < _LOWEST, tf.zeros_like(k), tf.bitcast(bits, tf.float64))


def normalize(mantissa, exp):
    """``(m, e)`` with m in [1, 2) and the same value ``mantissa * 2**exp`` (mantissa > 0)."""
    shift = exponent(mantissa)
    return mantissa * power_of_two(-shift), exp + shift


def from_log(log_value):
    """``(m, e)`` of exp(log_value) (float64), for any finite log_value.

    Beyond |log_value| ~ 1e15 the residual log_value - e ln 2 is below float64's resolution
    of log_value; it is clipped to [0, ln 2], an error of at most ln 2 in the log (relative
    1e-15 there).
    """
    exp = tf.math.floor(log_value / LN2)
    residual = tf.clip_by_value(log_value - exp * LN2, 0.0, LN2)
    return normalize(tf.exp(residual), exp)


def to_log(mantissa, exp):
    """log(mantissa * 2**exp)."""
    return tf.math.log(mantissa) + exp * LN2


def add(mantissa_a, exp_a, mantissa_b, exp_b):
    """The sum of two non-negative ``(m, e)`` values (a > 0), normalized."""
    top = tf.maximum(exp_a, exp_b)
    total = mantissa_a * power_of_two(exp_a - top) + mantissa_b * power_of_two(exp_b - top)
    return normalize(total, top)
