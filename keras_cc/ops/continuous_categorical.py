"""Pure-TensorFlow numerics of the continuous-categorical (CC) distribution.

Notation (NUMERICS.md, CC paper eqs. 2-4). For natural parameters (logits) eta in R^K the
CC density on the simplex is ``p(y) = exp(eta . y) / C^{-1}(eta)`` with

    C^{-1}(eta) = integral over the simplex of exp(eta . y) dy = exp[eta_1, ..., eta_K],

the divided difference of ``exp`` at the nodes eta (Hermite-Genocchi). With
``m = min(eta)`` and ``w = eta - m >= 0``:

    exp[eta] = e^m * sum_{n>=0} h_n(w) / (n + K - 1)!                       (S1)

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

import functools
import math

import tensorflow as tf

from keras_cc.ops import _certified_closed_form, _divided_difference_table, _xla

__all__ = [
    "cc_closed_form_failure",
    "cc_closed_form_log_normalizer",
    "cc_covariance",
    "cc_entropy",
    "cc_kl_divergence",
    "cc_log_normalizer",
    "cc_log_prob",
    "cc_mean",
    "cc_sample",
    "cc_variance",
]

# Inputs of lower precision are computed in float32.
_COMPUTE_DTYPES = (tf.float32, tf.float64)


def _compute_dtype(dtype):
    return dtype if dtype in _COMPUTE_DTYPES else tf.float32


def _relative_tolerance(dtype):
    """Truncation tolerance of the series: a tenth of the unit roundoff."""
    return 0.1 * (2.0**-24 if dtype == tf.float32 else 2.0**-53)


def _flatten_batch(x):
    """[..., K] -> ([B, K], batch shape)."""
    batch_shape = tf.shape(x)[:-1]
    return tf.reshape(x, [-1, tf.shape(x)[-1]]), batch_shape


def _unflatten_batch(x, batch_shape, event_shape=()):
    return tf.reshape(x, tf.concat([batch_shape, tf.constant(event_shape, tf.int32)], 0))


def _series_limits(w):
    """Log truncation tolerance (float64) and a hard cap on the number of series terms.

    The cap is never reached in practice: the Poisson(max w) tail beyond it is < 1e-40.
    """
    spread = tf.cast(tf.reduce_max(w), tf.float64)
    log_tolerance = tf.constant(math.log(_relative_tolerance(w.dtype)), tf.float64)
    max_terms = tf.cast(tf.math.ceil(spread + 14.0 * tf.sqrt(spread) + 80.0), tf.int32)
    return log_tolerance, max_terms


# Series terms per loop step: unrolled, so XLA fuses them into one kernel. Within a step
# the terms grow by at most spread^u / u! from a start below 1, far inside each range.
_SERIES_UNROLL = 8


def _positive_series(w, second_moment=False):
    """Sums the positive series (S1) and its moments (M1, M2) for rows ``w >= 0``.

    The terms are accumulated on a linear scale, relative to a per-row scale factor kept as
    a logarithm; every ``_SERIES_UNROLL`` terms (one loop step, unrolled so that XLA fuses
    them) the accumulators are divided by their running sum, so nothing overflows for any
    spread and no logarithm is taken per term.

    Args:
      w: [B, K] non-negative nodes (logits minus their row minimum).
      second_moment: False, ``"full"`` (also return E[y y^T], [B, K, K]) or ``"diagonal"``
        (also return E[y_k^2], [B, K], in O(K) memory).

    Returns:
      ``(log_sum, mean, second, num_terms)``: log of sum_n h_n(w)/(n+K-1)! (float64, [B]),
      E[y] ([B, K], dtype of w), E[y y^T] (or None) and the number of terms (sequential
      stages).
    """
    dtype = w.dtype
    num_classes = tf.cast(tf.shape(w)[-1], dtype)
    num_classes64 = tf.cast(num_classes, tf.float64)
    tolerance = _relative_tolerance(dtype)
    _, max_terms = _series_limits(w)
    unroll = _SERIES_UNROLL

    batch = tf.shape(w)[0]
    ratio_g = tf.ones_like(w)  # G_n / h_n
    term = tf.ones([batch], tf.float64)  # t_n / exp(log_scale)
    log_scale = tf.fill([batch], -tf.math.lgamma(num_classes64))  # t_0 = 1 / (K-1)!
    sum_terms = tf.ones([batch], tf.float64)  # sum_i t_i / exp(log_scale)
    sum_first = ratio_g / num_classes  # sum_i t_i G_i / (h_i (i + K)) / exp(log_scale)
    diagonal = second_moment == "diagonal"
    second = []
    if second_moment:
        ones = tf.ones_like(w)
        ratio_g2 = ones if diagonal else ones[:, :, None] * ones[:, None, :]
        second = [ratio_g2, ratio_g2 / (num_classes * (num_classes + 1.0))]

    def next_term(n, ratio_g, term, sum_terms, sum_first, second):
        n_float = tf.cast(n, dtype)
        ratio_h = tf.reduce_sum(w * ratio_g, axis=-1) / n_float  # h_n / h_{n-1}   (R1)
        inverse_h = tf.where(ratio_h > 0, 1.0 / ratio_h, tf.ones_like(ratio_h))[:, None]
        ratio_g_next = w * ratio_g * inverse_h + 1.0  # (R2) divided by h_n
        ratio = tf.cast(ratio_h, tf.float64) / (tf.cast(n, tf.float64) + num_classes64 - 1.0)
        term = term * ratio  # t_n / t_{n-1} = ratio
        # Per-row coefficients first: one multiply-add per class and term.
        n64 = tf.cast(n, tf.float64)
        first = tf.cast(term / (n64 + num_classes64), dtype)[:, None]
        sum_first = sum_first + first * ratio_g_next
        if second:
            ratio_g2, sum_second = second
            second_weight = term / ((n64 + num_classes64) * (n64 + num_classes64 + 1.0))
            second_weight = tf.cast(second_weight, dtype)[:, None]
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
        tail = term * ratio / tf.maximum(1.0 - ratio, 1e-300)
        converged = (ratio < 1.0) & (tail < tolerance * sum_terms)
        return tf.logical_and(n < max_terms, tf.logical_not(tf.reduce_all(converged)))

    def step(n, ratio_g, term, log_scale, sum_terms, ratio, sum_first, *second):
        second = list(second)
        for i in range(unroll):
            ratio_g, term, sum_terms, ratio, sum_first, second = next_term(
                n + i, ratio_g, term, sum_terms, sum_first, second
            )
        # Back to O(1): divide the accumulators by their sum, remembered in log_scale.
        inverse_sum = tf.cast(1.0 / sum_terms, dtype)
        if second:
            shape = [-1, 1] if diagonal else [-1, 1, 1]
            second = [second[0], second[1] * tf.reshape(inverse_sum, shape)]
        return [
            n + unroll,
            ratio_g,
            term / sum_terms,
            log_scale + tf.math.log(sum_terms),
            tf.ones_like(sum_terms),
            ratio,
            sum_first * inverse_sum[:, None],
            *second,
        ]

    ratio = tf.ones([batch], tf.float64)  # t_n / t_{n-1}
    state = [tf.constant(1), ratio_g, term, log_scale, sum_terms, ratio, sum_first, *second]
    final = tf.while_loop(not_converged, step, state)
    log_sum = final[3] + tf.math.log(final[4])
    inverse_sum = tf.cast(1.0 / final[4], dtype)
    mean = final[6] * inverse_sum[:, None]
    second = None
    if diagonal:
        second = 2.0 * final[8] * inverse_sum[:, None]
    elif second_moment:
        diagonal_factor = 1.0 + tf.eye(tf.shape(w)[-1], dtype=dtype)
        second = diagonal_factor * final[8] * inverse_sum[:, None, None]
    return log_sum, mean, second, final[0]


def _centered(logits):
    """Splits logits [B, K] into their row minimum and the non-negative nodes w."""
    minimum = tf.reduce_min(logits, axis=-1)
    return minimum, logits - minimum[:, None]


# Rows whose spread exceeds this many times K - 1 go to the table. The series takes at most
# about spread + 9 sqrt(spread) + 20 terms of O(K) work, the table 3 (K - 1) steps of O(K)
# work, each step about 20x a series term's on 2 CPU cores under XLA
# (benchmarks/cc_numerics.py, section (c)).
TABLE_SPREAD_PER_CLASS = 30.0
# Rows whose spread exceeds this many times K - 1 try the certified closed form first: their
# nodes are mostly far enough apart, and O(K^2) work without a loop is cheaper than the
# series' O(K spread) in about spread sequential terms.
CLOSED_FORM_SPREAD_PER_CLASS = 4.0


def _table_terms(num_classes):
    """Static cap on the cluster series' terms: a cluster's spread is below 2K."""
    return _divided_difference_table.leaf_series_terms(2.0 * num_classes)


def _table_rows(w, wide):
    """The table on the rows flagged ``wide`` of non-negative float64 nodes ``w`` ([B, K]).

    Returns ``(value, gradient, rows, steps)``: log exp[w] and its gradient on ``rows`` (the
    wide rows whose clusters converged), and the sequential steps taken.
    """
    num_classes = w.shape[-1]
    order = tf.argsort(w, axis=-1, stable=True)
    nodes = tf.gather(w, order, batch_dims=1)
    nodes -= nodes[:, :1]
    # Rows left to the series get evenly spaced nodes: K one-node clusters, no work.
    spaced = tf.broadcast_to(tf.range(num_classes, dtype=w.dtype), tf.shape(w))
    value, gradient, ok, terms = _divided_difference_table.log_divided_difference_and_gradient(
        tf.where(wide[:, None], nodes, spaced), _table_terms(num_classes)
    )
    gradient = tf.gather(gradient, tf.argsort(order, axis=-1), batch_dims=1)
    return value, gradient, wide & ok, 3 * (terms + num_classes - 1)


def _series_rows(w):
    """The series (S1) with its mean (M1) on non-negative nodes ``w``: (value, mean, steps)."""
    value, mean, _, steps = _positive_series(w)
    return value, mean, steps


@functools.cache
def _compiled(function, num_classes, dtype):
    """``function`` of [B, num_classes] ``dtype`` tensors as its own XLA cluster: one kernel
    launch per call in eager mode and in graphs that are not compiled. The number of classes
    stays static (the table needs it); the batch size does not. Compiled on first use."""
    arguments = {
        _table_rows: [dtype, tf.bool],
        _series_rows: [dtype],
        _closed_form_rows: [tf.float64, tf.bool],
    }[function]
    signature = [
        tf.TensorSpec([None, num_classes] if d != tf.bool else [None], d) for d in arguments
    ]
    if function is _closed_form_rows:
        function = functools.partial(function, dtype=dtype)
    return tf.function(function, jit_compile=True, autograph=False, input_signature=signature)


def _closed_form_rows(nodes64, tried, dtype):
    """The certified closed form (eq. 4) on the rows flagged ``tried`` of float64 nodes
    (logits minus their row minimum), to the tolerances of ``dtype``: (value, mean, rows it
    certified)."""
    tolerances = _certified_closed_form.TOLERANCES[dtype]
    value, mean, certified = _certified_closed_form.log_normalizer_and_mean(nodes64, tolerances)
    return value, mean, tried & certified


def _log_normalizer_and_mean(logits, with_steps=False, compiled=False):
    """log C^{-1}(eta) ([B]) and E[y] ([B, K]) for [B, K] logits.

    Each row takes the cheapest exact method:
      - rows whose spread exceeds ``CLOSED_FORM_SPREAD_PER_CLASS`` (K - 1), for K up to
        ``_certified_closed_form.MAX_CLASSES``: the closed form (eq. 4) in float64, where its
        error bound certifies it (well-separated nodes; O(K^2) work, no loop);
      - other rows whose spread exceeds ``TABLE_SPREAD_PER_CLASS`` (K - 1): the
        divided-difference table (their sorted nodes always split into clusters);
      - the rest, and rows whose clusters would need more series terms than the table's
        static cap: the series (S1) with its moments (M1).
    Each method runs only when some row of the batch needs it, and rows taken by a cheaper
    method do not lengthen the series' loop. Rows with a non-finite logit give NaN.

    With ``compiled`` (outside XLA) the table and the series each run as their own XLA
    cluster, the table's compiled only once a batch needs it. With ``with_steps`` also
    returns the number of sequential stages (series terms, 3 x cluster-series terms and
    3 x (K - 1) table levels when the table runs: forward, replay, adjoint; the closed form
    has none) and each row's method as an index into ``METHODS``.
    """
    dtype = logits.dtype
    num_classes = logits.shape[-1]
    finite = tf.reduce_all(tf.math.is_finite(logits), axis=-1)
    logits = tf.where(finite[:, None], logits, tf.zeros_like(logits))
    minimum = tf.reduce_min(logits, axis=-1)
    w = logits - minimum[:, None]
    spread = tf.reduce_max(w, axis=-1)
    per_class = tf.cast(tf.shape(w)[-1] - 1, w.dtype)
    wide = spread > TABLE_SPREAD_PER_CLASS * per_class  # such rows always split into clusters
    table, series = _table_rows, _series_rows
    closed = functools.partial(_closed_form_rows, dtype=dtype)
    if compiled and num_classes is not None:
        table = _compiled(_table_rows, num_classes, tf.float64)
        series = _compiled(_series_rows, num_classes, dtype)
        closed = _compiled(_closed_form_rows, num_classes, dtype)

    # The table's nodes: the logits' differences, exact in float64.
    w64 = tf.cast(logits, tf.float64) - tf.cast(minimum, tf.float64)[:, None]
    zeros = tf.zeros_like(w64)
    no_rows = tf.zeros_like(wide)

    def none():
        return zeros[:, 0], zeros, no_rows, tf.constant(0)

    by_closed_form = no_rows
    value, mean = zeros[:, 0], zeros
    if num_classes is not None and num_classes <= _certified_closed_form.MAX_CLASSES:
        tried = spread > CLOSED_FORM_SPREAD_PER_CLASS * per_class
        value, mean, by_closed_form = tf.cond(
            tf.reduce_any(tried), lambda: closed(w64, tried), lambda: none()[:3]
        )
        wide &= ~by_closed_form
    table_steps = series_steps = tf.constant(0)
    if num_classes is not None:
        table_value, table_gradient, by_table, table_steps = tf.cond(
            tf.reduce_any(wide), lambda: table(w64, wide), none
        )
        value = tf.where(by_table, table_value, value)
        mean = tf.where(by_table[:, None], table_gradient, mean)
    else:
        by_table = no_rows
    by_series = ~(by_closed_form | by_table)

    def series_on_remaining_rows():
        series_value, series_mean, steps = series(tf.where(by_series[:, None], w, tf.zeros_like(w)))
        return series_value, tf.cast(series_mean, tf.float64), steps

    series_value, series_mean, series_steps = tf.cond(
        tf.reduce_any(by_series),
        series_on_remaining_rows,
        lambda: (zeros[:, 0], zeros, tf.constant(0)),
    )
    value = tf.where(by_series, series_value, value) + tf.cast(minimum, tf.float64)
    mean = tf.where(by_series[:, None], series_mean, mean)
    nan = tf.constant(math.nan, dtype)
    value = tf.where(finite, tf.cast(value, dtype), nan)
    mean = tf.where(finite[:, None], tf.cast(mean, dtype), nan)
    if with_steps:
        method = tf.where(by_closed_form, 2, tf.where(by_table, 1, 0))
        return value, mean, series_steps + table_steps, method
    return value, mean


# The methods of :func:`_log_normalizer_and_mean`, by the index :func:`row_methods` returns.
METHODS = ("series", "table", "closed form")


def _steps_and_methods(logits):
    """(sequential steps, each row's method index, batch shape) of one call on ``logits``."""
    logits, compute_dtype = _as_compute_tensor(logits)
    flat, batch_shape = _flatten_batch(tf.cast(logits, compute_dtype))
    _, _, steps, method = _log_normalizer_and_mean(flat, with_steps=True, compiled=True)
    return steps, method, batch_shape


def row_methods(logits):
    """The method each row of [..., K] ``logits`` takes, as an int32 index into ``METHODS``
    (shape [...])."""
    _, method, batch_shape = _steps_and_methods(logits)
    return tf.reshape(method, batch_shape)


def sequential_steps(logits):
    """The number of sequential loop steps one call on [B, K] ``logits`` takes (a scalar
    int32): what bounds its latency on a GPU, where each step is a few kernel launches."""
    return _steps_and_methods(logits)[0]


@functools.cache
def _dispatcher(num_classes, dtype):
    """:func:`_log_normalizer_and_mean` on [B, num_classes] ``dtype`` logits as one graph
    function, traced once per process: eager calls run it as a single op, and every model
    that traces a loss adds one call to it instead of tracing the methods again. Its
    methods run as XLA clusters of their own."""
    return tf.function(
        functools.partial(_log_normalizer_and_mean, compiled=True),
        input_signature=[tf.TensorSpec([None, num_classes], dtype)],
        autograph=False,
    )


def _value_and_mean_forward(logits):
    # Inside an XLA-compiled function the computation is inlined into it; anywhere else it
    # is one call of a function traced once (eager mode costs what graph mode costs).
    # The gradient is supplied by `_value_and_mean`: no tape may record the loops.
    logits = tf.stop_gradient(logits)
    if _xla.in_xla_context() or logits.shape[-1] is None:
        return _log_normalizer_and_mean(logits, compiled=False)
    return _dispatcher(logits.shape[-1], logits.dtype)(logits)


def _covariance_vector_product(logits, vector):
    """Cov[y] v = d/dt E_{eta + t v}[y] at t = 0 (the Hessian of log C^{-1} is Cov[y]).

    A central difference of the exact mean in float64 with step eps^(1/3) / max|v|: about
    1e-10 relative accuracy. It serves second derivatives (gradient penalties, Hessian-vector
    products), never the first.
    """
    eta = tf.cast(tf.stop_gradient(logits), tf.float64)
    vector = tf.cast(vector, tf.float64)
    norm = tf.reduce_max(tf.abs(vector), axis=-1, keepdims=True)
    scale = tf.maximum(norm, 1e-300)
    step = 6e-6 / scale * tf.maximum(tf.reduce_max(tf.abs(eta), axis=-1, keepdims=True), 1.0)
    _, mean_plus = _value_and_mean_forward(eta + step * vector)
    _, mean_minus = _value_and_mean_forward(eta - step * vector)
    product = (mean_plus - mean_minus) / (2.0 * step)
    return tf.cast(tf.where(norm > 0, product, tf.zeros_like(product)), logits.dtype)


@tf.custom_gradient
def _with_mean_gradient(logits, mean):
    """``mean`` (E[y] at ``logits``) with its derivative Cov[y] attached, for tapes that
    differentiate a gradient."""

    def gradient(upstream):
        return _covariance_vector_product(logits, upstream), tf.zeros_like(mean)

    return tf.identity(mean), gradient


@tf.custom_gradient
def _value_and_mean(logits):
    """(log C^{-1}, E[y]) of [B, K] logits, with the exact gradient d log C^{-1} = E[y] and
    d E[y] = Cov[y] (:func:`_covariance_vector_product`). No loop is ever differentiated, so
    nested and persistent tapes work in eager mode, in graphs and under XLA alike."""
    value, mean = _value_and_mean_forward(logits)

    def gradient(upstream_value, upstream_mean):
        grad = tf.zeros_like(logits)
        if upstream_value is not None:
            grad += upstream_value[:, None] * _with_mean_gradient(logits, mean)
        if upstream_mean is not None:
            grad += _covariance_vector_product(logits, upstream_mean)
        return grad

    return (value, mean), gradient


def _as_compute_tensor(logits, name="logits"):
    logits = tf.convert_to_tensor(logits, name=name)
    if not logits.dtype.is_floating:
        logits = tf.cast(logits, tf.float32)
    return logits, _compute_dtype(logits.dtype)


def cc_log_normalizer(logits):
    """log C^{-1}(eta) = log of the integral of exp(eta . y) over the simplex (CC paper eq. 3).

    Exact for any number of classes K, including near-uniform and sparse parameters, by the
    cancellation-free series (S1). The gradient is the mean E[y] (computed in the same pass,
    so no loop tape is stored). Shift-invariant up to the shift: f(eta + c) = f(eta) + c.

    Args:
      logits: [..., K] floating tensor of natural parameters (log-probabilities or logits).

    Returns:
      [...] tensor of the input's dtype.
    """
    logits, compute_dtype = _as_compute_tensor(logits)
    flat, batch_shape = _flatten_batch(tf.cast(logits, compute_dtype))
    value, _ = _value_and_mean(flat)
    return tf.cast(_unflatten_batch(value, batch_shape), logits.dtype)


def cc_log_prob(x, logits):
    """CC log-density of points x on the simplex: x . eta - log C^{-1}(eta) (CC paper eq. 2).

    The density is with respect to the Lebesgue measure on the first K - 1 coordinates.
    """
    logits, compute_dtype = _as_compute_tensor(logits)
    x = tf.cast(tf.convert_to_tensor(x, name="x"), compute_dtype)
    eta = tf.cast(logits, compute_dtype)
    eta = tf.broadcast_to(eta, tf.broadcast_dynamic_shape(tf.shape(eta), tf.shape(x)))
    value = tf.reduce_sum(x * eta, axis=-1) - cc_log_normalizer(eta)
    return tf.cast(value, logits.dtype)


def cc_mean(logits):
    """E[y] of CC(eta) = gradient of log C^{-1} (NUMERICS.md; series M1). Shape [..., K]."""
    logits, compute_dtype = _as_compute_tensor(logits)
    flat, batch_shape = _flatten_batch(tf.cast(logits, compute_dtype))
    _, mean = _value_and_mean(flat)
    return tf.cast(tf.reshape(mean, tf.shape(logits)), logits.dtype)


def cc_covariance(logits):
    """Cov[y] of CC(eta) = Hessian of log C^{-1}, from E[y y^T] (series M2) minus E[y]E[y]^T.

    Returns a [..., K, K] tensor.
    """
    logits, compute_dtype = _as_compute_tensor(logits)
    flat, batch_shape = _flatten_batch(tf.cast(logits, compute_dtype))
    minimum, w = _centered(flat)
    _, mean, second, _ = _positive_series(w, second_moment="full")
    covariance = second - mean[:, :, None] * mean[:, None, :]
    num_classes = tf.shape(logits)[-1]
    shape = tf.concat([batch_shape, [num_classes, num_classes]], 0)
    return tf.cast(tf.reshape(covariance, shape), logits.dtype)


def cc_variance(logits):
    """Var[y_k] of CC(eta), the diagonal of :func:`cc_covariance` in O(K) memory.

    E[y_k^2] = 2 exp[eta, eta_k, eta_k] / exp[eta] by the series (S1) with node k tripled
    (the diagonal of M2). Rows wider than the table's threshold take the derivative of the
    exact mean along each class in turn (:func:`_covariance_vector_product`, K calls).

    Args:
      logits: [..., K] natural parameters.

    Returns:
      [..., K] tensor of the input's dtype.
    """
    logits, compute_dtype = _as_compute_tensor(logits)
    flat, batch_shape = _flatten_batch(tf.cast(logits, compute_dtype))
    minimum, w = _centered(flat)
    num_classes = tf.shape(flat)[-1]
    spread_limit = TABLE_SPREAD_PER_CLASS * tf.cast(num_classes - 1, compute_dtype)
    wide = tf.reduce_max(w, axis=-1) > spread_limit
    _, mean, second, _ = _positive_series(
        tf.where(wide[:, None], tf.zeros_like(w), w), second_moment="diagonal"
    )
    variance = second - tf.square(mean)

    def along_each_class(variance):
        def component(k, variance):
            direction = tf.one_hot(tf.fill(tf.shape(flat)[:1], k), num_classes, dtype=flat.dtype)
            product = _covariance_vector_product(flat, direction)
            update = tf.where(wide[:, None] & tf.cast(direction, tf.bool), product, variance)
            return k + 1, update

        return tf.while_loop(lambda k, _: k < num_classes, component, [0, variance])[1]

    variance = tf.cond(tf.reduce_any(wide), lambda: along_each_class(variance), lambda: variance)
    return tf.cast(tf.reshape(variance, tf.shape(logits)), logits.dtype)


def _centered_at_maximum(logits):
    """Logits in float64 minus their row maximum: entropies and divergences built from them
    subtract no large numbers (shift invariance of the CC log-density)."""
    eta = tf.cast(logits, tf.float64)
    return eta - tf.reduce_max(eta, axis=-1, keepdims=True)


def cc_entropy(logits):
    """H[CC(eta)] = log C^{-1}(eta) - eta . E[y] (an exponential family's entropy).

    Computed in float64 from logits shifted to a zero maximum, so that no large terms cancel
    (at a logit spread of 1e6 in float32 the direct formula loses every digit).

    Args:
      logits: [..., K] natural parameters.

    Returns:
      [...] tensor of the input's dtype (nats).
    """
    logits, _ = _as_compute_tensor(logits)
    eta = _centered_at_maximum(logits)
    entropy = cc_log_normalizer(eta) - tf.reduce_sum(eta * cc_mean(eta), axis=-1)
    return tf.cast(entropy, logits.dtype)


def cc_kl_divergence(logits_a, logits_b):
    """KL(CC(eta_a) || CC(eta_b)): the Bregman divergence of the log-normalizer.

    (eta_a - eta_b) . E_a[y] - log C^{-1}(eta_a) + log C^{-1}(eta_b), computed in float64
    from logits shifted to a zero maximum (no large terms cancel). Shapes broadcast; returns
    [...] in the dtype of ``logits_a`` (nats).
    """
    logits_a, _ = _as_compute_tensor(logits_a, name="logits_a")
    logits_b, _ = _as_compute_tensor(logits_b, name="logits_b")
    eta_a = _centered_at_maximum(logits_a)
    eta_b = _centered_at_maximum(logits_b)
    shape = tf.broadcast_dynamic_shape(tf.shape(eta_a), tf.shape(eta_b))
    eta_a, eta_b = tf.broadcast_to(eta_a, shape), tf.broadcast_to(eta_b, shape)
    kl = (
        tf.reduce_sum((eta_a - eta_b) * cc_mean(eta_a), axis=-1)
        - cc_log_normalizer(eta_a)
        + cc_log_normalizer(eta_b)
    )
    return tf.cast(kl, logits_a.dtype)


def cc_closed_form_log_normalizer(logits):
    """The CC paper's closed form (eq. 4): log sum_k e^{eta_k} / prod_{i != k} (eta_k - eta_i).

    Evaluated as published, in the input's precision (after subtracting the row maximum
    against overflow). It cancels catastrophically near uniform parameters and for more
    than about 10 classes; returns NaN or inf where the sum is not positive or not finite.
    For comparisons only: use :func:`cc_log_normalizer`.
    """
    logits = tf.convert_to_tensor(logits, name="logits")
    num_classes = tf.shape(logits)[-1]
    maximum = tf.reduce_max(logits, axis=-1, keepdims=True)
    eta = logits - maximum
    differences = eta[..., :, None] - eta[..., None, :]
    differences += tf.eye(num_classes, dtype=logits.dtype)  # i == k contributes a factor 1
    terms = tf.exp(eta) / tf.reduce_prod(differences, axis=-1)
    return tf.math.log(tf.reduce_sum(terms, axis=-1)) + maximum[..., 0]


def cc_closed_form_failure(logits, rtol=1e-3):
    """True where eq. 4 in the input's precision is non-finite or off by more than rtol.

    The error is measured against :func:`cc_log_normalizer`, relative to max(1, |log C^{-1}|).
    """
    logits = tf.convert_to_tensor(logits, name="logits")
    closed = cc_closed_form_log_normalizer(logits)
    exact = cc_log_normalizer(logits)
    error = tf.abs(closed - exact) / tf.maximum(tf.ones_like(exact), tf.abs(exact))
    return tf.logical_or(tf.logical_not(tf.math.is_finite(closed)), error > rtol)


def _stateless_seed(seed):
    """A [2] int32 stateless seed from None, a Python int or a [2] tensor."""
    if seed is None:
        return tf.random.uniform([2], minval=-(2**31), maxval=2**31 - 1, dtype=tf.int32)
    if isinstance(seed, int):
        return tf.constant([0, seed], tf.int32)
    return tf.cast(tf.convert_to_tensor(seed), tf.int32)


def _prefix_table(w):
    """Log prefix polynomials and log series terms for the sampler.

    Returns ``(log_prefix, log_terms)`` with ``log_prefix[b, j, k] = log h_j(w_1..w_k)``
    for k = 0..K ([B, N, K + 1]; k = 0 is the empty set) and
    ``log_terms[b, n] = log h_n(w) / (n + K - 1)!`` ([B, N]), N terms until the tail of (S1)
    is below the working precision. The recurrence is h_j^(k) = sum_{i<=k} w_i h_{j-1}^(i)
    (a cumulative sum along k), each degree normalized by its full value h_j(w).
    """
    dtype = w.dtype
    batch, num_classes = tf.shape(w)[0], tf.shape(w)[1]
    num_classes64 = tf.cast(num_classes, tf.float64)
    log_tolerance, max_terms = _series_limits(w)

    prefix = tf.ones_like(w)  # h_0^(k) / h_0 for k = 1..K
    log_h = tf.zeros([batch], tf.float64)
    tables = tf.TensorArray(dtype, size=0, dynamic_size=True)
    terms = tf.TensorArray(tf.float64, size=0, dynamic_size=True)

    def record(n, prefix, log_h, tables, terms):
        log_term = log_h - tf.math.lgamma(tf.cast(n, tf.float64) + num_classes64)
        empty = tf.fill([batch, 1], tf.where(n == 0, 0.0, float("-inf")))
        log_prefix = tf.math.log(prefix) + tf.cast(log_h, dtype)[:, None]
        return (
            tables.write(n, tf.concat([tf.cast(empty, dtype), log_prefix], 1)),
            terms.write(n, log_term),
            log_term,
        )

    tables, terms, log_term = record(0, prefix, log_h, tables, terms)
    log_sum = log_term

    def not_converged(n, prefix, log_h, log_term, log_ratio, log_sum, tables, terms):
        # Log-concave terms: the tail is at most t_n r / (1 - r) once r = t_n / t_{n-1} < 1.
        log_tail = (
            log_term + log_ratio - tf.math.log(-tf.math.expm1(tf.minimum(log_ratio, -1e-300)))
        )
        converged = (log_ratio < 0.0) & (log_tail - log_sum < log_tolerance)
        return tf.logical_and(n < max_terms, tf.logical_not(tf.reduce_all(converged)))

    def step(n, prefix, log_h, log_term, log_ratio, log_sum, tables, terms):
        cumulative = tf.cumsum(w * prefix, axis=-1)
        ratio = cumulative[:, -1]
        safe_ratio = tf.where(ratio > 0, ratio, tf.ones_like(ratio))
        prefix = cumulative / safe_ratio[:, None]
        log_h = log_h + tf.math.log(tf.cast(ratio, tf.float64))
        tables, terms, log_term_next = record(n, prefix, log_h, tables, terms)
        return (
            n + 1,
            prefix,
            log_h,
            log_term_next,
            log_term_next - log_term,
            tf.experimental.numpy.logaddexp(log_sum, log_term_next),
            tables,
            terms,
        )

    log_ratio = tf.zeros_like(log_term)  # log t_n / t_{n-1}
    state = [tf.constant(1), prefix, log_h, log_term, log_ratio, log_sum, tables, terms]
    _, _, _, _, _, _, tables, terms = tf.while_loop(not_converged, step, state)
    return tf.transpose(tables.stack(), [1, 0, 2]), tf.transpose(terms.stack())


def _sample_multi_index(w, log_prefix, total, seeds):
    """Draws m with |m| = total and P(m) proportional to prod_k w_k^{m_k} (NUMERICS.md).

    Sequentially from k = K down to 1: P(m_k = a | r left) ~ w_k^a h_{r-a}(w_1..w_{k-1}).
    ``total`` is [B, S]; returns m as [B, S, K] (dtype of w).
    """
    dtype = w.dtype
    num_terms = tf.shape(log_prefix)[1]
    num_classes = tf.shape(w)[1]
    batch, num_samples = tf.shape(total)[0], tf.shape(total)[1]
    powers = tf.range(num_terms)  # candidate values a of m_k
    log_w = tf.math.log(w)
    counts = tf.TensorArray(tf.int32, size=num_classes)

    def step(k, remaining, counts):
        # 0-based class index k - 1; prefix column k - 1 holds h_j(w_1..w_{k-1}).
        column = log_prefix[:, :, k - 1]  # [B, N]
        degree = remaining[:, :, None] - powers  # r - a, [B, S, N]
        log_rest = tf.gather(column, tf.maximum(degree, 0), batch_dims=1)
        a = tf.cast(powers, dtype)
        log_power = tf.where(powers == 0, tf.zeros_like(a), a * log_w[:, k - 1, None])
        logits = tf.where(degree >= 0, log_power[:, None, :] + log_rest, float("-inf"))
        draw = tf.random.stateless_categorical(
            tf.reshape(logits, [-1, num_terms]), 1, seeds[k - 1], dtype=tf.int32
        )
        draw = tf.ensure_shape(tf.reshape(draw, [batch, num_samples]), remaining.shape)
        return k - 1, remaining - draw, counts.write(k - 1, draw)

    _, _, counts = tf.while_loop(lambda k, *_: k > 0, step, [num_classes, total, counts])
    return tf.cast(tf.transpose(counts.stack(), [1, 2, 0]), dtype)


MAX_SAMPLER_SPREAD = 1e5


def cc_sample(logits, sample_shape=(), seed=None):
    """Exact samples of CC(eta) as a mixture of Dirichlets (NUMERICS.md, exact sampling).

    exp(w . y) = sum_n (w . y)^n / n! expands CC(w) into Dirichlet(m + 1) components with
    weights prod_k w_k^{m_k} / (|m| + K - 1)!. So: n ~ P(n) proportional to
    h_n(w) / (n + K - 1)!; m | n with P(m) proportional to prod_k w_k^{m_k}; y ~ Dirichlet(m + 1).
    No rejection step. Its cost grows with the spread q = max - min of the logits: the
    tables of n and m hold at most about q + 9 sqrt(q) + 20 terms (the log-concave weights
    of n reach their tail only there), so time and memory are O(K q) per row; unlike the
    normalizer there is no divided-difference shortcut, because the multi-index draw needs
    every h_j(w_1..w_k). ``benchmarks/cc_numerics.py`` measures samples/s against the spread.
    Spreads above ``MAX_SAMPLER_SPREAD`` raise ``InvalidArgumentError``.

    Args:
      logits: [..., K] natural parameters.
      sample_shape: leading shape of the samples.
      seed: None, a Python int or a stateless seed (shape-[2] integer tensor).

    Returns:
      [*sample_shape, ..., K] points on the simplex. Works in graph mode (tf.function);
      its loop lengths depend on the data, so it does not compile under XLA.
    """
    logits, compute_dtype = _as_compute_tensor(logits)
    flat, batch_shape = _flatten_batch(tf.cast(logits, compute_dtype))
    _, w = _centered(flat)
    num_classes = tf.shape(flat)[1]
    sample_shape = tf.cast(tf.convert_to_tensor(sample_shape, tf.int32), tf.int32)
    num_samples = tf.reduce_prod(sample_shape)
    seeds = tf.random.experimental.stateless_split(_stateless_seed(seed), num_classes + 2)

    spread = tf.reduce_max(w)
    checks = [
        tf.debugging.assert_less_equal(
            spread,
            tf.cast(MAX_SAMPLER_SPREAD, spread.dtype),
            message=(
                f"cc_sample: the logit spread (max - min) exceeds {MAX_SAMPLER_SPREAD:g}; the "
                "exact sampler's tables grow linearly with the spread."
            ),
        )
    ]
    with tf.control_dependencies(checks):
        w = tf.identity(w)
    log_prefix, log_terms = _prefix_table(w)
    total = tf.random.stateless_categorical(
        tf.cast(log_terms, compute_dtype), num_samples, seeds[-1], dtype=tf.int32
    )  # [B, S]
    counts = _sample_multi_index(w, log_prefix, total, seeds)
    batch = tf.shape(flat)[0]
    gammas = tf.random.stateless_gamma(
        [batch, num_samples, num_classes], seeds[-2], alpha=counts + 1.0, dtype=compute_dtype
    )
    points = gammas / tf.reduce_sum(gammas, axis=-1, keepdims=True)
    points = tf.transpose(points, [1, 0, 2])
    shape = tf.concat([sample_shape, batch_shape, [num_classes]], 0)
    return tf.cast(tf.reshape(points, shape), logits.dtype)
