"""log exp[x_1, ..., x_K] and its gradient at wide node spreads: the divided-difference table.

For sorted nodes x_1 <= ... <= x_K the divided differences of exp on windows obey

    exp[x_i..x_j] = (exp[x_{i+1}..x_j] - exp[x_i..x_{j-1}]) / (x_j - x_i)              (T1)

Both terms are positive and the first is the larger (divided differences of exp grow in
every node). The subtraction loses nothing when the window is wide, x_j - x_i >= j - i,
where the first term dominates (checked against high-precision references in
``tests/test_cc_wide_spreads.py``); it cancels when the window is narrow.

Clusters. With u_k = x_k - k, every window that contains positions p and p + 1 is wide
exactly when max(u_1..u_p) <= min(u_{p+1}..u_K). Cutting the sorted nodes at all such p
gives clusters; every window that spans two clusters is then wide and follows (T1), and
the windows that (T1) needs inside a cluster are its prefixes and suffixes (a window
reached from one spanning two clusters loses nodes from one end at a time). Those are
summed by the positive series centred at the cluster's smallest node c,

    exp[x_i..x_j] = e^c sum_{n>=0} h_n(x_i - c, ..., x_j - c) / (n + j - i)!           (S1)

with the prefix polynomials h_n(x_s..x_k) = sum_{i<=k} (x_i - c) h_{n-1}(x_s..x_i) (a
segmented cumulative sum; suffixes likewise from the other end). A cluster's spread stays
below about twice its size, so the series is short: O(K min(K, spread)) work in all, in
K table levels plus the series terms of the widest cluster.

The gradient (the CC mean) is the adjoint of the table, level by level from the top,
then of the cluster series term by term; both passes reuse the stored forward values.
Values are carried as float64 mantissas with binary exponents (``_binary_exponent``), so
no step calls a transcendental function and no value over- or underflows.
"""

import math

import tensorflow as tf

from keras_cc.ops import _binary_exponent as binary
from keras_cc.ops._reverse_sweep import block_size, sweep_backward, sweep_forward
from keras_cc.ops._scan import Segments, segmented_scan, shift

_TOLERANCE = 0.1 * 2.0**-53


def clusters(w):
    """Cluster structure of sorted non-negative nodes ``w`` ([B, K], ascending).

    Returns ``(segment, start, end)``, [B, K] int32: the cluster id of each position and the
    first and last position of its cluster.
    """
    size = tf.shape(w)[-1]
    positions = tf.broadcast_to(tf.range(size), tf.shape(w))
    u = w - tf.cast(positions, w.dtype)
    prefix_max = segmented_scan(u, None, tf.maximum, -math.inf)
    suffix_min = segmented_scan(u, None, tf.minimum, math.inf, reverse=True)
    # A cut between positions p and p + 1. Never between tied nodes: above 2^53 the
    # rounding of u can make max u_left = min u_right for a tie (a zero divisor in (T1)).
    cut = (prefix_max[:, :-1] <= suffix_min[:, 1:]) & (w[:, 1:] > w[:, :-1])
    first = tf.ones_like(cut[:, :1])
    is_start = tf.concat([first, cut], axis=1)
    is_end = tf.concat([cut, first], axis=1)
    segment = tf.cumsum(tf.cast(is_start, tf.int32), axis=1)
    start = segmented_scan(tf.where(is_start, positions, 0), None, tf.maximum, 0)
    end = segmented_scan(tf.where(is_end, positions, size), None, tf.minimum, size, reverse=True)
    return segment, start, end


def _gather(x, index):
    return tf.gather(x, index, batch_dims=1)


def _segment_total(x, segments):
    """The sum of ``x`` over each position's cluster, at every position."""
    forward = segmented_scan(x, segments, tf.add, 0.0)
    backward = segmented_scan(x, segments, tf.add, 0.0, reverse=True)
    return forward + backward - x


def leaf_series_terms(spread_bound):
    """A static cap on the terms of (S1) for clusters of spread up to ``spread_bound``."""
    return int(math.ceil(2.0 * spread_bound + 14.0 * math.sqrt(spread_bound) + 80.0))


class _Structure:
    """Sorted nodes ``w`` ([B, K], float64, w[:, 0] = 0) and their clusters."""

    def __init__(self, w, segment, start, end):
        self.w = w
        self.segment, self.start, self.end = Segments(segment), start, end
        self.size = tf.shape(w)[-1]
        self.positions = tf.broadcast_to(tf.range(self.size), tf.shape(w))
        self.is_start = tf.equal(start, self.positions)
        self.low = _gather(w, start)
        self.v = w - self.low  # nodes centred at their cluster's smallest node
        self.prefix_size = tf.cast(self.positions - start + 1, w.dtype)
        self.suffix_size = tf.cast(end - self.positions + 1, w.dtype)
        self.cluster_spread = _gather(w, end) - self.low

    # ------------------------------------------------------------------ cluster series
    #
    # Term t of a window of m nodes is P_t * C_t with P_t its polynomial h_t divided by the
    # cluster's h_t (``prefix``/``suffix`` below, at most 1) and C_t = (cluster's h_t) /
    # (t + m - 1)!, kept as a mantissa and a binary exponent (``coef_*``, ``exp_*``).

    def next_term(self, t, state):
        """The state of term t + 1 from that of term t."""
        prefix, suffix, coef_p, exp_p, coef_s, exp_s, _ = state
        raw_prefix = segmented_scan(self.v * prefix, self.segment, tf.add, 0.0)
        raw_suffix = segmented_scan(self.v * suffix, self.segment, tf.add, 0.0, reverse=True)
        # h_t+1 of the whole cluster (scaled): the prefix at the cluster's end, the largest.
        total = segmented_scan(raw_prefix, self.segment, tf.maximum, 0.0, reverse=True)
        scale = tf.where(total > 0, total, tf.ones_like(total))
        t_next = tf.cast(t + 1, self.w.dtype)
        coef_p, exp_p = binary.normalize(coef_p * scale / (t_next + self.prefix_size - 1.0), exp_p)
        coef_s, exp_s = binary.normalize(coef_s * scale / (t_next + self.suffix_size - 1.0), exp_s)
        return [raw_prefix / scale, raw_suffix / scale, coef_p, exp_p, coef_s, exp_s, scale]

    def leaves(self, max_terms):
        """Every position's cluster prefix exp[x_s..x_k] and suffix exp[x_k..x_e], relative
        to e^min(x), as ``(m, e)`` pairs, and per-row convergence within ``max_terms``."""
        ones = tf.ones_like(self.w)
        coef_p, exp_p = binary.from_log(-tf.math.lgamma(self.prefix_size))
        coef_s, exp_s = binary.from_log(-tf.math.lgamma(self.suffix_size))
        state = [ones, ones, coef_p, exp_p, coef_s, exp_s, ones]
        extra = [coef_p, exp_p, coef_s, exp_s, tf.zeros_like(self.w[:, 0], tf.bool)]

        def advance(t, state, extra):
            state = self.next_term(t, state)
            prefix, suffix, coef_p, exp_p, coef_s, exp_s, _ = state
            sum_p, sum_exp_p, sum_s, sum_exp_s, _ = extra
            sum_p, sum_exp_p = binary.add(sum_p, sum_exp_p, prefix * coef_p, exp_p)
            sum_s, sum_exp_s = binary.add(sum_s, sum_exp_s, suffix * coef_s, exp_s)
            small_p = prefix * coef_p * binary.power_of_two(exp_p - sum_exp_p) < _TOLERANCE
            small_s = suffix * coef_s * binary.power_of_two(exp_s - sum_exp_s) < _TOLERANCE
            decaying = tf.cast(t + 1, self.w.dtype) > 2.0 * self.cluster_spread + 1.0
            converged = tf.reduce_all(small_p & small_s & decaying, axis=-1)
            return state, [sum_p, sum_exp_p, sum_s, sum_exp_s, converged]

        def done(t, state, extra):
            return tf.reduce_all(extra[-1])

        self.block = block_size(max_terms)
        self.last, _, extra, self.checkpoints = sweep_forward(
            advance, done, state, extra, max_terms, self.block
        )
        self.sums = extra[:4]
        low, low_exp = binary.from_log(self.low)
        prefix = binary.normalize(extra[0] * low, extra[1] + low_exp)
        suffix = binary.normalize(extra[2] * low, extra[3] + low_exp)
        finite = tf.reduce_all(tf.math.is_finite(tf.concat([extra[0], extra[2]], -1)), -1)
        return prefix, suffix, extra[-1] & finite

    def leaves_adjoint(self, bar_prefix, bar_suffix):
        """Gradient w.r.t. w of sum(bar_prefix * log prefix + bar_suffix * log suffix)."""
        sum_p, sum_exp_p, sum_s, sum_exp_s = self.sums

        def backward(t, state, adjoint):
            prefix, suffix, coef_p, exp_p, coef_s, exp_s, scale = state
            up_p, up_s, grad_v = adjoint  # sums over the later windows of term t + 1's adjoint
            # d log(sum) / d prefix_t = C_t / sum.
            direct_p = bar_prefix * coef_p * binary.power_of_two(exp_p - sum_exp_p) / sum_p
            direct_s = bar_suffix * coef_s * binary.power_of_two(exp_s - sum_exp_s) / sum_s
            grad_v = grad_v + prefix * up_p + suffix * up_s
            adjoint_p = (direct_p + self.v * up_p) / scale
            adjoint_s = (direct_s + self.v * up_s) / scale
            up_p = segmented_scan(adjoint_p, self.segment, tf.add, 0.0, reverse=True)
            up_s = segmented_scan(adjoint_s, self.segment, tf.add, 0.0)
            return [up_p, up_s, grad_v]

        zeros = tf.zeros_like(self.w)
        _, _, grad_v = sweep_backward(
            self.next_term, backward, self.checkpoints, self.last, self.block, [zeros] * 3
        )
        # v = w - w[start] and log value = log series(v) + w[start].
        outside = _segment_total(grad_v, self.segment) - grad_v
        weight = _segment_total(bar_prefix + bar_suffix, self.segment)
        return tf.where(self.is_start, weight - outside, grad_v)

    # ------------------------------------------------------------------ table (T1)

    def _level(self, m, below, below_exp):
        """Windows [i, i + m - 1] from level m - 1 (``below``: its ``(m, e)`` pairs): the values
        by (T1) where the window spans two clusters, the leaves elsewhere, and the factors
        of the adjoint."""
        offset = m - 1
        last = self.positions + offset
        inside = last < self.size
        # Start of the last node's cluster, its node and its prefix window, at position i.
        last_start, last_w, last_prefix, last_prefix_exp = tf.unstack(
            shift(self.by_last, offset, float(2**31), reverse=True)
        )
        positions = tf.cast(self.positions, self.w.dtype)
        cross = inside & (last_start > positions)
        upper = shift(below, 1, 1.0, reverse=True)  # window [i + 1, i + m - 1]
        upper_exp = shift(below_exp, 1, 0.0, reverse=True)
        width = tf.where(cross, last_w - self.w, tf.ones_like(self.w))
        lower = below * binary.power_of_two(below_exp - upper_exp)  # at upper's exponent
        difference = tf.where(cross, upper - lower, tf.ones_like(upper))
        value, value_exp = binary.normalize(difference / width, upper_exp)
        is_prefix = inside & tf.equal(last_start, positions)
        is_suffix = inside & ~cross & ~is_prefix & tf.equal(self.end, last)
        leaf = tf.where(is_prefix, last_prefix, self.leaf_suffix[0])
        leaf_exp = tf.where(is_prefix, last_prefix_exp, self.leaf_suffix[1])
        is_leaf = is_prefix | is_suffix
        value = tf.where(cross, value, tf.where(is_leaf, leaf, 1.0))
        value_exp = tf.where(cross, value_exp, tf.where(is_leaf, leaf_exp, 0.0))
        factors = (upper / difference, lower / difference)
        return [value, value_exp], cross, width, factors, is_prefix, is_suffix

    def table_step(self, t, state):
        """Level t + 2 from level t + 1."""
        return self._level(t + 2, *state)[0]

    def table(self):
        """log exp[w] ([B]) and its gradient ([B, K]), with the leaves already computed."""
        levels = tf.shape(self.w)[-1]
        max_states = self.w.shape[-1]
        if max_states is None:
            raise ValueError("The number of classes (last axis of the logits) must be static.")
        block = block_size(max_states)

        def advance(t, state, extra):
            return self.table_step(t, state), extra

        _, top, _, checkpoints = sweep_forward(
            advance,
            lambda *_: tf.constant(False),
            list(binary.from_log(self.w)),
            [],
            max_states,
            block,
        )

        def backward(t, state, adjoint):
            # state: level t + 1; adjoint: that of level t + 2 (none above the top).
            upper_adjoint, grad_w, bar_p, bar_s = adjoint
            m = t + 2
            _, cross, width, factors, is_prefix, is_suffix = self._level(m, *state)
            through = tf.where(cross, upper_adjoint, 0.0)
            # d log value / d log upper = upper / difference; / d log lower = -lower / difference.
            through_upper = through * factors[0]
            below = -through * factors[1] + shift(through_upper, 1, 0.0)
            inverse = through / width
            # Contributions at the window's last node i + m - 1: one shift for both.
            at_last = tf.stack([inverse, tf.where(is_prefix, upper_adjoint, 0.0)])
            to_last, to_prefix = tf.unstack(shift(at_last, m - 1, 0.0))
            grad_w = grad_w + inverse - to_last
            bar_p = bar_p + to_prefix
            bar_s = bar_s + tf.where(is_suffix, upper_adjoint, 0.0)
            return [below, grad_w, bar_p, bar_s]

        def backward_or_top(t, state, adjoint):
            return tf.cond(
                t < levels - 1, lambda: backward(t, state, adjoint), lambda: list(adjoint)
            )

        zeros = tf.zeros_like(self.w)
        top_adjoint = tf.one_hot(tf.zeros_like(self.w[:, 0], tf.int32), levels, dtype=self.w.dtype)
        level_one, grad_w, bar_p, bar_s = sweep_backward(
            self.table_step,
            backward_or_top,
            checkpoints,
            levels - 1,
            block,
            [top_adjoint, zeros, zeros, zeros],
        )
        grad_w = grad_w + level_one + self.leaves_adjoint(bar_p, bar_s)
        return binary.to_log(top[0][:, 0], top[1][:, 0]), grad_w


def log_divided_difference_and_gradient(w, max_leaf_terms):
    """log exp[w] and d/dw for sorted float64 nodes ``w`` ([B, K], ascending, w[:, 0] = 0).

    Returns ``(value [B], gradient [B, K], ok [B], terms)``; ``ok`` is False on rows whose
    clusters did not converge within ``max_leaf_terms`` series terms (their values are not
    usable); ``terms`` is the number of cluster-series terms summed.
    """
    structure = _Structure(w, *clusters(w))
    prefix, structure.leaf_suffix, ok = structure.leaves(max_leaf_terms)
    structure.by_last = tf.stack([tf.cast(structure.start, w.dtype), w, *prefix])
    value, gradient = structure.table()
    return value, gradient, ok, structure.last
