"""TF-Agents side of keras-cc: Atari environments, DQN experts and actor-mimic distillation.

Depends on ``keras_cc.ops`` only (never on keras_cc's Keras 3 objects).
"""

from keras_cc import _environment  # noqa: F401  (must run before TensorFlow is imported)
