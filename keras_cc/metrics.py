"""Keras 3 metrics: triangular and Jensen–Shannon divergences, CC negative log-likelihood.

Streaming means (``keras.metrics.MeanMetricWrapper``) of the per-example functions of
:mod:`keras_cc.losses`, with the same input conventions (probabilities by default,
``from_logits=True`` for logits, computed in float32 for half-precision inputs). They
need Keras 3's TensorFlow backend. The metric classes are registered under names
ending in ``Metric`` (e.g. ``keras_cc>TriangularDivergenceMetric``) so they never
collide with the losses of the same name when a model is saved and loaded.

Example:

```python
import keras, keras_cc
model.compile(
    "adam",
    loss=keras_cc.CCLabelSmoothing(0.1),
    metrics=[
        "accuracy",
        keras_cc.metrics.TriangularDivergence(),
        keras_cc.metrics.JensenShannonDivergence(),
        keras_cc.metrics.CCNegativeLogLikelihood(),
    ],
)
```
"""

import keras

from keras_cc import losses as _losses
from keras_cc.ops.softmax import check_temperature

__all__ = [
    "TriangularDivergence",
    "JensenShannonDivergence",
    "CCNegativeLogLikelihood",
]

_PACKAGE = "keras_cc"


class _KerasCCMetric(keras.metrics.MeanMetricWrapper):
    """Shared plumbing: backend check; the config holds the constructor's arguments only."""

    def __init__(self, fn, fn_kwargs, name, dtype, **kwargs):
        _losses._require_tensorflow_backend(type(self).__name__)
        if kwargs:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword arguments: {sorted(kwargs)}."
            )
        super().__init__(fn, name=name, dtype=dtype, **fn_kwargs)
        self._direction = "down"

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


@keras.saving.register_keras_serializable(package=_PACKAGE, name="TriangularDivergenceMetric")
class TriangularDivergence(_KerasCCMetric):
    """Mean triangular divergence ``TRI(y, f)`` (correlations paper eq. 5), in ``[0, 1]``.

    Args:
        name: metric name. dtype: result dtype.
        from_logits: whether ``y_pred`` holds logits. axis: the class axis.

    Example:

    ```python
    m = keras_cc.metrics.TriangularDivergence()
    m.update_state([[0.0, 1.0]], [[0.2, 0.8]])
    m.result()  # 0.5 * (0.2**2 / 0.2 + 0.2**2 / 1.8) = 0.1111
    ```
    """

    def __init__(
        self, name="triangular_divergence", dtype=None, from_logits=False, axis=-1, **kwargs
    ):
        super().__init__(
            _losses.triangular_divergence,
            {"from_logits": from_logits, "axis": axis},
            name,
            dtype,
            **kwargs,
        )
        self.from_logits = from_logits
        self.axis = axis

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "axis": self.axis}


@keras.saving.register_keras_serializable(package=_PACKAGE, name="JensenShannonDivergenceMetric")
class JensenShannonDivergence(_KerasCCMetric):
    """Mean Jensen–Shannon divergence (correlations paper eq. 4, base 2), in ``[0, 1]``.

    Args:
        name: metric name. dtype: result dtype.
        from_logits: whether ``y_pred`` holds logits. axis: the class axis.
    """

    def __init__(
        self, name="jensen_shannon_divergence", dtype=None, from_logits=False, axis=-1, **kwargs
    ):
        super().__init__(
            _losses.jensen_shannon_divergence,
            {"from_logits": from_logits, "axis": axis},
            name,
            dtype,
            **kwargs,
        )
        self.from_logits = from_logits
        self.axis = axis

    def get_config(self):
        return {**super().get_config(), "from_logits": self.from_logits, "axis": self.axis}


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
    """

    def __init__(
        self,
        name="cc_negative_log_likelihood",
        dtype=None,
        from_logits=False,
        label_smoothing=0.0,
        temperature=1.0,
        axis=-1,
        **kwargs,
    ):
        label_smoothing = _losses._check_label_smoothing(label_smoothing)
        temperature = check_temperature(temperature)
        if temperature is None:
            raise ValueError("`temperature` must be a Python float > 0.")
        super().__init__(
            _cc_nll_with_smoothing,
            {
                "from_logits": from_logits,
                "label_smoothing": label_smoothing,
                "temperature": temperature,
                "axis": axis,
            },
            name,
            dtype,
            **kwargs,
        )
        self.from_logits = from_logits
        self.label_smoothing = label_smoothing
        self.temperature = temperature
        self.axis = axis

    def get_config(self):
        return {
            **super().get_config(),
            "from_logits": self.from_logits,
            "label_smoothing": self.label_smoothing,
            "temperature": self.temperature,
            "axis": self.axis,
        }


def _cc_nll_with_smoothing(y_true, y_pred, from_logits, label_smoothing, temperature, axis):
    """CC negative log-likelihood of (optionally label-smoothed) targets, per example."""
    if label_smoothing:
        y_true = _losses._smooth_along(y_true, label_smoothing, axis)
    return _losses.continuous_categorical_nll(
        y_true, y_pred, from_logits=from_logits, temperature=temperature, axis=axis
    )
