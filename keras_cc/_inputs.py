"""Input handling of the Keras losses and metrics: checks, conversions, targets.

What every loss and metric of :mod:`keras_cc.losses` and :mod:`keras_cc.metrics` does to
its arguments before any CC mathematics, following ``keras.losses.CategoricalCrossentropy``:
the hyperparameters' validators (one per hyperparameter,
:mod:`keras_cc.core.hyperparameters`), tensors and their compute dtypes (float16 and
bfloat16 computed in float32; integers cast, never truncated), the class axis moved last,
predictions as clipped probabilities or as logits (the logits behind a softmax where Keras
would use them), natural parameters ``log f / t`` or ``z / t`` (CC paper eq. 2), shape
checks that name both shapes, label smoothing of one-hot targets (CC paper eq. 7), and the
check that targets lie on the simplex (:func:`validated`, behind
:func:`keras_cc.losses.validate_simplex`).
"""

import functools
import math
import warnings

import keras
import numpy as np

from keras_cc.core import hyperparameters, simplex
from keras_cc.ops import _xla, divergences
from keras_cc.ops.divergences import _simplex_assertions

COMPUTE_DTYPES = ("float32", "float64")
# Tolerance on |Σ y - 1| when targets are validated (float32 one-hots from a softmax
# teacher are typically within 1e-6; 1e-3 also admits rounded, stored targets).
SIMPLEX_ATOL = divergences.SIMPLEX_ATOL


# ----------------------------------------------------------------------------- checks


# One validator per hyperparameter (keras_cc.core.hyperparameters), used everywhere.
check_label_smoothing = hyperparameters.label_smoothing
check_temperature = hyperparameters.temperature


def check_axis(axis):
    return hyperparameters.integer(axis, "axis")


def check_ignore_class(ignore_class):
    """``ignore_class`` as a Python int or None; ``ValueError`` for anything else."""
    return None if ignore_class is None else hyperparameters.integer(ignore_class, "ignore_class")


# ----------------------------------------------------------------------- conversions


def on_tensorflow():
    return keras.backend.backend() == "tensorflow"


def tensor(x):
    """``x`` as a tensor of the active Keras backend, its dtype kept."""
    return keras.ops.convert_to_tensor(x)


def dtype_of(x):
    return keras.backend.standardize_dtype(x.dtype)


def compute_dtype(x):
    """float32 for half-precision and integer inputs; float32 or float64 otherwise."""
    dtype = dtype_of(x)
    return dtype if dtype in COMPUTE_DTYPES else "float32"


def as_float(x):
    """``x`` as a tensor, cast to float32 unless it is floating already."""
    x = tensor(x)
    return x if "float" in dtype_of(x) else keras.ops.cast(x, "float32")


def rank_of(x):
    """The rank of ``x``, or None (a TensorFlow graph tensor of unknown rank)."""
    return x.shape.rank if hasattr(x.shape, "rank") else len(x.shape)


def class_axis(x, axis, fn_name, name):
    """``axis`` as an index in ``[0, rank)`` of ``x``; ``ValueError`` if ``x`` has no such axis."""
    rank = rank_of(x)
    if rank is None:
        raise ValueError(f"`{fn_name}`: `{name}` needs a known rank; received shape {x.shape}.")
    if rank == 0:
        raise ValueError(
            f"`{fn_name}`: `{name}` needs a class axis (rank >= 1, one entry per class); "
            "received a scalar. A single example is a vector of one entry per class."
        )
    if not -rank <= axis < rank:
        raise ValueError(
            f"`{fn_name}`: axis={axis} is out of range for `{name}` of rank {rank} "
            f"(shape {tuple(x.shape)})."
        )
    return axis % rank


def move_axis_last(x, axis, fn_name, name):
    axis = class_axis(x, axis, fn_name, name)
    if axis == rank_of(x) - 1:
        return x
    return keras.ops.moveaxis(x, axis, -1)


def softmax_logits(y_pred):
    """The logits behind a softmax output, or None (mirrors Keras' cross-entropy)."""
    logits = getattr(y_pred, "_keras_logits", None)
    if logits is not None or not on_tensorflow():
        return logits
    import tensorflow as tf

    if (
        hasattr(y_pred, "op")
        and not isinstance(y_pred, tf.__internal__.EagerTensor | tf.Variable)
        and y_pred.op.type == "Softmax"
        and len(y_pred.op.inputs) == 1
    ):
        return y_pred.op.inputs[0]
    return None


def predictions(y_pred, from_logits, axis, fn_name):
    """``(values, from_logits)``: ``y_pred`` as float32 (half-precision and integer inputs)
    or float64, class axis last, with the logits behind a softmax output taken instead of
    its probabilities where they can be recovered (as Keras' cross-entropy does)."""
    hidden_logits = softmax_logits(y_pred)
    y_pred = tensor(y_pred)
    axis = class_axis(y_pred, axis, fn_name, "y_pred")
    dtype = compute_dtype(y_pred)
    if hidden_logits is not None:
        if from_logits:
            warnings.warn(
                f"`{fn_name}` received `from_logits=True`, but `y_pred` was produced "
                "by a softmax and thus does not hold logits. Was this intended?",
                stacklevel=4,
            )
        # Softmax over the last axis is Keras' default; anything else keeps probabilities.
        if axis == rank_of(y_pred) - 1:
            y_pred, from_logits = tensor(hidden_logits), True
    return move_axis_last(keras.ops.cast(y_pred, dtype), axis, fn_name, "y_pred"), from_logits


def clipped(probabilities):
    """Probabilities renormalized and clipped to ``[epsilon, 1 - epsilon]``, as in Keras'
    cross-entropy."""
    probabilities = probabilities / keras.ops.sum(probabilities, axis=-1, keepdims=True)
    epsilon = keras.config.epsilon()
    return keras.ops.clip(probabilities, epsilon, 1.0 - epsilon)


def natural_parameters(y_pred, from_logits, axis, fn_name, temperature=1.0, with_shift=True):
    """The natural parameters ``η = log f / t`` of ``y_pred`` as ``(w, shift)``, class axis
    last: ``η = w + shift[..., None]`` with ``w >= 0`` zero at each row's minimum.

    Logits ``z`` give ``w = (z - min z) / t`` (the same rounding on every backend) and
    ``shift = (min z - logsumexp z) / t``; probabilities are :func:`clipped` before their
    logarithm is taken.

    ``with_shift=False`` returns ``w`` and 0 in place of the shift, without the log-sum-exp of
    logits: for targets on the simplex by construction (label smoothing), whose
    ``-log p(y; w + shift) = log C⁻¹(w) - y . w + shift (1 - Σ y)`` (CC paper eq. 2) does
    not depend on it.
    """
    y_pred, from_logits = predictions(y_pred, from_logits, axis, fn_name)
    if not from_logits:
        y_pred = keras.ops.log(clipped(y_pred))
    minimum = keras.ops.min(y_pred, axis=-1, keepdims=True, initial=math.inf)
    if not with_shift:
        shift = keras.ops.zeros_like(minimum[..., 0])
    elif from_logits:
        shift = minimum[..., 0] - keras.ops.logsumexp(y_pred, axis=-1)
    else:
        shift = minimum[..., 0]
    w = y_pred - minimum
    if temperature != 1.0:
        # A product, not a quotient: XLA may turn x / t into x * (1 / t) on some backends
        # and not on others, and the loss must not depend on the backend.
        inverse = 1.0 / temperature
        w, shift = w * inverse, shift * inverse
    return w, shift


def probabilities(y_pred, from_logits, axis, fn_name):
    """The predicted probabilities ``f``, class axis last: ``softmax(z)`` of logits,
    :func:`clipped` probabilities otherwise."""
    y_pred, from_logits = predictions(y_pred, from_logits, axis, fn_name)
    return keras.ops.softmax(y_pred, axis=-1) if from_logits else clipped(y_pred)


def targets(y_true, dtype, axis, fn_name):
    return move_axis_last(keras.ops.cast(tensor(y_true), dtype), axis, fn_name, "y_true")


def compatible(shape, other):
    """Whether two shapes (tuples, None for an unknown size) can be the same shape."""
    return len(shape) == len(other) and all(
        a is None or b is None or a == b for a, b in zip(shape, other)
    )


def looks_like_labels(y_true_shape, y_pred_shape):
    """Whether ``y_true`` has the shape of one class label per example of ``y_pred``."""
    if len(y_true_shape) == len(y_pred_shape) - 1:
        return True
    return len(y_true_shape) == len(y_pred_shape) >= 1 and y_true_shape[-1] == 1


ONE_HOT_HINT = (
    " `y_true` looks like integer class labels: one-hot encode them first "
    "(keras.ops.one_hot(labels, num_classes))."
)


def check_same_shape(y_true, y_pred, fn_name, labels_hint=ONE_HOT_HINT):
    """``ValueError`` unless the shapes agree; targets shaped like class labels get
    ``labels_hint`` (where their sparse form is, or how to one-hot encode them)."""
    y_true_shape = tuple(tensor(y_true).shape)
    y_pred_shape = tuple(tensor(y_pred).shape)
    if not compatible(y_true_shape, y_pred_shape):
        hint = labels_hint if looks_like_labels(y_true_shape, y_pred_shape) else ""
        raise ValueError(
            f"`{fn_name}`: `y_true` and `y_pred` must have the same shape; received "
            f"y_true.shape={y_true_shape}, y_pred.shape={y_pred_shape}.{hint}"
        )


def smooth(one_hot, label_smoothing):
    """``y_LS = (1 - ε) y + ε / K`` (CC paper eq. 5)."""
    if not label_smoothing:
        return one_hot
    return one_hot * (1.0 - label_smoothing) + smoothing_share(label_smoothing, one_hot, -1)


def smoothing_share(label_smoothing, y, axis):
    """``ε / K`` for the ``K`` classes along ``axis`` of ``y``: a Python number when ``K``
    is static (rounded once, the same on every backend), else a tensor of ``y``'s dtype."""
    size = y.shape[axis]
    if size is not None:
        return label_smoothing / size
    return label_smoothing / keras.ops.cast(keras.ops.shape(y)[axis], dtype_of(y))


def smooth_along(y_true, label_smoothing, axis, fn_name):
    """:func:`smooth` along any ``axis`` of targets that are not yet converted."""
    y = as_float(y_true)
    share = smoothing_share(label_smoothing, y, class_axis(y, axis, fn_name, "y_true"))
    return y * (1.0 - label_smoothing) + share


def is_traced(x):
    """True while ``x`` is an abstract value of a JAX trace (no values to check)."""
    if keras.backend.backend() != "jax":
        return False
    import jax

    return isinstance(x, jax.core.Tracer)


def cannot_validate(name, fn_name):
    return ValueError(
        f"`{fn_name}`: validating that `{name}` lies on the simplex cannot run inside an "
        "XLA-compiled TensorFlow function (XLA drops assertions). Compile the model with "
        "jit_compile=False, or call keras_cc.losses.validate_simplex(targets) on the data "
        "before training and keep validate=False."
    )


def simplex_violation_raised(rows, fn_name, name, atol):
    """Raises ``ValueError`` with the message of the first simplex violation of ``rows``."""
    rows = np.asarray(rows)
    message = simplex.violation(rows.reshape(-1, rows.shape[-1]), f"`{fn_name}`", name, atol)
    if message is not None:
        raise ValueError(message)


def validated(y_true, axis, atol, name, fn_name):
    if _xla.in_xla_context():
        raise cannot_validate(name, fn_name)
    y_true = move_axis_last(as_float(y_true), axis, fn_name, name)
    if is_traced(y_true):
        # Inside a JAX trace (a compiled Keras step) the values arrive at run time: a host
        # callback checks them there, and its ValueError stops the step.
        import jax

        check = functools.partial(simplex_violation_raised, fn_name=fn_name, name=name, atol=atol)
        jax.debug.callback(check, y_true)
        return y_true
    if on_tensorflow():
        import tensorflow as tf

        with tf.control_dependencies(_simplex_assertions(y_true, f"`{fn_name}`", name, atol)):
            return tf.identity(y_true)
    # JAX arrays and PyTorch tensors hold values: the same conditions, a ValueError as Keras
    # raises for bad input on these backends.
    simplex_violation_raised(keras.ops.convert_to_numpy(y_true), fn_name, name, atol)
    return y_true


def targets_in_order(y_true, dtype, axis, validate, fn_name):
    """Targets as ``dtype`` with the class axis last, validated on the simplex if asked."""
    if validate:
        return targets(validated(y_true, axis, SIMPLEX_ATOL, "y_true", fn_name), dtype, -1, fn_name)
    return targets(y_true, dtype, axis, fn_name)
