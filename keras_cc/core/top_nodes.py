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

# Largest number of top nodes tried: m = 1 (one isolated top node) up to this many.
TOP_NODES = 4

_UNIT_ROUNDOFF = 2.0**-53
_CHUNK = 16  # differences per chunk product: each is at least the spread's 2^-52
# theta / G_j tried in the Chernoff bound (the best is kept); G_j - 1 is optimal when the
# nearest node of B dominates the product, a smaller fraction when many nodes are close.
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
    error = _UNIT_ROUNDOFF * (per_chunk * chunks.shape[-1] + (levels + 1.0) * xp.abs(total))
    return total, error


def _chernoff(xp, top_j, gap, eta, in_rest):
    """min over theta of log E_j(theta) for one top node j: (log bound, theta), [B] each.

    ``top_j`` [B, 1] the node, ``gap`` [B] its distance G_j to the rest, ``eta`` [B, K] all
    nodes and ``in_rest`` [B, K] the nodes of B.
    """
    rates = xp.where(in_rest, top_j - eta, 1.0)
    valid = gap > 0
    best, best_theta = None, None
    for fraction in _THETA_FRACTIONS:
        theta = fraction * xp.where(valid, gap, 1.0)
        terms = xp.where(in_rest, -xp.log1p(-theta[:, None] / rates), 0.0)
        bound = xp.sum(terms, axis=-1) - theta
        if best is None:
            best, best_theta = bound, theta
        else:
            better = bound < best
            best = xp.where(better, bound, best)
            best_theta = xp.where(better, theta, best_theta)
    return xp.where(valid, best, math.inf), best_theta


def log_normalizer_and_mean(xp, logits, tolerances):
    """log C^{-1}, E[y] and whether both are certified, per row of float64 ``logits``.

    Call inside ``xp.float64_scope()``.

    Args:
      xp: an array namespace (:mod:`keras_cc.core.namespace`).
      logits: [B, K] float64, finite, with a static K >= 2.
      tolerances: (value, mean) error targets, e.g. ``closed_form.TOLERANCES["float32"]``.

    Returns:
      ``(value, mean, certified)``: [B] float64, [B, K] float64, [B] bool. ``value`` and
      ``mean`` are meaningful only where ``certified``.
    """
    u = _UNIT_ROUNDOFF
    num_classes = logits.shape[-1]
    top_count = min(TOP_NODES, num_classes - 1)
    maximum = xp.max(logits, axis=-1, keepdims=True)
    eta = logits - maximum
    spread = -xp.min(eta, axis=-1)
    scale = xp.where(spread > 0, spread, 1.0)[:, None]
    top, index = xp.top_k(eta, top_count + 1)
    positions = xp.arange(num_classes)[None, :]
    is_node = [xp.equal(index[:, i : i + 1], positions) for i in range(top_count + 1)]

    # Per top node j: log |t_j s^{K-1}|, its sign, its rounding bound (relative), and the
    # sums over i != j of 1 / (eta_j - eta_i) and of their magnitudes.
    log_terms, signs, term_errors, reciprocal_sums, reciprocal_magnitudes = [], [], [], [], []
    for j in range(top_count):
        node = top[:, j : j + 1]
        factors = xp.where(is_node[j], 1.0, (node - eta) / scale)
        log_product, product_error = _log_product(xp, factors)
        log_term = node[:, 0] - log_product
        log_terms.append(log_term)
        one = xp.ones_like(factors)
        signs.append(xp.prod(xp.where(factors < 0, -one, one), axis=-1))
        term_errors.append(product_error + u * xp.abs(log_term))
        reciprocals = xp.where(is_node[j], 0.0, 1.0 / xp.where(is_node[j], 1.0, node - eta))
        reciprocal_sums.append(xp.sum(reciprocals, axis=-1))
        reciprocal_magnitudes.append(xp.sum(xp.abs(reciprocals), axis=-1))

    value = xp.zeros_like(spread)
    mean = xp.zeros_like(eta)
    certified = xp.zeros_like(spread) > 1.0
    for count in range(top_count, 0, -1):  # the smallest certified count is kept
        value_m, mean_m, certified_m = _with_top_nodes(
            xp,
            eta,
            top,
            is_node,
            count,
            log_terms[:count],
            signs[:count],
            term_errors[:count],
            reciprocal_sums[:count],
            reciprocal_magnitudes[:count],
            spread,
            tolerances,
        )
        value = xp.where(certified_m, value_m, value)
        mean = xp.where(certified_m[:, None], mean_m, mean)
        certified = xp.logical_or(certified, certified_m)
    value = value + maximum[:, 0] - (num_classes - 1) * xp.log(scale[:, 0])
    return value, mean, certified


def _with_top_nodes(
    xp,
    eta,
    top,
    is_node,
    count,
    log_terms,
    signs,
    term_errors,
    reciprocal_sums,
    reciprocal_magnitudes,
    spread,
    tolerances,
):
    """log C^{-1} (in units of s^{-(K-1)}, the maximum removed), E[y] and whether they are
    certified, with T the ``count`` top nodes."""
    u = _UNIT_ROUNDOFF
    num_classes = eta.shape[-1]
    in_top = is_node[0]
    for i in range(1, count):
        in_top = xp.logical_or(in_top, is_node[i])
    in_rest = xp.logical_not(in_top)
    finite = xp.isfinite(log_terms[0])
    largest = log_terms[0]
    for log_term in log_terms[1:]:
        finite = xp.logical_and(finite, xp.isfinite(log_term))
        largest = xp.maximum(largest, log_term)
    largest = xp.where(finite, largest, 0.0)

    magnitudes, errors, bounds, thetas = [], [], [], []
    total = xp.zeros_like(largest)
    for j in range(count):
        shifted = xp.where(finite, log_terms[j] - largest, 0.0)
        magnitude = xp.exp(shifted)
        magnitudes.append(magnitude)
        total = total + signs[j] * magnitude
        # exp of a rounded argument, then a sum of ``count`` terms; a factor 2 covers the
        # second-order terms.
        errors.append(2.0 * (term_errors[j] + u * (xp.abs(shifted) + count + 3.0)))
        log_bound, theta = _chernoff(xp, top[:, j : j + 1], top[:, j] - top[:, count], eta, in_rest)
        bounds.append(xp.exp(xp.minimum(log_bound, 0.0)))
        thetas.append(theta)

    value_error = xp.zeros_like(total)
    for j in range(count):
        value_error = value_error + magnitudes[j] * (errors[j] + bounds[j])
    positive = total > 0
    safe_total = xp.where(positive, total, 1.0)
    # Rounding of the nodes themselves (u |eta_k| each) moves log C^{-1} by at most u spread.
    value_bound = value_error / safe_total + 2.0 * u * spread

    # C^{-1} E[y] and its error bound, node by node: first as if every node were in B.
    numerator = xp.zeros_like(eta)
    numerator_error = xp.zeros_like(eta)
    for j in range(count):
        rates = top[:, j : j + 1] - eta
        safe_rates = xp.where(in_rest, rates, 1.0)
        margin = xp.where(in_rest, safe_rates - thetas[j][:, None], 1.0)
        numerator = numerator + xp.where(
            in_rest, signs[j][:, None] * magnitudes[j][:, None] / safe_rates, 0.0
        )
        numerator_error = numerator_error + xp.where(
            in_rest,
            magnitudes[j][:, None]
            * ((errors[j][:, None] + (count + 3.0) * u) / safe_rates + bounds[j][:, None] / margin),
            0.0,
        )
    # Then the top nodes themselves.
    for own_node in range(count):
        within = xp.zeros_like(total)  # sum over top nodes i != own_node of 1 / (eta_own - eta_i)
        cross = xp.zeros_like(total)
        cross_error = xp.zeros_like(total)
        for j in range(count):
            if j == own_node:
                continue
            difference = top[:, j] - top[:, own_node]
            safe = xp.where(difference != 0, difference, 1.0)
            within = within - 1.0 / safe
            cross = cross + signs[j] * magnitudes[j] / safe
            cross_error = cross_error + magnitudes[j] * (
                errors[j] + (count + 3.0) * u + bounds[j]
            ) / xp.abs(safe)
        rest_rates = xp.where(in_rest, top[:, own_node : own_node + 1] - eta, 1.0)
        rest_margins = xp.sum(
            xp.where(in_rest, 1.0 / (rest_rates - thetas[own_node][:, None]), 0.0), axis=-1
        )
        own = signs[own_node] * magnitudes[own_node] * (1.0 - reciprocal_sums[own_node])
        own_error = magnitudes[own_node] * (
            (1.0 + reciprocal_magnitudes[own_node]) * (errors[own_node] + (num_classes + 3.0) * u)
            + bounds[own_node] * (xp.abs(1.0 - within) + rest_margins)
        )
        numerator = xp.where(is_node[own_node], (own + cross)[:, None], numerator)
        numerator_error = xp.where(
            is_node[own_node], (own_error + cross_error)[:, None], numerator_error
        )

    mean = numerator / safe_total[:, None]
    # Dividing by the total adds its relative error; the nodes' rounding moves E[y] by at
    # most 2u spread (|Cov[y] delta eta| <= 2 E[y] u spread).
    mean_bound = (
        xp.max(
            2.0 * numerator_error / safe_total[:, None] + xp.abs(mean) * value_bound[:, None],
            axis=-1,
        )
        + 2.0 * u * spread
    )
    value_tolerance, mean_tolerance = tolerances
    certified = xp.logical_and(finite, positive)
    certified = xp.logical_and(certified, value_bound < value_tolerance)
    certified = xp.logical_and(certified, mean_bound < mean_tolerance)
    certified = xp.logical_and(certified, xp.isfinite(value_bound + mean_bound))
    value = largest + xp.log(safe_total)
    return value, mean, certified
