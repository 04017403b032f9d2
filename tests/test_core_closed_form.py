"""keras_cc.core.closed_form: the closed form (eq. 4) with its per-row error bound."""

import numpy as np
import pytest
import tensorflow as tf
import wide_spread_cases

from keras_cc.core import closed_form
from keras_cc.ops.namespace import TENSORFLOW


def _evaluate(rows, dtype="float64"):
    tolerances = closed_form.TOLERANCES[dtype]
    value, mean, certified = closed_form.log_normalizer_and_mean(
        TENSORFLOW, tf.constant(np.stack(rows), tf.float64), tolerances
    )
    return value.numpy(), mean.numpy(), certified.numpy()


@pytest.mark.parametrize("num_classes", (2, 10, 40, closed_form.MAX_CLASSES))
@pytest.mark.parametrize("spread_per_class", (20.0, 100.0, 1000.0))
def test_certified_rows_are_within_the_float64_tolerances(num_classes, spread_per_class):
    """Rows of separated nodes are certified (the top and uniform regimes at these spreads)."""
    spread = spread_per_class * (num_classes - 1)
    rng = np.random.default_rng(num_classes + int(spread))
    rows = [wide_spread_cases.make_logits(r, num_classes, spread, rng) for r in ("top", "uniform")]
    values, means, certified = _evaluate(rows)
    assert certified.all()
    for row, value, mean, ok in zip(rows, values, means, certified):
        if not ok:
            continue
        reference = wide_spread_cases.reference(row)
        assert abs(value - reference["log_inv_norm"]) <= 1e-10 * max(
            1.0, abs(reference["log_inv_norm"])
        )
        np.testing.assert_allclose(mean[reference["components"]], reference["mean"], atol=1e-8)
        np.testing.assert_allclose(mean.sum(), 1.0, atol=1e-12)


def test_close_nodes_are_not_certified():
    """Eq. 4 cancels for close nodes: a pair 1e-9 apart, a dense row, equal logits."""
    pair = np.append(np.arange(9.0), 8.0 + 1e-9)
    dense = np.linspace(0.0, 3.0, 10)
    equal = np.zeros(10)
    _, _, certified = _evaluate([pair, dense, equal])
    np.testing.assert_array_equal(certified, [False, False, False])


def test_float32_tolerances_certify_more_rows():
    rng = np.random.default_rng(0)
    rows = [rng.normal(0.0, 4.0, 10) for _ in range(200)]
    _, _, certified64 = _evaluate(rows, "float64")
    _, _, certified32 = _evaluate(rows, "float32")
    assert np.all(certified32[certified64])
    assert certified32.sum() > certified64.sum()


def test_underflowing_terms_give_zero_not_nan():
    """A dense cluster 1e4 below the top node: e^{eta} and the differences both underflow."""
    row = np.append(1e-3 * np.arange(99.0), 1e4)
    value, mean, certified = _evaluate([row])
    assert certified[0]
    # exp[cluster, q] -> e^q / q^{K-1} as the cluster's nodes merge far below q.
    np.testing.assert_allclose(value[0], 1e4 - 99 * np.log(1e4), rtol=1e-6)
    assert np.all(np.isfinite(mean)) and mean[0, -1] > 0.99
