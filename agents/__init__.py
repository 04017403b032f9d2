"""TF-Agents side of keras-cc: Atari environments, DQN experts and actor-mimic distillation.

Installed as ``keras_cc_agents`` from the repository's ``agents/`` folder by the research
distribution (``research/pyproject.toml``). Needs its ``rl`` extra (``pip install -e . -e
"./research[rl]"`` in a clone of keras-cc); importing ``keras_cc_agents`` without it raises
an ImportError that names the extra. Depends on ``keras_cc.ops`` only
(never on keras_cc's Keras 3 objects); ``import keras_cc_agents`` itself imports no keras_cc
module.

TF-Agents 0.19 builds its networks with ``tf.keras`` and needs it to be Keras 2 (the
``tf_keras`` package). TensorFlow picks what ``tf.keras`` is on its first use, from the
environment variable ``TF_USE_LEGACY_KERAS``, so this package sets ``TF_USE_LEGACY_KERAS=1``
when it is imported: this is the one place where the agents side routes ``tf.keras``.
``import keras`` stays Keras 3. Import ``keras_cc_agents`` before anything uses ``tf.keras``; if
``tf.keras`` was already used as Keras 3, the import raises an ImportError that says so.
"""

import importlib.util
import os
import sys
import warnings

from keras_cc_runs import extras

# What the rl extra installs that agents imports: import name -> distribution name.
_RL_EXTRA = {
    "tf_agents": "tf-agents",
    "tf_keras": "tf-keras",
    "gymnasium": "gymnasium",
    "ale_py": "ale-py",
    "cv2": "opencv-python-headless",
}


def _require_rl_extra() -> None:
    """Raises an ImportError naming the ``rl`` extra if one of its packages is missing.

    Looks the packages up without importing them (TF-Agents imports TensorFlow).
    """
    missing = [dist for name, dist in _RL_EXTRA.items() if importlib.util.find_spec(name) is None]
    if missing:
        raise ImportError(
            f"keras_cc_agents needs {', '.join(missing)}, which are not installed. Install the rl "
            f"extra: {extras.install_command('rl')} in a clone of keras-cc.",
            name="keras_cc_agents",
        )


_LEGACY_KERAS_VARIABLE = "TF_USE_LEGACY_KERAS"
_LEGACY_KERAS_VALUES = ("1", "true", "True")  # what TensorFlow's lazy loader accepts


def _route_tf_keras_to_keras_2() -> None:
    """Sets ``TF_USE_LEGACY_KERAS=1``; checks ``tf.keras`` if TensorFlow is already imported."""
    previous = os.environ.get(_LEGACY_KERAS_VARIABLE)
    if previous not in _LEGACY_KERAS_VALUES:
        if previous is not None:
            warnings.warn(
                f"{_LEGACY_KERAS_VARIABLE}={previous!r} is overridden to '1': TF-Agents needs "
                "tf.keras to be Keras 2. `import keras` is still Keras 3.",
                stacklevel=3,
            )
        os.environ[_LEGACY_KERAS_VARIABLE] = "1"
    tensorflow = sys.modules.get("tensorflow")
    if tensorflow is None:
        return
    # TensorFlow is imported: tf.keras is fixed on its first use, which may have happened.
    if not tensorflow.keras.layers.Layer.__module__.startswith("tf_keras"):
        raise ImportError(
            "keras_cc_agents needs tf.keras to be Keras 2 (tf_keras) for TF-Agents, but "
            "tf.keras was already used as Keras 3 in this process. Import keras_cc_agents "
            "before anything uses "
            f"tf.keras, or start Python with {_LEGACY_KERAS_VARIABLE}=1 in the environment."
        )


def import_gym_quietly() -> None:
    """Imports ``gym`` without the notice it prints to stderr on import.

    TF-Agents 0.19 imports the old ``gym`` 0.23, which prints a notice asking to move to
    gymnasium (this package uses gymnasium; TF-Agents' import of gym is not ours to
    change). Scripts call this before importing TF-Agents unless ``--verbosity`` is given.
    """
    import contextlib
    import io

    if "gym" in sys.modules:
        return
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            import gym  # noqa: F401
        except ImportError:
            pass


_require_rl_extra()
_route_tf_keras_to_keras_2()
