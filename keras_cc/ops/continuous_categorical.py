"""Pure-TensorFlow numerics of the continuous-categorical (CC) distribution.

For natural parameters (logits) eta in R^K the CC density on the simplex is
``p(y) = exp(eta . y) / C^{-1}(eta)`` (CC paper eqs. 2-3), with the log-normalizer
log C^{-1}(eta) = log exp[eta_1, ..., eta_K], the divided difference of ``exp`` at the
nodes eta. The math of the log-normalizer, its mean and covariance is written once, on an
array namespace, in :mod:`keras_cc.core` (the positive series (S1) with its moments (M1,
M2) in ``core.series``, the certified closed form in ``core.closed_form``, the choice among
them and the exact gradient in ``core.log_normalizer``); here it runs on TensorFlow, with
the divided-difference table (``_divided_difference_table``) for wide spreads and XLA
clusters of its own outside compiled functions. The exact sampler lives here.
"""

import functools

import tensorflow as tf

from keras_cc.core import blocks, log_normalizer, series
from keras_cc.core.log_normalizer import (
    CLOSED_FORM_SPREAD_PER_CLASS,
    METHODS,
    TABLE_SPREAD_PER_CLASS,
)
from keras_cc.ops import _divided_difference_table, _xla
from keras_cc.ops.namespace import TENSORFLOW

__all__ = [
    "cc_closed_form_failure",
    "cc_closed_form_log_normalizer",
    "cc_covariance",
    "cc_entropy",
    "cc_kl_divergence",
    "cc_log_normalizer",
    "cc_log_prob",
    "cc_mean",
    "cc_variance",
    "CLOSED_FORM_SPREAD_PER_CLASS",
    "METHODS",
    "TABLE_SPREAD_PER_CLASS",
]

# Inputs of lower precision are computed in float32.
_COMPUTE_DTYPES = (tf.float32, tf.float64)


def _compute_dtype(dtype):
    return dtype if dtype in _COMPUTE_DTYPES else tf.float32


def _flatten_batch(x):
    """[..., K] -> ([B, K], batch shape)."""
    batch_shape = tf.shape(x)[:-1]
    return tf.reshape(x, [-1, tf.shape(x)[-1]]), batch_shape


def _unflatten_batch(x, batch_shape, event_shape=()):
    return tf.reshape(x, tf.concat([batch_shape, tf.constant(event_shape, tf.int32)], 0))


def _positive_series(w, second_moment=False):
    """:func:`keras_cc.core.series.positive_series` on TensorFlow."""
    return series.positive_series(TENSORFLOW, w, second_moment)


def _centered(logits):
    """Splits logits [B, K] into their row minimum and the non-negative nodes w."""
    minimum = tf.reduce_min(logits, axis=-1)
    return minimum, logits - minimum[:, None]


def _table_terms(num_classes):
    """Static cap on the cluster series' terms: a cluster's spread is below 2K."""
    return _divided_difference_table.leaf_series_terms(2.0 * num_classes)


# Logits per call of the table. Its adjoint checkpoints take O(sqrt(K)) KiB per logit (3 at
# K = 10, 8 at K = 1000, under XLA, where they are allocated whether or not a row takes the
# table), so at most this many (about 256 MiB) go through it at once, and the wide rows of
# larger batches are taken in chunks of 2^15 / K rows.
_TABLE_LOGITS = 2**15


def _table_rows(w, wide):
    """The table on the rows flagged ``wide`` of non-negative float64 nodes ``w`` ([B, K]).

    Returns ``(value, gradient, rows, steps)``: log exp[w] and its gradient on ``rows`` (the
    wide rows whose clusters converged), and the sequential steps taken. A batch with more
    than ``_TABLE_LOGITS`` logits is gathered into chunks of wide rows first, one chunk at a
    time, so that the table's memory stays bounded whatever the batch size.
    """
    rows = max(1, _TABLE_LOGITS // w.shape[-1])
    if w.shape[0] is not None and w.shape[0] <= rows:
        return _table_on_rows(w, wide)
    empty = [tf.zeros_like(w[:, 0]), tf.zeros_like(w), tf.zeros_like(wide), tf.constant(0)]
    return tuple(blocks.on_rows(TENSORFLOW, _table_on_rows, wide, [w, wide], empty, rows))


def _table_on_rows(w, wide):
    """:func:`_table_rows` on all rows at once."""
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


# The arguments of each method run as an XLA cluster: [B, K] tensors of the given dtype,
# [B] for bool.
_CLUSTER_ARGUMENTS = {
    "series": (log_normalizer.series_rows, [tf.float64, tf.bool, tf.bool]),
    "certified": (log_normalizer.certified_rows, [tf.float64, tf.bool]),
    "table": (_table_rows, [tf.float64, tf.bool]),
}


@functools.cache
def _cluster(method, num_classes, dtype):
    """The method named ``method`` (``_CLUSTER_ARGUMENTS``) on [B, num_classes] tensors, to
    the tolerances of ``dtype``, as its own XLA cluster: one kernel launch per call in
    eager mode and in graphs that are not compiled. The number of classes stays static
    (the table needs it); the batch size does not. Compiled on first use."""
    function, arguments = _CLUSTER_ARGUMENTS[method]
    signature = [
        tf.TensorSpec([None, num_classes] if d != tf.bool else [None], d) for d in arguments
    ]
    if method != "table":
        function = functools.partial(function, TENSORFLOW, dtype=dtype.name)
    return tf.function(function, jit_compile=True, autograph=False, input_signature=signature)


class TensorFlowLogNormalizer(log_normalizer.LogNormalizer):
    """:class:`keras_cc.core.log_normalizer.LogNormalizer` on TensorFlow.

    Outside XLA (eager mode, graphs that are not compiled), :meth:`forward` is one call of
    a graph function traced once per process for each K and dtype (:func:`_dispatcher`):
    eager calls run it as a single op, and every model that traces a loss adds one call to
    it instead of tracing the methods again. In it every method runs as an XLA cluster of
    its own (:func:`_cluster`), each compiled only once a batch needs it, and wide rows
    have the divided-difference table (:mod:`keras_cc.ops._divided_difference_table`,
    whose steps count 3 x (cluster-series terms + K - 1 levels): forward, replay, adjoint).

    Inside a function that XLA compiles as a whole, and in graphs of unknown K, the core's
    methods are inlined into it (:attr:`inlined`): every method there is compiled with it
    whether a batch needs it or not, so the table, whose loops take most of that compile
    time (about 9 of 14 s at K = 10 on 2 CPU cores), and the top-node closed form (a third
    of the kernels of loss + gradient) are left out; their rows take the series.
    """

    has_table = True

    def __init__(self):
        super().__init__(TENSORFLOW)
        self.inlined = log_normalizer.LogNormalizer(TENSORFLOW, top_nodes_form=False)

    def series_rows(self, nodes64, lifted, rows, dtype):
        return _cluster("series", nodes64.shape[-1], tf.as_dtype(dtype))(nodes64, lifted, rows)

    def certified_rows(self, nodes64, tried, dtype):
        return _cluster("certified", nodes64.shape[-1], tf.as_dtype(dtype))(nodes64, tried)

    def table_rows(self, w64, wide):
        return _cluster("table", w64.shape[-1], tf.float64)(w64, wide)

    def value_and_mean(self, logits):
        if logits.shape[-1] is None:
            return self.inlined.value_and_mean(logits)
        return super().value_and_mean(logits)

    @_xla.plain_python
    def forward(self, logits):
        logits = tf.stop_gradient(logits)
        if _xla.in_xla_context() or logits.shape[-1] is None:
            return self.inlined.value_and_mean(logits)[:2]
        return _dispatcher(logits.shape[-1], logits.dtype)(logits)


NORMALIZER = TensorFlowLogNormalizer()


@functools.cache
def _dispatcher(num_classes, dtype):
    """:meth:`TensorFlowLogNormalizer.value_and_mean` on [B, num_classes] ``dtype`` logits
    as one graph function, traced once per process (:class:`TensorFlowLogNormalizer`)."""
    return tf.function(
        lambda logits: NORMALIZER.value_and_mean(logits)[:2],
        input_signature=[tf.TensorSpec([None, num_classes], dtype)],
        autograph=False,
    )


def _steps_and_methods(logits):
    """(sequential steps, each row's method index, batch shape) of one call on ``logits``."""
    logits, compute_dtype = _as_compute_tensor(logits)
    flat, batch_shape = _flatten_batch(tf.cast(logits, compute_dtype))
    _, _, steps, method = NORMALIZER.value_and_mean(flat)
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


def _as_compute_tensor(logits, name="logits"):
    logits = tf.convert_to_tensor(logits, name=name)
    if not logits.dtype.is_floating:
        logits = tf.cast(logits, tf.float32)
    return logits, _compute_dtype(logits.dtype)


@_xla.plain_python
def cc_log_normalizer(logits):
    """log C^{-1}(eta) = log of the integral of exp(eta . y) over the simplex (CC paper eq. 3).

    Exact for any number of classes K and any spread, including near-uniform and sparse
    parameters: each row takes the cheapest exact method (the certified closed form on all
    nodes or on the top nodes, the divided-difference table, or the cancellation-free
    series (S1); :meth:`keras_cc.core.log_normalizer.LogNormalizer.value_and_mean`). The
    gradient is the mean E[y] (computed in the same pass, so no loop tape is stored).
    Shift-invariant up to the shift: f(eta + c) = f(eta) + c.

    Args:
      logits: [..., K] floating tensor of natural parameters (log-probabilities or logits).

    Returns:
      [...] tensor of the input's dtype.

    Examples:
        >>> import numpy as np, keras_cc
        >>> value = keras_cc.ops.cc_log_normalizer([[0.0, 1.0, 2.0], [0.0, 0.0, 0.0]])
        >>> print(np.round(value.numpy(), 4))  # the second row: log(1 / 2!) for K = 3
        [ 0.3895 -0.6931]
    """
    logits, compute_dtype = _as_compute_tensor(logits)
    flat, batch_shape = _flatten_batch(tf.cast(logits, compute_dtype))
    value = NORMALIZER.log_normalizer(flat)
    return tf.cast(_unflatten_batch(value, batch_shape), logits.dtype)


@_xla.plain_python
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


@_xla.plain_python
def cc_mean(logits):
    """E[y] of CC(eta), the gradient of log C^{-1} (``keras_cc.core.series``, M1): [..., K].

    Examples:
        >>> import numpy as np, keras_cc
        >>> print(np.round(keras_cc.ops.cc_mean([[0.0, 1.0, 2.0]]).numpy(), 4))
        [[0.2567 0.3226 0.4207]]
    """
    logits, compute_dtype = _as_compute_tensor(logits)
    flat, batch_shape = _flatten_batch(tf.cast(logits, compute_dtype))
    mean = NORMALIZER.mean(flat)
    return tf.cast(tf.reshape(mean, tf.shape(logits)), logits.dtype)


def _wide_rows(w):
    """[B] bool: rows of non-negative nodes ``w`` wider than the table's threshold, whose
    second moments come from derivatives of the exact mean, not the series (M2)."""
    num_classes = tf.shape(w)[-1]
    return tf.reduce_max(w, axis=-1) > TABLE_SPREAD_PER_CLASS * tf.cast(num_classes - 1, w.dtype)


def _along_each_class(flat, wide, moments, keep):
    """``moments`` ([B, K] or [B, K, K]) with Cov[y] e_k, the derivative of the exact mean
    along class k (:meth:`NORMALIZER.covariance_vector_product`), put in by
    ``keep(k, moments, product)`` on the ``wide`` rows, for each class k in turn (K calls);
    run only when a row is wide."""
    num_classes = tf.shape(flat)[-1]

    def component(k, moments):
        direction = tf.one_hot(tf.fill(tf.shape(flat)[:1], k), num_classes, dtype=flat.dtype)
        return k + 1, keep(k, moments, NORMALIZER.covariance_vector_product(flat, direction))

    def loop():
        return tf.while_loop(lambda k, _: k < num_classes, component, [0, moments])[1]

    return tf.cond(tf.reduce_any(wide), loop, lambda: moments)


@_xla.plain_python
def cc_covariance(logits):
    """Cov[y] of CC(eta) = Hessian of log C^{-1}, from E[y y^T] (series M2) minus E[y]E[y]^T.

    Rows wider than the table's threshold take the derivative of the exact mean along each
    class in turn (:meth:`NORMALIZER.covariance_vector_product`, K calls), as in
    :func:`cc_variance`.

    Args:
      logits: [..., K] natural parameters.

    Returns:
      [..., K, K] tensor of the input's dtype; NaN on rows with a non-finite logit.
    """
    logits, compute_dtype = _as_compute_tensor(logits)
    flat, batch_shape = _flatten_batch(tf.cast(logits, compute_dtype))
    _, w = _centered(flat)
    wide = _wide_rows(w)
    _, mean, second, _ = _positive_series(
        tf.where(wide[:, None], tf.zeros_like(w), w), second_moment="full"
    )
    covariance = second - mean[:, :, None] * mean[:, None, :]
    classes = tf.range(tf.shape(flat)[-1])

    def keep(k, covariance, product):  # Cov e_k is row k too (Cov is symmetric)
        at_k = wide[:, None, None] & (classes == k)[None, :, None]
        return tf.where(at_k, product[:, None, :], covariance)

    covariance = _along_each_class(flat, wide, covariance, keep)
    num_classes = tf.shape(logits)[-1]
    shape = tf.concat([batch_shape, [num_classes, num_classes]], 0)
    return tf.cast(tf.reshape(covariance, shape), logits.dtype)


@_xla.plain_python
def cc_variance(logits):
    """Var[y_k] of CC(eta), the diagonal of :func:`cc_covariance` in O(K) memory.

    E[y_k^2] = 2 exp[eta, eta_k, eta_k] / exp[eta] by the series (S1) with node k tripled
    (the diagonal of M2). Rows wider than the table's threshold take the derivative of the
    exact mean along each class in turn (:meth:`NORMALIZER.covariance_vector_product`, K
    calls).

    Args:
      logits: [..., K] natural parameters.

    Returns:
      [..., K] tensor of the input's dtype; NaN on rows with a non-finite logit.
    """
    logits, compute_dtype = _as_compute_tensor(logits)
    flat, batch_shape = _flatten_batch(tf.cast(logits, compute_dtype))
    _, w = _centered(flat)
    wide = _wide_rows(w)
    _, mean, second, _ = _positive_series(
        tf.where(wide[:, None], tf.zeros_like(w), w), second_moment="diagonal"
    )
    variance = second - tf.square(mean)
    classes = tf.range(tf.shape(flat)[-1])

    def keep(k, variance, product):
        return tf.where(wide[:, None] & (classes == k)[None, :], product, variance)

    variance = _along_each_class(flat, wide, variance, keep)
    return tf.cast(tf.reshape(variance, tf.shape(logits)), logits.dtype)


def _centered_at_maximum(logits):
    """Logits in float64 minus their row maximum: entropies and divergences built from them
    subtract no large numbers (shift invariance of the CC log-density)."""
    eta = tf.cast(logits, tf.float64)
    return eta - tf.reduce_max(eta, axis=-1, keepdims=True)


@_xla.plain_python
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


@_xla.plain_python
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


@_xla.plain_python
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


@_xla.plain_python
def cc_closed_form_failure(logits, rtol=1e-3):
    """True where eq. 4 in the input's precision is non-finite or off by more than rtol.

    The error is measured against :func:`cc_log_normalizer`, relative to max(1, |log C^{-1}|).
    """
    logits = tf.convert_to_tensor(logits, name="logits")
    closed = cc_closed_form_log_normalizer(logits)
    exact = cc_log_normalizer(logits)
    error = tf.abs(closed - exact) / tf.maximum(tf.ones_like(exact), tf.abs(exact))
    return tf.logical_or(tf.logical_not(tf.math.is_finite(closed)), error > rtol)
