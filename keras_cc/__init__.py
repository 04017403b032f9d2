"""keras-cc: the continuous-categorical distribution for Keras 3 and TensorFlow Probability."""

from keras_cc import (
    _environment,  # noqa: F401  (must run before TensorFlow is imported)
    analysis,
    losses,
    metrics,
    ops,
)
from keras_cc.distributions import ContinuousCategorical
from keras_cc.losses import (
    CCLabelSmoothing,
    ContinuousCategoricalLoss,
    JensenShannonDivergence,
    SparseCCLabelSmoothing,
    TriangularDivergence,
)

__version__ = "0.1.0"

__all__ = [
    "ContinuousCategorical",
    "ops",
    "__version__",
    "losses",
    "metrics",
    "analysis",
    "CCLabelSmoothing",
    "SparseCCLabelSmoothing",
    "ContinuousCategoricalLoss",
    "TriangularDivergence",
    "JensenShannonDivergence",
]
