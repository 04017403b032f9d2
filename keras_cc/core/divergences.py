"""The triangular and Jensen-Shannon divergences of paired points, on any array namespace.

Equation numbers refer to Connor et al., "Correlations of Cross-Entropy Loss in Machine
Learning", Entropy 26 (2024) 491. Inputs are tensors of one float dtype, event axis last,
already broadcast against each other; :mod:`keras_cc.ops.divergences` (TensorFlow) and
:mod:`keras_cc.losses` (``keras.ops``) check and convert them.
"""

import math

__all__ = ["jensen_shannon_divergence", "triangular_divergence", "triangular_coordinates"]

LN2 = math.log(2.0)
# |x| below this uses the series-stable JSD branch (see jensen_shannon_coordinate_sum).
JSD_SMALL_RATIO = 0.5


def jensen_shannon_coordinate_sum(xp, q, p):
    """Σ_i of ``q ln(2q/(q+p)) + p ln(2p/(q+p))`` (Topsøe's C), accurate near q = p.

    With ``s = q + p`` and ``x = (q - p) / s`` each summand is
    ``(s/2) [(1+x) ln(1+x) + (1-x) ln(1-x)]``. For small ``|x|`` the naive form cancels
    catastrophically (relative error ~ eps/|x|); there we use the equal expression
    ``(s/2) [2x atanh(x) + log1p(-x²)]`` whose two parts cancel only by a factor 2.
    For larger ``|x|`` the direct ``xlogy`` form is exact enough and handles ``x = ±1``.
    """
    s = q + p
    x = xp.divide_no_nan(q - p, s)
    small = xp.abs(x) < JSD_SMALL_RATIO
    x_small = xp.where(small, x, 0.0)  # keeps atanh away from ±1
    near = 2.0 * x_small * xp.arctanh(x_small) + xp.log1p(-xp.square(x_small))
    a = xp.where(small, 1.0, xp.divide_no_nan(2.0 * q, s))
    b = xp.where(small, 1.0, xp.divide_no_nan(2.0 * p, s))
    far = xp.xlogy(a, a) + xp.xlogy(b, b)
    return xp.sum(0.5 * s * xp.where(small, near, far), axis=-1)


def jensen_shannon_divergence(xp, q, p):
    """``JSD(q, p)`` normalized to ``[0, 1]`` with base-2 logs (eq. 4), as
    ``C(q, p) / (2 ln 2)`` (eqs. 10-15). [..., K] in, [...] out."""
    return jensen_shannon_coordinate_sum(xp, q, p) / (2.0 * LN2)


def triangular_coordinates(xp, q, p):
    """The coordinates ``(q_i - p_i)² / (q_i + p_i)`` of eq. 5, 0 where ``q_i = p_i = 0``."""
    return xp.divide_no_nan(xp.square(q - p), q + p)


def triangular_divergence(xp, q, p):
    """``TRI(q, p) = (1/2) Σ (q_i - p_i)² / (q_i + p_i)`` (eq. 5). [..., K] in, [...] out."""
    return 0.5 * xp.sum(triangular_coordinates(xp, q, p), axis=-1)
