"""keras-cc: the continuous-categorical distribution for Keras 3 and TensorFlow Probability.

The library: :mod:`keras_cc.ops` (pure TensorFlow), :mod:`keras_cc.distributions`
(TensorFlow Probability), :mod:`keras_cc.losses` and :mod:`keras_cc.metrics` (Keras 3, on
its TensorFlow, JAX and PyTorch backends) and :class:`ContinuousCategoricalDistillation`
(``keras.distillation``). Each submodule is loaded on first use (``keras_cc.losses``,
``keras_cc.CCLabelSmoothing``, ``import keras_cc.ops``), so ``import keras_cc.ops`` loads no
Keras object of keras_cc and no TensorFlow Probability (but for TensorFlow Probability
0.23 without ``TF_USE_LEGACY_KERAS=1``, which ``import keras_cc`` loads at once to route
its ``tf.keras``: ``keras_cc/_environment.py``); a saved model that holds keras_cc objects
loads after ``import keras_cc`` alone (``keras_cc/_saving.py``). It sets no environment
variable and leaves ``tf.keras`` as it is.

The research code of the repository (the label-smoothing experiments, the correlation
study, the actor-mimic agents) is not part of this package: it installs as
``keras-cc-research`` from ``research/`` in a clone.
"""

import importlib

from keras_cc import _environment

_environment.load_tensorflow_probability()

import keras  # noqa: E402  (after TensorFlow Probability 0.23's routing of tf.keras)

from keras_cc import _saving  # noqa: E402

__version__ = "0.1.0"

_HAS_DISTILLATION = hasattr(keras, "distillation")  # keras.distillation came with Keras 3.12

_SUBMODULES = ("distributions", "losses", "metrics", "ops")
# Public name -> the submodule that defines it.
_ATTRIBUTES = {
    "ContinuousCategorical": "keras_cc.distributions",
    "CCLabelSmoothing": "keras_cc.losses",
    "SparseCCLabelSmoothing": "keras_cc.losses",
    "ContinuousCategoricalLoss": "keras_cc.losses",
    "TriangularDivergence": "keras_cc.losses",
    "JensenShannonDivergence": "keras_cc.losses",
    "ContinuousCategoricalDistillation": "keras_cc.distillation",
}

_saving.register_stand_ins(unavailable=() if _HAS_DISTILLATION else ("keras_cc.distillation",))


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"keras_cc.{name}")
    if name == "ContinuousCategoricalDistillation" and not _HAS_DISTILLATION:
        raise AttributeError(
            "keras_cc.ContinuousCategoricalDistillation needs keras.distillation "
            f"(Keras 3.12 or newer); this is Keras {keras.__version__}."
        )
    if name in _ATTRIBUTES:
        value = getattr(importlib.import_module(_ATTRIBUTES[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(
        name for name in __all__ if _HAS_DISTILLATION or name != "ContinuousCategoricalDistillation"
    )


__all__ = [
    "ContinuousCategorical",
    "ContinuousCategoricalDistillation",
    "ops",
    "__version__",
    "distributions",
    "losses",
    "metrics",
    "CCLabelSmoothing",
    "SparseCCLabelSmoothing",
    "ContinuousCategoricalLoss",
    "TriangularDivergence",
    "JensenShannonDivergence",
]
