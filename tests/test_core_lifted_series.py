"""The lifted series (keras_cc.core.series.lifted_series) against high-precision references.

References: for few classes, the CC paper's closed form (eq. 4) at hundreds of digits
(tests/cc_reference.py); for many, the lifted expansion exp[q, u] = sum_n a_{K-2+n} h_n(u)
summed in mpmath with its coefficients from mpmath's own regularized incomplete gamma
function (a_m = e^q P(m + 1, q) / q^(m+1)) and h_n from the prefix recurrence, so neither
the coefficients nor the recurrence share code with keras_cc. The rows are the CC
label-smoothing trajectory (a target node t K / epsilon above a unit-normal cluster), an
isolated top node at many heights, uniform rows, and the borders where a row leaves the
lifted series for another method.
"""

import functools

import cc_reference
import mpmath
import numpy as np
import pytest
import tensorflow as tf

from keras_cc import ops
from keras_cc.core import series
from keras_cc.ops.namespace import TENSORFLOW

LIFTED = ops.continuous_categorical.METHODS.index("lifted series")
EPSILON = 0.1


def _lifted_log_normalizer(eta, digits):
    """log C^{-1}(eta) as an mpmath number by the lifted expansion (module docstring)."""
    with mpmath.workdps(digits):
        minimum = min(eta)
        w = [v - minimum for v in eta]
        top = max(range(len(w)), key=lambda k: w[k])
        q = w[top]
        rest = [v for k, v in enumerate(w) if k != top]
        order = len(w) - 2

        def coefficient(m):
            if q == 0:
                return 1 / mpmath.factorial(m + 1)
            regularized = mpmath.gammainc(m + 1, 0, q, regularized=True)
            return mpmath.exp(q) * regularized / q ** (m + 1)

        prefix = [mpmath.mpf(1)] * len(rest)
        total = coefficient(order)
        n = 0
        while True:
            n += 1
            running = mpmath.mpf(0)
            for k in range(len(rest)):
                running += rest[k] * prefix[k]
                prefix[k] = running
            term = coefficient(order + n) * prefix[-1]
            total += term
            if n > 2 * float(max(rest)) + 4 and term < total * mpmath.mpf(10) ** (-digits):
                break
        return minimum + mpmath.log(total)


def _lifted_reference(eta, digits=40):
    """log C^{-1}(eta) (a float) by the lifted expansion in mpmath."""
    with mpmath.workdps(digits):
        return float(_lifted_log_normalizer([mpmath.mpf(float(v)) for v in eta], digits))


def _lifted_mean(eta, components, digits=40):
    """E[y_k] for the listed components: exp[eta, eta_k] / exp[eta] for the nodes below the
    top (the other nodes stay a cluster), and for the top node the derivative of log C^{-1}
    along it, by a central difference at ``digits`` + 30 digits (error below 1e-30)."""
    with mpmath.workdps(digits + 30):
        eta = [mpmath.mpf(float(v)) for v in eta]
        base = _lifted_log_normalizer(eta, digits + 30)
        top = max(range(len(eta)), key=lambda k: eta[k])
        step = mpmath.mpf(10) ** (-(digits // 2 + 10))
        values = []
        for k in components:
            if k == top:
                up = list(eta)
                up[k] += step
                down = list(eta)
                down[k] -= step
                value = (
                    _lifted_log_normalizer(up, digits + 30)
                    - _lifted_log_normalizer(down, digits + 30)
                ) / (2 * step)
            else:
                value = mpmath.exp(_lifted_log_normalizer(eta + [eta[k]], digits + 30) - base)
            values.append(float(value))
        return np.array(values)


@functools.cache
def _cached_reference(row, components):
    """(log C^{-1}, E[y] at ``components``) of a row (a tuple), computed once per session."""
    return _lifted_reference(row), _lifted_mean(row, list(components))


def _reference_mean(eta, components, reference):
    """E[y_k] = exp[eta, eta_k] / exp[eta] for the listed components."""
    base = reference(eta)
    return np.array([np.exp(reference(list(eta) + [eta[k]]) - base) for k in components])


def _trajectory_row(num_classes, t, rng):
    row = rng.standard_normal(num_classes)
    row[0] += t * num_classes / EPSILON
    return row


def _value_and_gradient(logits, jit_compile):
    def call(logits):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            value = ops.cc_log_normalizer(logits)
        return value, tape.gradient(value, logits)

    return (
        tf.function(call, jit_compile=jit_compile)(logits)
        if jit_compile is not None
        else call(logits)
    )


def _relative_error(value, reference):
    return abs(value - reference) / max(1.0, abs(reference))


@pytest.mark.parametrize("dtype", ("float64", "float32"))
@pytest.mark.parametrize("t", (0.0, 0.03, 0.1, 0.3, 1.0))
@pytest.mark.parametrize("num_classes", (3, 10, 30))
def test_trajectory_matches_the_closed_form_at_high_precision(num_classes, t, dtype):
    """Few classes: every point of the trajectory against eq. 4 at 400 digits."""
    rng = np.random.default_rng(num_classes * 100 + int(t * 100))
    row = _trajectory_row(num_classes, t, rng).astype(dtype).astype(np.float64)
    value, gradient = _value_and_gradient(tf.constant([row], dtype), jit_compile=None)
    assert ops.continuous_categorical.row_methods(tf.constant([row], dtype)).numpy()[0] == LIFTED
    reference = cc_reference.closed_form_log_inverse_normalizer(row, 400)
    components = list(range(num_classes))
    mean = _reference_mean(
        row,
        components,
        lambda e: (
            cc_reference.closed_form_log_inverse_normalizer(e, 400)
            if len(set(e)) == len(e)
            else cc_reference.log_inverse_normalizer(e, 60)
        ),
    )
    value_tolerance, mean_tolerance = (1e-12, 1e-10) if dtype == "float64" else (2e-7, 2e-6)
    assert _relative_error(float(value.numpy()[0]), reference) <= value_tolerance
    np.testing.assert_allclose(gradient.numpy()[0], mean, atol=mean_tolerance, rtol=0)


@pytest.mark.parametrize("jit_compile", (False, True))
@pytest.mark.parametrize("num_classes", (100, 1000))
def test_trajectory_of_many_classes_matches_the_incomplete_gamma_reference(
    num_classes, jit_compile
):
    """K = 100 and 1000, t = 0 .. 1, float64 and float32, eager and under XLA: the value
    and five components of the gradient (the target, the minimum and three others). The
    rows are float32 numbers, so one reference serves both dtypes."""
    rng = np.random.default_rng(num_classes)
    positions = (0.0, 0.03, 0.1, 0.3, 1.0)
    rows = np.stack([_trajectory_row(num_classes, t, rng) for t in positions])
    rows = rows.astype(np.float32).astype(np.float64)
    for dtype, (value_tolerance, mean_tolerance) in (
        ("float64", (1e-12, 1e-10)),
        ("float32", (2e-7, 2e-6)),
    ):
        logits = tf.constant(rows, dtype)
        value, gradient = _value_and_gradient(logits, jit_compile)
        assert (ops.continuous_categorical.row_methods(logits).numpy() == LIFTED).all()
        assert int(ops.continuous_categorical.sequential_steps(logits)) <= 64
        for row, row_value, row_gradient in zip(rows, value.numpy(), gradient.numpy()):
            components = (0, int(np.argmin(row)), 1, 2, num_classes - 1)
            reference, mean = _cached_reference(tuple(row), components)
            assert _relative_error(float(row_value), reference) <= value_tolerance
            np.testing.assert_allclose(
                row_gradient[list(components)], mean, atol=mean_tolerance, rtol=0
            )


@pytest.mark.parametrize("gap", (0.0, 1e-6, 0.5, 3.0, 30.0, 300.0, 3e3, 3e4, 1e6, 1e12, 1e20))
def test_isolated_top_node_at_any_height(gap):
    """One node `gap` above a cluster of 50 unit-normal nodes: the lifted series takes it
    at every height, with steps set by the cluster alone."""
    rng = np.random.default_rng(7)
    row = rng.standard_normal(51)
    row[0] = row[1:].max() + gap
    logits = tf.constant([row])
    value, gradient = _value_and_gradient(logits, jit_compile=None)
    assert ops.continuous_categorical.row_methods(logits).numpy()[0] == LIFTED
    assert int(ops.continuous_categorical.sequential_steps(logits)) <= 64
    reference = _lifted_reference(row, digits=60)
    assert _relative_error(float(value.numpy()[0]), reference) <= 1e-12
    components = [0, 1, int(np.argmin(row))]
    mean = _lifted_mean(row, components, digits=60)
    np.testing.assert_allclose(gradient.numpy()[0][components], mean, atol=1e-10, rtol=1e-9)


@pytest.mark.parametrize("num_classes", (2, 3, 17, 400))
def test_uniform_rows(num_classes):
    """All nodes equal: the flat Dirichlet, C^{-1} = e^eta / (K - 1)!, E[y] = 1 / K."""
    logits = tf.fill([2, num_classes], tf.constant(3.5, tf.float64))
    value, gradient = _value_and_gradient(logits, jit_compile=True)
    expected = 3.5 - float(mpmath.log(mpmath.factorial(num_classes - 1)))
    np.testing.assert_allclose(value.numpy(), expected, rtol=1e-14)
    np.testing.assert_allclose(gradient.numpy(), 1.0 / num_classes, rtol=1e-10)


@pytest.mark.parametrize("offset", (-0.5, 0.0, 0.5))
def test_border_of_the_lifted_series(offset):
    """Rows whose other nodes spread just inside and just outside LIFTED_SPREAD take the
    lifted series or another exact method, and both agree with the reference."""
    spread = series.LIFTED_SPREAD + offset
    row = np.linspace(0.0, spread, 12)
    row = np.concatenate([row, [spread + 40.0]])
    logits = tf.constant([row])
    value, gradient = _value_and_gradient(logits, jit_compile=None)
    method = ops.continuous_categorical.row_methods(logits).numpy()[0]
    assert (method == LIFTED) == (offset <= 0)
    reference = cc_reference.closed_form_log_inverse_normalizer(row, 200)
    assert _relative_error(float(value.numpy()[0]), reference) <= 1e-12
    np.testing.assert_allclose(gradient.numpy()[0].sum(), 1.0, atol=1e-12)


_K1000_TOPS = (1.0, 500.0, 661.0, 900.0, 943.0, 944.0, 945.0, 980.0, 998.0, 1030.0, 1e4)


@pytest.mark.parametrize(
    "num_classes, tops",
    [
        (100, (0.0, 1e-40, 1e-3, 1.0, 7.0, 97.0, 99.0, 101.0, 130.0, 1e3, 1e6)),
        # Around the head's window (series._head_window(998) = (944, 662)).
        (1000, _K1000_TOPS),
    ],
)
def test_coefficients_match_the_incomplete_gamma_function(num_classes, tops):
    """log a_m for tops across the regimes of :func:`series.lifted_coefficients`."""
    tops = np.array(tops)
    log_first, ratios = series.lifted_coefficients(TENSORFLOW, tf.constant(tops), num_classes, 12)
    log_a = log_first.numpy()[:, None] + np.cumsum(np.log(ratios.numpy()), axis=-1)
    with mpmath.workdps(50):
        for q, row in zip(tops, log_a):
            for n, value in enumerate(row):
                m = num_classes - 2 + n
                if q == 0:
                    reference = -mpmath.log(mpmath.factorial(m + 1))
                else:
                    q_mp = mpmath.mpf(q)
                    regularized = mpmath.gammainc(m + 1, 0, q_mp, regularized=True)
                    reference = mpmath.log(regularized) - (m + 1) * mpmath.log(q_mp)
                assert abs(value - float(reference)) <= 1e-13 * max(1.0, abs(float(reference)))
