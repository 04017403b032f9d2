"""One harness for every Keras loss of keras_cc, in the manner of keras-hub's
``run_serialization_test``: what a Keras user relies on, checked the same way for each.

:func:`run_loss_test` takes a loss instance, its per-example function with the keyword
arguments that the instance stands for, and a batch, and checks:

* serialization: ``keras.saving`` names it ``keras_cc>ClassName`` and restores an equal
  config that gives the same values; ``from_config(get_config())`` too;
* the per-example values (``reduction=None``) equal the function's;
* every Keras reduction (``sum``, ``sum_over_batch_size``, ``mean``, ``none``), with and
  without ``sample_weight``, aggregates those values as ``keras.losses.Loss`` defines it;
* inside ``tf.function(jit_compile=True)`` the value and gradient equal eager mode's, and
  the gradient is finite; a loss that validates its targets refuses XLA by name.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

# Keras' reductions: what each makes of per-example values v and weights w.
REDUCTIONS = {
    None: lambda v, w: v * w,
    "none": lambda v, w: v * w,
    "sum": lambda v, w: np.sum(v * w),
    "sum_over_batch_size": lambda v, w: np.sum(v * w) / v.size,
    "mean": lambda v, w: np.sum(v * w) / v.size,
}


def _with(loss, **changes):
    """A copy of ``loss`` with some of its configured arguments changed."""
    return type(loss).from_config({**loss.get_config(), **changes})


def check_serialization(loss, y_true, y_pred):
    config = keras.saving.serialize_keras_object(loss)
    assert config["registered_name"] == f"keras_cc>{type(loss).__name__}"
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(loss)
    assert restored.get_config() == loss.get_config()
    assert type(loss).from_config(loss.get_config()).get_config() == loss.get_config()
    np.testing.assert_allclose(restored(y_true, y_pred), loss(y_true, y_pred), rtol=1e-6)


def check_reductions(loss, function, kwargs, y_true, y_pred, sample_weight):
    per_example = np.asarray(function(y_true, y_pred, **kwargs))
    np.testing.assert_allclose(
        _with(loss, reduction=None)(y_true, y_pred), per_example, rtol=1e-6, atol=1e-7
    )
    for reduction, reduce in REDUCTIONS.items():
        instance = _with(loss, reduction=reduction)
        for weight in (None, sample_weight):
            expected = reduce(per_example, 1.0 if weight is None else weight)
            got = instance(y_true, y_pred, sample_weight=weight)
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6, err_msg=reduction)


def _value_and_gradient(loss, y_true, y_pred):
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        value = loss(y_true, y_pred)
    return value, tape.gradient(value, y_pred)


def _compiled(loss):
    return tf.function(lambda t, p: _value_and_gradient(loss, t, p), jit_compile=True)


def check_xla(loss, y_true, y_pred):
    y_true, y_pred = tf.constant(y_true), tf.constant(y_pred)
    if loss.get_config().get("validate"):
        # XLA drops assertions, so a validating loss refuses it by name; its copy without
        # validation is what compiles.
        with pytest.raises(ValueError, match="cannot run inside an XLA-compiled"):
            _compiled(loss)(y_true, y_pred)
        loss = _with(loss, validate=False)
    eager = _value_and_gradient(loss, y_true, y_pred)
    compiled = _compiled(loss)(y_true, y_pred)
    assert np.all(np.isfinite(eager[1].numpy()))
    for got, expected in zip(compiled, eager, strict=True):
        np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-4, atol=1e-6)


def run_loss_test(loss, function, kwargs, y_true, y_pred, sample_weight):
    """Every check above, for ``loss`` (an instance), which stands for
    ``function(y_true, y_pred, **kwargs)``, on one batch ([B, K] predictions, [B]
    ``sample_weight``)."""
    check_serialization(loss, y_true, y_pred)
    check_reductions(loss, function, kwargs, y_true, y_pred, sample_weight)
    check_xla(loss, y_true, y_pred)
