"""The CC paper's closed form (eq. 4) with a per-row error bound, in float64.

For nodes eta ([B, K], shifted so that max(eta) = 0) with pairwise differences
d_ik = eta_i - eta_k:

    C^{-1}(eta) = sum_i t_i,    t_i = e^{eta_i} / prod_{k != i} d_ik                  (eq. 4)

and, differentiating log t_i (d/d eta_k = 1/d_ik for k != i, 1 - sum_j 1/d_ij for k = i),
with R_kj = 1/d_kj (0 on the diagonal), which is antisymmetric:

    dC^{-1}/d eta_k = t_k - sum_j R_kj (t_k + t_j).                                  (G)

The terms alternate in sign and cancel when nodes are close, so the closed form alone is not
exact. Every quantity above is a product or a sum of at most 2K + 2 correctly rounded
operations on the inputs (float64 unit roundoff u), except e^{eta_i}, whose argument carries
an absolute error u |eta_i|. So the computed t_i is within (3K + |eta_i| + 4) u of t_i
relative, and the computed sums are within

    u sum_i (4K + |eta_i| + 4) |t_i| / |C^{-1}|                       (value, relative)
    u (4K + |eta_k| + 4) (|t_k| + sum_j |R_kj| (|t_k| + |t_j|)) / |C^{-1}|   (mean, absolute)

of the exact ones (first order in u; the factor 2 below covers the rest). A row is certified
when both bounds are below the tolerances; only certified rows use these values. Differences
are divided by the spread, and each t_i is a product of K - 1 balanced factors, so that
nothing leaves the range of float64 needlessly; K is at most
``MAX_CLASSES`` (beyond it the [B, K, K] differences are too large to be worth it, and rows of
many classes are rarely well separated).
"""

# Largest number of classes the closed form is tried for ([B, K, K] temporaries).
MAX_CLASSES = 128

UNIT_ROUNDOFF = 2.0**-53  # float64
# Certified error targets by the caller's dtype. float64: a tenth of the public tolerances
# (log C^{-1} 1e-10 relative to max(1, |log C^{-1}|), the mean 1e-8; README). float32:
# the CC loss log C^{-1} - y . eta is O(1) where log C^{-1} is O(spread), so log C^{-1}
# must be exact to a fraction of an O(1) value's float32 rounding (6e-8) for the loss to be
# correctly rounded, and every implementation (backend) to give the same float32 value.
TOLERANCES = {"float64": (1e-11, 1e-9), "float32": (1e-8, 1e-7)}


def log_normalizer_and_mean(xp, logits, tolerances):
    """log C^{-1}, E[y] and whether both are certified, per row of float64 ``logits``.

    Call inside ``xp.float64_scope()``.

    Args:
      xp: an array namespace (:mod:`keras_cc.core.namespace`).
      logits: [B, K] float64, finite, with a static K.
      tolerances: (value, mean) error targets, e.g. ``TOLERANCES["float32"]``.

    Returns:
      ``(value, mean, certified)``: [B] float64, [B, K] float64, [B] bool. ``value`` and
      ``mean`` are meaningful only where ``certified``.
    """
    num_classes = logits.shape[-1]
    maximum = xp.max(logits, axis=-1, keepdims=True)
    eta = logits - maximum
    spread = -xp.min(eta, axis=-1, keepdims=True)
    scale = xp.where(spread > 0, spread, xp.ones_like(spread))
    eye = xp.eye(num_classes, "float64")
    differences = (eta[:, :, None] - eta[:, None, :]) * (1.0 / scale)[:, :, None] + eye  # d / s
    reciprocals = (1.0 - eye) / differences  # R s
    # t_i s^(K-1) as a product of K - 1 factors e^{eta_i / (K - 1)} s / d_ik, so that a term
    # whose exponential underflows and whose product of differences does too gives 0, not NaN.
    root = xp.exp(eta / max(num_classes - 1, 1))
    terms = xp.prod(root[:, :, None] * reciprocals + eye, axis=-1)
    total = xp.sum(terms, axis=-1)
    # sum_j R_kj (t_k + t_j) = t_k sum_j R_kj + (R t)_k, and the same in absolute values.
    spread_r = xp.sum(reciprocals, axis=-1)
    gradient = terms - (terms * spread_r + xp.matvec(reciprocals, terms)) / scale  # (G)
    mean = gradient / total[:, None]

    factor = 2.0 * UNIT_ROUNDOFF * (4.0 * num_classes + 4.0 - eta)
    magnitude = xp.abs(terms)
    absolute_r = xp.abs(reciprocals)
    mean_magnitude = (
        magnitude
        + (magnitude * xp.sum(absolute_r, axis=-1) + xp.matvec(absolute_r, magnitude)) / scale
    )
    value_bound = xp.sum(factor * magnitude, axis=-1) / total
    mean_bound = xp.max(factor * mean_magnitude, axis=-1) / total
    value_tolerance, mean_tolerance = tolerances
    certified = (value_bound < value_tolerance) & (mean_bound < mean_tolerance)
    certified &= (total > 0) & xp.isfinite(value_bound + mean_bound)
    value = maximum[:, 0] + xp.log(total) - (num_classes - 1) * xp.log(scale[:, 0])
    return value, mean, certified
