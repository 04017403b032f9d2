"""One validator per hyperparameter: the label-smoothing weight, the temperature, the class
axis and the ignored class.

Each accepts what its Keras or TensorFlow Probability counterpart accepts as a
hyperparameter: Python and NumPy numbers, 0-d NumPy arrays and concrete 0-d tensors of any
backend. Each returns a Python number, or raises ``ValueError`` naming the argument, the
values it takes and the value received. Symbolic tensors are refused: these values are
stored in the configuration of a loss and set its shapes, so they must be known when the
loss is built. No framework is imported here.
"""

import math
import numbers

import numpy as np


def _number(value, name, what):
    """``value`` as a 0-d NumPy value of a real (non-boolean) dtype, or ``ValueError``."""
    if isinstance(value, bool | np.bool_):
        raise ValueError(f"`{name}` must be {what}; received {name}={value!r}.")
    try:
        array = np.asarray(value)
    except Exception:  # a symbolic tensor has no value to convert
        raise ValueError(
            f"`{name}` must be {what} known when the loss is built (a Python or NumPy "
            f"number, or a concrete tensor); received {name}={value!r}."
        ) from None
    if array.ndim != 0 or array.dtype.kind not in "iuf":
        raise ValueError(f"`{name}` must be {what}; received {name}={value!r}.")
    return array[()]


def label_smoothing(value, name="label_smoothing", positive=False):
    """The label-smoothing weight ``ε`` as a float in ``[0, 1)`` (``(0, 1)`` if ``positive``).

    ``ε = 1`` would replace every label by the uniform vector (CC paper eq. 5).

    Raises:
      ValueError: ``value`` is not a real number, or lies outside the range.
    """
    interval = "(0, 1)" if positive else "[0, 1)"
    epsilon = float(_number(value, name, f"a float in {interval}"))
    low_ok = epsilon > 0.0 if positive else epsilon >= 0.0
    if not (low_ok and epsilon < 1.0):
        raise ValueError(
            f"`{name}` must lie in {interval} (1 would erase the label); received {name}={value!r}."
        )
    return epsilon


def temperature(value, name="temperature"):
    """A temperature ``t`` as a finite float ``> 0`` (it divides logits or natural parameters).

    Raises:
      ValueError: ``value`` is not a real number, or is not finite and positive.
    """
    t = float(_number(value, name, "a finite number > 0"))
    if not (math.isfinite(t) and t > 0.0):
        raise ValueError(f"`{name}` must be a finite number > 0; received {name}={value!r}.")
    return t


def integer(value, name):
    """``value`` as a Python int (an axis, a class index); ``ValueError`` otherwise."""
    number = _number(value, name, "an int")
    if not isinstance(number, numbers.Integral | np.integer):
        raise ValueError(f"`{name}` must be an int; received {name}={value!r}.")
    return int(number)
