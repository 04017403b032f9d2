"""The positive series of the CC log-normalizer and its moments, on any array namespace.

For non-negative nodes ``w`` (logits minus their row minimum; CC paper eqs. 2-4):

    exp[w] = sum_{n>=0} h_n(w) / (n + K - 1)!                                      (S1)

where ``h_n`` is the complete homogeneous symmetric polynomial of degree n. Every term is
non-negative, so the sum has no cancellation. The terms come from a first-order recurrence
on ``G_n[k] = h_n(w with node k doubled) = dh_{n+1}/dw_k``:

    n h_n = sum_k w_k G_{n-1}[k]         (Euler's identity for homogeneous h_n)      (R1)
    G_n   = w * G_{n-1} + h_n                                                         (R2)

and the same pass gives the moments, since derivatives of divided differences repeat nodes:

    E[y_k]       = sum_n G_n[k] / (n + K)!        / sum_n h_n / (n + K - 1)!          (M1)
    E[y_k y_l]   = (1 + [k = l]) sum_n G2_n[k, l] / (n + K + 1)!  / (same)            (M2)
    G2_n[k, l]   = w_l G2_{n-1}[k, l] + G_n[k]    (= h_n(w with nodes k and l added))

The loop keeps ``G_n / h_n`` (between 1 and n + 1) and the terms relative to a per-row
scale kept as a logarithm, so nothing overflows for any spread, and stops once the
remaining tail is below the working precision. The terms t_n = h_n(w) / (n + K - 1)! are
log-concave in n (h_n is the convolution of the geometric sequences w_k^n, and convolutions
and products of log-concave sequences are log-concave), so their ratio r_n = t_n / t_{n-1}
never increases, and once r_n < 1 the tail sum_{m>n} t_m is at most t_n r_n / (1 - r_n).
"""

import math

__all__ = ["positive_series", "relative_tolerance", "series_limits"]

# Series terms per loop step: unrolled, so XLA fuses them into one kernel. Within a step
# the terms grow by at most spread^u / u! from a start below 1, far inside each range.
SERIES_UNROLL = 8
# Floor of the Euler sum n h_n / h_{n-1} (>= the row's spread, since G_n >= h_n) before it
# divides: rows below it have a spread under 2^-100, whose terms after the first are
# negligible, and n / floor stays finite for any number of terms.
EULER_FLOOR = {"float32": 2.0**-100, "float64": 2.0**-1000}


def relative_tolerance(dtype):
    """Truncation tolerance of the series for a ``dtype`` name: a tenth of its unit
    roundoff."""
    return 0.1 * (2.0**-24 if dtype == "float32" else 2.0**-53)


def series_limits(xp, w):
    """Log truncation tolerance and a hard cap (int32 scalar) on the number of terms.

    The cap is never reached in practice: the Poisson(max w) tail beyond it is < 1e-40.
    """
    spread = xp.cast(xp.max(w), "float64")
    log_tolerance = math.log(relative_tolerance(xp.dtype(w)))
    max_terms = xp.cast(xp.ceil(spread + 14.0 * xp.sqrt(spread) + 80.0), "int32")
    return log_tolerance, max_terms


def positive_series(xp, w, second_moment=False, tolerance_dtype=None):
    """Sums the positive series (S1) and its moments (M1, M2) for rows ``w >= 0``.

    The terms are accumulated on a linear scale, relative to a per-row scale factor kept as
    a logarithm; every ``SERIES_UNROLL`` terms (one loop step, unrolled so that XLA fuses
    them) the accumulators are divided by their running sum, so nothing overflows for any
    spread and no logarithm is taken per term. Call inside ``xp.float64_scope()``.

    Args:
      xp: an array namespace (:mod:`keras_cc.core.namespace`).
      w: [B, K] non-negative nodes (logits minus their row minimum), float32 or float64.
      second_moment: False, ``"full"`` (also return E[y y^T], [B, K, K]) or ``"diagonal"``
        (also return E[y_k^2], [B, K], in O(K) memory).
      tolerance_dtype: the dtype (name) whose precision the truncation aims at; by default
        the dtype of ``w``.

    Returns:
      ``(log_sum, mean, second, num_terms)``: log of sum_n h_n(w)/(n+K-1)! (float64, [B]),
      E[y] ([B, K], dtype of w), E[y y^T] (or None) and the number of terms (sequential
      stages, an int32 scalar).
    """
    dtype = xp.dtype(w)
    num_classes = xp.size(w, -1)
    classes = xp.cast(num_classes, dtype)
    classes64 = xp.cast(num_classes, "float64")
    tolerance = relative_tolerance(tolerance_dtype or dtype)
    _, max_terms = series_limits(xp, w)
    unroll = SERIES_UNROLL

    row = w[:, 0]
    ratio_g = xp.ones_like(w)  # G_n / h_n
    term = xp.ones_like(row, dtype="float64")  # t_n / exp(log_scale)
    log_scale = term * -xp.lgamma(num_classes)  # t_0 = 1 / (K-1)!
    sum_terms = xp.ones_like(row, dtype="float64")  # sum_i t_i / exp(log_scale)
    sum_first = ratio_g / classes  # sum_i t_i G_i / (h_i (i + K)) / exp(log_scale)
    diagonal = second_moment == "diagonal"
    second = []
    if second_moment:
        ones = xp.ones_like(w)
        ratio_g2 = ones if diagonal else ones[:, :, None] * ones[:, None, :]
        second = [ratio_g2, ratio_g2 / (classes * (classes + 1.0))]

    def next_term(n, ratio_g, term, sum_terms, sum_first, second):
        weighted = w * ratio_g
        euler = xp.sum(weighted, axis=-1)  # n h_n / h_{n-1}   (R1)
        # h_{n-1} / h_n. A row of zero nodes (euler = 0, weighted = 0) keeps G_n / h_n = 1.
        inverse_h = (xp.cast(n, dtype) / xp.maximum(euler, EULER_FLOOR[dtype]))[:, None]
        ratio_g_next = weighted * inverse_h + 1.0  # (R2) divided by h_n
        n64 = xp.cast(n, "float64")
        ratio = xp.cast(euler, "float64") / (n64 * (n64 + classes64 - 1.0))
        term = term * ratio  # t_n / t_{n-1} = ratio
        # Per-row coefficients first: one multiply-add per class and term.
        first = xp.cast(term / (n64 + classes64), dtype)[:, None]
        sum_first = sum_first + first * ratio_g_next
        if second:
            ratio_g2, sum_second = second
            second_weight = term / ((n64 + classes64) * (n64 + classes64 + 1.0))
            second_weight = xp.cast(second_weight, dtype)[:, None]
            if diagonal:  # G2_n[k, k] = w_k G2_{n-1}[k, k] + G_n[k]
                ratio_g2 = w * ratio_g2 * inverse_h + ratio_g_next
                sum_second = sum_second + second_weight * ratio_g2
            else:
                ratio_g2 = (
                    w[:, None, :] * ratio_g2 * inverse_h[:, :, None] + ratio_g_next[:, :, None]
                )
                sum_second = sum_second + second_weight[:, :, None] * ratio_g2
            second = [ratio_g2, sum_second]
        return ratio_g_next, term, sum_terms + term, ratio, sum_first, second

    def not_converged(n, ratio_g, term, log_scale, sum_terms, ratio, *unused):
        # The tail bound of the log-concave terms (module docstring).
        tail = term * ratio / xp.maximum(1.0 - ratio, 1e-300)
        converged = xp.logical_and(ratio < 1.0, tail < tolerance * sum_terms)
        return xp.logical_and(n < max_terms, xp.logical_not(xp.all(converged)))

    def step(n, ratio_g, term, log_scale, sum_terms, ratio, sum_first, *second):
        second = list(second)
        for i in range(unroll):
            ratio_g, term, sum_terms, ratio, sum_first, second = next_term(
                n + i, ratio_g, term, sum_terms, sum_first, second
            )
        # Back to O(1): divide the accumulators by their sum, remembered in log_scale.
        inverse_sum = xp.cast(1.0 / sum_terms, dtype)
        if second:
            shape = inverse_sum[:, None] if diagonal else inverse_sum[:, None, None]
            second = [second[0], second[1] * shape]
        return [
            n + unroll,
            ratio_g,
            term / sum_terms,
            log_scale + xp.log(sum_terms),
            xp.ones_like(sum_terms),
            ratio,
            sum_first * inverse_sum[:, None],
            *second,
        ]

    ratio = xp.ones_like(row, dtype="float64")  # t_n / t_{n-1}
    start = xp.convert_to_tensor(1, dtype="int32")
    state = [start, ratio_g, term, log_scale, sum_terms, ratio, sum_first, *second]
    final = xp.while_loop(not_converged, step, state)
    log_sum = final[3] + xp.log(final[4])
    inverse_sum = xp.cast(1.0 / final[4], dtype)
    mean = final[6] * inverse_sum[:, None]
    second = None
    if diagonal:
        second = 2.0 * final[8] * inverse_sum[:, None]
    elif second_moment:
        diagonal_factor = 1.0 + xp.eye(num_classes, dtype)
        second = diagonal_factor * final[8] * inverse_sum[:, None, None]
    return log_sum, mean, second, final[0]
