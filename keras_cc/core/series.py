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

from keras_cc.core import blocks

__all__ = [
    "lifted_coefficients",
    "lifted_series",
    "positive_series",
    "relative_tolerance",
    "series_limits",
]

# Floor of the Euler sum n h_n / h_{n-1} (>= the row's spread, since G_n >= h_n) before it
# divides: rows below it have a spread under 2^-100, whose terms after the first are
# negligible, and n / floor stays finite for any number of terms.
EULER_FLOOR = {"float32": 2.0**-100, "float64": 2.0**-1000}
# The widest spread the series sums (about MAX_SPREAD + 14 sqrt(MAX_SPREAD) sequential
# terms, minutes of work): wider rows give NaN from it, at once, instead of a loop that
# would run for days or, past 2^31 terms, never end. Such rows are the table's
# (:mod:`keras_cc.ops._divided_difference_table`) or a certified closed form's.
MAX_SPREAD = 2.0**24


def relative_tolerance(dtype):
    """Truncation tolerance of the series for a ``dtype`` name: a tenth of its unit
    roundoff."""
    return 0.1 * (2.0**-24 if dtype == "float32" else 2.0**-53)


def _term_cap(spread, sqrt):
    """A bound on the terms a row of ``spread`` needs (before its ceiling), with ``sqrt``
    that of the spread's type: never reached in practice, the Poisson(spread) tail beyond
    it being < 1e-40."""
    return spread + 14.0 * sqrt(spread) + 80.0


def series_limits(xp, w):
    """Log truncation tolerance and a hard cap (int32 scalar) on the number of terms
    (:func:`_term_cap` at max w)."""
    spread = xp.cast(xp.max(w), "float64")
    log_tolerance = math.log(relative_tolerance(xp.dtype(w)))
    max_terms = xp.cast(xp.ceil(_term_cap(spread, xp.sqrt)), "int32")
    return log_tolerance, max_terms


# The loop's cap on the terms: the cap at MAX_SPREAD, the widest row it sums. Rows converge
# long before their own (a static number: no reduction over the batch to set it).
_MAX_TERMS = math.ceil(_term_cap(MAX_SPREAD, math.sqrt))


# Rows that finish alone: once at most this many rows of a batch still need terms, the
# loop goes on with those rows alone, gathered into a block of this many rows, so that one
# wide row does not make the whole batch sum its terms (batches of at most twice this many
# rows run as one block).
BLOCK_ROWS = 8


def positive_series(xp, w, second_moment=False, tolerance_dtype=None, coefficients=None):
    """Sums the positive series (S1) and its moments (M1, M2) for rows ``w >= 0``.

    The terms are accumulated on a linear scale, relative to a per-row scale factor kept as
    a logarithm; after each term (one loop step) the accumulators are divided by their
    running sum, so nothing overflows for any spread. One term per step keeps the compiled
    loop body small: XLA compiles each fused kernel of a program on its own, and its compile
    time follows their number (unrolling 8 terms per step doubled the kernels of the loop
    and its compile time, and saved no time per call on 2 CPU cores). Once at most
    ``BLOCK_ROWS`` rows still need terms, their loop state is gathered into a block of
    ``BLOCK_ROWS`` rows that goes on alone, and scattered back when it has converged: the
    rows that need few terms do not pay for the batch's widest. Call inside ``xp.float64_scope()``.

    Args:
      xp: an array namespace (:mod:`keras_cc.core.namespace`).
      w: [B, K] non-negative nodes (logits minus their row minimum), float32 or float64.
      second_moment: False, ``"full"`` (also return E[y y^T], [B, K, K]) or ``"diagonal"``
        (also return E[y_k^2], [B, K], in O(K) memory).
      tolerance_dtype: the dtype (name) whose precision the truncation aims at; by default
        the dtype of ``w``.
      coefficients: None for (S1), whose n-th coefficient is c_n = 1 / (n + K - 1)!, or
        ``(log_first, ratios, rows)``: for the rows flagged in [B] bool ``rows``, log c_0
        ([B], float64) and c_n / c_{n-1} in column n of [B, N] float64 ``ratios``
        (column 0 unused) for a log-concave sequence c_n of another function's Taylor
        coefficients (:func:`lifted_series`); the other rows take (S1)'s. Columns past N
        repeat the last (the rows flagged converge in fewer terms: :func:`lifted_series`).

    Returns:
      ``(log_sum, mean, second, num_terms)``: log of sum_n c_n h_n(w) (float64, [B]), E[y]
      ([B, K], dtype of w), E[y y^T] (or None) and the number of terms (sequential stages,
      an int32 scalar).
    """
    # A row with a non-finite node gives NaN and does not set the other rows' term count.
    finite = xp.logical_and(
        xp.all(xp.isfinite(w), axis=-1), xp.max(w, axis=-1) <= MAX_SPREAD
    )  # the rows it sums; the others give NaN without lengthening the loop
    w = xp.where(finite[:, None], w, 0.0)
    series = _Series(xp, w, second_moment, tolerance_dtype, coefficients)
    state = series.initial_state()
    rows = w.shape[0]
    if rows is not None and rows <= 2 * BLOCK_ROWS:
        final = series.sum(state, left=0)
    else:
        final = _finish_in_block(xp, series, series.sum(state, left=BLOCK_ROWS))
    return series.results(final, finite)


def _finish_in_block(xp, series, state):
    """Continues the rows of loop ``state`` that have not converged (at most
    ``BLOCK_ROWS``) alone, in a block of ``BLOCK_ROWS`` rows gathered from the batch
    (:func:`keras_cc.core.blocks.on_rows`; no step when every row has converged), and
    scatters them back with the term count the block reached."""
    coefficients = list(series.coefficients or ())
    count = len(coefficients)

    def finish(w, *rows):
        block = _Series(
            xp,
            w,
            series.second_moment,
            series.tolerance_dtype,
            tuple(rows[:count]) or None,
        )
        final = block.sum([state[0], *rows[count:]], left=0)
        return [final[0] - state[0], *final[1:]]  # the terms it added, summed onto n

    inputs = [series.w, *coefficients, *state[1:]]
    return blocks.on_rows(xp, finish, series.unconverged(state), inputs, state, BLOCK_ROWS)


class _Series:
    """The loop of :func:`positive_series` on rows ``w`` (its state: the term count n,
    G_n / h_n, the last term, the log scale, the last ratio and the running sums of the
    moments). The running sum of the terms is 1 between steps (each step divides by it), so
    it is not carried."""

    def __init__(self, xp, w, second_moment, tolerance_dtype, coefficients):
        self.xp, self.w, self.second_moment = xp, w, second_moment
        self.tolerance_dtype, self.coefficients = tolerance_dtype, coefficients
        self.dtype = xp.dtype(w)
        self.tolerance = relative_tolerance(tolerance_dtype or self.dtype)
        self.diagonal = second_moment == "diagonal"

    def plain_ratios(self, n64):
        """(S1)'s c_n / c_{n-1} = 1 / (n + K - 1) at n and n + 1, in one [2] array: XLA
        computes each scalar expression used by several kernels in a kernel of its own."""
        xp = self.xp
        offsets = xp.convert_to_tensor(np.array([-1.0, 0.0]))
        return 1.0 / (n64 + xp.cast(xp.size(self.w, -1), "float64") + offsets)

    def coefficient_ratio(self, n64, plain):
        """c_n / c_{n-1} per row ([B] or a scalar), given (S1)'s, ``plain``."""
        xp = self.xp
        if self.coefficients is None:
            return plain
        _, ratios, tabulated = self.coefficients
        column = xp.minimum(xp.cast(n64, "int32"), ratios.shape[-1] - 1)
        return xp.where(tabulated, ratios[:, column], plain)

    def initial_state(self):
        xp, w, dtype = self.xp, self.w, self.dtype
        num_classes = xp.size(w, -1)
        classes = xp.cast(num_classes, dtype)
        row = w[:, 0]
        ratio_g = xp.ones_like(w)  # G_n / h_n
        term = xp.ones_like(row, dtype="float64")  # t_n / exp(log_scale)
        log_scale = term * -xp.lgamma(num_classes)  # t_0 = c_0 = 1 / (K-1)!
        if self.coefficients is not None:
            log_first, _, tabulated = self.coefficients
            log_scale = xp.where(tabulated, log_first, log_scale)
        # sum_i t_i / exp(log_scale) = 1 between steps;
        # sum_i t_i (c_{i+1} / c_i) G_i / h_i / exp(log_scale)
        one = xp.cast(1, "float64")
        first_ratio = self.coefficient_ratio(one, self.plain_ratios(one)[0])
        sum_first = ratio_g * xp.cast(term * first_ratio, dtype)[:, None]
        second = []
        if self.second_moment:
            ones = xp.ones_like(w)
            ratio_g2 = ones if self.diagonal else ones[:, :, None] * ones[:, None, :]
            second = [ratio_g2, ratio_g2 / (classes * (classes + 1.0))]
        ratio = xp.ones_like(row, dtype="float64")  # t_n / t_{n-1}
        start = xp.convert_to_tensor(1, dtype="int32")
        return [start, ratio_g, term, log_scale, ratio, sum_first, *second]

    def unconverged(self, state):
        """[B] bool: the rows whose tail bound (module docstring) is not yet below the
        tolerance."""
        xp = self.xp
        _, _, term, _, ratio = state[:5]
        tail = term * ratio / xp.maximum(1.0 - ratio, 1e-300)  # relative to the sum, 1
        converged = xp.logical_and(ratio < 1.0, tail < self.tolerance)
        return xp.logical_not(converged)

    def next_term(self, n, ratio_g, term, sum_first, second):
        xp, w, dtype = self.xp, self.w, self.dtype
        weighted = w * ratio_g
        euler = xp.sum(weighted, axis=-1)  # n h_n / h_{n-1}   (R1)
        # h_{n-1} / h_n. A row of zero nodes (euler = 0, weighted = 0) keeps G_n / h_n = 1.
        inverse_h = (xp.cast(n, dtype) / xp.maximum(euler, EULER_FLOOR[dtype]))[:, None]
        ratio_g_next = weighted * inverse_h + 1.0  # (R2) divided by h_n
        n64 = xp.cast(n, "float64")
        plain = self.plain_ratios(n64)
        ratio = xp.cast(euler, "float64") / n64 * self.coefficient_ratio(n64, plain[0])
        term = term * ratio  # t_n / t_{n-1} = ratio
        # Per-row coefficients first: one multiply-add per class and term.
        first = xp.cast(term * self.coefficient_ratio(n64 + 1.0, plain[1]), dtype)[:, None]
        sum_first = sum_first + first * ratio_g_next
        if second:
            classes64 = xp.cast(xp.size(w, -1), "float64")
            ratio_g2, sum_second = second
            second_weight = term / ((n64 + classes64) * (n64 + classes64 + 1.0))
            second_weight = xp.cast(second_weight, dtype)[:, None]
            if self.diagonal:  # G2_n[k, k] = w_k G2_{n-1}[k, k] + G_n[k]
                ratio_g2 = w * ratio_g2 * inverse_h + ratio_g_next
                sum_second = sum_second + second_weight * ratio_g2
            else:
                ratio_g2 = (
                    w[:, None, :] * ratio_g2 * inverse_h[:, :, None] + ratio_g_next[:, :, None]
                )
                sum_second = sum_second + second_weight[:, :, None] * ratio_g2
            second = [ratio_g2, sum_second]
        return ratio_g_next, term, 1.0 + term, ratio, sum_first, second

    def step(self, n, ratio_g, term, log_scale, ratio, sum_first, *second):
        xp = self.xp
        ratio_g, term, sum_terms, ratio, sum_first, second = self.next_term(
            n, ratio_g, term, sum_first, list(second)
        )
        # Back to O(1): divide the accumulators by their sum, remembered in log_scale.
        # (Divisions, not products with one reciprocal: XLA then fuses each into the
        # kernel of its accumulator instead of computing the reciprocal in one of its own.)
        sum_cast = xp.cast(sum_terms, self.dtype)
        if second:
            shape = sum_cast[:, None] if self.diagonal else sum_cast[:, None, None]
            second = [second[0], second[1] / shape]
        return [
            n + 1,
            ratio_g,
            term / sum_terms,
            log_scale + xp.log(sum_terms),
            ratio,
            sum_first / sum_cast[:, None],
            *second,
        ]

    def sum(self, state, left):
        """Runs the loop from ``state`` until at most ``left`` rows have not converged (or
        the cap on the terms); returns the final state."""
        xp = self.xp

        def not_done(*state):
            remaining = xp.sum(xp.cast(self.unconverged(state), "int32"))
            return xp.logical_and(state[0] < _MAX_TERMS, remaining > left)

        return list(xp.while_loop(not_done, self.step, state))

    def results(self, final, finite):
        """(log_sum, mean, second, num_terms) of :func:`positive_series` from the final
        state; NaN on the rows not ``finite``."""
        xp, dtype = self.xp, self.dtype
        # The running sums are relative to the sum of the terms, exp(log_scale).
        log_sum, mean = final[3], final[5]
        second = None
        if self.diagonal:
            second = 2.0 * final[7]
        elif self.second_moment:
            second = (1.0 + xp.eye(xp.size(self.w, -1), dtype)) * final[7]
        log_sum = xp.where(finite, log_sum, math.nan)
        mean = xp.where(finite[:, None], mean, math.nan)
        if second is not None:
            row_shape = (-1,) + (1,) * (len(second.shape) - 1)
            second = xp.where(xp.reshape(finite, row_shape), second, math.nan)
        return log_sum, mean, second, final[0]


# The spread of the nodes other than the largest up to which a row takes the lifted
# series (about spread + 5 sqrt(spread) + 20 terms).
LIFTED_SPREAD = 32.0


def _lifted_terms(spread, tolerance=1e-18):
    """Terms after which (S1') has converged on every row whose other nodes spread at most
    ``spread``: its term ratios are at most those of exp's series at ``spread`` (t_n / t_0 <=
    spread^n / n!), so the tail after N terms is at most 2 spread^(N+1) / (N+1)! once
    N + 2 > 2 spread."""
    terms = int(2 * spread)
    while math.log(2.0) + (terms + 1) * math.log(spread) - math.lgamma(terms + 2) > math.log(
        tolerance
    ):
        terms += 1
    return terms


def _lifted_coefficient_count(dtype):
    """Coefficients tabulated for a series summed to the tolerance of ``dtype`` (a name):
    every lifted row converges on them (its tail bound below a tenth of that tolerance),
    with a term to spare."""
    return _lifted_terms(LIFTED_SPREAD, relative_tolerance(dtype) / 10.0) + 3


# Tail terms of the exponential series summed beyond the tabulated coefficients (where
# the top node is below about m + 1 + sqrt(m), so their ratios fall like a Gaussian).
_TAIL = {"scale": 12.0, "offset": 64}


# Columns per block of :func:`_running_sums`.
_SUM_BLOCK = 8


def _running_sums(xp, x):
    """Running sums along the last axis of [B, L] ``x`` (static L), from the start and from
    the end (both [B, L]), in blocks of ``_SUM_BLOCK`` columns: the running sums within
    each block as a product with triangular matrices of ones, then each block's total
    carried to the later (earlier) blocks by a product with triangular matrices over the
    blocks. Two products of O(L (8 + L / 8)) work for both directions, where XLA compiles a
    cumulative sum as a reduce-window and recursive doubling as ceil(log2 L) kernels
    (compile time follows the number of kernels), and a triangular product over all L
    columns is O(L^2) (half the time of :func:`lifted_coefficients` at L = 123). For the
    positive terms summed here the rounding is at most L u relative."""
    length = x.shape[-1]
    blocks = -(-length // _SUM_BLOCK)
    padding = blocks * _SUM_BLOCK - length
    x = xp.concatenate([x] + [xp.zeros_like(x[:, :1])] * padding, axis=-1)
    grid = xp.reshape(x, (-1, blocks, _SUM_BLOCK))
    within = np.tril(np.ones((_SUM_BLOCK, _SUM_BLOCK)))  # row i sums columns 0 .. i
    sums = xp.matvec(xp.convert_to_tensor(np.concatenate([within, within.T])), grid)
    totals = sums[:, :, _SUM_BLOCK]  # a block's first reverse running sum: its total
    before = np.tril(np.ones((blocks, blocks)), -1)  # row j sums blocks 0 .. j - 1
    carried = xp.matvec(xp.convert_to_tensor(np.concatenate([before, before.T])), totals)
    forward = sums[:, :, :_SUM_BLOCK] + carried[:, :blocks, None]
    reverse = sums[:, :, _SUM_BLOCK:] + carried[:, blocks:, None]
    return tuple(
        xp.reshape(part, (-1, blocks * _SUM_BLOCK))[:, :length] for part in (forward, reverse)
    )


def _head_window(first):
    """``(below, start)``: the head S_first e^-q = P(X <= first), X ~ Poisson(q), of
    :func:`lifted_coefficients` sums the Poisson weights of l = start .. first only, on
    rows with q >= below; rows below take 1 in its place.

    Its only use is the choice of regime (S_m e^-q <= 3/4) and, where that holds, the value
    1 - S_m e^-q >= 1/4. With s = first + 1 - q, Bennett's inequality bounds
    P(X > first) <= exp(-s^2 / (2 (first + 1))) < e^-1.5 < 1/4 for q < below, so those rows
    take the direct sum whether the head is exact or 1. On the other rows the weights left
    out sum to at most P(X < start) <= exp(-(q - start)^2 / (2 q)) <= e^-42 (the Poisson
    lower tail), below float64's resolution of values of at least 1/4. At K = 1000 this
    sums 337 weights instead of 999.
    """
    below = first + 1 - math.ceil(math.sqrt(3.0 * (first + 1)))
    start = math.floor(below - math.sqrt(84.0 * below)) if below > 0 else 0
    return below, max(start, 0)


# Terms of the series of R_m = (m + 1)! a_m where q <= (m + 2) / 8: ratios at most 1/8.
_SMALL_TOP_TERMS = 19


# Columns per group of :func:`_small_top_sums`: the last by Horner's rule, the others from it.
_SMALL_TOP_GROUP = 4


def _small_top_sums(xp, q, orders):
    """R_m = (m + 1)! a_m = sum_i prod_{l=1..i} q / (m + 1 + l) ([B, len(orders)]) for
    ``orders`` m + 1 (consecutive), to float64 precision where q <= (m + 2) / 8 (ratios
    at most 1/8).

    By Horner's rule in ``_SMALL_TOP_TERMS`` terms at the last column of each group of
    ``_SMALL_TOP_GROUP``, and down the group by R_m = 1 + q R_{m+1} / (m + 2): a sum of
    two positive terms per column (no cancellation), where it holds at m it holds at m + 1.
    """
    group = _SMALL_TOP_GROUP
    count = len(orders)
    groups = -(-count // group)
    padded = orders[0] + np.arange(groups * group, dtype=np.float64)
    last = padded[group - 1 :: group]
    sums = [1.0 + q * xp.convert_to_tensor(1.0 / (last + _SMALL_TOP_TERMS))[None, :]]
    for i in range(_SMALL_TOP_TERMS - 1, 0, -1):
        sums[0] = 1.0 + q * xp.convert_to_tensor(1.0 / (last + i))[None, :] * sums[0]
    for j in range(group - 2, -1, -1):  # down the group: column j from column j + 1
        step = xp.convert_to_tensor(1.0 / (padded[j::group] + 1.0))[None, :]
        sums.insert(0, 1.0 + q * step * sums[0])
    stacked = xp.concatenate([column[:, :, None] for column in sums], axis=-1)
    return xp.reshape(stacked, (-1, groups * group))[:, :count]


def lifted_coefficients(xp, top, num_classes, count):
    """Taylor coefficients at 0 of phi(z) = exp[q, z], the divided difference of exp at the
    top node q and z: log of a_m = exp[q, 0, ..., 0] (0 repeated m + 1 times) for
    m = K - 2 .. K - 2 + count - 1, returned as ``(log a_{K-2} - q, ratios)`` with
    ``ratios[:, n] = a_{K-2+n} / a_{K-3+n}`` (column 0 is 1).

    a_m = sum_{i>=0} q^i / (m + 1 + i)! = q^-(m+1) T_m with T_m = sum_{l>m} q^l / l! =
    e^q P(m + 1, q) (P: the regularized lower incomplete gamma function). Three regimes,
    each a sum of positive terms:
      - q <= (m + 2) / 8: R_m = (m + 1)! a_m = sum_i prod_{l=1..i} q / (m + 1 + l), whose
        ratios are at most 1/8, by Horner's rule in ``_SMALL_TOP_TERMS`` terms;
      - where the partial sum S_m = e^q - T_m is at most 3/4 of e^q (q above about m):
        log T_m = q + log1p(-S_m e^-q);
      - elsewhere T_m is summed directly, with a tail of ``_TAIL`` terms beyond the window
        (q is then below about m + 1 + sqrt(m), so those terms fall like a Gaussian).
    The window's terms q^l / l! are summed on a linear scale relative to their row maximum:
    in the third regime they span less than 8^count, and what the second loses to underflow
    is below e^-700 of e^q. Each T_m is carried as a scale (a logarithm) times a value.
    The ratios come column by column from the recurrence a_{m-1} = 1 / m! + q a_m:

        a_m / a_{m-1} = 1 / (q + (m + 1) / R_m),

    a sum of two positive terms, so no column needs its neighbour's value (one exponential
    each, no logarithm of a sum). The sequence a_m is log-concave (tail sums of the
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
    below, start = _head_window(first)
    # log q^l / l! for l = start .. last + 1 + tail, in column l - start.
    degrees = np.arange(start, last + 2 + tail, dtype=np.float64)
    log_factorials = np.array([math.lgamma(d + 1.0) for d in degrees])
    # Below 1e-30 the coefficients are those of q = 0 (1 / (m + 1)!) to float64 precision.
    q = xp.maximum(top, 1e-30)[:, None]
    log_q = xp.log(q)
    terms = (
        xp.convert_to_tensor(degrees)[None, :] * log_q
        - xp.convert_to_tensor(log_factorials)[None, :]
    )  # [B, L]

    def largest(low, high):
        """max of log q^l / l! over l = low .. high ([B, 1]): l log q - log l! rises while
        l <= q, so at the mode l = floor(q) clipped to the range (no reduction)."""
        mode = xp.minimum(xp.maximum(-xp.ceil(-q[:, 0]), float(low)), float(high))
        log_factorial = xp.take(
            xp.convert_to_tensor(log_factorials), xp.cast(mode - float(start), "int32")
        )
        return (mode * log_q[:, 0] - log_factorial)[:, None]

    def log_sum(low, high):
        """log sum of q^l / l! over l = low .. high ([B, 1])."""
        at_most = largest(low, high)
        part = terms[:, low - start : high + 1 - start]
        return at_most + xp.log(xp.sum(xp.exp(part - at_most), axis=-1, keepdims=True))

    # From here on l = first + 1 .. last + 1 + tail, in column l - first - 1.
    window = terms[:, first + 1 - start : last + 1 - start]  # l = first + 1 .. last
    peak = largest(first + 1, last)  # <= q: a Poisson probability
    scaled = xp.exp(window - peak)
    zero = xp.zeros_like(peak)
    # Each T_m as exp(scale_m) * value_m, in the regime that gives it without cancellation.
    head = xp.exp(log_sum(start, first) - q)  # S_first e^-q
    if start > 0:  # rows with q below the head's window: S_first e^-q > 0.77 (_head_window)
        head = xp.where(q < below, 1.0, head)
    running, running_reverse = _running_sums(xp, scaled)
    share = head + xp.exp(peak - q) * xp.concatenate(
        [zero, running], axis=-1
    )  # S_m e^-q, m = first .. last
    rest = xp.exp(log_sum(last + 1, int(degrees[-1])) - peak)
    window_tail = rest + xp.concatenate([running_reverse, zero], axis=-1)  # T_m e^-peak
    orders = np.arange(first + 1.0, last + 2.0)  # m + 1
    small = q <= xp.convert_to_tensor((orders + 1.0) / 8.0)[None, :]
    series_sum = _small_top_sums(xp, q, orders)  # R_m = (m + 1)! a_m = T_m (m + 1)! / q^(m+1)
    from_partial = share <= 0.75
    # R_m = (m + 1)! a_m: the Horner sum where small; else (m + 1)! T_m / q^(m+1) with
    # T_m = exp(scale) value, so
    # (m + 1) / R_m = exp(log(m + 1) + log q^(m+1) / (m+1)! - scale) / value.
    value = xp.where(from_partial, 1.0 - xp.minimum(share, 0.75), window_tail)
    scale = xp.where(from_partial, q, peak)  # log T_m - log value
    next_terms = terms[:, first + 1 - start : first + 1 - start + count]  # log q^(m+1)/(m+1)!
    log_orders = xp.convert_to_tensor(np.log(orders))[None, :]
    inverse = xp.where(
        small,
        xp.convert_to_tensor(orders)[None, :] / series_sum,
        xp.exp(log_orders + next_terms - scale) / value,
    )  # (m + 1) / R_m, at most m + 1 (R_m >= 1)
    # a_{m-1} = 1 / m! + q a_m, so a_m / a_{m-1} = 1 / (q + (m + 1) / R_m): a sum of two
    # positive terms, column by column; log a_first - q = log R_first - log (first+1)! - q.
    ratios = 1.0 / (q + inverse[:, 1:])
    log_r_first = xp.where(
        small[:, 0],
        xp.log(series_sum[:, 0]),
        scale[:, 0] + xp.log(value[:, 0]) - next_terms[:, 0],
    )
    log_first = log_r_first - math.lgamma(first + 2.0) - q[:, 0]
    return log_first, xp.concatenate([xp.ones_like(ratios[:, :1]), ratios], axis=-1)


def _top_slot(xp, w, top=None):
    """[B, K] bool: the first largest node of each row (a min over positions, not argmax:
    JAX's argmax under jit without x64 fails to lower its int64 index); ``top``: the row
    maxima ([B]) where known."""
    positions = xp.convert_to_tensor(np.arange(w.shape[-1], dtype=np.float64))[None, :]
    top = xp.max(w, axis=-1) if top is None else top
    is_top = w == top[:, None]
    first = xp.min(xp.where(is_top, positions, float(w.shape[-1])), axis=-1, keepdims=True)
    return positions == first


def second_largest(xp, w, top=None):
    """The largest node of each row of [B, K] ``w`` once its (first) largest is removed:
    the top of the nodes a lifted series sums over ([B]); ``top``: the row maxima ([B])
    where known."""
    return xp.max(xp.where(_top_slot(xp, w, top), -math.inf, w), axis=-1)


def lifted_series(xp, w, lifted, tolerance_dtype=None):
    """log exp[w] - max(w) and E[y] for rows ``w >= 0`` with one zero: on the rows flagged
    ``lifted``, by the series with the top node lifted out, whose steps are set by the
    spread of the other nodes, not the row's; on the others, by (S1). One loop for both.

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
      lifted: [B] bool, rows whose nodes other than the largest spread at most
        ``LIFTED_SPREAD``.
      tolerance_dtype: the dtype (name) whose precision the truncation aims at.

    Returns:
      ``(value, mean, steps)``: log exp[w] - max(w) ([B] float64), E[y] ([B, K] float64)
      and the number of terms (int32 scalar).
    """
    num_classes = w.shape[-1]
    top = xp.max(w, axis=-1)
    if num_classes is None:  # a graph of unknown K: (S1) alone
        value, mean, _, steps = positive_series(xp, w, tolerance_dtype=tolerance_dtype)
        return value - top, mean, steps
    is_top = xp.logical_and(_top_slot(xp, w, top), lifted[:, None])
    nodes = xp.where(is_top, 0.0, w)
    count = _lifted_coefficient_count(tolerance_dtype or xp.dtype(w))
    log_first, ratios = lifted_coefficients(xp, top, num_classes, count)
    value, mean, _, steps = positive_series(
        xp, nodes, tolerance_dtype=tolerance_dtype, coefficients=(log_first, ratios, lifted)
    )
    # (S1') gives log exp[w] - q directly; (S1) log exp[w].
    value = xp.where(lifted, value, value - top)
    others = xp.where(is_top, 0.0, mean)
    total = xp.sum(others, axis=-1, keepdims=True)
    return value, xp.where(is_top, 1.0 - total, others), steps
