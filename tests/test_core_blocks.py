"""Rows that take a method alone: keras_cc.core.blocks.on_rows (a method on the flagged rows,
a block at a time) and the series' second phase (the rows still summing once at most
``series.BLOCK_ROWS`` remain, gathered into a block of their own). Every result is compared
with the same computation on each row alone, eagerly and under XLA with a batch dimension
unknown when tracing."""

import numpy as np
import pytest
import tensorflow as tf

from keras_cc import ops
from keras_cc.core import blocks, log_normalizer, series
from keras_cc.ops.namespace import TENSORFLOW as xp


def _method(x, flagged):
    """A per-row method with a [R], a [R, K], a bool [R] and a scalar output."""
    return (
        tf.reduce_sum(x * x, axis=-1),
        2.0 * x,
        tf.logical_and(flagged, tf.reduce_max(x, axis=-1) > 0.0),
        tf.constant(1, tf.int32),
    )


def _on_rows(x, flagged, block_rows):
    empty = [tf.zeros_like(x[:, 0]), tf.zeros_like(x), tf.zeros_like(flagged), tf.constant(0)]
    return blocks.on_rows(xp, _method, flagged, [x, flagged], empty, block_rows)


@pytest.mark.parametrize("compiled", ("eager", "xla, batch unknown", "xla, batch static"))
@pytest.mark.parametrize("rows, block_rows", ((13, 4), (3, 8), (40, 64), (1, 1), (13, None)))
@pytest.mark.parametrize("share", (0.0, 0.3, 1.0))
def test_method_on_flagged_rows_equals_the_method_on_each_row(rows, block_rows, share, compiled):
    """Blocks in a loop where the batch may exceed a block; a static batch of at most one
    block, and any batch when ``block_rows`` is None, takes the method on the whole batch,
    without a loop."""
    rng = np.random.default_rng(rows)
    x = tf.constant(rng.standard_normal((rows, 5)))
    flagged = tf.constant(rng.random(rows) < share)
    if compiled == "eager":
        value, doubled, certified, steps = _on_rows(x, flagged, block_rows)
    else:
        signature = None
        if compiled == "xla, batch unknown":
            signature = [tf.TensorSpec([None, 5], tf.float64), tf.TensorSpec([None], tf.bool)]
        function = tf.function(
            lambda x, f: _on_rows(x, f, block_rows), input_signature=signature, jit_compile=True
        )
        value, doubled, certified, steps = function(x, flagged)
    expected = _method(x, flagged)
    chosen = flagged.numpy()
    np.testing.assert_allclose(value.numpy()[chosen], expected[0].numpy()[chosen], rtol=1e-14)
    np.testing.assert_allclose(doubled.numpy()[chosen], expected[1].numpy()[chosen], rtol=1e-14)
    np.testing.assert_array_equal(certified.numpy(), expected[2].numpy())
    # Unflagged rows hold the empty outputs or the method's own (a block's filling rows).
    for got, own in ((value, expected[0]), (doubled, expected[1])):
        rest = got.numpy()[~chosen]
        assert np.all((rest == 0.0) | np.isclose(rest, own.numpy()[~chosen], rtol=1e-14))
    block = rows if block_rows is None else min(block_rows, rows)
    assert int(steps) == -(-int(chosen.sum()) // block)  # one step per block, none if none


def _wide_batch(rows, num_classes, spread, rng):
    """|N(0, 1)| nodes (one zero per row) and, in the last row, two clusters ``spread``
    apart."""
    w = np.abs(rng.standard_normal((rows, num_classes)))
    w[:, 0] = 0.0
    w[-1] = 0.0
    w[-1, num_classes // 2 :] = spread + rng.random(num_classes - num_classes // 2)
    return w


@pytest.mark.parametrize("second_moment", (False, "diagonal", "full"))
@pytest.mark.parametrize("compiled", (False, True))
@pytest.mark.parametrize("rows", (3 * series.BLOCK_ROWS, 2))
def test_rows_finished_in_a_block_equal_each_row_summed_alone(rows, compiled, second_moment):
    """Compiled with an unknown batch size, a batch of 2 rows also takes the block (filled
    with repeats of its rows)."""
    rng = np.random.default_rng(7)
    w = tf.constant(_wide_batch(rows, 6, 300.0, rng))

    def summed(w):
        return series.positive_series(xp, w, second_moment=second_moment)

    function = summed
    if compiled:
        spec = [tf.TensorSpec([None, 6], tf.float64)]
        function = tf.function(summed, input_signature=spec, jit_compile=True)
    log_sum, mean, second, steps = function(w)
    alone = [summed(w[i : i + 1]) for i in range(w.shape[0])]
    np.testing.assert_allclose(log_sum.numpy(), [a[0].numpy()[0] for a in alone], rtol=1e-14)
    np.testing.assert_allclose(mean.numpy(), [a[1].numpy()[0] for a in alone], rtol=1e-12)
    if second_moment:
        np.testing.assert_allclose(
            second.numpy(), [a[2].numpy()[0] for a in alone], rtol=1e-12, atol=1e-300
        )
    # The batch takes the wide row's terms (in one sequence: the block goes on counting).
    assert int(steps) == max(int(a[3]) for a in alone) > 300


def test_a_narrow_batch_stops_with_its_narrow_rows():
    """Without a wide row, the second phase never runs longer than the first would."""
    rng = np.random.default_rng(3)
    w = np.abs(rng.standard_normal((64, 10)))
    w[:, 0] = 0.0
    _, _, _, steps = series.positive_series(xp, tf.constant(w))
    assert int(steps) <= 40


@pytest.mark.parametrize(
    "num_classes",
    (10, pytest.param(100, marks=pytest.mark.slow), pytest.param(1000, marks=pytest.mark.slow)),
)
def test_wide_rows_of_every_method_in_a_compiled_batch_equal_each_row_alone(num_classes):
    """One row per method (series, closed form, top nodes, lifted series) among unit-normal
    rows: the certified methods run on the rows that need them alone, the series' widest
    row in a block; every row equals its value and mean computed alone."""
    rng = np.random.default_rng(num_classes)
    rows = 3 * series.BLOCK_ROWS
    logits = rng.standard_normal((rows, num_classes))
    logits[1] = 50.0 * num_classes * rng.random(num_classes)  # well separated: closed forms
    logits[2] *= 1e-3  # two clusters of close nodes: no closed form, the series
    logits[2, : num_classes // 2] += 300.0
    logits[3, 0] += 3.0 * num_classes / 0.1  # CC-LS optimum: lifted series
    logits[4] *= 2e4  # spread far above 4 (K - 1): top nodes or closed form
    logits = tf.constant(logits)

    def forward(logits):
        return log_normalizer.LogNormalizer(xp).value_and_mean(logits)[:2]

    spec = [tf.TensorSpec([None, num_classes], tf.float64)]
    value, mean = tf.function(forward, input_signature=spec, jit_compile=True)(logits)
    one_row = tf.function(forward, jit_compile=True)  # a static batch of 1: one block
    alone = [one_row(logits[i : i + 1]) for i in range(rows)]
    np.testing.assert_allclose(value.numpy(), [a[0].numpy()[0] for a in alone], rtol=1e-13)
    np.testing.assert_allclose(
        mean.numpy(), [a[1].numpy()[0] for a in alone], rtol=1e-9, atol=1e-13
    )
    methods = ops.continuous_categorical.row_methods(tf.cast(logits, tf.float32)).numpy()
    assert len(set(methods[:5].tolist())) >= 3
