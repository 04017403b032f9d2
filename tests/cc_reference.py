"""High-precision references for the CC normalizer, independent of keras_cc's recurrence.

log C^{-1}(eta) = m + log sum_n h_n(w) / (n + K - 1)!  with w = eta - min(eta) >= 0, where
h_n is built by the prefix recurrence h_n^(k) = sum_{i<=k} w_i h_{n-1}^(i) in mpmath at
high precision (keras_cc uses a different recurrence). The closed form of the CC paper
(eq. 4) at very high precision cross-checks it where nodes are distinct.
"""

import mpmath
import numpy as np

_DIGITS = 50


def log_inverse_normalizer(eta, digits=_DIGITS):
    """log C^{-1}(eta) by the positive series at `digits` significant digits."""
    with mpmath.workdps(digits):
        eta = [mpmath.mpf(float(v)) for v in eta]
        minimum = min(eta)
        w = [v - minimum for v in eta]
        num_classes = len(w)
        spread = float(max(w))
        prefix = [mpmath.mpf(1)] * num_classes
        total = mpmath.mpf(1) / mpmath.factorial(num_classes - 1)
        n = 0
        while True:
            n += 1
            running = mpmath.mpf(0)
            for k in range(num_classes):
                running += w[k] * prefix[k]
                prefix[k] = running
            term = prefix[-1] / mpmath.factorial(n + num_classes - 1)
            total += term
            if n > 2 * spread + 1 and term < total * mpmath.mpf(10) ** (-digits):
                break
        return float(minimum + mpmath.log(total))


def mean(eta, digits=_DIGITS):
    """E[y_k] = exp[eta with eta_k doubled] / exp[eta] (derivative of divided differences)."""
    eta = [float(v) for v in eta]
    base = log_inverse_normalizer(eta, digits)
    doubled = [log_inverse_normalizer(eta + [eta[k]], digits) for k in range(len(eta))]
    return np.exp(np.array(doubled) - base)


def closed_form_log_inverse_normalizer(eta, digits):
    """The CC paper's eq. 4 at `digits` digits (needs distinct nodes)."""
    with mpmath.workdps(digits):
        eta = [mpmath.mpf(float(v)) for v in eta]
        total = mpmath.mpf(0)
        for k, node in enumerate(eta):
            denominator = mpmath.mpf(1)
            for i, other in enumerate(eta):
                if i != k:
                    denominator *= node - other
            total += mpmath.exp(node) / denominator
        return float(mpmath.log(total))


def make_logits(kind, num_classes, rng):
    """Logits of the tested regimes (float64)."""
    if kind == "near_uniform":
        return rng.normal() + 1e-9 * rng.standard_normal(num_classes)
    if kind == "sparse":
        probs = np.maximum(rng.dirichlet(np.full(num_classes, 0.05)), 1e-30)
        return np.log(probs / probs.sum())
    if kind == "flat":
        return np.log(rng.dirichlet(np.full(num_classes, 20.0)))
    if kind == "wide":
        return rng.uniform(-50.0, 50.0, num_classes)
    if kind == "clustered":
        centers = rng.uniform(-5.0, 5.0, 3)
        return centers[rng.integers(0, 3, num_classes)] + 1e-6 * rng.standard_normal(num_classes)
    raise ValueError(kind)


KINDS = ("near_uniform", "sparse", "flat", "wide", "clustered")


def table_log_inverse_normalizer(eta, digits):
    """log C^{-1}(eta) by the plain divided-difference recursion at `digits` digits.

    exp[x_i..x_j] = (exp[x_{i+1}..x_j] - exp[x_i..x_{j-1}]) / (x_j - x_i) over the sorted
    nodes, with exp(x)/(m-1)! on windows of m equal nodes. Every subtraction is carried at
    `digits` digits, so `digits` must exceed the digits the recursion cancels (check by
    comparing two precisions: :func:`converged_table_log_inverse_normalizer`).
    """
    with mpmath.workdps(digits):
        x = sorted(mpmath.mpf(float(v)) for v in eta)
        level = [mpmath.exp(v) for v in x]
        for m in range(2, len(x) + 1):
            nxt = []
            for i in range(len(x) - m + 1):
                width = x[i + m - 1] - x[i]
                if width == 0:
                    nxt.append(mpmath.exp(x[i]) / mpmath.factorial(m - 1))
                else:
                    nxt.append((level[i + 1] - level[i]) / width)
            level = nxt
        return level[0]


def converged_table_log_inverse_normalizer(eta, digits=60, tolerance=1e-15):
    """:func:`table_log_inverse_normalizer` at doubling precision until two agree."""
    previous = None
    while True:
        value = table_log_inverse_normalizer(eta, digits)
        if value > 0 and previous is not None:
            with mpmath.workdps(digits):
                if abs(mpmath.log(value) - mpmath.log(previous)) < tolerance * max(
                    1, abs(mpmath.log(value))
                ):
                    return float(mpmath.log(value)), digits
        previous = value if value > 0 else None
        digits *= 2


def finite_difference_mean(eta, components, digits, step=1e-25):
    """E[y_k] for k in `components` by central differences of the table at `digits` digits."""
    out = []
    with mpmath.workdps(digits):
        for k in components:
            plus = [mpmath.mpf(float(v)) for v in eta]
            minus = list(plus)
            plus[k] += mpmath.mpf(step)
            minus[k] -= mpmath.mpf(step)
            high = mpmath.log(table_log_inverse_normalizer_mp(plus, digits))
            low = mpmath.log(table_log_inverse_normalizer_mp(minus, digits))
            out.append(float((high - low) / (2 * mpmath.mpf(step))))
    return np.array(out)


def table_log_inverse_normalizer_mp(x, digits):
    """:func:`table_log_inverse_normalizer` for mpmath nodes (no rounding to float64)."""
    with mpmath.workdps(digits):
        x = sorted(x)
        level = [mpmath.exp(v) for v in x]
        for m in range(2, len(x) + 1):
            level = [
                mpmath.exp(x[i]) / mpmath.factorial(m - 1)
                if x[i + m - 1] == x[i]
                else (level[i + 1] - level[i]) / (x[i + m - 1] - x[i])
                for i in range(len(x) - m + 1)
            ]
        return level[0]
