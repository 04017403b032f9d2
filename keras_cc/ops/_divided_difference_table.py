"""log exp[x_1, ..., x_K] and its gradient at wide node spreads: the divided-difference table.

For sorted nodes x_1 <= ... <= x_K the divided differences of exp on windows obey

    exp[x_i..x_j] = (exp[x_{i+1}..x_j] - exp[x_i..x_{j-1}]) / (x_j - x_i)              (T1)

Both terms are positive and the first is the larger (divided differences of exp grow in
every node). The subtraction loses nothing when the window is wide, x_j - x_i >= j - i
(NUMERICS.md of the design notes); it cancels when the window is narrow.

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
Everything is carried in log space in float64.
"""

import math

import tensorflow as tf

from keras_cc.ops._reverse_sweep import block_size, sweep_backward, sweep_forward
from keras_cc.ops._scan import segmented_scan, shift

_LOG_TOLERANCE = math.log(0.1 * 2.0**-53)


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
    cut = prefix_max[:, :-1] <= suffix_min[:, 1:]  # a cut between positions p and p + 1
    first = tf.ones_like(cut[:, :1])
    is_start = tf.concat([first, cut], axis=1)
    is_end = tf.concat([cut, first], axis=1)
    segment = tf.cumsum(tf.cast(is_start, tf.int32), axis=1)
    start = segmented_scan(tf.where(is_start, positions, 0), None, tf.maximum, 0)
    end = segmented_scan(tf.where(is_end, positions, size), None, tf.minimum, size, reverse=True)
    return segment, start, end


def _gather(x, index):
    return tf.gather(x, index, batch_dims=1)


def _segment_total(x, segment):
    """The sum of ``x`` over each position's cluster, at every position."""
    forward = segmented_scan(x, segment, tf.add, 0.0)
    backward = segmented_scan(x, segment, tf.add, 0.0, reverse=True)
    return forward + backward - x


def leaf_series_terms(spread_bound):
    """A static cap on the terms of (S1) for clusters of spread up to ``spread_bound``."""
    return int(math.ceil(2.0 * spread_bound + 14.0 * math.sqrt(spread_bound) + 80.0))


class _Structure:
    """Sorted nodes ``w`` ([B, K], float64, w[:, 0] = 0) and their clusters."""

    def __init__(self, w, segment, start, end):
        self.w = w
        self.segment, self.start, self.end = segment, start, end
        self.size = tf.shape(w)[-1]
        self.positions = tf.broadcast_to(tf.range(self.size), tf.shape(w))
        self.is_start = tf.equal(start, self.positions)
        self.low = _gather(w, start)
        self.v = w - self.low  # nodes centred at their cluster's smallest node
        self.prefix_size = tf.cast(self.positions - start + 1, w.dtype)
        self.suffix_size = tf.cast(end - self.positions + 1, w.dtype)
        self.cluster_spread = _gather(w, end) - self.low

    # ------------------------------------------------------------------ cluster series

    def next_term(self, t, state):
        """Term t + 1 of the prefix and suffix series from term t (each scaled by the
        cluster's h_n, whose log is carried in ``state[2]``)."""
        del t
        prefix, suffix, log_scale, _ = state
        raw_prefix = segmented_scan(self.v * prefix, self.segment, tf.add, 0.0)
        raw_suffix = segmented_scan(self.v * suffix, self.segment, tf.add, 0.0, reverse=True)
        total = _gather(raw_prefix, self.end)  # h_n of the whole cluster, scaled
        scale = tf.where(total > 0, total, tf.ones_like(total))
        return [raw_prefix / scale, raw_suffix / scale, log_scale + tf.math.log(scale), scale]

    def _log_terms(self, t, state):
        prefix, suffix, log_scale, _ = state
        t_float = tf.cast(t, self.w.dtype)
        log_p = tf.math.log(prefix) + log_scale - tf.math.lgamma(t_float + self.prefix_size)
        log_s = tf.math.log(suffix) + log_scale - tf.math.lgamma(t_float + self.suffix_size)
        return log_p, log_s

    def leaves(self, max_terms):
        """log exp[x_s..x_k] (prefixes) and log exp[x_k..x_e] (suffixes) of every position's
        cluster [s, e], relative to min(x), and per-row convergence within ``max_terms``."""
        ones = tf.ones_like(self.w)
        state = [ones, ones, tf.zeros_like(self.w), ones]
        log_p, log_s = self._log_terms(0, state)
        extra = [log_p, log_s, tf.zeros_like(self.w[:, 0], tf.bool)]

        def advance(t, state, extra):
            state = self.next_term(t, state)
            term_p, term_s = self._log_terms(t + 1, state)
            acc_p = tf.experimental.numpy.logaddexp(extra[0], term_p)
            acc_s = tf.experimental.numpy.logaddexp(extra[1], term_s)
            small = (term_p - acc_p < _LOG_TOLERANCE) & (term_s - acc_s < _LOG_TOLERANCE)
            decaying = tf.cast(t + 1, self.w.dtype) > 2.0 * self.cluster_spread + 1.0
            return state, [acc_p, acc_s, tf.reduce_all(small & decaying, axis=-1)]

        def done(t, state, extra):
            return tf.reduce_all(extra[2])

        self.block = block_size(max_terms)
        self.last, _, extra, self.checkpoints = sweep_forward(
            advance, done, state, extra, max_terms, self.block
        )
        self.log_prefix, self.log_suffix, converged = extra
        return self.log_prefix + self.low, self.log_suffix + self.low, converged

    def leaves_adjoint(self, bar_prefix, bar_suffix):
        """Gradient w.r.t. w of sum(bar_prefix * log prefix + bar_suffix * log suffix)."""

        def backward(t, state, adjoint):
            prefix, suffix, log_scale, scale = state
            up_p, up_s, grad_v = adjoint  # sums over the later windows of term t + 1's adjoint
            t_float = tf.cast(t, self.w.dtype)
            direct_p = bar_prefix * tf.exp(
                log_scale - tf.math.lgamma(t_float + self.prefix_size) - self.log_prefix
            )
            direct_s = bar_suffix * tf.exp(
                log_scale - tf.math.lgamma(t_float + self.suffix_size) - self.log_suffix
            )
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

    def _level(self, m, below):
        """Windows [i, i + m - 1] from level m - 1 (``below``): the values by (T1) where the
        window spans two clusters, and the masks and factors its adjoint needs."""
        last = self.positions + m - 1
        inside = last < self.size
        last = tf.minimum(last, self.size - 1)
        cross = inside & tf.not_equal(self.segment, _gather(self.segment, last))
        upper = shift(below, 1, 0.0, reverse=True)  # window [i + 1, i + m - 1]
        width = tf.where(cross, _gather(self.w, last) - self.w, tf.ones_like(self.w))
        log_ratio = tf.where(cross, below - upper, -tf.ones_like(below))
        value = upper + tf.math.log(-tf.math.expm1(log_ratio)) - tf.math.log(width)
        is_prefix = inside & ~cross & tf.equal(_gather(self.start, last), self.positions)
        is_suffix = inside & ~cross & ~is_prefix & tf.equal(self.end, last)
        return last, cross, width, log_ratio, value, is_prefix, is_suffix

    def table_step(self, t, state):
        """Level t + 2 from level t + 1 (state[0])."""
        last, cross, _, _, value, is_prefix, is_suffix = self._level(t + 2, state[0])
        leaf = tf.where(is_prefix, _gather(self.leaf_prefix, last), self.leaf_suffix)
        return [tf.where(cross, value, tf.where(is_prefix | is_suffix, leaf, 0.0))]

    def table(self):
        """log exp[w] ([B]) and its gradient ([B, K]), with the leaves already computed."""
        levels = tf.shape(self.w)[-1]
        max_states = self.w.shape[-1]
        if max_states is None:
            raise ValueError("The number of classes (last axis of the logits) must be static.")
        block = block_size(max_states)

        def advance(t, state, extra):
            return self.table_step(t, state), extra

        last, top, _, checkpoints = sweep_forward(
            advance, lambda *_: tf.constant(False), [self.w], [], max_states, block
        )
        del last

        def backward(t, state, adjoint):
            # state: level t + 1; adjoint: that of level t + 2 (none above the top).
            upper_adjoint, grad_w, bar_p, bar_s = adjoint
            m = t + 2
            _, cross, width, log_ratio, _, is_prefix, is_suffix = self._level(m, state[0])
            through = tf.where(cross, upper_adjoint, 0.0)
            ratio = tf.exp(log_ratio)
            one_minus = -tf.math.expm1(log_ratio)
            below = -through * ratio / one_minus + shift(through / one_minus, 1, 0.0)
            inverse = through / width
            grad_w = grad_w + inverse - shift(inverse, m - 1, 0.0)
            bar_p = bar_p + shift(tf.where(is_prefix, upper_adjoint, 0.0), m - 1, 0.0)
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
        return top[0][:, 0], grad_w


def log_divided_difference_and_gradient(w, max_leaf_terms):
    """log exp[w] and d/dw for sorted float64 nodes ``w`` ([B, K], ascending, w[:, 0] = 0).

    Returns ``(value [B], gradient [B, K], ok [B])``; ``ok`` is False on rows whose clusters
    did not converge within ``max_leaf_terms`` series terms (their values are not usable).
    """
    structure = _Structure(w, *clusters(w))
    structure.leaf_prefix, structure.leaf_suffix, ok = structure.leaves(max_leaf_terms)
    value, gradient = structure.table()
    return value, gradient, ok
