"""Atomic files (JSON, text, bytes) for the experiments: a reader never sees a partly
written results file.

A thin layer over :mod:`keras_cc_runs.run_directory`, which writes every file to a
temporary ``.tmp-*`` file in the same directory, flushes it to disk and moves it over the
destination with ``os.replace`` (atomic on POSIX and Windows). What it fixes for the
experiments: records are strict JSON (NaN and infinities as ``null``), key-sorted, with
an indent of 1, so that an interrupted and resumed cell writes the same bytes as an
uninterrupted one.
"""

from __future__ import annotations

from keras_cc_runs import run_directory
from keras_cc_runs.run_directory import TEMPORARY_PREFIX, remove_stale_temporaries

__all__ = [
    "TEMPORARY_PREFIX",
    "atomic_write_bytes",
    "atomic_write_json",
    "atomic_write_text",
    "read_json",
    "remove_stale_temporaries",
]

atomic_write_bytes = run_directory.write_bytes
atomic_write_text = run_directory.write_text


def atomic_write_json(path: str, obj) -> None:
    """Writes ``obj`` as strict, key-sorted JSON (indent 1; NaN/inf as null) atomically."""
    run_directory.write_json(path, obj, indent=1, strict=True)


def read_json(path: str):
    """The JSON content of ``path``, or None if the file does not exist.

    Raises:
        keras_cc_runs.run_directory.DamagedFileError: the file is not valid JSON.
    """
    return run_directory.read_json(path, default=None)
