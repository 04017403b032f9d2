"""Information divergences between points of the probability simplex.

Pure TensorFlow, batched over leading axes, event (class) axis last, float32 or
float64, XLA-compilable and differentiable. Equation numbers refer to Connor et al.,
"Correlations of Cross-Entropy Loss in Machine Learning", Entropy 26 (2024) 491 (the
correlations paper).

Every divergence comes in two forms:

* an *elementwise-paired* form ``f(q, p)``: ``q`` and ``p`` broadcast against each
  other over the leading axes, so ``f(q[None, :], P)`` is already the one-against-many
  form of the paper's Table 3 (one query against ``N`` others, ``[N, K]`` materialized,
  which is the size of the input);
* an *all-pairs* form ``pairwise_f(Q, P)`` for ``Q`` of shape ``[M, K]`` (or ``[K]``)
  and ``P`` of shape ``[N, K]``, returning ``[M, N]`` (or ``[N]``). Divergences that are
  bilinear in one argument (CED, KLD, EUC, COS) use one matrix product and never
  materialize ``[M, N, K]``; the others (JSD, TRI) walk over blocks of rows of ``Q`` so
  at most ``[block_size, N, K]`` exists at a time.

Normalizations (documented because the paper mixes several):

* CED and KLD use the natural logarithm, as Keras' cross-entropy does.
* JSD is eq. 4: base-2 logarithms, normalized to ``[0, 1]``; it equals
  ``scipy.spatial.distance.jensenshannon(q, p, base=2) ** 2``, and ``1/(2 ln 2)``
  times Topsøe's capacitory discrimination ``C = KL(q:m) + KL(p:m)``, ``m = (q+p)/2``.
* TRI is eq. 5: ``(1/2) Σ (q-p)²/(q+p)`` in ``[0, 1]``, half of Topsøe's triangular
  discrimination ``Δ``.
* In these normalizations Topsøe's bounds ``Δ/2 <= C <= ln 2 · Δ`` (the paper's eq. 22,
  printed there in another normalization) read ``TRI / (2 ln 2) <= JSD <= TRI``.
* ``TRI_v`` (eq. 27) is Topsøe's ``Δ_v = Σ |q-p|^{2v} / (q+p)^{2v-1}`` (so
  ``TRI_1 = 2 TRI``), and eq. 28 in this normalization reads
  ``JSD = (1 / (2 ln 2)) Σ_{v>=1} TRI_v / (2v(2v-1))``.

Ranges, and inputs off the simplex. Nothing here renormalizes its inputs.

* On the simplex, TRI and JSD lie in ``[0, 1]``: 0 exactly when ``q = p``, 1 exactly when
  their supports are disjoint.
* For non-negative inputs that do not sum to 1, the same formulas lie in
  ``[0, (Σq + Σp) / 2]``: coordinate ``i`` contributes at most ``(q_i + p_i) / 2`` to either.
  So a target that sums to 2 can give a TRI or JSD of 1.5.
* Negative entries give values without meaning (of either sign), and NaN entries give NaN.
* ``validate_args=True`` (TRI, its rewrite of eq. 23, JSD and their all-pairs forms) asserts
  that both arguments lie on the simplex: finite, non-negative, summing to 1 within
  ``SIMPLEX_ATOL``. A violation raises ``tf.errors.InvalidArgumentError`` naming the function,
  the argument (``q`` or ``p``), what is wrong and the offending rows. XLA drops assertions,
  so inside an XLA-compiled function ``validate_args=True`` raises ``ValueError`` instead.
"""

import math

import tensorflow as tf

from keras_cc.core import divergences as core_divergences
from keras_cc.core import simplex
from keras_cc.ops import _xla
from keras_cc.ops.namespace import TENSORFLOW

__all__ = [
    "cross_entropy_divergence",
    "kullback_leibler_divergence",
    "jensen_shannon_divergence",
    "triangular_divergence",
    "triangular_divergence_rewritten",
    "triangular_divergence_v",
    "jensen_shannon_series_terms",
    "jensen_shannon_series",
    "squared_euclidean_distance",
    "cosine_distance",
    "one_against_many",
    "pairwise_divergence",
    "pairwise_cross_entropy_divergence",
    "pairwise_kullback_leibler_divergence",
    "pairwise_jensen_shannon_divergence",
    "pairwise_triangular_divergence",
    "pairwise_triangular_divergence_rewritten",
    "pairwise_squared_euclidean_distance",
    "pairwise_cosine_distance",
    "DIVERGENCES",
    "PAIRWISE_DIVERGENCES",
    "SIMPLEX_ATOL",
]

SIMPLEX_ATOL = 1e-3
"""Tolerance on ``|Σ x - 1|`` when inputs are validated: float32 probabilities from a softmax
are typically within 1e-6; 1e-3 also admits rounded, stored targets."""

_LN2 = core_divergences.LN2
# Default memory budget, in elements, of one block of an all-pairs computation.
_BLOCK_ELEMENTS = 1 << 23


def _simplex_assertions(x, where, name, atol=SIMPLEX_ATOL):
    """Assertions that ``x`` (event axis last) lies on the probability simplex.

    Each violation has its own message (:func:`keras_cc.core.simplex.violation`):
    ``f"{where}: `{name}` must lie on the simplex: ..."``, followed by the first offending
    rows. Eagerly the values are checked at once and the first violation raises
    ``tf.errors.InvalidArgumentError`` with that message alone (the list returned is
    empty); in a graph the list holds one ``tf.debugging.Assert`` per condition. Sums of
    float16 or bfloat16 inputs are taken in float32. Raises ``ValueError`` inside an
    XLA-compiled function, which would drop the assertions.
    """
    if _xla.in_xla_context():
        raise ValueError(
            f"{where}: validating that `{name}` lies on the simplex cannot run inside an "
            "XLA-compiled function (XLA drops assertions). Validate the data beforehand "
            "(eagerly), or compile without XLA (jit_compile=False)."
        )
    x = tf.convert_to_tensor(x)
    if x.shape.rank == 0:
        raise ValueError(f"{where}: `{name}` needs a class (last) axis; received a scalar.")
    rows = tf.reshape(x, [-1, tf.shape(x)[-1]])
    if rows.dtype in (tf.float16, tf.bfloat16):
        rows = tf.cast(rows, tf.float32)
    if tf.executing_eagerly():
        message = simplex.violation(rows.numpy(), where, name, atol)
        if message is not None:
            raise tf.errors.InvalidArgumentError(None, None, message)
        return []
    non_finite = tf.logical_not(tf.reduce_all(tf.math.is_finite(rows), axis=-1))
    negative = tf.reduce_any(rows < 0.0, axis=-1)
    off_by = tf.abs(tf.reduce_sum(rows, axis=-1) - 1.0)
    not_summing_to_one = off_by > atol  # False for NaN sums
    prefix = f"{where}: `{name}` must lie on the simplex:"
    checks = (
        (non_finite, "it has NaN or infinite entries"),
        (negative, "it has negative entries"),
        (not_summing_to_one, f"its rows must sum to 1 (atol={atol})"),
    )
    return [
        tf.debugging.Assert(
            tf.logical_not(tf.reduce_any(bad)),
            [f"{prefix} {what}; first offending rows:", tf.boolean_mask(rows, bad)],
            summarize=8,
        )
        for bad, what in checks
    ]


def _on_simplex(x, where, name):
    """``x`` after the assertions of :func:`_simplex_assertions`."""
    with tf.control_dependencies(_simplex_assertions(x, where, name)):
        return tf.identity(x)


def _float_pair(q, p, name, broadcast=True, validate_args=False):
    """Converts ``q`` and ``p`` to tensors of one float dtype with matching event size.

    With ``validate_args``, both must lie on the simplex (see :func:`_simplex_assertions`).
    """
    p = tf.convert_to_tensor(p)
    if not p.dtype.is_floating:
        p = tf.cast(p, tf.float32)
    q = tf.convert_to_tensor(q)
    if q.dtype != p.dtype:
        q = tf.cast(q, p.dtype)
    q_size, p_size = q.shape[-1:], p.shape[-1:]
    if q.shape.rank == 0 or p.shape.rank == 0:
        raise ValueError(
            f"{name}: arguments must have an event axis (rank >= 1). "
            f"Received shapes {q.shape} and {p.shape}."
        )
    if q_size[0] is not None and p_size[0] is not None and q_size[0] != p_size[0]:
        raise ValueError(
            f"{name}: the event (last) axes of the two arguments differ: "
            f"shapes {q.shape} and {p.shape}."
        )
    if broadcast:
        try:
            tf.broadcast_static_shape(q.shape, p.shape)
        except ValueError as error:
            raise ValueError(
                f"{name}: argument shapes {q.shape} and {p.shape} do not broadcast."
            ) from error
    if validate_args:
        q, p = _on_simplex(q, name, "q"), _on_simplex(p, name, "p")
    return q, p


def cross_entropy_divergence(q, p):
    """Cross-entropy ``CED(q : p) = -Σ q_i log p_i`` (eq. 2), natural log.

    ``0 log 0`` is taken as 0; ``q_i > 0`` with ``p_i = 0`` gives ``+inf``.

    Examples:
        >>> import numpy as np, keras_cc
        >>> round(float(keras_cc.ops.cross_entropy_divergence([0.5, 0.5], [0.25, 0.75])), 4)
        0.837
        >>> # one query against many: broadcasting over the leading axis
        >>> q, P = np.array([0.5, 0.5]), np.array([[0.25, 0.75], [0.5, 0.5], [0.9, 0.1]])
        >>> print(np.round(keras_cc.ops.cross_entropy_divergence(q[None, :], P).numpy(), 4))
        [0.837  0.6931 1.204 ]
    """
    q, p = _float_pair(q, p, "cross_entropy_divergence")
    return -tf.reduce_sum(tf.math.xlogy(q, p), axis=-1)


def kullback_leibler_divergence(q, p):
    """Kullback–Leibler ``KLD(q : p) = Σ q_i log(q_i / p_i)`` (eq. 3), natural log.

    Equals ``CED(q : p) - H(q)`` (eq. 9).
    """
    q, p = _float_pair(q, p, "kullback_leibler_divergence")
    return tf.reduce_sum(tf.math.xlogy(q, q) - tf.math.xlogy(q, p), axis=-1)


def jensen_shannon_divergence(q, p, validate_args=False):
    """Jensen–Shannon divergence normalized to ``[0, 1]`` with base-2 logs (eq. 4).

    ``JSD(q, p) = 1 - (1/2) Σ h(q_i) + h(p_i) - h(q_i + p_i)``, ``h(x) = -x log2 x``,
    computed in the equivalent cancellation-free form ``C(q, p) / (2 ln 2)`` with
    ``C = KL(q : m) + KL(p : m)``, ``m = (q + p)/2`` (eqs. 10–15). Equals
    ``scipy.spatial.distance.jensenshannon(q, p, base=2) ** 2`` on the simplex.

    In ``[0, 1]`` on the simplex; in ``[0, (Σq + Σp)/2]`` for non-negative inputs off it;
    meaningless with negative entries (module docstring). ``validate_args=True`` raises
    ``InvalidArgumentError`` naming ``q`` or ``p`` when either is off the simplex.
    """
    q, p = _float_pair(q, p, "jensen_shannon_divergence", validate_args=validate_args)
    return core_divergences.jensen_shannon_divergence(TENSORFLOW, q, p)


def triangular_divergence(q, p, validate_args=False):
    """Triangular divergence ``TRI(q, p) = (1/2) Σ (q_i - p_i)² / (q_i + p_i)`` (eq. 5).

    Coordinates with ``q_i = p_i = 0`` contribute 0. In ``[0, 1]`` on the simplex; in
    ``[0, (Σq + Σp)/2]`` for non-negative inputs off it; meaningless with negative entries
    (module docstring). ``validate_args=True`` raises ``InvalidArgumentError`` naming ``q``
    or ``p`` when either is off the simplex.

    Examples:
        >>> import keras_cc
        >>> round(float(keras_cc.ops.triangular_divergence([0.0, 1.0], [0.2, 0.8])), 4)
        0.1111
    """
    q, p = _float_pair(q, p, "triangular_divergence", validate_args=validate_args)
    return core_divergences.triangular_divergence(TENSORFLOW, q, p)


def triangular_divergence_rewritten(q, p, validate_args=False):
    """The cheap rewrite of eq. 5 for points on the simplex: ``1 - Σ 2 p_i q_i/(p_i + q_i)``.

    Eq. 23. Equal to :func:`triangular_divergence` only when ``Σq = Σp = 1`` (off the simplex
    it differs from it by ``(Σq + Σp)/2 - 1``). ``validate_args=True`` raises
    ``InvalidArgumentError`` naming ``q`` or ``p`` when either is off the simplex.
    """
    q, p = _float_pair(q, p, "triangular_divergence_rewritten", validate_args=validate_args)
    return 1.0 - 2.0 * tf.reduce_sum(tf.math.divide_no_nan(q * p, q + p), axis=-1)


def _check_order(v, name):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive integer; received {v!r}.")


def triangular_divergence_v(q, p, v):
    """Topsøe's triangular divergence of order ``v``: ``Σ |q_i - p_i|^{2v} / (q_i + p_i)^{2v-1}``.

    Eq. 27 (summed over coordinates). ``v = 1`` gives ``2 · TRI`` (eq. 5). Computed as
    ``Σ s_i x_i^{2v}`` with ``s = q + p`` and ``x = (q - p)/s`` so high orders neither
    overflow nor underflow before the final product.
    """
    _check_order(v, "triangular_divergence_v: v")
    q, p = _float_pair(q, p, "triangular_divergence_v")
    s = q + p
    x2 = tf.square(tf.math.divide_no_nan(q - p, s))
    return tf.reduce_sum(s * tf.pow(x2, tf.cast(v, s.dtype)), axis=-1)


def jensen_shannon_series_terms(q, p, num_terms):
    """The terms ``TRI_v / (2v(2v-1)) / (2 ln 2)``, ``v = 1..num_terms``, of eq. 28.

    Returns shape ``[..., num_terms]``; their sum over ``v`` converges to
    :func:`jensen_shannon_divergence` (normalized, base 2). The first term is
    ``TRI / (2 ln 2)``, the lower bound of eq. 22 in this normalization.
    """
    _check_order(num_terms, "jensen_shannon_series_terms: num_terms")
    q, p = _float_pair(q, p, "jensen_shannon_series_terms")
    s = q + p
    x2 = tf.square(tf.math.divide_no_nan(q - p, s))
    orders = tf.range(1, num_terms + 1, dtype=s.dtype)
    # [..., K, num_terms]: small, num_terms is a handful.
    tri_v = tf.reduce_sum(s[..., None] * tf.pow(x2[..., None], orders), axis=-2)
    return tri_v / (2.0 * orders * (2.0 * orders - 1.0) * 2.0 * _LN2)


def jensen_shannon_series(q, p, num_terms):
    """Partial sums of eq. 28, shape ``[..., num_terms]``: the ``n``-th entry sums v = 1..n.

    Increases monotonically to :func:`jensen_shannon_divergence` as ``num_terms`` grows.
    """
    return tf.cumsum(jensen_shannon_series_terms(q, p, num_terms), axis=-1)


def squared_euclidean_distance(x, y):
    """Euclidean divergence ``EUC(x, y) = Σ (x_i - y_i)²`` (eq. 6), the squared L2 distance."""
    x, y = _float_pair(x, y, "squared_euclidean_distance")
    return tf.reduce_sum(tf.square(x - y), axis=-1)


def cosine_distance(x, y):
    """Cosine distance ``COS(u, v) = EUC(u/‖u‖₂, v/‖v‖₂) = 2 - 2 cos(u, v)`` (Section 9).

    In ``[0, 4]``. A zero vector is treated as normalized to zero (``tf.math.l2_normalize``).
    """
    x, y = _float_pair(x, y, "cosine_distance")
    return squared_euclidean_distance(
        tf.math.l2_normalize(x, axis=-1), tf.math.l2_normalize(y, axis=-1)
    )


DIVERGENCES = {
    "CED": cross_entropy_divergence,
    "KLD": kullback_leibler_divergence,
    "JSD": jensen_shannon_divergence,
    "TRI": triangular_divergence,
    "TRI23": triangular_divergence_rewritten,
    "EUC": squared_euclidean_distance,
    "COS": cosine_distance,
}
"""Elementwise-paired divergences by the names the correlations paper uses."""


def _resolve(divergence):
    if callable(divergence):
        return divergence
    try:
        return DIVERGENCES[divergence]
    except KeyError:
        raise ValueError(
            f"Unknown divergence {divergence!r}; expected a callable or one of "
            f"{sorted(DIVERGENCES)}."
        ) from None


def one_against_many(divergence, q, p):
    """``divergence(q, p_j)`` for one query ``q`` of shape ``[K]`` and ``p`` of shape ``[N, K]``.

    The paper's setting (Section 3 and Table 3): materializes ``[N, K]`` only.
    ``divergence`` is a paired function or a name in :data:`DIVERGENCES`.
    """
    fn = _resolve(divergence)
    q = tf.convert_to_tensor(q)
    p = tf.convert_to_tensor(p)
    if q.shape.rank != 1 or p.shape.rank != 2:
        raise ValueError(
            "one_against_many expects q of shape [K] and p of shape [N, K]; received "
            f"q.shape={q.shape}, p.shape={p.shape}."
        )
    return fn(q[None, :], p)


def _pairwise_operands(q, p, name, validate_args=False):
    q, p = _float_pair(q, p, name, broadcast=False, validate_args=validate_args)
    if q.shape.rank not in (1, 2) or p.shape.rank != 2:
        raise ValueError(
            f"{name} expects q of shape [M, K] or [K] and p of shape [N, K]; received "
            f"q.shape={q.shape}, p.shape={p.shape}."
        )
    squeeze = q.shape.rank == 1
    return (q[None, :] if squeeze else q), p, squeeze


def _default_block_size(p):
    n, k = p.shape
    if n is None or k is None:
        return 64
    return max(1, _BLOCK_ELEMENTS // max(1, n * k))


def pairwise_divergence(divergence, q, p, block_size=None):
    """All pairs ``divergence(q_i, p_j)``: ``[M, K]`` × ``[N, K]`` → ``[M, N]``.

    Works for any elementwise-paired divergence (a callable or a name in
    :data:`DIVERGENCES`). Rows of ``q`` are processed ``block_size`` at a time
    (default: as many as fit in about 8M elements), so at most
    ``[block_size, N, K]`` is materialized. XLA-compilable (a ``tf.map_fn`` loop).
    """
    fn = _resolve(divergence)
    q, p, squeeze = _pairwise_operands(q, p, "pairwise_divergence")
    if block_size is None:
        block_size = _default_block_size(p)
    _check_order(block_size, "pairwise_divergence: block_size")

    def block(rows):
        return fn(rows[:, None, :], p[None, :, :])

    m_static = q.shape[0]
    if m_static is not None and m_static <= block_size:
        result = block(q)
    else:
        m = tf.shape(q)[0]
        num_blocks = (m + block_size - 1) // block_size
        padded = tf.pad(q, [[0, num_blocks * block_size - m], [0, 0]])
        blocks = tf.reshape(padded, [num_blocks, block_size, tf.shape(q)[1]])
        out = tf.map_fn(block, blocks, fn_output_signature=p.dtype)
        result = tf.reshape(out, [num_blocks * block_size, tf.shape(p)[0]])[:m]
    return result[0] if squeeze else result


def pairwise_cross_entropy_divergence(q, p):
    """All pairs ``CED(q_i : p_j)`` (eq. 2) as one matrix product ``-Q · log(P)ᵀ``.

    Never materializes ``[M, N, K]``. Zeros in ``p`` are honoured exactly (``0 log 0 = 0``,
    ``q > 0`` against ``p = 0`` gives ``+inf``) at the cost of a second product, which is
    only computed when ``p`` has zeros.
    """
    q, p, squeeze = _pairwise_operands(q, p, "pairwise_cross_entropy_divergence")
    positive = p > 0
    log_p = tf.math.log(tf.where(positive, p, tf.ones_like(p)))
    finite = -tf.matmul(q, log_p, transpose_b=True)

    def with_infinities():
        hits = tf.matmul(
            tf.cast(q > 0, p.dtype), tf.cast(tf.logical_not(positive), p.dtype), transpose_b=True
        )
        return tf.where(hits > 0, tf.constant(math.inf, p.dtype), finite)

    result = tf.cond(tf.reduce_all(positive), lambda: finite, with_infinities)
    return result[0] if squeeze else result


def pairwise_kullback_leibler_divergence(q, p):
    """All pairs ``KLD(q_i : p_j) = CED(q_i : p_j) - H(q_i)`` (eqs. 3, 9) via one matrix product."""
    q, p, squeeze = _pairwise_operands(q, p, "pairwise_kullback_leibler_divergence")
    neg_entropy = tf.reduce_sum(tf.math.xlogy(q, q), axis=-1, keepdims=True)
    result = neg_entropy + pairwise_cross_entropy_divergence(q, p)
    return result[0] if squeeze else result


def _validated_pairwise(fn, q, p, block_size, validate_args, name):
    if validate_args:
        q, p = _float_pair(q, p, name, broadcast=False, validate_args=True)
    return pairwise_divergence(fn, q, p, block_size)


def pairwise_jensen_shannon_divergence(q, p, block_size=None, validate_args=False):
    """All pairs of :func:`jensen_shannon_divergence` (eq. 4), blocked over rows of ``q``.

    ``validate_args`` as in :func:`jensen_shannon_divergence`.
    """
    return _validated_pairwise(
        jensen_shannon_divergence,
        q,
        p,
        block_size,
        validate_args,
        "pairwise_jensen_shannon_divergence",
    )


def pairwise_triangular_divergence(q, p, block_size=None, validate_args=False):
    """All pairs of :func:`triangular_divergence` (eq. 5), blocked over rows of ``q``.

    ``validate_args`` as in :func:`triangular_divergence`.
    """
    return _validated_pairwise(
        triangular_divergence, q, p, block_size, validate_args, "pairwise_triangular_divergence"
    )


def pairwise_triangular_divergence_rewritten(q, p, block_size=None, validate_args=False):
    """All pairs of :func:`triangular_divergence_rewritten` (eq. 23), blocked over rows.

    ``validate_args`` as in :func:`triangular_divergence_rewritten`.
    """
    return _validated_pairwise(
        triangular_divergence_rewritten,
        q,
        p,
        block_size,
        validate_args,
        "pairwise_triangular_divergence_rewritten",
    )


def pairwise_squared_euclidean_distance(x, y):
    """All pairs ``EUC(x_i, y_j) = ‖x_i‖² + ‖y_j‖² - 2 x_i·y_j`` (eq. 6), clipped at 0.

    One matrix product. Loses relative accuracy for nearly equal rows in float32
    (cancellation); use float64 where small distances matter.
    """
    x, y, squeeze = _pairwise_operands(x, y, "pairwise_squared_euclidean_distance")
    x_sq = tf.reduce_sum(tf.square(x), axis=-1, keepdims=True)
    y_sq = tf.reduce_sum(tf.square(y), axis=-1)
    result = tf.maximum(x_sq + y_sq[None, :] - 2.0 * tf.matmul(x, y, transpose_b=True), 0.0)
    return result[0] if squeeze else result


def pairwise_cosine_distance(x, y):
    """All pairs ``COS(x_i, y_j) = 2 - 2 cos(x_i, y_j)`` (Section 9) via one matrix product."""
    x, y, squeeze = _pairwise_operands(x, y, "pairwise_cosine_distance")
    x_hat = tf.math.l2_normalize(x, axis=-1)
    y_hat = tf.math.l2_normalize(y, axis=-1)
    x_sq = tf.reduce_sum(tf.square(x_hat), axis=-1, keepdims=True)
    y_sq = tf.reduce_sum(tf.square(y_hat), axis=-1)
    result = tf.clip_by_value(
        x_sq + y_sq[None, :] - 2.0 * tf.matmul(x_hat, y_hat, transpose_b=True), 0.0, 4.0
    )
    return result[0] if squeeze else result


PAIRWISE_DIVERGENCES = {
    "CED": pairwise_cross_entropy_divergence,
    "KLD": pairwise_kullback_leibler_divergence,
    "JSD": pairwise_jensen_shannon_divergence,
    "TRI": pairwise_triangular_divergence,
    "TRI23": pairwise_triangular_divergence_rewritten,
    "EUC": pairwise_squared_euclidean_distance,
    "COS": pairwise_cosine_distance,
}
"""All-pairs forms, keyed like :data:`DIVERGENCES`."""
