"""Exact samples of the continuous-categorical distribution CC(eta) (CC paper eq. 2).

Two exact methods; each row takes the cheaper one for its logits.

**Truncated exponentials, pivoted at the top node.** Let j be a row's largest node and
lambda_k = eta_j - eta_k >= 0. On the simplex y_j = 1 - sum_{k != j} y_k, so the density
is proportional to

    exp(eta . y) = e^{eta_j} prod_{k != j} exp(-lambda_k y_k)

on the corner {y_k >= 0, sum_{k != j} y_k <= 1} of the unit cube [0, 1]^{K-1}. CC(eta) is
therefore the law of independent Z_k, each Exponential(lambda_k) truncated to [0, 1]
(uniform where lambda_k = 0), conditioned on sum_k Z_k <= 1. Drawing the Z_k by the
inverse of their distribution function, Z = -log(1 + U (e^{-lambda} - 1)) / lambda with U
uniform, and keeping the draws whose sum is at most 1 is exact; a round of draws is kept
with probability

    a(eta) = C^{-1}(eta) e^{-eta_j} / prod_{k != j} (1 - e^{-lambda_k}) / lambda_k,

which the exact log-normalizer gives. ``a`` is 1 at K = 2 (the continuous Bernoulli,
drawn by its inverse CDF), 1 / (K - 1)! for equal logits, and tends to 1 as the top node
stands apart from the rest, whatever the spread: the shape CC label smoothing and
distillation drive logits to. Draws are repeated, in one vectorized loop, until every
sample of such a row is kept.

**The Dirichlet mixture.** With w = eta - min eta >= 0, exp(w . y) = sum_n (w . y)^n / n!
expands CC(w) into Dirichlet(m + 1) components with weights prod_k w_k^{m_k} / (|m| + K -
1)!. So: n ~ P(n) proportional to h_n(w) / (n + K - 1)! (h_n the complete homogeneous
symmetric polynomial); m | n with P(m) proportional to prod_k w_k^{m_k}; y ~
Dirichlet(m + 1). No rejection step; its tables hold about q + 9 sqrt(q) + 20 terms for
the spread q = max w, so time and memory are O(K q) per row.

Rows with ``a >= ACCEPTANCE`` take the truncated exponentials (at most 1 / ACCEPTANCE
rounds per sample on average); the others take the mixture, up to a spread of
``MAX_SAMPLER_SPREAD``.
"""

import functools
import math

import tensorflow as tf

from keras_cc.core import series
from keras_cc.ops import _xla
from keras_cc.ops import continuous_categorical as cc
from keras_cc.ops.namespace import TENSORFLOW

__all__ = ["cc_sample", "log_acceptance", "sampler_methods", "ACCEPTANCE", "MAX_SAMPLER_SPREAD"]

# Rows whose truncated-exponential draws are kept with at least this probability take them.
ACCEPTANCE = 0.125
# Rounds of draws at most: a sample of a row with a >= ACCEPTANCE is still not kept after
# them with probability (1 - ACCEPTANCE)^MAX_ROUNDS < 1e-57.
MAX_ROUNDS = 1000
# Spread (max - min of the logits) above which rows that the truncated exponentials do not
# take are refused: the mixture's tables grow linearly with it.
MAX_SAMPLER_SPREAD = 1e5
# Rates below this count as 0 (the truncated exponential is uniform to within it).
_SMALL_RATE = 1e-30


def _stateless_seed(seed):
    """A [2] int32 stateless seed from None, a Python int or a [2] tensor."""
    if seed is None:
        return tf.random.uniform([2], minval=-(2**31), maxval=2**31 - 1, dtype=tf.int32)
    if isinstance(seed, int):
        return tf.constant([0, seed], tf.int32)
    return tf.cast(tf.convert_to_tensor(seed), tf.int32)


def _log_truncated_masses(rates):
    """log of (1 - e^{-lambda}) / lambda, the mass of Exponential(lambda) on [0, 1] over
    lambda, for float64 rates >= 0 (0 at lambda = 0)."""
    positive = rates > _SMALL_RATE
    safe = tf.where(positive, rates, tf.ones_like(rates))
    return tf.where(positive, tf.math.log(-tf.math.expm1(-safe)) - tf.math.log(safe), 0.0)


def log_acceptance(logits):
    """log a(eta): the log-probability that one round of truncated-exponential draws of
    [B, K] ``logits`` (float32 or float64) is kept; [B] float64.

    ``a = C^{-1}(eta) e^{-max eta} / prod_k (1 - e^{-lambda_k}) / lambda_k`` with
    ``lambda = max eta - eta`` (module docstring). Rows with a non-finite logit give NaN.
    """
    below_top = logits - tf.reduce_max(logits, axis=-1, keepdims=True)
    log_normalizer, _ = cc.NORMALIZER.forward(below_top)
    rates = -tf.cast(below_top, tf.float64)
    return log_normalizer - tf.reduce_sum(_log_truncated_masses(rates), axis=-1)


def _by_truncation(logits):
    """[B] bool: the rows of [B, K] ``logits`` that take the truncated exponentials."""
    return log_acceptance(logits) >= math.log(ACCEPTANCE)


def _truncated_exponential_draws(logits, taken, num_samples, seed):
    """[B, S, K] exact samples of the rows flagged ``taken`` (zeros elsewhere) by the
    truncated exponentials pivoted at each row's top node."""
    dtype = logits.dtype
    batch, num_classes = tf.shape(logits)[0], tf.shape(logits)[1]
    pivot = tf.one_hot(tf.argmax(logits, axis=-1), num_classes, on_value=True, off_value=False)
    rates = (tf.reduce_max(logits, axis=-1, keepdims=True) - logits)[:, None, :]  # [B, 1, K]
    uniform = rates <= _SMALL_RATE
    safe_rates = tf.where(uniform, tf.ones_like(rates), rates)
    lower_tail = tf.math.expm1(-safe_rates)  # e^{-lambda} - 1, in [-1, 0)
    others = tf.logical_not(pivot)[:, None, :]
    shape = tf.stack([batch, num_samples, num_classes])

    def draw(round_index):
        """One round for every sample: the Z_k (0 at the pivot) and whether it is kept."""
        u = tf.random.stateless_uniform(
            shape, tf.random.experimental.stateless_fold_in(seed, round_index), dtype=dtype
        )
        z = tf.where(uniform, u, -tf.math.log1p(u * lower_tail) / safe_rates)
        z = tf.where(others, z, tf.zeros_like(z))
        return z, tf.reduce_sum(z, axis=-1) <= 1.0

    def step(round_index, z, kept):
        candidate, accepted = draw(round_index)
        fresh = tf.logical_and(accepted, tf.logical_not(kept))
        return round_index + 1, tf.where(fresh[..., None], candidate, z), kept | accepted

    kept = tf.broadcast_to(tf.logical_not(taken)[:, None], shape[:2])
    _, z, kept = tf.while_loop(
        lambda round_index, _, kept: (
            (round_index < MAX_ROUNDS) & tf.logical_not(tf.reduce_all(kept))
        ),
        step,
        [tf.constant(0), tf.zeros(shape, dtype), kept],
        shape_invariants=[
            tf.TensorShape([]),
            tf.TensorShape([None] * 3),
            tf.TensorShape([None] * 2),
        ],
    )
    with tf.control_dependencies(
        [
            tf.debugging.assert_equal(
                tf.reduce_all(kept),
                True,
                message=f"cc_sample: a sample was not kept after {MAX_ROUNDS} rounds of draws.",
            )
        ]
    ):
        pivot_value = 1.0 - tf.reduce_sum(z, axis=-1, keepdims=True)
    return tf.where(pivot[:, None, :], pivot_value, z)


def _prefix_table(w):
    """Log prefix polynomials and log series terms for the Dirichlet mixture.

    Returns ``(log_prefix, log_terms)`` with ``log_prefix[b, j, k] = log h_j(w_1..w_k)``
    for k = 0..K ([B, N, K + 1]; k = 0 is the empty set) and
    ``log_terms[b, n] = log h_n(w) / (n + K - 1)!`` ([B, N]), N terms until the tail of (S1)
    is below the working precision. The recurrence is h_j^(k) = sum_{i<=k} w_i h_{j-1}^(i)
    (a cumulative sum along k), each degree normalized by its full value h_j(w).
    """
    dtype = w.dtype
    batch, num_classes = tf.shape(w)[0], tf.shape(w)[1]
    num_classes64 = tf.cast(num_classes, tf.float64)
    log_tolerance, max_terms = series.series_limits(TENSORFLOW, w)

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
    """Draws m with |m| = total and P(m) proportional to prod_k w_k^{m_k}.

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


def _dirichlet_mixture_draws(logits, taken, num_samples, seeds):
    """[B, S, K] exact samples of the rows flagged ``taken`` (others: a uniform draw) by
    the Dirichlet mixture; ``InvalidArgumentError`` if one of them spreads wider than
    ``MAX_SAMPLER_SPREAD``."""
    dtype = logits.dtype
    batch, num_classes = tf.shape(logits)[0], tf.shape(logits)[1]
    w = logits - tf.reduce_min(logits, axis=-1, keepdims=True)
    w = tf.where(taken[:, None], w, tf.zeros_like(w))
    check = tf.debugging.assert_less_equal(
        tf.reduce_max(w),
        tf.cast(MAX_SAMPLER_SPREAD, dtype),
        message=(
            f"cc_sample: a row spreads (max - min of its logits) wider than "
            f"{MAX_SAMPLER_SPREAD:g} and its top node is not far enough above the rest for "
            f"the truncated exponentials (their draws would be kept with probability < "
            f"{ACCEPTANCE:g}); the Dirichlet mixture's tables grow linearly with the spread."
        ),
    )
    with tf.control_dependencies([check]):
        w = tf.identity(w)
    log_prefix, log_terms = _prefix_table(w)
    total = tf.random.stateless_categorical(
        tf.cast(log_terms, dtype), num_samples, seeds[-1], dtype=tf.int32
    )  # [B, S]
    counts = _sample_multi_index(w, log_prefix, total, seeds)
    gammas = tf.random.stateless_gamma(
        tf.stack([batch, num_samples, num_classes]), seeds[-2], alpha=counts + 1.0, dtype=dtype
    )
    return gammas / tf.reduce_sum(gammas, axis=-1, keepdims=True)


def _sample_rows(flat, num_samples, seed):
    """[B, S, K] samples of [B, K] finite-or-not ``flat`` logits: each row by its method
    (module docstring); rows with a non-finite logit give NaN."""
    finite = tf.reduce_all(tf.math.is_finite(flat), axis=-1)
    logits = tf.where(finite[:, None], flat, tf.zeros_like(flat))
    by_truncation = _by_truncation(logits)
    by_mixture = tf.logical_not(by_truncation)
    num_classes = tf.shape(flat)[1]
    seeds = tf.random.experimental.stateless_split(seed, num_classes + 3)
    samples = _truncated_exponential_draws(logits, by_truncation, num_samples, seeds[-3])
    samples = tf.cond(
        tf.reduce_any(by_mixture),
        lambda: tf.where(
            by_mixture[:, None, None],
            _dirichlet_mixture_draws(logits, by_mixture, num_samples, seeds),
            samples,
        ),
        lambda: samples,
    )
    return tf.where(finite[:, None, None], samples, float("nan"))


@functools.cache
def _sample_rows_graph(num_classes, dtype):
    """:func:`_sample_rows` as one graph function per number of classes and dtype (traced
    once per process): eager calls run its loops as graph ops, not one Python step at a
    time, and the normalizer inside it sees a static K (all its methods)."""
    return tf.function(
        _sample_rows,
        input_signature=[
            tf.TensorSpec([None, num_classes], dtype),
            tf.TensorSpec([], tf.int32),
            tf.TensorSpec([2], tf.int32),
        ],
        autograph=False,
    )


def sampler_methods(logits):
    """Which method each row of [..., K] ``logits`` takes: [...] bool, True for the
    truncated exponentials, False for the Dirichlet mixture."""
    logits, compute_dtype = cc._as_compute_tensor(logits)
    flat, batch_shape = cc._flatten_batch(tf.cast(logits, compute_dtype))
    return tf.reshape(_by_truncation(flat), batch_shape)


@_xla.plain_python
def cc_sample(logits, sample_shape=(), seed=None):
    """Exact samples of CC(eta): truncated exponentials or a mixture of Dirichlets.

    Each row takes the cheaper exact method (module :mod:`keras_cc.ops.sampler`): rows
    whose top node stands apart from the rest (``sampler_methods``), at any spread, in
    about 1 / a rounds of uniform draws per sample (a >= ``ACCEPTANCE``); the others by the
    Dirichlet mixture of the series (S1), whose cost grows as O(K q) per row with the
    spread q = max - min of the logits. ``benchmarks/cc_numerics.py --sections sampler``
    measures samples/s by K and spread.

    Args:
      logits: [..., K] natural parameters (CC paper eq. 2).
      sample_shape: leading shape of the samples: an int, or a shape (tuple, list, 1-D
        integer array or tensor), as in TFP's ``Distribution.sample``.
      seed: None, a Python int or a stateless seed (shape-[2] integer tensor).

    Returns:
      [*sample_shape, ..., K] points on the simplex, in the dtype of ``logits`` (float32
      for integer and lower-precision logits); NaN for a row with a non-finite logit. Works
      eagerly and in graph mode (tf.function); its loop lengths depend on the data, so it
      does not compile under XLA.

    Raises:
      InvalidArgumentError: a row that the truncated exponentials do not take spreads
        wider than ``MAX_SAMPLER_SPREAD``.

    Examples:
        >>> import numpy as np, keras_cc
        >>> y = keras_cc.ops.cc_sample([[0.0, 1.0, 2.0]], sample_shape=[1000], seed=(1, 2))
        >>> y.shape
        TensorShape([1000, 1, 3])
        >>> bool(np.allclose(y.numpy().sum(-1), 1.0, atol=1e-6))
        True
    """
    logits, compute_dtype = cc._as_compute_tensor(logits)
    flat, batch_shape = cc._flatten_batch(tf.cast(logits, compute_dtype))
    flat = tf.ensure_shape(flat, [None, logits.shape[-1]])
    num_classes = tf.shape(flat)[1]
    # An int n is the shape [n], as in TFP.
    sample_shape = tf.reshape(tf.cast(tf.convert_to_tensor(sample_shape), tf.int32), [-1])
    sample_rows = _sample_rows
    if logits.shape[-1] is not None:
        sample_rows = _sample_rows_graph(logits.shape[-1], compute_dtype)
    points = sample_rows(flat, tf.reduce_prod(sample_shape), _stateless_seed(seed))
    points = tf.transpose(points, [1, 0, 2])
    shape = tf.concat([sample_shape, batch_shape, [num_classes]], 0)
    return tf.cast(tf.reshape(points, shape), logits.dtype)
