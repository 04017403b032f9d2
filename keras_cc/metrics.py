"""Keras 3 metrics: triangular and Jensen–Shannon divergences, CC negative log-likelihood.

Streaming means (``keras.metrics.MeanMetricWrapper``) of the per-example functions of
:mod:`keras_cc.losses`, with the same input conventions (probabilities by default,
``from_logits=True`` for logits, computed in float32 for half-precision inputs; NaN
propagates as in Keras; ``validate=True`` asserts that the targets lie on the simplex, but
not inside TensorFlow's ``jit_compile=True``). They run on every Keras 3 backend. The metric
classes are registered under names ending in ``Metric`` (e.g.
``keras_cc>TriangularDivergenceMetric``) so they never collide with the losses of the same
name when a model is saved and loaded.

Examples:
    >>> import keras, keras_cc
    >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
    >>> model.compile(
    ...     "adam",
    ...     loss=keras_cc.CCLabelSmoothing(0.1, from_logits=True),
    ...     metrics=[
    ...         "accuracy",
    ...         keras_cc.metrics.TriangularDivergence(from_logits=True),
    ...         keras_cc.metrics.JensenShannonDivergence(from_logits=True),
    ...         keras_cc.metrics.CCNegativeLogLikelihood(from_logits=True),
    ...     ],
    ... )
"""

import keras

from keras_cc import _inputs as inputs
from keras_cc import losses as _losses

__all__ = [
    "TriangularDivergence",
    "JensenShannonDivergence",
    "CCNegativeLogLikelihood",
]

_PACKAGE = "keras_cc"


class _KerasCCMetric(keras.metrics.MeanMetricWrapper):
    """Shared plumbing: backend check; the config holds the constructor's arguments only.

    ``fn_kwargs`` are the constructor's own arguments, passed on to ``fn``: each is kept
    as a public attribute of the same name and returned by ``get_config`` (after ``name``
    and ``dtype``). A subclass whose signature is shared with others (``_DivergenceMetric``)
    names its function and default name in ``_per_example_fn`` and ``_default_name``.
    """

    _per_example_fn = None
    _default_name = None

    def __init__(self, fn, fn_kwargs, name, dtype, **kwargs):
        if kwargs:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword arguments: {sorted(kwargs)}."
            )
        name = self._default_name if name is None else name
        super().__init__(fn, name=name, dtype=dtype, **fn_kwargs)
        for argument, value in fn_kwargs.items():
            setattr(self, argument, value)
        self._direction = "down"

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, **self._fn_kwargs}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class _DivergenceMetric(_KerasCCMetric):
    """Mean of a divergence between targets and predictions; the subclass picks which.

    ``name=None`` means the subclass's ``_default_name``.
    """

    def __init__(self, name=None, dtype=None, from_logits=False, axis=-1, validate=False, **kwargs):
        super().__init__(
            type(self)._per_example_fn,
            {"from_logits": from_logits, "axis": axis, "validate": bool(validate)},
            name,
            dtype,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package=_PACKAGE, name="TriangularDivergenceMetric")
class TriangularDivergence(_DivergenceMetric):
    """Mean triangular divergence ``TRI(y, f)`` (correlations paper eq. 5).

    In ``[0, 1]`` for targets on the simplex; targets are not renormalized (see
    :func:`keras_cc.losses.triangular_divergence` for the range off the simplex).

    Args:
        name: metric name (default ``"triangular_divergence"``). dtype: result dtype.
        from_logits: whether ``y_pred`` holds logits. axis: the class axis.
        validate: assert that the targets lie on the simplex (not inside TensorFlow's XLA).

    Examples:
        >>> import keras_cc
        >>> m = keras_cc.metrics.TriangularDivergence()
        >>> m.update_state([[0.0, 1.0]], [[0.2, 0.8]])
        >>> round(float(m.result()), 4)  # 0.5 * (0.2**2 / 0.2 + 0.2**2 / 1.8)
        0.1111
    """

    _per_example_fn = staticmethod(_losses.triangular_divergence)
    _default_name = "triangular_divergence"


@keras.saving.register_keras_serializable(package=_PACKAGE, name="JensenShannonDivergenceMetric")
class JensenShannonDivergence(_DivergenceMetric):
    """Mean Jensen–Shannon divergence (correlations paper eq. 4, base 2).

    In ``[0, 1]`` for targets on the simplex; targets are not renormalized (see
    :func:`keras_cc.losses.jensen_shannon_divergence` for the range off the simplex).

    Args:
        name: metric name (default ``"jensen_shannon_divergence"``). dtype: result dtype.
        from_logits: whether ``y_pred`` holds logits. axis: the class axis.
        validate: assert that the targets lie on the simplex (not inside TensorFlow's XLA).

    Examples:
        >>> import keras_cc
        >>> m = keras_cc.metrics.JensenShannonDivergence()
        >>> m.update_state([[0.0, 1.0]], [[0.2, 0.8]])
        >>> round(float(m.result()), 4)
        0.108
    """

    _per_example_fn = staticmethod(_losses.jensen_shannon_divergence)
    _default_name = "jensen_shannon_divergence"


@keras.saving.register_keras_serializable(package=_PACKAGE, name="CCNegativeLogLikelihoodMetric")
class CCNegativeLogLikelihood(_KerasCCMetric):
    """Mean continuous-categorical negative log-likelihood of the targets (CC paper eqs. 2, 7).

    ``-log p(y_LS; η)`` with ``η = log f / temperature`` and ``y_LS = (1 - ε) y + ε/K``;
    with the defaults (``label_smoothing=0``, ``temperature=1``) it scores soft targets
    exactly as :class:`keras_cc.ContinuousCategoricalLoss` does, and with
    ``label_smoothing=ε`` it tracks the :class:`keras_cc.CCLabelSmoothing` objective.
    Unlike the cross-entropy it is a proper log-density on the simplex, so it can be
    negative.

    Args:
        name: metric name. dtype: result dtype.
        from_logits: whether ``y_pred`` holds logits.
        label_smoothing: ``ε`` in ``[0, 1)`` applied to the targets first.
        temperature: ``t > 0`` dividing the natural parameter.
        axis: the class axis.
        validate: assert that the targets lie on the simplex (not inside TensorFlow's XLA).

    Examples:
        >>> import numpy as np, keras_cc
        >>> m = keras_cc.metrics.CCNegativeLogLikelihood(from_logits=True, label_smoothing=0.1)
        >>> m.update_state(np.eye(3)[[1, 0]], np.array([[0.5, 2.0, -1.0], [1.0, 0.0, 0.0]]))
        >>> round(float(m.result()), 4)  # CCLabelSmoothing(0.1)'s value on the same batch
        -1.5616
    """

    def __init__(
        self,
        name="cc_negative_log_likelihood",
        dtype=None,
        from_logits=False,
        label_smoothing=0.0,
        temperature=1.0,
        axis=-1,
        validate=False,
        **kwargs,
    ):
        super().__init__(
            _cc_nll_with_smoothing,
            {
                "from_logits": from_logits,
                "label_smoothing": inputs.check_label_smoothing(label_smoothing),
                "temperature": inputs.check_temperature(temperature),
                "axis": axis,
                "validate": bool(validate),
            },
            name,
            dtype,
            **kwargs,
        )


def _cc_nll_with_smoothing(
    y_true, y_pred, from_logits, label_smoothing, temperature, axis, validate=False
):
    """CC negative log-likelihood of (optionally label-smoothed) targets, per example."""
    if label_smoothing:
        y_true = inputs.smooth_along(y_true, label_smoothing, axis, "CCNegativeLogLikelihood")
    return _losses.continuous_categorical_nll(
        y_true,
        y_pred,
        from_logits=from_logits,
        temperature=temperature,
        validate=validate,
        axis=axis,
    )
