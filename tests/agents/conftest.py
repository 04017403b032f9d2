"""Routes tf.keras to Keras 2 before any test module imports TensorFlow or TF-Agents."""

import agents  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)
