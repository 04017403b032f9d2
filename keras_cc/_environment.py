"""The one place where keras_cc configures TensorFlow's Keras routing.

TensorFlow Probability 0.23 and TF-Agents 0.19 need ``tf.keras`` to be Keras 2
(``tf_keras``); ``import keras`` stays Keras 3 either way. TensorFlow resolves
``tf.keras`` lazily, so setting the variable here works even when the user imported
TensorFlow first.
"""

import os
import warnings

_VARIABLE = "TF_USE_LEGACY_KERAS"
_NATIVE_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"


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
    # TensorFlow's native INFO lines (CPU features, XLA service start-up) are noise to
    # users; warnings and errors still show. A value the user set is kept.
    os.environ.setdefault(_NATIVE_LOG_LEVEL, "1")


def quiet_script_logging() -> None:
    """For absl scripts: log at WARNING unless ``--verbosity``/``-v`` was given.

    ``app.run`` logs at INFO, where TensorFlow and TF-Agents report checkpoint bookkeeping
    on every save and would bury the scripts' own progress lines.
    """
    from absl import flags, logging

    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)


configure_tensorflow_keras()
