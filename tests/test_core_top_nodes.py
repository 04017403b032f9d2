"""keras_cc.core.top_nodes: the closed form on the top nodes with a bound on the rest."""

import numpy as np
import pytest
import tensorflow as tf
import wide_spread_cases
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from keras_cc import ops
from keras_cc.core import closed_form, series, top_nodes
from keras_cc.ops.namespace import TENSORFLOW

_evaluate_compiled = tf.function(
    lambda rows, tolerances: top_nodes.log_normalizer_and_mean(TENSORFLOW, rows, tolerances),
    jit_compile=True,
    autograph=False,
)


def _evaluate(rows, dtype="float64"):
    rows = np.asarray(rows, np.float64)
    rows = rows - rows.min(axis=-1, keepdims=True)
    value, mean, certified = _evaluate_compiled(tf.constant(rows), closed_form.TOLERANCES[dtype])
    return value.numpy(), mean.numpy(), certified.numpy()


_series_compiled = tf.function(
    lambda w: series.positive_series(TENSORFLOW, w)[:2], jit_compile=True, autograph=False
)


def _series(rows):
    """The positive series (S1, M1) in float64: exact at any spread, loop of ~spread terms
    (compiled once per number of classes)."""
    rows = np.asarray(rows, np.float64)
    value, mean = _series_compiled(tf.constant(rows - rows.min(axis=-1, keepdims=True)))
    return value.numpy(), mean.numpy()


def _assert_certified_and_exact(rows):
    """Every row is certified in float64 and equals the series to 1e-12."""
    values, means, certified = _evaluate(rows)
    assert certified.all()
    reference_values, reference_means = _series(rows)
    np.testing.assert_allclose(values, reference_values, rtol=1e-12)
    np.testing.assert_allclose(means, reference_means, atol=1e-12)
    np.testing.assert_allclose(means.sum(-1), 1.0, atol=1e-12)


@pytest.mark.parametrize("num_classes", (10, 100, 1000))
def test_label_smoothing_optimum_is_certified_and_exact(num_classes):
    """Logits where CC label smoothing puts them: the target K / epsilon above a unit-normal
    cluster of the others. (At K = 2 the optimum's gap of 2 / epsilon is too small for the
    bound; the series takes such rows in a few dozen terms.)"""
    rng = np.random.default_rng(num_classes)
    _assert_certified_and_exact(
        [
            wide_spread_cases.make_logits("top", num_classes, num_classes / epsilon, rng)
            for epsilon in (0.1, 0.2)
        ]
    )


def test_ties_below_the_top_nodes_do_not_matter():
    """Nodes of the rest enter only through their rates: exact ties are certified."""
    rng = np.random.default_rng(3)
    cluster = np.round(rng.standard_normal(200), 1)  # many exact ties
    row = np.append(cluster, cluster.max() + 5000.0)
    assert len(np.unique(cluster)) < len(cluster)
    _assert_certified_and_exact([row])


def test_close_top_nodes_take_more_top_nodes():
    """Two top nodes 0.5 apart, far above the rest: certified with T of two or more."""
    rng = np.random.default_rng(4)
    cluster = rng.standard_normal(50)
    row = np.concatenate([cluster, cluster.max() + [3000.0, 3000.5]])
    _assert_certified_and_exact([row])


def test_rows_without_a_gap_are_not_certified():
    rng = np.random.default_rng(5)
    rows = [
        rng.standard_normal(20),  # narrow
        wide_spread_cases.make_logits("two_clusters", 40, 1e3, rng),  # top cluster of 20
        np.append(rng.standard_normal(999), 1000.0),  # 999 rates near 1000: P(S > 1) ~ 1/2
        [0.0, 0.0, 0.0, 0.0, 0.0, 500.0, 500.0, 500.0, 500.0, 500.0],  # tied top nodes
    ]
    for row in rows:
        _, _, certified = _evaluate([row])
        assert not certified.any(), len(row)


@settings(max_examples=40, deadline=None)
@given(
    # A few fixed numbers of classes, so that each shape compiles once for all examples.
    num_classes=st.sampled_from([2, 3, 7, 16, 60]),
    top_count=st.integers(1, 6),
    gap=st.floats(5.0, 3000.0),
    width=st.floats(0.0, 50.0),
    seed=st.integers(0, 2**31 - 1),
    dtype=st.sampled_from(["float32", "float64"]),
)
def test_certified_rows_are_within_their_tolerances(
    num_classes, top_count, gap, width, seed, dtype
):
    """Whatever the shape, a certified row agrees with the exact series to the tolerance
    it was certified for (value relative to max(1, |log C^{-1}|), mean absolute)."""
    rng = np.random.default_rng(seed)
    top_count = min(top_count, num_classes - 1)
    rest = rng.standard_normal(num_classes - top_count)
    top = rest.max() + gap + width * rng.random(top_count)
    row = np.concatenate([rest, top])
    value, mean, certified = _evaluate([row], dtype)
    # Rows it does not certify are discarded, not passed: if certification broke for every
    # row, Hypothesis would fail the test (too many examples filtered out).
    assume(certified[0])
    reference_value, reference_mean = _series([row])
    value_tolerance, mean_tolerance = closed_form.TOLERANCES[dtype]
    assert abs(value[0] - reference_value[0]) <= value_tolerance * max(
        1.0, abs(reference_value[0])
    ) + 1e-13 * abs(reference_value[0])
    assert np.abs(mean - reference_mean).max() <= mean_tolerance + 1e-12


def test_wide_rows_of_a_thousand_classes_take_no_loop():
    """Unit-normal rows at spread 1e4 at K = 1000: the top-node closed form certifies every
    row, so a call has no sequential steps. At the CC label-smoothing optimum the other
    nodes are close together, and the lifted series takes the rows in a few terms."""
    rng = np.random.default_rng(6)
    normal = rng.standard_normal((8, 1000))
    normal = (normal - normal.min(-1, keepdims=True)) / np.ptp(normal, -1, keepdims=True) * 1e4
    methods = ops.continuous_categorical.row_methods(normal.astype(np.float32)).numpy()
    assert (methods == ops.continuous_categorical.METHODS.index("top nodes")).all()
    assert int(ops.continuous_categorical.sequential_steps(normal.astype(np.float32))) == 0
    optimum = np.stack([wide_spread_cases.make_logits("top", 1000, 1e4, rng) for _ in range(8)])
    methods = ops.continuous_categorical.row_methods(optimum).numpy()
    assert (methods == ops.continuous_categorical.METHODS.index("lifted series")).all()
    assert int(ops.continuous_categorical.sequential_steps(optimum)) <= 32
