"""The one place where keras_cc configures TensorFlow's Keras routing.

TensorFlow Probability 0.23 and TF-Agents 0.19 need ``tf.keras`` to be Keras 2
(``tf_keras``); ``import keras`` stays Keras 3 either way. TensorFlow resolves
``tf.keras`` lazily, so setting the variable here works even when the user imported
TensorFlow first.
"""

import os
import warnings

_VARIABLE = "TF_USE_LEGACY_KERAS"


def configure_tensorflow_keras() -> None:
    """Route ``tf.keras`` to Keras 2 before TensorFlow Probability is imported."""
    previous = os.environ.get(_VARIABLE)
    if previous not in (None, "1", "true", "True"):
        warnings.warn(
            f"{_VARIABLE}={previous!r} is overridden to '1': TensorFlow Probability and "
            "TF-Agents need tf.keras to be Keras 2. `import keras` is still Keras 3.",
            stacklevel=3,
        )
    os.environ[_VARIABLE] = "1"


configure_tensorflow_keras()
