"""The CC log-normalizer log C^{-1}(eta) and its mean E[y], exact at any spread, on any
array namespace, with the exact gradient attached.

C^{-1}(eta) = integral over the simplex of exp(eta . y) dy = exp[eta_1, ..., eta_K] (CC
paper eq. 3; Hermite-Genocchi: the divided difference of exp at the nodes eta). Each row
takes the cheapest exact method (:func:`log_normalizer_and_mean`); the derivatives come
from the exponential family, d log C^{-1} = E[y] and d E[y] = Cov[y]
(:func:`log_normalizer`), so no loop is ever differentiated and no loop tape is stored.
"""

import functools
import math

from keras_cc.core import blocks, closed_form, series, top_nodes

# Rows whose spread exceeds this many times K - 1 go to the divided-difference table where
# one is supplied (TensorFlow). The series takes at most about spread + 9 sqrt(spread) + 20
# terms of O(K) work, the table 3 (K - 1) steps of O(K) work, each step about 20x a series
# term's on 2 CPU cores under XLA (benchmarks/cc_numerics.py, section (c)).
TABLE_SPREAD_PER_CLASS = 30.0
# ... and at most this spread: its binary exponents (about 1.44 spread) lose bits past 2^59,
# and its means their sign from a spread of about 5e17 (measured on ties and clusters).
# Wider rows that no closed form certifies give NaN (the series sums at most
# ``series.MAX_SPREAD``).
TABLE_MAX_SPREAD = 2.0**58
# Rows whose spread exceeds this many times K - 1 try the certified closed forms first: on
# all nodes (O(K^2) work, K <= closed_form.MAX_CLASSES), then on the top nodes (O(K) work).
# Their nodes are mostly far enough apart, and work without a loop is cheaper than the
# series' O(K spread) in about spread sequential terms.
CLOSED_FORM_SPREAD_PER_CLASS = 4.0

# The methods of :func:`log_normalizer_and_mean`, by the index it reports for each row.
METHODS = ("series", "table", "closed form", "top nodes", "lifted series")


def series_rows(xp, nodes64, lifted, rows, dtype):
    """The series on the rows flagged ``rows`` of float64 nodes (logits minus their row
    minimum), with the top node lifted out on the rows flagged ``lifted``
    (:func:`keras_cc.core.series.lifted_series`), to the tolerance of ``dtype`` (a name):
    (log exp[w] - max w, mean, steps).

    The sum runs in float64 for float32 logits too: in float32 the rounding of its steps
    would add up to more than an O(1) CC loss can lose to be correctly rounded. The float64
    arithmetic costs 5-30 % more time than float32 on 2 CPU cores.
    """
    nodes = xp.where(rows[:, None], nodes64, 0.0)
    return series.lifted_series(xp, nodes, lifted, tolerance_dtype=dtype)


def certified_rows(xp, nodes64, tried, dtype, top_nodes_form=True):
    """The certified closed forms on the rows flagged ``tried`` of float64 nodes (logits
    minus any per-row shift), to the tolerances of ``dtype`` (a name): first on all nodes
    (:mod:`~keras_cc.core.closed_form`, K <= ``closed_form.MAX_CLASSES``), then on the top
    nodes (:mod:`~keras_cc.core.top_nodes`) of the rows it does not certify.

    Returns ``(value, mean, by_closed_form, by_top_nodes)``: the value relative to the
    shift ([B] float64), E[y] ([B, K] float64) and the rows each form certified ([B] bool).
    """
    tolerances = closed_form.TOLERANCES[dtype]
    value, mean = xp.zeros_like(nodes64[:, 0]), xp.zeros_like(nodes64)
    by_closed_form = xp.zeros_like(tried)
    if nodes64.shape[-1] <= closed_form.MAX_CLASSES:
        value, mean, certified = closed_form.log_normalizer_and_mean(xp, nodes64, tolerances)
        by_closed_form = xp.logical_and(tried, certified)
    by_top_nodes = xp.zeros_like(tried)
    if top_nodes_form:
        top_value, top_mean, certified = top_nodes.log_normalizer_and_mean(xp, nodes64, tolerances)
        by_top_nodes = xp.logical_and(
            xp.logical_and(tried, xp.logical_not(by_closed_form)), certified
        )
        value = xp.where(by_top_nodes, top_value, value)
        mean = xp.where(by_top_nodes[:, None], top_mean, mean)
    return value, mean, by_closed_form, by_top_nodes


def log_normalizer_and_mean(
    xp, logits, series_fn=None, certified_fn=None, table_fn=None, top_nodes_form=True
):
    """log C^{-1}(eta) ([B]), E[y] ([B, K]), sequential steps and each row's method.

    Each row takes the cheapest exact method:
      - rows whose nodes other than the largest spread at most ``series.LIFTED_SPREAD``:
        the lifted series (:func:`keras_cc.core.series.lifted_series`), whose steps depend
        on that spread alone, whatever the height of the top node (every point of the CC
        label-smoothing trajectory);
      - the other rows whose spread exceeds ``CLOSED_FORM_SPREAD_PER_CLASS`` (K - 1), for K
        up to ``closed_form.MAX_CLASSES``: the closed form (eq. 4) on all nodes in float64,
        where its error bound certifies it (well-separated nodes; O(K^2) work);
      - those of them it does not certify, and such rows of any K: the closed form on the
        top nodes with a bound on the rest (:mod:`~keras_cc.core.top_nodes`; O(K) work),
        where its error bound certifies it (one to ``top_nodes.TOP_NODES`` nodes standing
        apart from the rest);
      - other rows whose spread exceeds ``TABLE_SPREAD_PER_CLASS`` (K - 1), up to
        ``TABLE_MAX_SPREAD``, when a ``table_fn`` is given: the divided-difference table;
      - the rest: the series (S1) with its moments (M1), in the lifted series' loop, up to
        a spread of ``series.MAX_SPREAD``; wider rows give NaN (no exact method has them:
        uncertified rows wider than ``TABLE_MAX_SPREAD``, or wider than
        ``series.MAX_SPREAD`` inside XLA, where there is no table).
    Each method runs on the rows that take it only: the certified closed forms a block of
    rows at a time (:func:`keras_cc.core.blocks.on_rows`), the series' last rows in a
    block of their own (:func:`keras_cc.core.series.positive_series`); rows taken by
    another method do not lengthen the series' loop. Rows with a non-finite logit give NaN. Call
    inside ``xp.float64_scope()``.

    Args:
      xp: an array namespace (:mod:`keras_cc.core.namespace`).
      logits: [B, K] float32 or float64 natural parameters, K static (K = 1: the point
        mass at y = (1), log C^{-1} = eta).
      series_fn, certified_fn: replacements of :func:`series_rows`
        (``(nodes64, lifted, rows) -> ...``) and :func:`certified_rows`
        (``(nodes64, tried) -> ...``) with the same results, e.g. compiled ones; by
        default those functions on ``xp``.
      table_fn: ``(nodes64, wide) -> (value, mean, rows, steps)`` on the rows flagged
        ``wide``, or None (no table: those rows take the series).
      top_nodes_form: False leaves the closed form on the top nodes out (its rows take the
        series): for programs compiled as a whole (XLA), where every method is compiled
        whether a batch needs it or not, and that form's kernels (its Chernoff bound's
        loop included) were a third of the compile time of loss + gradient.

    Returns:
      ``(value, mean, steps, method)``: [B] float64 and [B, K] in the dtype of ``logits``; the
      number of sequential stages (int32 scalar: series terms plus the table's steps; the
      closed forms have none) and each row's method as an int32 index into ``METHODS``.
    """
    dtype = xp.dtype(logits)
    num_classes = logits.shape[-1]
    if num_classes == 1:  # a point mass at y = (1): C^{-1} = e^eta, E[y] = 1
        value = xp.cast(logits[:, 0], "float64")
        method = xp.zeros_like(value, dtype="int32")
        return value, xp.ones_like(logits), xp.convert_to_tensor(0, dtype="int32"), method
    series_fn = series_fn or functools.partial(series_rows, xp, dtype=dtype)
    certified_fn = certified_fn or functools.partial(
        certified_rows, xp, dtype=dtype, top_nodes_form=top_nodes_form
    )
    # Without the top-node form, rows of more than closed_form.MAX_CLASSES classes have no
    # certified closed form.
    certified = top_nodes_form or (num_classes or math.inf) <= closed_form.MAX_CLASSES
    finite = xp.all(xp.isfinite(logits), axis=-1)
    # The nodes of every method: the logits' differences, exact in float64.
    logits64 = xp.cast(xp.where(finite[:, None], logits, 0.0), "float64")
    minimum = xp.min(logits64, axis=-1)
    maximum = xp.max(logits64, axis=-1)
    w64 = logits64 - minimum[:, None]
    spread = maximum - minimum
    static = num_classes is not None  # else only (S1), in graphs of unknown K
    per_class = xp.cast(xp.size(w64, -1) - 1, "float64")
    zeros = xp.zeros_like(w64)
    no_rows = xp.zeros_like(finite)
    no_steps = xp.convert_to_tensor(0, dtype="int32")

    value, mean = zeros[:, 0], zeros
    lifted, by_closed_form, by_top_nodes = no_rows, no_rows, no_rows
    if static:
        lifted = xp.logical_and(finite, series.second_largest(xp, w64) <= series.LIFTED_SPREAD)
    if static and certified:
        tried = xp.logical_and(
            spread > CLOSED_FORM_SPREAD_PER_CLASS * per_class, xp.logical_not(lifted)
        )
        # On the tried rows only, a block at a time (:func:`keras_cc.core.blocks.on_rows`),
        # relative to the row maximum: no large numbers cancel when the logits are
        # log-probabilities (maximum near 0, minimum far below).
        value, mean, by_closed_form, by_top_nodes = blocks.on_rows(
            xp,
            certified_fn,
            tried,
            [logits64 - maximum[:, None], tried],
            [zeros[:, 0], zeros, no_rows, no_rows],
        )
    done = xp.logical_or(by_top_nodes, by_closed_form)
    by_table, table_steps = no_rows, no_steps
    if static and table_fn is not None:
        # Such rows always split into clusters.
        wide = xp.logical_and(
            xp.logical_and(spread > TABLE_SPREAD_PER_CLASS * per_class, spread <= TABLE_MAX_SPREAD),
            xp.logical_not(xp.logical_or(done, lifted)),
        )
        table_value, table_mean, by_table, table_steps = xp.cond(
            xp.any(wide),
            lambda: table_fn(w64, wide),
            lambda: (zeros[:, 0], zeros, no_rows, no_steps),
        )
        value = xp.where(by_table, table_value, value)
        mean = xp.where(by_table[:, None], table_mean, mean)
    # The table gives log exp[w] relative to the row minimum, the others to the maximum.
    value = value + xp.where(by_table, minimum, maximum)
    by_series = xp.logical_and(finite, xp.logical_not(xp.logical_or(done, by_table)))
    series_value, series_mean, series_steps = xp.cond(
        xp.any(by_series),
        lambda: series_fn(w64, xp.logical_and(lifted, by_series), by_series),
        lambda: (zeros[:, 0], zeros, no_steps),
    )
    value = xp.where(by_series, series_value + maximum, value)
    mean = xp.where(by_series[:, None], series_mean, mean)
    value = xp.where(finite, value, math.nan)
    mean = xp.where(finite[:, None], xp.cast(mean, dtype), math.nan)
    method = xp.where(
        by_top_nodes,
        3,
        xp.where(
            by_closed_form,
            2,
            xp.where(by_table, 1, xp.where(xp.logical_and(lifted, by_series), 4, 0)),
        ),
    )
    return value, mean, series_steps + table_steps, xp.cast(method, "int32")


def covariance_vector_product(xp, logits, vector, forward):
    """Cov[y] v = d/dt E_{eta + t v}[y] at t = 0 (the Hessian of log C^{-1} is Cov[y]).

    A central difference of the exact mean ``forward(eta)[1]`` in float64 with step
    eps^(1/3) / max|v|: about 1e-10 relative accuracy. It serves second derivatives
    (gradient penalties, Hessian-vector products), never the first. [B, K] in, [B, K] out
    in the dtype of ``logits``.
    """
    with xp.float64_scope():
        eta = xp.cast(xp.stop_gradient(logits), "float64")
        vector = xp.cast(vector, "float64")
        norm = xp.max(xp.abs(vector), axis=-1, keepdims=True)
        scale = xp.maximum(norm, 1e-300)
        size = xp.maximum(xp.max(xp.abs(eta), axis=-1, keepdims=True), 1.0)
        step = 6e-6 / scale * size
        _, mean_plus = forward(eta + step * vector)
        _, mean_minus = forward(eta - step * vector)
        product = (mean_plus - mean_minus) / (2.0 * step)
        return xp.cast(xp.where(norm > 0, product, 0.0), xp.dtype(logits))


def _upstream(args, upstream):
    """The upstream gradient of a ``custom_gradient`` rule: its only positional argument
    on TensorFlow and JAX; a keyword argument after the inputs on PyTorch."""
    return args[-1] if upstream is None else upstream


def mean_with_covariance(xp, logits, mean, forward):
    """``mean`` (E[y] at [B, K] ``logits``, computed by ``forward``) with its derivative
    Cov[y] attached, for tapes that differentiate it (:func:`covariance_vector_product`)."""

    @xp.custom_gradient
    def attach(logits, mean):
        def gradient(*args, upstream=None):
            upstream = _upstream(args, upstream)
            product = covariance_vector_product(xp, logits, upstream, forward)
            return product, xp.zeros_like(mean)

        return mean + 0.0, gradient

    return attach(logits, mean)


def log_normalizer(xp, logits, forward):
    """log C^{-1}(eta) of [B, K] ``logits`` ([B]) with its exact gradient E[y].

    ``forward(logits) -> (value, mean)`` computes both without a gradient, the value in
    float64 (e.g. :func:`log_normalizer_and_mean`); the mean of the forward pass is the
    gradient, so the backward pass costs one multiplication, and the mean carries Cov[y]
    as its own derivative for second derivatives. The value has the dtype of ``logits``.
    """

    @xp.custom_gradient
    def value(logits):
        value, mean = forward(xp.stop_gradient(logits))
        value = xp.cast(value, xp.dtype(logits))

        def gradient(*args, upstream=None):
            upstream = _upstream(args, upstream)
            return upstream[:, None] * mean_with_covariance(xp, logits, mean, forward)

        return value, gradient

    with xp.float64_scope():
        return xp.eager(value)(logits)


def negative_log_density(xp, y, w, shift, forward):
    """-log p(y; eta) = log C^{-1}(eta) - y . eta (CC paper eq. 2) for eta = w + shift,
    computed in float64 and rounded once.

    With the natural parameters split into ``w >= 0`` (eta minus its row minimum) and the
    row minimum ``shift``, log C^{-1}(eta) = log C^{-1}(w) + shift and

        -log p(y; eta) = [log C^{-1}(w) - y . w] + shift (1 - sum y),

    so the two large terms of a wide row cancel in float64 rather than in the inputs'
    precision, and the second term, which vanishes on the simplex, stays small. The
    gradient is exact: d/dw = E[y] - y (E[y] carrying Cov[y] beyond it), d/dy = -eta and
    d/dshift = 1 - sum y.

    Args:
      xp: an array namespace (:mod:`keras_cc.core.namespace`).
      y: [B, K] targets (on the simplex for a density), float32 or float64.
      w: [B, K] non-negative natural parameters with a zero in each row, dtype of ``y``.
      shift: [B] the row minima of the natural parameters, dtype of ``y``.
      forward: ``(w) -> (log C^{-1}(w) in float64, E[y])`` without a gradient.

    Returns:
      [B] values in the dtype of ``w``; NaN where ``w`` has a non-finite entry.
    """
    dtype = xp.dtype(w)

    @xp.custom_gradient
    def value(y, w, shift):
        log_normalizer64, mean = forward(xp.stop_gradient(w))
        y64 = xp.cast(y, "float64")
        total = xp.sum(y64, axis=-1)
        cross = xp.sum(y64 * xp.cast(w, "float64"), axis=-1)
        value = log_normalizer64 - cross + xp.cast(shift, "float64") * (1.0 - total)

        def gradient(*args, upstream=None):
            upstream = _upstream(args, upstream)
            mean_w = mean_with_covariance(xp, w, mean, forward)
            return (
                -upstream[:, None] * (w + shift[:, None]),
                upstream[:, None] * (mean_w - y),
                upstream * (1.0 - xp.sum(y, axis=-1)),
            )

        return xp.cast(value, dtype), gradient

    with xp.float64_scope():
        return xp.eager(value)(y, w, shift)
