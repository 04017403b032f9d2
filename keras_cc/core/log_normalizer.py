"""The CC log-normalizer log C^{-1}(eta) and its mean E[y], exact at any spread, on any
array namespace, with the exact gradient attached: :class:`LogNormalizer`.

C^{-1}(eta) = integral over the simplex of exp(eta . y) dy = exp[eta_1, ..., eta_K] (CC
paper eq. 3; Hermite-Genocchi: the divided difference of exp at the nodes eta). Each row
takes the cheapest exact method (:meth:`LogNormalizer.value_and_mean`); the derivatives come
from the exponential family, d log C^{-1} = E[y] and d E[y] = Cov[y]
(:meth:`LogNormalizer.log_normalizer`), so no loop is ever differentiated and no loop tape
is stored. The methods themselves are pure functions of their rows (:func:`series_rows`,
:func:`certified_rows`, and on TensorFlow the divided-difference table).
"""

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
# Their blocks (blocks.on_rows) hold at least blocks.BLOCK_ROWS rows and as many more as
# keep a block's K^2 node pairs within this count: at K = 20, 163 rows, so that a batch of
# a hundred or so rows takes them in one block, compiled without a gather, scatter or loop.
CLOSED_FORM_BLOCK_PAIRS = 2**16
# Up to this many classes, the closed form takes the whole batch in one block, whatever its
# size, when any row is flagged: its O(K^2) work per row is then about that of a few series
# terms, and a batch size unknown until the graph runs (Keras traces its train and test
# steps so) compiles no gather, scatter or loop (99 kernels for loss + gradient at K = 10
# instead of 111, with the same time per call at 1024 and 4096 rows).
CLOSED_FORM_WHOLE_BATCH_CLASSES = 16

# The methods of :meth:`LogNormalizer.value_and_mean`, by the index it reports for each row.
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


def _upstream(args, upstream):
    """The upstream gradient of a ``custom_gradient`` rule: its only positional argument
    on TensorFlow and JAX; a keyword argument after the inputs on PyTorch."""
    return args[-1] if upstream is None else upstream


class LogNormalizer:
    """The CC log-normalizer of [B, K] natural parameters (logits) on one array namespace:
    its methods, the choice among them, and the exact derivatives.

    The value. log C^{-1}(eta) = log exp[eta_1, ..., eta_K] (CC paper eq. 3) is shift
    invariant up to the shift, so every method works on nodes relative to a row's minimum
    or maximum, in float64, and adds the shift back. Each row takes the cheapest exact
    method (:meth:`value_and_mean`):
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
        apart from the rest), unless ``top_nodes_form`` is False;
      - other rows whose spread exceeds ``TABLE_SPREAD_PER_CLASS`` (K - 1), up to
        ``TABLE_MAX_SPREAD``, where the backend has the divided-difference table
        (:attr:`has_table`): the table;
      - the rest: the series (S1) with its moments (M1), in the lifted series' loop, up to
        a spread of ``series.MAX_SPREAD``; wider rows give NaN (no exact method has them:
        uncertified rows wider than ``TABLE_MAX_SPREAD``, or wider than
        ``series.MAX_SPREAD`` where there is no table).
    Each method runs on the rows that take it only: the certified closed forms a block of
    rows at a time (:func:`keras_cc.core.blocks.on_rows`; up to
    ``CLOSED_FORM_WHOLE_BATCH_CLASSES`` classes, where their O(K^2) work per row is small,
    on the whole batch when any row needs them), the series' last rows in a block of their
    own (:func:`keras_cc.core.series.positive_series`); rows taken by
    another method do not lengthen the series' loop. Rows with a non-finite logit give NaN.

    The derivatives. The CC family is exponential with sufficient statistic y, so

        d log C^{-1}(eta) / d eta = E[y],        d E[y] / d eta = Cov[y].

    The mean comes out of the same pass as the value (:meth:`forward`), so the gradient of
    :meth:`log_normalizer` costs one multiplication; the mean carries Cov[y] as its own
    derivative (:meth:`mean`), a central difference of the exact mean
    (:meth:`covariance_vector_product`), for second derivatives. No loop is differentiated.

    Backends specialise the methods (TensorFlow: each as an XLA cluster of its own, with
    the table; :class:`keras_cc.ops.continuous_categorical.TensorFlowLogNormalizer`) by
    overriding :meth:`series_rows`, :meth:`certified_rows`, :meth:`table_rows` and
    :meth:`forward`.

    Args:
      xp: an array namespace (:mod:`keras_cc.core.namespace`).
      top_nodes_form: False leaves the closed form on the top nodes out (its rows take the
        series): for programs compiled as a whole (XLA), where every method is compiled
        whether a batch needs it or not, and that form's kernels (its Chernoff bound's
        loop included) were a third of the compile time of loss + gradient.
      jit: compile :meth:`forward` with ``xp.jit`` (JAX: one compiled function, also when
        called outside a trace).
    """

    has_table = False

    def __init__(self, xp, top_nodes_form=True, jit=False):
        self.xp = xp
        self.top_nodes_form = top_nodes_form
        self._forward = xp.jit(self._value_and_mean) if jit else self._value_and_mean

    # ------------------------------------------------------------------ the methods

    def series_rows(self, nodes64, lifted, rows, dtype):
        """:func:`series_rows` on this namespace."""
        return series_rows(self.xp, nodes64, lifted, rows, dtype)

    def certified_rows(self, nodes64, tried, dtype):
        """:func:`certified_rows` on this namespace."""
        return certified_rows(self.xp, nodes64, tried, dtype, self.top_nodes_form)

    def table_rows(self, w64, wide):
        """The divided-difference table on the rows flagged ``wide`` of non-negative
        float64 nodes: ``(value, mean, rows, steps)``; only where :attr:`has_table`."""
        raise NotImplementedError("no divided-difference table on this backend")

    # ------------------------------------------------------------------ the choice

    def value_and_mean(self, logits):
        """log C^{-1}(eta) ([B]), E[y] ([B, K]), sequential steps and each row's method, every
        row by its cheapest exact method (the class docstring). Call inside
        ``xp.float64_scope()``.

        Args:
          logits: [B, K] float32 or float64 natural parameters, K static (K = 1: the point
            mass at y = (1), log C^{-1} = eta).

        Returns:
          ``(value, mean, steps, method)``: [B] float64 and [B, K] in the dtype of
          ``logits``; the number of sequential stages (int32 scalar: series terms plus the
          table's steps; the closed forms have none) and each row's method as an int32
          index into ``METHODS``.
        """
        xp = self.xp
        dtype = xp.dtype(logits)
        num_classes = logits.shape[-1]
        if num_classes == 1:  # a point mass at y = (1): C^{-1} = e^eta, E[y] = 1
            value = xp.cast(logits[:, 0], "float64")
            method = xp.zeros_like(value, dtype="int32")
            return value, xp.ones_like(logits), xp.convert_to_tensor(0, dtype="int32"), method
        # Without the top-node form, rows of more than closed_form.MAX_CLASSES classes have
        # no certified closed form.
        certified = self.top_nodes_form or (num_classes or math.inf) <= closed_form.MAX_CLASSES
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
            # max(w64) is the spread: subtracting the minimum keeps the order of the nodes.
            second = series.second_largest(xp, w64, spread)
            lifted = xp.logical_and(finite, second <= series.LIFTED_SPREAD)
        if static and certified:
            tried = xp.logical_and(
                spread > CLOSED_FORM_SPREAD_PER_CLASS * per_class, xp.logical_not(lifted)
            )
            # On the tried rows only, a block at a time (blocks.on_rows; the whole batch up
            # to CLOSED_FORM_WHOLE_BATCH_CLASSES classes), relative to the row maximum: no
            # large numbers cancel when the logits are log-probabilities (maximum near 0,
            # minimum far below).
            value, mean, by_closed_form, by_top_nodes = blocks.on_rows(
                xp,
                lambda nodes64, tried: self.certified_rows(nodes64, tried, dtype),
                tried,
                [logits64 - maximum[:, None], tried],
                [zeros[:, 0], zeros, no_rows, no_rows],
                None
                if num_classes <= CLOSED_FORM_WHOLE_BATCH_CLASSES
                else max(blocks.BLOCK_ROWS, CLOSED_FORM_BLOCK_PAIRS // num_classes**2),
            )
        done = xp.logical_or(by_top_nodes, by_closed_form)
        by_table, table_steps = no_rows, no_steps
        if static and self.has_table:
            # Such rows always split into clusters.
            wide = xp.logical_and(
                xp.logical_and(
                    spread > TABLE_SPREAD_PER_CLASS * per_class, spread <= TABLE_MAX_SPREAD
                ),
                xp.logical_not(xp.logical_or(done, lifted)),
            )
            table_value, table_mean, by_table, table_steps = xp.cond(
                xp.any(wide),
                lambda: self.table_rows(w64, wide),
                lambda: (zeros[:, 0], zeros, no_rows, no_steps),
            )
            value = xp.where(by_table, table_value, value)
            mean = xp.where(by_table[:, None], table_mean, mean)
        # The table gives log exp[w] relative to the row minimum, the others to the maximum.
        value = value + xp.where(by_table, minimum, maximum)
        by_series = xp.logical_and(finite, xp.logical_not(xp.logical_or(done, by_table)))
        series_value, series_mean, series_steps = xp.cond(
            xp.any(by_series),
            lambda: self.series_rows(w64, xp.logical_and(lifted, by_series), by_series, dtype),
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

    def _value_and_mean(self, logits):
        return self.value_and_mean(logits)[:2]

    def forward(self, logits):
        """(log C^{-1} in float64 [B], E[y] [B, K]) of [B, K] logits, with no gradient:
        :meth:`log_normalizer`, :meth:`mean` and :meth:`negative_log_density` attach the
        exact one, so no tape records the loops."""
        with self.xp.float64_scope():
            return self._forward(self.xp.stop_gradient(logits))

    # ------------------------------------------------------------------ the derivatives

    def covariance_vector_product(self, logits, vector):
        """Cov[y] v = d/dt E_{eta + t v}[y] at t = 0 (the Hessian of log C^{-1} is Cov[y]).

        A central difference of the exact mean (:meth:`forward`) in float64 with step
        eps^(1/3) / max|v|: about 1e-10 relative accuracy. It serves second derivatives
        (gradient penalties, Hessian-vector products), never the first. [B, K] in, [B, K]
        out in the dtype of ``logits``.
        """
        xp = self.xp
        with xp.float64_scope():
            eta = xp.cast(xp.stop_gradient(logits), "float64")
            vector = xp.cast(vector, "float64")
            norm = xp.max(xp.abs(vector), axis=-1, keepdims=True)
            scale = xp.maximum(norm, 1e-300)
            size = xp.maximum(xp.max(xp.abs(eta), axis=-1, keepdims=True), 1.0)
            step = 6e-6 / scale * size
            _, mean_plus = self.forward(eta + step * vector)
            _, mean_minus = self.forward(eta - step * vector)
            product = (mean_plus - mean_minus) / (2.0 * step)
            return xp.cast(xp.where(norm > 0, product, 0.0), xp.dtype(logits))

    def _mean_with_covariance(self, logits, mean):
        """``mean`` (E[y] at ``logits``, from :meth:`forward`) with its derivative Cov[y]
        attached, for tapes that differentiate it."""
        xp = self.xp

        @xp.custom_gradient
        def attach(logits, mean):
            def gradient(*args, upstream=None):
                upstream = _upstream(args, upstream)
                product = self.covariance_vector_product(logits, upstream)
                return product, xp.zeros_like(mean)

            return mean + 0.0, gradient

        return attach(logits, mean)

    def mean(self, logits):
        """E[y] ([B, K], dtype of ``logits``) of [B, K] ``logits``, with its exact
        derivative Cov[y] (:meth:`covariance_vector_product`)."""
        _, mean = self.forward(logits)
        return self._mean_with_covariance(logits, mean)

    def log_normalizer(self, logits):
        """log C^{-1}(eta) of [B, K] ``logits`` ([B], dtype of ``logits``) with its exact
        gradient E[y]: the mean of the forward pass, so the backward pass costs one
        multiplication; the mean carries Cov[y] as its own derivative."""
        xp = self.xp

        @xp.custom_gradient
        def value(logits):
            value, mean = self.forward(logits)
            value = xp.cast(value, xp.dtype(logits))

            def gradient(*args, upstream=None):
                upstream = _upstream(args, upstream)
                return upstream[:, None] * self._mean_with_covariance(logits, mean)

            return value, gradient

        with xp.float64_scope():
            return xp.eager(value)(logits)

    def negative_log_density(self, y, w, shift):
        """-log p(y; eta) = log C^{-1}(eta) - y . eta (CC paper eq. 2) for eta = w + shift,
        computed in float64 and rounded once.

        With the natural parameters split into ``w >= 0`` (eta minus its row minimum) and
        the row minimum ``shift``, log C^{-1}(eta) = log C^{-1}(w) + shift and

            -log p(y; eta) = [log C^{-1}(w) - y . w] + shift (1 - sum y),

        so the two large terms of a wide row cancel in float64 rather than in the inputs'
        precision, and the second term, which vanishes on the simplex, stays small. The
        gradient is exact: d/dw = E[y] - y (E[y] carrying Cov[y] beyond it), d/dy = -eta
        and d/dshift = 1 - sum y.

        Args:
          y: [B, K] targets (on the simplex for a density), float32 or float64.
          w: [B, K] non-negative natural parameters with a zero in each row, dtype of ``y``.
          shift: [B] the row minima of the natural parameters, dtype of ``y``.

        Returns:
          [B] values in the dtype of ``w``; NaN where ``w`` has a non-finite entry.
        """
        xp = self.xp
        dtype = xp.dtype(w)

        @xp.custom_gradient
        def value(y, w, shift):
            log_normalizer64, mean = self.forward(w)
            y64 = xp.cast(y, "float64")
            total = xp.sum(y64, axis=-1)
            cross = xp.sum(y64 * xp.cast(w, "float64"), axis=-1)
            value = log_normalizer64 - cross + xp.cast(shift, "float64") * (1.0 - total)

            def gradient(*args, upstream=None):
                upstream = _upstream(args, upstream)
                mean_w = self._mean_with_covariance(w, mean)
                return (
                    -upstream[:, None] * (w + shift[:, None]),
                    upstream[:, None] * (mean_w - y),
                    upstream * (1.0 - xp.sum(y, axis=-1)),
                )

            return xp.cast(value, dtype), gradient

        with xp.float64_scope():
            return xp.eager(value)(y, w, shift)
