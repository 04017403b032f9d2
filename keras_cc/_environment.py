"""The one place where keras_cc deals with TensorFlow's Keras routing.

TensorFlow decides what ``tf.keras`` is on its first use: Keras 2 (the ``tf_keras``
package) when the environment variable ``TF_USE_LEGACY_KERAS`` is ``1``/``true``, Keras 3
otherwise. ``import keras`` is Keras 3 either way. The two cannot be mixed in one model.

* TensorFlow Probability 0.24 and later work with Keras 3: ``import keras_cc`` sets
  nothing and changes no global state.
* TensorFlow Probability 0.23 (the version TF-Agents 0.19 pins) fails when
  ``tfp.distributions`` is first loaded while its ``tf.keras`` is Keras 3
  (``module 'keras._tf_keras.keras' has no attribute '__internal__'``). When the variable
  is not set, :func:`load_tensorflow_probability` sets it only while TFP is first loaded
  and then restores the environment: TFP binds its own ``tf.keras`` (it uses
  ``tensorflow.compat.v2``) to Keras 2, while the user's ``tf.keras`` and the environment
  stay as they were. When TFP 0.23 was already loaded with Keras 3, nothing can repair
  it in the running process, and the import raises an error that says what to do.

The ``keras_cc_agents`` package (TF-Agents 0.19 builds its networks with ``tf.keras``) sets the
variable for itself when it is imported; see ``agents/__init__.py``.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import os
import re
import sys
from collections.abc import Iterator

LEGACY_KERAS_VARIABLE = "TF_USE_LEGACY_KERAS"
LEGACY_KERAS_VALUES = ("1", "true", "True")  # what TensorFlow's lazy loader accepts
_FIRST_KERAS_3_RELEASE = (0, 24)  # first TensorFlow Probability release that runs on Keras 3


def _release(version: str) -> tuple[int, ...]:
    """(major, minor) of a version string such as ``0.23.0`` or ``0.25.0.dev20240101``."""
    match = re.match(r"(\d+)\.(\d+)", version)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def tensorflow_probability_version() -> str | None:
    """The installed TensorFlow Probability version, without importing it if possible."""
    module = sys.modules.get("tensorflow_probability")
    if module is not None and hasattr(module, "__version__"):
        return module.__version__
    for distribution in ("tensorflow-probability", "tfp-nightly"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def legacy_keras_requested() -> bool:
    """True when ``TF_USE_LEGACY_KERAS`` routes ``tf.keras`` to Keras 2."""
    return os.environ.get(LEGACY_KERAS_VARIABLE) in LEGACY_KERAS_VALUES


def tensorflow_probability_needs_legacy_keras() -> bool:
    """True when the installed TFP needs ``tf.keras`` to be Keras 2 (TFP 0.23 and older)."""
    version = tensorflow_probability_version()
    return version is not None and _release(version) < _FIRST_KERAS_3_RELEASE


@contextlib.contextmanager
def _legacy_keras_while_loading() -> Iterator[None]:
    """Sets ``TF_USE_LEGACY_KERAS=1`` inside the block and restores the previous value."""
    previous = os.environ.get(LEGACY_KERAS_VARIABLE)
    os.environ[LEGACY_KERAS_VARIABLE] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(LEGACY_KERAS_VARIABLE, None)
        else:
            os.environ[LEGACY_KERAS_VARIABLE] = previous


def load_tensorflow_probability() -> None:
    """Loads ``tfp.distributions`` so that it works with the installed TFP.

    With TFP >= 0.24, or with ``TF_USE_LEGACY_KERAS`` already set, there is nothing to do.
    With TFP 0.23 it imports TensorFlow as the environment stands, then loads TFP with
    ``TF_USE_LEGACY_KERAS=1`` set for the duration of that load only.

    Raises:
      ImportError: TFP 0.23 was already loaded with Keras 3 in this process.
    """
    if not tensorflow_probability_needs_legacy_keras() or legacy_keras_requested():
        return

    import tensorflow  # noqa: F401  (first, under the user's own environment)

    try:
        with _legacy_keras_while_loading():
            import tensorflow_probability as tfp

            # TFP loads its subpackages lazily; this binds its tf.keras while the variable
            # is set.
            tfp.distributions.Distribution  # noqa: B018
    except AttributeError as error:
        raise ImportError(
            f"keras_cc: TensorFlow Probability {tensorflow_probability_version()} needs "
            "tf.keras to be Keras 2, but TensorFlow Probability was already used with "
            "Keras 3 in this process, and that cannot be undone. Do one of: upgrade it "
            "(`pip install 'tensorflow-probability>=0.24' tf-keras`, which works with "
            "Keras 3); import keras_cc before using tensorflow_probability; or start Python "
            f"with {LEGACY_KERAS_VARIABLE}=1 in the environment."
        ) from error
