"""The error that names the pip extra a research package needs.

The research packages (``keras_cc_experiments``, ``keras_cc_analysis``, ``keras_cc_agents``)
install with the ``keras-cc-research`` distribution of ``research/pyproject.toml``; each
extra of it adds what one of them imports beyond the library.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

# Import name -> distribution name, for the error that names a missing extra.
_DISTRIBUTIONS = {
    "absl": "absl-py",
    "matplotlib": "matplotlib",
    "scipy": "scipy",
    "sklearn": "scikit-learn",
    "tensorboard": "tensorboard",
}


def install_command(extra: str) -> str:
    """The command that installs the library and the research extra ``extra`` from a clone."""
    return f'pip install -e . -e "./research[{extra}]"'


def require_extra(package: str, extra: str, modules: Sequence[str]) -> None:
    """Raises ImportError naming the pip extra when one of ``modules`` cannot be imported.

    Args:
      package: the importing package, for the message (e.g. ``keras_cc_analysis``).
      extra: the extra of ``keras-cc-research`` that installs ``modules`` (e.g.
        ``analysis``).
      modules: top-level import names (e.g. ``sklearn``).

    Raises:
      ImportError: naming the missing distributions and the command that installs them.
    """
    missing, cause = [], None
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as error:
            missing.append(_DISTRIBUTIONS.get(module, module))
            cause = cause or error
    if missing:
        raise ImportError(
            f"{package} needs {', '.join(missing)}, which cannot be imported. Install the "
            f"extra: {install_command(extra)} in a clone of keras-cc",
            name=package,
        ) from cause
