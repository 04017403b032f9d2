"""Imports keras_cc before any test module imports TensorFlow Probability or TF-Agents.

keras_cc routes tf.keras to Keras 2 (TF_USE_LEGACY_KERAS=1), which TFP 0.23 needs at import.
"""

import keras_cc  # noqa: F401
