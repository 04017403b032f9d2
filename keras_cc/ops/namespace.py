"""TensorFlow as an array namespace of :mod:`keras_cc.core` (see :mod:`keras_cc.core.namespace`).

:data:`TENSORFLOW` is TensorFlow itself, whatever Keras backend is active: the TensorFlow
Probability distribution, :mod:`keras_cc.ops` and the Keras losses on the TensorFlow backend
run the core's math through it, so they stay graph- and XLA-compilable with TensorFlow's own
control flow.
"""

import contextlib
import types

import tensorflow as tf


def _tf_sum(x, axis=None, keepdims=False):
    return tf.reduce_sum(x, axis=axis, keepdims=keepdims)


def _tf_static_or_dynamic_size(x, axis):
    size = x.shape[axis]
    return size if size is not None else tf.shape(x)[axis]


def _tf_where(condition, x, y):
    """``tf.where`` where either branch may be a Python number (it takes the other's dtype)."""
    if isinstance(x, int | float):
        y = tf.convert_to_tensor(y)
        return tf.where(condition, tf.cast(x, y.dtype), y)
    x = tf.convert_to_tensor(x)
    return tf.where(condition, x, tf.cast(y, x.dtype))


def _tf_lgamma(x):
    return tf.math.lgamma(tf.cast(x, tf.float64))


TENSORFLOW = types.SimpleNamespace(
    name="tensorflow",
    cast=lambda x, dtype: tf.cast(x, dtype),
    convert_to_tensor=tf.convert_to_tensor,
    dtype=lambda x: x.dtype.name,
    size=_tf_static_or_dynamic_size,
    exp=tf.exp,
    log=tf.math.log,
    log1p=tf.math.log1p,
    expm1=tf.math.expm1,
    sqrt=tf.sqrt,
    ceil=tf.math.ceil,
    abs=tf.abs,
    square=tf.square,
    arctanh=tf.math.atanh,
    maximum=tf.maximum,
    minimum=tf.minimum,
    divide_no_nan=tf.math.divide_no_nan,
    xlogy=tf.math.xlogy,
    lgamma=_tf_lgamma,
    sum=_tf_sum,
    max=lambda x, axis=None, keepdims=False: tf.reduce_max(x, axis=axis, keepdims=keepdims),
    min=lambda x, axis=None, keepdims=False: tf.reduce_min(x, axis=axis, keepdims=keepdims),
    prod=lambda x, axis=None: tf.reduce_prod(x, axis=axis),
    logsumexp=lambda x, axis=None: tf.reduce_logsumexp(x, axis=axis),
    all=lambda x, axis=None: tf.reduce_all(x, axis=axis),
    any=lambda x, axis=None: tf.reduce_any(x, axis=axis),
    isfinite=tf.math.is_finite,
    logical_and=tf.logical_and,
    logical_or=tf.logical_or,
    logical_not=tf.logical_not,
    where=_tf_where,
    ones_like=lambda x, dtype=None: tf.ones_like(x, dtype=dtype),
    zeros_like=lambda x, dtype=None: tf.zeros_like(x, dtype=dtype),
    eye=lambda n, dtype: tf.eye(n, dtype=dtype),
    reshape=tf.reshape,
    concatenate=lambda xs, axis: tf.concat(xs, axis),
    top_k=lambda x, k: tuple(tf.math.top_k(x, k)),
    take=lambda x, indices: tf.gather(x, indices),
    scatter_rows=lambda x, rows, updates: tf.tensor_scatter_nd_update(x, rows[:, None], updates),
    argsort=lambda x: tf.argsort(x, stable=True),
    arange=tf.range,
    equal=tf.equal,
    matvec=tf.linalg.matvec,
    while_loop=lambda cond, body, loop_vars: tf.while_loop(cond, body, loop_vars),
    cond=lambda pred, true_fn, false_fn: tf.cond(pred, true_fn, false_fn),
    custom_gradient=tf.custom_gradient,
    stop_gradient=tf.stop_gradient,
    float64_scope=contextlib.nullcontext,
    eager=lambda function: function,
    jit=lambda function: function,
)
