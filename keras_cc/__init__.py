"""keras-cc: the continuous-categorical distribution for Keras 3 and TensorFlow Probability."""

from keras_cc import _environment  # noqa: F401  (must run before TensorFlow is imported)
from keras_cc import ops
from keras_cc.distributions import ContinuousCategorical

__version__ = "0.1.0"

__all__ = ["ContinuousCategorical", "ops", "__version__"]
