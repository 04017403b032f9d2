"""keras-cc: the continuous-categorical distribution for Keras 3 and TensorFlow Probability.

``import keras_cc`` imports the library: :mod:`keras_cc.ops` (pure TensorFlow),
:mod:`keras_cc.distributions` (TensorFlow Probability), :mod:`keras_cc.losses` and
:mod:`keras_cc.metrics` (Keras 3, on its TensorFlow, JAX and PyTorch backends) and
:class:`ContinuousCategoricalDistillation` (``keras.distillation``). It sets no
environment variable and leaves ``tf.keras`` as it is (see ``keras_cc/_environment.py``
for TensorFlow Probability 0.23).

The research code of the repository (the label-smoothing experiments, the correlation
study, the actor-mimic agents) is not part of this package: it installs as
``keras-cc-research`` from ``research/`` in a clone.
"""

from keras_cc import _environment

_environment.load_tensorflow_probability()

import keras

from keras_cc import distributions, losses, metrics, ops
from keras_cc.distributions import ContinuousCategorical
from keras_cc.losses import (
    CCLabelSmoothing,
    ContinuousCategoricalLoss,
    JensenShannonDivergence,
    SparseCCLabelSmoothing,
    TriangularDivergence,
)

if hasattr(keras, "distillation"):  # keras.distillation came with Keras 3.12
    from keras_cc.distillation import ContinuousCategoricalDistillation

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "ContinuousCategoricalDistillation":
        raise AttributeError(
            "keras_cc.ContinuousCategoricalDistillation needs keras.distillation "
            f"(Keras 3.12 or newer); this is Keras {keras.__version__}."
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
