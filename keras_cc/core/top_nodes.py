"""The closed form on a row's top nodes with a certified bound on the rest: O(K) per row.

Shift the nodes so that the largest is 0 and let T be the m largest, B the other K - m. On
the simplex, integrating first over the coordinates of T (a scaled simplex) and then over
those of B gives, for distinct nodes in T,

    C^{-1}(eta) = sum_{j in T} t_j P(S_j <= 1),     S_j = sum_{k in B} Z_jk,
    Z_jk ~ Exponential(lambda_jk), independent,   lambda_jk = eta_j - eta_k > 0,

where t_j = e^{eta_j} / prod_{k != j} (eta_j - eta_k) is the term of node j in the CC
paper's closed form (eq. 4), taken over all K nodes. Nodes of B may be tied or
arbitrarily close: they enter only through the rates. Chernoff's bound gives, for any
0 < theta < G_j = eta_j - max_{k in B} eta_k,

    P(S_j > 1) <= E_j(theta) = e^{-theta} prod_{k in B} lambda_jk / (lambda_jk - theta),

and the same argument bounds what the mean loses: E[Z_jk 1(S_j > 1)] <= E_j / (lambda_jk -
theta). So C^{-1} is the sum of the m top terms up to sum_j |t_j| E_j, and E[y] is the
closed form's gradient (:mod:`keras_cc.core.closed_form`, (G)) restricted to the top terms,

    C^{-1} E[y_k] = sum_{j in T} t_j / (eta_j - eta_k)                          (k in B)
    C^{-1} E[y_l] = t_l (1 - sum_{i != l} 1 / (eta_l - eta_i))
                    + sum_{j in T, j != l} t_j / (eta_j - eta_l)                 (l in T)

up to terms of the same order. This is the shape CC label smoothing drives logits to (one
node far above a dense cluster, where no node spacing is resolvable by the full closed
form's [B, K, K] products at K in the thousands), and any row whose top nodes stand apart.

Each t_j is a product of K - 1 differences divided by the spread, taken in chunks of
``_CHUNK`` (no chunk leaves float64's range), whose logarithms are summed pairwise; the
rounding of every step is bounded as in ``closed_form`` and added to the Chernoff terms.
A row is certified for the first m in 1..``TOP_NODES`` whose bounds on log C^{-1} and on
E[y] are below the tolerances; only certified rows use these values.
"""

import math

import numpy as np

from keras_cc.core import closed_form

# Largest number of top nodes tried: m = 1 (one isolated top node) up to this many.
TOP_NODES = 4

_CHUNK = 16  # differences per chunk product: each is at least the spread's 2^-52
# theta / G_j considered in the Chernoff bound, in increasing order (see _chernoff): near 1
# when the nearest node of B dominates, smaller when many nodes of B are close.
_THETA_FRACTIONS = (0.5, 0.8, 0.9, 0.95, 0.98)


def _pairwise_sum(xp, x):
    """The sum over the last axis of [B, n] ``x`` by pairwise (tree) addition, and the
    number of levels: rounding at most ``levels * u * sum |x|``."""
    size = x.shape[-1]
    levels = max(math.ceil(math.log2(size)), 0) if size > 1 else 0
    width = 2**levels
    if width > size:
        x = xp.concatenate([x, xp.zeros_like(x[:, : width - size])], axis=-1)
    for _ in range(levels):
        width //= 2
        x = xp.sum(xp.reshape(x, (-1, width, 2)), axis=-1)
    return x[:, 0], levels


def _log_product(xp, factors):
    """log prod |factors| over the last axis of [B, K] factors in [-1, 1], and an absolute
    bound on its rounding error from the factors' own (2u each) on."""
    num_classes = factors.shape[-1]
    chunk = min(_CHUNK, num_classes)
    padding = -num_classes % chunk  # < chunk <= K
    magnitude = xp.abs(factors)
    if padding:
        magnitude = xp.concatenate([magnitude, xp.ones_like(magnitude[:, :padding])], axis=-1)
    chunks = xp.prod(xp.reshape(magnitude, (-1, (num_classes + padding) // chunk, chunk)), -1)
    log_chunks = xp.log(chunks)
    total, levels = _pairwise_sum(xp, log_chunks)
    # Each chunk: ``chunk`` factors of relative error 2u and chunk - 1 products (u each);
    # the log adds u |log chunk|; the pairwise sum adds levels * u * sum |log chunk| (all of
    # one sign, as every factor is at most 1 in magnitude).
    per_chunk = 3.0 * chunk - 1.0
    error = closed_form.UNIT_ROUNDOFF * (
        per_chunk * chunks.shape[-1] + (levels + 1.0) * xp.abs(total)
    )
    return total, error


def log_normalizer_and_mean(xp, logits, tolerances):
    """log C^{-1}, E[y] and whether both are certified, per row of float64 ``logits``.

    Every count m of top nodes from 1 to ``TOP_NODES`` is evaluated at once (axis 1 of the
    [B, M, ...] arrays below; index j of the top nodes on the next axis) and each row keeps
    the smallest certified count. Call inside ``xp.float64_scope()``.

    Args:
      xp: an array namespace (:mod:`keras_cc.core.namespace`).
      logits: [B, K] float64, finite, with a static K >= 2.
      tolerances: (value, mean) error targets, e.g. ``closed_form.TOLERANCES["float32"]``.

    Returns:
      ``(value, mean, certified)``: [B] float64, [B, K] float64, [B] bool. ``value`` and
      ``mean`` are meaningful only where ``certified``.
    """
    u = closed_form.UNIT_ROUNDOFF
    num_classes = logits.shape[-1]
    top_count = min(TOP_NODES, num_classes - 1)
    maximum = xp.max(logits, axis=-1, keepdims=True)
    eta = logits - maximum
    spread = -xp.min(eta, axis=-1)
    scale = xp.where(spread > 0, spread, 1.0)
    top, index = xp.top_k(eta, top_count + 1)
    is_node = xp.equal(index[:, :, None], xp.arange(num_classes)[None, None, :])  # [B, M+1, K]
    own = is_node[:, :top_count]

    # Per top node j ([B, M]): log |t_j s^{K-1}|, its sign, its rounding bound (relative),
    # and the sums over i != j of 1 / (eta_j - eta_i) and of their magnitudes.
    differences = top[:, :top_count, None] - eta[:, None, :]  # [B, M, K]: eta_j - eta_k
    factors = xp.where(own, 1.0, differences / scale[:, None, None])
    log_products, product_errors = _log_product(xp, xp.reshape(factors, (-1, num_classes)))
    log_terms = top[:, :top_count] - xp.reshape(log_products, (-1, top_count))
    one = xp.ones_like(factors)
    signs = xp.prod(xp.where(factors < 0, -one, one), axis=-1)
    term_errors = xp.reshape(product_errors, (-1, top_count)) + u * xp.abs(log_terms)
    reciprocals = xp.divide_no_nan(xp.ones_like(differences), differences)  # 0 at j itself
    reciprocal_sums = xp.sum(reciprocals, axis=-1)
    reciprocal_magnitudes = xp.sum(xp.abs(reciprocals), axis=-1)

    # Axis 1 from here on: the count m of top nodes (m = 1 .. M at index m - 1).
    lower = np.tril(np.ones((top_count, top_count)))  # [m - 1, j]: node j is among the m
    member = xp.convert_to_tensor(lower > 0)[None]  # [1, M, M]
    in_top = [own[:, 0]]  # [B, K] each: the nodes among the m
    for count in range(1, top_count):
        in_top.append(xp.logical_or(in_top[-1], own[:, count]))
    in_rest = xp.logical_not(xp.concatenate([x[:, None] for x in in_top], axis=1))  # [B, M, K]
    gaps = top[:, None, :top_count] - top[:, 1:, None]  # [B, M, M]: eta_j - max of the rest
    valid = xp.logical_and(member, gaps > 0)
    log_bounds, thetas = _chernoff(xp, differences, gaps, valid, in_rest)
    bounds = xp.exp(xp.minimum(log_bounds, 0.0))

    finite_terms = xp.logical_and(member, xp.isfinite(log_terms)[:, None, :])
    finite = xp.all(xp.logical_or(xp.logical_not(member), finite_terms), axis=-1)  # [B, M]
    largest = xp.max(xp.where(finite_terms, log_terms[:, None, :], -math.inf), axis=-1)
    largest = xp.where(finite, largest, 0.0)
    shifted = xp.where(finite_terms, log_terms[:, None, :] - largest[:, :, None], 0.0)
    magnitudes = xp.where(finite_terms, xp.exp(shifted), 0.0)  # |t_j| relative, [B, M, M]
    signed = signs[:, None, :] * magnitudes
    total = xp.sum(signed, axis=-1)
    counts = xp.convert_to_tensor(np.arange(1.0, top_count + 1.0))[None, :, None]
    # exp of a rounded argument, then a sum of m terms; a factor 2 covers second-order terms.
    errors = 2.0 * (term_errors[:, None, :] + u * (xp.abs(shifted) + counts + 3.0))
    positive = total > 0
    safe_total = xp.where(positive, total, 1.0)
    # Rounding of the nodes themselves (u |eta_k| each) moves log C^{-1} by at most u spread.
    value_bound = (
        xp.sum(magnitudes * (errors + bounds), axis=-1) / safe_total + 2.0 * u * spread[:, None]
    )

    # The smallest count whose value is certified; E[y] is computed and checked there only.
    value_tolerance, mean_tolerance = tolerances
    passes = xp.logical_and(xp.logical_and(finite, positive), value_bound < value_tolerance)
    chosen, taken = [passes[:, 0]], passes[:, 0]
    for count in range(1, top_count):
        chosen.append(xp.logical_and(passes[:, count], xp.logical_not(taken)))
        taken = xp.logical_or(taken, chosen[-1])

    def pick(x):
        """[B, M, ...] at each row's chosen count (the first where none is)."""
        kept = x[:, 0]
        for count in range(1, top_count):
            row_shape = (-1,) + (1,) * (len(kept.shape) - 1)
            kept = xp.where(xp.reshape(chosen[count], row_shape), x[:, count], kept)
        return kept

    in_rest = pick(in_rest)[:, None, :]  # [B, 1, K]
    member = pick(xp.logical_or(member, xp.zeros_like(gaps) > 1.0))  # [B, M]
    magnitudes, signed, errors = pick(magnitudes), pick(signed), pick(errors)
    bounds, thetas = pick(bounds), pick(thetas)
    values = pick(largest + xp.log(safe_total))
    value_bound, safe_total = pick(value_bound), pick(safe_total)
    count = xp.sum(xp.cast(member, "float64"), axis=-1, keepdims=True)  # [B, 1]

    # C^{-1} E[y] and its error bound ([B, K]), first for the nodes of the rest ...
    rates = xp.where(in_rest, differences, 1.0)  # [B, M, K]
    margins = xp.where(in_rest, rates - thetas[..., None], 1.0)
    used = xp.logical_and(in_rest, member[..., None])
    numerator = xp.sum(xp.where(used, signed[..., None] / rates, 0.0), axis=1)
    term_bounds = magnitudes * (errors + (count + 3.0) * u)
    numerator_error = xp.sum(
        xp.where(
            used,
            term_bounds[..., None] / rates + (magnitudes * bounds)[..., None] / margins,
            0.0,
        ),
        axis=1,
    )
    # ... then for the top nodes themselves ([B, M]: top node l; pairs [B, l, j]).
    pairwise = top[:, None, :top_count] - top[:, :top_count, None]  # eta_j - eta_l
    inverse = xp.divide_no_nan(xp.ones_like(pairwise), pairwise)  # 0 for l itself
    within = -xp.sum(xp.where(member[:, None, :], inverse, 0.0), axis=-1)
    cross = xp.sum(signed[:, None, :] * inverse, axis=-1)
    cross_error = xp.sum((term_bounds + magnitudes * bounds)[:, None, :] * xp.abs(inverse), axis=-1)
    rest_margins = xp.sum(xp.where(used, 1.0 / margins, 0.0), axis=-1)
    top_numerator = signed * (1.0 - reciprocal_sums) + cross
    top_error = cross_error + magnitudes * (
        (1.0 + reciprocal_magnitudes) * (errors + (num_classes + 3.0) * u)
        + bounds * (xp.abs(1.0 - within) + rest_margins)
    )
    placed = xp.logical_and(own, member[..., None])  # [B, M, K]
    numerator += xp.sum(xp.where(placed, top_numerator[..., None], 0.0), axis=1)
    numerator_error += xp.sum(xp.where(placed, top_error[..., None], 0.0), axis=1)

    mean = numerator / safe_total[:, None]
    # Dividing by the total adds its relative error; the nodes' rounding moves E[y] by at
    # most 2u spread (|Cov[y] delta eta| <= 2 E[y] u spread).
    mean_bound = (
        xp.max(2.0 * numerator_error / safe_total[:, None] + xp.abs(mean) * value_bound[:, None],
               axis=-1)
        + 2.0 * u * spread
    )  # fmt: skip
    certified = xp.logical_and(pick(passes), mean_bound < mean_tolerance)
    certified = xp.logical_and(certified, xp.isfinite(mean_bound))
    value = values + maximum[:, 0] - (num_classes - 1) * xp.log(scale)
    return value, mean, certified


def _chernoff(xp, differences, gaps, valid, in_rest):
    """log E_j(theta) at a near-optimal theta, and that theta ([B, M, M] each).

    log E_j is convex in theta with derivative phi(theta) = sum_B 1 / (lambda_k - theta) - 1,
    so it decreases up to the root of phi. Of the candidates ``_THETA_FRACTIONS`` x G_j,
    the largest with phi <= 0 is taken (phi costs divisions only; the bound, one log1p per
    node, is evaluated there alone). Any theta in (0, G_j) gives a valid bound.

    ``differences`` [B, M, K]: eta_j - eta_k; ``gaps`` [B, M, M]: G_j for each count;
    ``valid`` where j is a top node with G_j > 0; ``in_rest`` [B, M, K]: the nodes of B for
    each count. One count per loop step (one compiled body, not one per count), with every
    top node j on its axis and those beyond the count masked, so that no temporary is
    larger than [B, M, K].
    """
    top_count = gaps.shape[-1]
    positions = xp.arange(top_count)  # the counts' indices, and the top nodes' j

    def step(count, bounds, thetas):
        select = xp.equal(positions, count)  # [M]: this count's slot on axis 1
        rest = xp.any(xp.logical_and(in_rest, select[None, :, None]), axis=1)[:, None, :]
        gap = xp.sum(xp.where(select[None, :, None], gaps, 0.0), axis=1)  # [B, M]
        usable = xp.any(xp.logical_and(valid, select[None, :, None]), axis=1)
        rates = xp.where(rest, differences, 1.0)  # [B, M, K]
        safe_gaps = xp.where(usable, gap, 1.0)
        theta = _THETA_FRACTIONS[0] * safe_gaps
        for fraction in _THETA_FRACTIONS[1:]:
            candidate = fraction * safe_gaps
            slope = xp.sum(xp.where(rest, 1.0 / (rates - candidate[..., None]), 0.0), axis=-1)
            theta = xp.where(slope <= 1.0, candidate, theta)
        terms = xp.where(rest, -xp.log1p(-theta[..., None] / rates), 0.0)
        # Top nodes beyond the count are not members: no bound (0, masked by ``valid``).
        member = (positions <= count)[None, :]
        bound = xp.where(member, xp.sum(terms, axis=-1) - theta, 0.0)
        theta = xp.where(member, theta, 0.0)
        slot = select[None, :, None]
        return (
            count + 1,
            xp.where(slot, bound[:, None, :], bounds),
            xp.where(slot, theta[:, None, :], thetas),
        )

    start = xp.convert_to_tensor(0, dtype="int32")
    zeros = xp.zeros_like(gaps)
    _, bound, thetas = xp.while_loop(
        lambda count, *unused: count < top_count, step, (start, zeros, zeros)
    )
    return xp.where(valid, bound, math.inf), thetas
