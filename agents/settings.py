"""Checks of run settings (dataclass fields) with errors that name the setting."""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable
from typing import Any


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def require_at_least(settings: Any, names: Iterable[str], minimum: float) -> None:
    """Raises ValueError naming the first of `names` that is not a finite number >= minimum."""
    for name in names:
        value = getattr(settings, name)
        if not (_is_number(value) and value >= minimum):
            raise ValueError(f"{name} must be >= {minimum}, got {value!r}.")


def require_positive(settings: Any, names: Iterable[str]) -> None:
    """Raises ValueError naming the first of `names` that is not a finite number > 0."""
    for name in names:
        value = getattr(settings, name)
        if not (_is_number(value) and value > 0):
            raise ValueError(f"{name} must be > 0, got {value!r}.")


def require_probability(settings: Any, names: Iterable[str]) -> None:
    """Raises ValueError naming the first of `names` that is not in [0, 1]."""
    for name in names:
        value = getattr(settings, name)
        if not (_is_number(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"{name} must be in [0, 1], got {value!r}.")
