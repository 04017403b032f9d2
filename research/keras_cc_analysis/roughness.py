"""Measure of roughness against softmax temperature (correlations paper Section 10.2).

The paper advises choosing softmax temperatures by the roughness they produce (e.g.
down to ``MR = 1e-6``) rather than by a fixed range. ``MR(softmax(z / t))`` falls
monotonically as ``t`` grows (``d IC / d(1/t) = 2 Cov_p(p, z) >= 0``), so the
temperature reaching a target roughness is a root in ``log t`` (``scipy.optimize.brentq``).
"""

import math

import numpy as np
import scipy.optimize
import tensorflow as tf

from keras_cc.ops import softmax as softmax_ops

__all__ = ["mean_roughness", "roughness_curve", "temperature_for_roughness"]


def _logits64(logits):
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(
            f"logits must be a [num_vectors, num_classes >= 2] matrix; received {logits.shape}."
        )
    if not np.all(np.isfinite(logits)):
        raise ValueError("logits contain NaN or infinite values.")
    return tf.constant(logits)


def _mean_mr(z, temperature):
    probs = softmax_ops.tempered_softmax(z, float(temperature))
    return float(tf.reduce_mean(softmax_ops.measure_of_roughness(probs)).numpy())


def mean_roughness(logits, temperature):
    """Mean over rows of ``MR(softmax(z / t))`` (eqs. 1, 17), in float64."""
    return _mean_mr(_logits64(logits), temperature)


def roughness_curve(logits, temperatures):
    """``[mean_roughness(logits, t) for t in temperatures]`` as a float64 array (Figure 6)."""
    z = _logits64(logits)
    return np.array([_mean_mr(z, t) for t in temperatures])


def temperature_for_roughness(
    logits, target, low=1e-3, high=1e3, rtol=1e-6, max_doublings=60, max_steps=200
):
    """The temperature ``t`` at which the mean roughness of ``softmax(z / t)`` equals ``target``.

    ``scipy.optimize.brentq`` in ``log t`` (mean roughness decreases with ``t``) to a
    relative tolerance ``rtol`` on ``t``; the bracket ``[low, high]`` is widened by
    factors of 10 as needed. Raises ``ValueError`` when
    ``target`` is outside ``(0, max MR)`` (the one-hot limit ``1 - 1/n`` as ``t → 0``)
    or cannot be bracketed.
    """
    z = _logits64(logits)
    n = z.shape[1]
    if not 0.0 < target < 1.0 - 1.0 / n:
        raise ValueError(
            f"target roughness must lie in (0, 1 - 1/n) = (0, {1.0 - 1.0 / n:.6g}); "
            f"received target={target!r}."
        )

    def mr(t):
        return _mean_mr(z, t)

    for _ in range(max_doublings):
        if mr(low) >= target:
            break
        low /= 10.0
    else:
        raise ValueError(f"No temperature >= {low:g} reaches roughness {target:g}.")
    for _ in range(max_doublings):
        if mr(high) <= target:
            break
        high *= 10.0
    else:
        raise ValueError(f"No temperature <= {high:g} is smooth enough for {target:g}.")
    if mr(low) == target:
        return low
    log_t = scipy.optimize.brentq(
        lambda log_temperature: mr(math.exp(log_temperature)) - target,
        math.log(low),
        math.log(high),
        xtol=rtol,
        rtol=4 * np.finfo(float).eps,
        maxiter=max_steps,
    )
    return math.exp(log_t)
