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

import numpy as np

__all__ = [
    "lifted_coefficients",
    "lifted_series",
    "positive_series",
    "relative_tolerance",
    "series_limits",
]

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


def positive_series(xp, w, second_moment=False, tolerance_dtype=None, coefficients=None):
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
      coefficients: None for (S1), whose n-th coefficient is c_n = 1 / (n + K - 1)!, or
        ``(log_first, log_ratios)``: log c_0 ([B], float64) and log c_n / c_{n-1} in column
        n of [B, N] float64 ``log_ratios`` (column 0 unused) for a log-concave sequence
        c_n of another function's Taylor coefficients (:func:`lifted_series`). Then at
        most N - ``SERIES_UNROLL`` - 1 terms are summed and ``second_moment`` is False.

    Returns:
      ``(log_sum, mean, second, num_terms, converged)``: log of sum_n c_n h_n(w) (float64,
      [B]), E[y] ([B, K], dtype of w), E[y y^T] (or None), the number of terms (sequential
      stages, an int32 scalar) and whether each row's tail is below the tolerance ([B]
      bool; always true for (S1), whose cap is never reached).
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
    if coefficients is None:
        log_scale = term * -xp.lgamma(num_classes)  # t_0 = c_0 = 1 / (K-1)!

        def coefficient_ratio(n64):  # c_n / c_{n-1}
            return 1.0 / (n64 + classes64 - 1.0)

    else:
        log_first, log_ratios = coefficients
        log_scale = log_first
        columns = log_ratios.shape[-1]
        max_terms = xp.minimum(max_terms, columns - unroll - 1)

        def coefficient_ratio(n64):
            return xp.exp(log_ratios[:, xp.cast(n64, "int32")])

    sum_terms = xp.ones_like(row, dtype="float64")  # sum_i t_i / exp(log_scale)
    # sum_i t_i (c_{i+1} / c_i) G_i / h_i / exp(log_scale)
    sum_first = ratio_g * xp.cast(term * coefficient_ratio(xp.cast(1, "float64")), dtype)[:, None]
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
        ratio = xp.cast(euler, "float64") / n64 * coefficient_ratio(n64)
        term = term * ratio  # t_n / t_{n-1} = ratio
        # Per-row coefficients first: one multiply-add per class and term.
        first = xp.cast(term * coefficient_ratio(n64 + 1.0), dtype)[:, None]
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
    tail = final[2] * final[5] / xp.maximum(1.0 - final[5], 1e-300)
    converged = xp.logical_and(final[5] < 1.0, tail < tolerance * final[4])
    log_sum = final[3] + xp.log(final[4])
    inverse_sum = xp.cast(1.0 / final[4], dtype)
    mean = final[6] * inverse_sum[:, None]
    second = None
    if diagonal:
        second = 2.0 * final[8] * inverse_sum[:, None]
    elif second_moment:
        diagonal_factor = 1.0 + xp.eye(num_classes, dtype)
        second = diagonal_factor * final[8] * inverse_sum[:, None, None]
    return log_sum, mean, second, final[0], converged


# Terms the lifted series may take (its coefficients are tabulated up to there): rows
# whose other nodes spread further take another method.
LIFTED_TERMS = 128
# The spread of the other nodes below which a row takes the lifted series: its terms
# decay at least as fast as those of (S1) on the other nodes, about spread + 5 sqrt(spread)
# + 20 of them at float64's tolerance.
LIFTED_SPREAD = 64.0
# Tail terms of the exponential series summed beyond the tabulated coefficients (where
# the top node is below about m + 1 + sqrt(m), so their ratios fall like a Gaussian).
_TAIL = {"scale": 12.0, "offset": 64}


def lifted_coefficients(xp, top, num_classes, count):
    """Taylor coefficients at 0 of phi(z) = exp[q, z], the divided difference of exp at the
    top node q and z: log of a_m = exp[q, 0, ..., 0] (0 repeated m + 1 times) for
    m = K - 2 .. K - 2 + count - 1, returned as ``(log a_{K-2} - q, log_ratios)`` with
    ``log_ratios[:, n] = log a_{K-2+n} / a_{K-3+n}`` (column 0 is 0).

    a_m = sum_{i>=0} q^i / (m + 1 + i)! = q^-(m+1) T_m with T_m = sum_{l>m} q^l / l! =
    e^q P(m + 1, q) (the regularized lower incomplete gamma function). Where the partial sum
    S_m = e^q - T_m is at most 3/4 of e^q (q above about m), log T_m = q + log1p(-S_m e^-q);
    elsewhere T_m is summed directly, with a tail of ``_TAIL`` terms beyond the window (q is
    then below about m + 1 + sqrt(m), so those terms decay like a Gaussian). Every sum is a
    log-sum-exp of positive terms; the sequence a_m is log-concave (tail sums of the
    log-concave Poisson weights, times a geometric sequence).

    Args:
      xp: an array namespace (:mod:`keras_cc.core.namespace`).
      top: [B] float64 non-negative top nodes q (the spread of the row).
      num_classes: K >= 2, a Python int.
      count: the number of coefficients, a Python int.

    Returns:
      ([B], [B, count]) float64.
    """
    first = num_classes - 2
    last = first + count - 1
    tail = int(_TAIL["scale"] * math.sqrt(last + 1)) + _TAIL["offset"]
    degrees = np.arange(last + 2 + tail, dtype=np.float64)  # l = 0 .. last + 1 + tail
    log_factorials = np.array([math.lgamma(d + 1.0) for d in degrees])
    # Below 1e-30 the coefficients are those of q = 0 (1 / (m + 1)!) to float64 precision.
    q = xp.maximum(top, 1e-30)
    log_q = xp.log(q)[:, None]
    terms = (
        xp.convert_to_tensor(degrees)[None, :] * log_q
        - xp.convert_to_tensor(log_factorials)[None, :]
    )  # log q^l / l!, [B, L]
    window = terms[:, first + 1 : last + 1]  # l = first + 1 .. last
    # log S_m, m = first .. last: sum over l <= m.
    head = xp.logsumexp(terms[:, : first + 1], axis=-1)[:, None]
    log_partial = xp.concatenate(
        [head, xp.logaddexp(head, xp.cumulative_logsumexp(window))], axis=-1
    )
    # log T_m, m = first .. last: sum over l > m.
    rest = xp.logsumexp(terms[:, last + 1 :], axis=-1)[:, None]
    log_tail = xp.concatenate(
        [xp.logaddexp(rest, xp.cumulative_logsumexp(window, reverse=True)), rest], axis=-1
    )
    share = xp.exp(log_partial - q[:, None])  # S_m e^-q
    from_partial = share <= 0.75
    log_t = xp.where(
        from_partial, xp.log1p(-xp.minimum(share, 0.75)), log_tail - q[:, None]
    )  # log T_m - q
    orders = xp.convert_to_tensor(np.arange(first + 1.0, last + 2.0))[None, :]  # m + 1
    log_a = log_t - orders * log_q  # log a_m - q
    log_ratios = xp.concatenate(
        [xp.zeros_like(log_a[:, :1]), log_a[:, 1:] - log_a[:, :-1]], axis=-1
    )
    return log_a[:, 0], log_ratios


def lifted_series(xp, w, tolerance_dtype=None):
    """log exp[w] - max(w) and E[y] for rows ``w >= 0`` with one zero, by the series with
    the top node lifted out: steps set by the spread of the other nodes, not the row's.

    With q = max w at node k* and u the other nodes (min u = 0), exp[w] = phi[u] for the
    absolutely monotone phi(z) = exp[q, z]; expanding phi at 0 (its Taylor coefficients
    a_m, :func:`lifted_coefficients`) gives the positive series

        exp[w] = sum_{n>=0} a_{K-2+n} h_n(u)                                         (S1')

    (u padded with a zero in the slot of k*, which changes no h_n). This is (S1) with other
    coefficients, so the same recurrence sums it with its mean (M1): E[y_k] for k != k*,
    and E[y_k*] = 1 - sum of the others. Since a_m / a_{m-1} <= 1 / m, its terms decay at
    least as fast as (S1)'s on the other nodes alone: a row whose top node stands at any
    height over a cluster of spread s takes about s + 5 sqrt(s) + 20 terms (the CC label
    smoothing trajectory, from N(0, 1) logits to a top node K / epsilon above the rest).
    Call inside ``xp.float64_scope()``.

    Args:
      xp: an array namespace (:mod:`keras_cc.core.namespace`).
      w: [B, K] non-negative float64 nodes, K >= 2 static.
      tolerance_dtype: the dtype (name) whose precision the truncation aims at.

    Returns:
      ``(value, mean, steps, converged)``: log exp[w] - max(w) ([B] float64), E[y] ([B, K]
      float64), the number of terms (int32 scalar) and the rows whose series converged
      within ``LIFTED_TERMS`` terms (only those values are meaningful).
    """
    num_classes = w.shape[-1]
    top_index = xp.argmax(w)
    is_top = xp.one_hot(top_index, num_classes)
    top = xp.max(w, axis=-1)
    rest = xp.where(is_top, 0.0, w)
    coefficients = lifted_coefficients(xp, top, num_classes, LIFTED_TERMS + SERIES_UNROLL + 2)
    value, mean, _, steps, converged = positive_series(
        xp, rest, tolerance_dtype=tolerance_dtype, coefficients=coefficients
    )
    others = xp.where(is_top, 0.0, mean)
    mean = xp.where(is_top, 1.0 - xp.sum(others, axis=-1, keepdims=True), others)
    return value, mean, steps, converged
