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
