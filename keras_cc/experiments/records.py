"""Atomic files (JSON, text, bytes): a reader never sees a partly written results file.

Every file is written to a temporary file in the same directory, flushed to disk and
moved over the destination with ``os.replace`` (atomic on POSIX and Windows). Temporary
files start with ``.tmp-``; :func:`remove_stale_temporaries` clears those left by a
killed process.
"""

from __future__ import annotations

import json
import math
import os
import tempfile

__all__ = [
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "read_json",
    "remove_stale_temporaries",
]

TEMPORARY_PREFIX = ".tmp-"


def _json_safe(value):
    """NaN and infinities become None (strict JSON); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def atomic_write_bytes(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` atomically (temporary file in the same directory)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        prefix=TEMPORARY_PREFIX, suffix=os.path.basename(path), dir=directory
    )
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp creates 0600 files
        os.replace(temporary, path)
    except BaseException:
        try:
            os.remove(temporary)
        except OSError:
            pass
        raise


def atomic_write_text(path: str, text: str) -> None:
    """Writes ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: str, obj) -> None:
    """Writes ``obj`` as strict JSON (NaN/inf as null) to ``path`` atomically."""
    atomic_write_text(path, json.dumps(_json_safe(obj), indent=1, sort_keys=True) + "\n")


def read_json(path: str):
    """The JSON content of ``path``, or None if the file does not exist."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None


def remove_stale_temporaries(directory: str) -> int:
    """Removes ``.tmp-*`` files left in ``directory`` by a killed writer; returns how many."""
    removed = 0
    if not os.path.isdir(directory):
        return removed
    for name in os.listdir(directory):
        if name.startswith(TEMPORARY_PREFIX):
            try:
                os.remove(os.path.join(directory, name))
                removed += 1
            except OSError:
                pass
    return removed
