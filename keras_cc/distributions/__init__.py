"""TensorFlow Probability distributions of keras-cc."""

from keras_cc.distributions.continuous_categorical import ContinuousCategorical

__all__ = ["ContinuousCategorical"]
