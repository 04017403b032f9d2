"""Run directories and atomic result files: JSON, CSV rows, text, figures, whole directories.

Every file is written to a temporary file in the destination's directory (named
``.tmp-*``), flushed to disk, given the permissions of a normally created file and moved
over the destination with ``os.replace``, which is atomic on POSIX and Windows: a reader,
or a rerun after a kill, sees the old content or the new one, never a part.
:func:`remove_stale_temporaries` clears the temporaries a killed writer left.

Reads name the file they could not parse (:class:`DamagedFileError`), so that a truncated
``config.json`` or record is reported as such instead of as a bare ``JSONDecodeError``.

A *run directory* holds a ``config.json`` with the run's settings next to its results.
:func:`prepare_run_directory` applies the rule the long trainings share: a new directory
starts a run, an unfinished run with compatible settings resumes, and a finished run or a
run with other settings is replaced only with ``overwrite``. :class:`DirectoryLock` keeps
a second runner out of a directory in use, and :func:`check_output_dir` checks an
``--output_dir`` flag before any work starts.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "TEMPORARY_PREFIX",
    "DamagedFileError",
    "DirectoryLock",
    "RunDirectoryError",
    "check_output_dir",
    "differing_settings",
    "prepare_run_directory",
    "read_csv",
    "read_json",
    "remove_stale_temporaries",
    "replace_directory",
    "write_bytes",
    "write_csv",
    "write_figure",
    "write_json",
    "write_text",
]

TEMPORARY_PREFIX = ".tmp-"
LOCK_SUFFIX = ".lock"
_MISSING = object()


class DamagedFileError(ValueError):
    """A results file exists but cannot be read (truncated, or not what it should be).

    Attributes:
      path: the file.
    """

    def __init__(self, path: str, reason: str):
        super().__init__(
            f"{path} is damaged ({reason}). Delete it to redo what it records, or restore it."
        )
        self.path = path


class RunDirectoryError(ValueError):
    """The output directory holds a finished run, a run with other settings, or is in use."""


# ---------------------------------------------------------------------------- writing


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_bytes(path: str, data: bytes) -> None:
    """Writes `data` to `path` atomically; creates the parent directory.

    Raises:
      OSError: the directory cannot be created or written; `path` keeps its old content.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=directory, prefix=TEMPORARY_PREFIX, suffix=os.path.basename(path)
    )
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp creates 0600 files
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def write_text(path: str, text: str) -> None:
    """Writes `text` (UTF-8, newlines as given) to `path` atomically."""
    write_bytes(path, text.encode("utf-8"))


def _strict(value: Any) -> Any:
    """NaN and infinities become None; NumPy scalars and arrays become Python values."""
    if isinstance(value, dict):
        return {str(key): _strict(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict(item) for item in value]
    if hasattr(value, "tolist") and callable(value.tolist):  # NumPy scalar or array
        return _strict(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str, value: Any, *, indent: int = 2, strict: bool = False) -> None:
    """Writes `value` as key-sorted JSON (and a final newline) to `path` atomically.

    Args:
      path: the destination.
      value: JSON values; with `strict`, NumPy values too.
      indent: spaces per level (the DQN and actor-mimic runs use 2, the ablation records 1).
      strict: write NaN and infinities as ``null`` (strict JSON) instead of ``NaN``.
    """
    if strict:
        value = _strict(value)
    write_text(path, json.dumps(value, indent=indent, sort_keys=True) + "\n")


def write_csv(path: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Writes `rows` (the given `columns` of each, in order) with a header, atomically.

    Raises:
      KeyError: a row lacks one of `columns`.
    """
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: row[column] for column in columns})
    write_text(path, buffer.getvalue())


def write_figure(figure: Any, path: str, *, dpi: int = 120, **savefig_kwargs: Any) -> None:
    """Saves a matplotlib figure to `path` atomically (format from the suffix, e.g. .png)."""
    buffer = io.BytesIO()
    file_format = os.path.splitext(path)[1].lstrip(".") or "png"
    figure.savefig(buffer, format=file_format, dpi=dpi, **savefig_kwargs)
    write_bytes(path, buffer.getvalue())


def replace_directory(temporary: str, directory: str) -> None:
    """Moves the completely written `temporary` directory to `directory`, replacing it.

    The old `directory` is moved aside first (``<directory>.old``) and deleted last, so at
    every moment one complete version exists.
    """
    previous = directory + ".old"
    shutil.rmtree(previous, ignore_errors=True)
    if os.path.exists(directory):
        os.replace(directory, previous)
    os.replace(temporary, directory)
    shutil.rmtree(previous, ignore_errors=True)


def remove_stale_temporaries(directory: str) -> int:
    """Removes the ``.tmp-*`` files a killed writer left in `directory`; returns how many."""
    removed = 0
    if not os.path.isdir(directory):
        return removed
    for name in os.listdir(directory):
        if name.startswith(TEMPORARY_PREFIX):
            with contextlib.suppress(OSError):
                os.remove(os.path.join(directory, name))
                removed += 1
    return removed


# ---------------------------------------------------------------------------- reading


def read_json(path: str, default: Any = _MISSING) -> Any:
    """The JSON content of `path`.

    Args:
      path: the file.
      default: returned when `path` does not exist; without it a missing file raises.

    Raises:
      FileNotFoundError: `path` does not exist and no `default` was given.
      DamagedFileError: `path` exists but is not valid JSON (e.g. truncated).
    """
    try:
        with open(path, encoding="utf-8") as stream:
            text = stream.read()
    except FileNotFoundError:
        if default is _MISSING:
            raise
        return default
    except UnicodeDecodeError as error:
        raise DamagedFileError(path, f"not UTF-8 text: {error.reason}") from error
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        reason = "empty" if not text.strip() else f"invalid JSON at line {error.lineno}"
        raise DamagedFileError(path, reason) from error


def read_csv(path: str) -> list[dict[str, str]]:
    """Rows of a CSV file with a header, as dicts of strings (empty if it does not exist).

    Raises:
      DamagedFileError: a row has more or fewer fields than the header.
    """
    if not os.path.exists(path):
        return []
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    for number, row in enumerate(rows, start=2):
        if None in row or any(value is None for value in row.values()):
            raise DamagedFileError(path, f"line {number} does not match the header")
    return rows


# ---------------------------------------------------------------------------- the run rule


def differing_settings(
    previous: dict[str, Any], current: dict[str, Any], keys: Iterable[str]
) -> list[str]:
    """``"key: old there, new here"`` for each of `keys` whose value differs."""
    return [
        f"{key}: {previous.get(key)!r} there, {current.get(key)!r} here"
        for key in keys
        if previous.get(key) != current.get(key)
    ]


def prepare_run_directory(
    run_dir: str,
    config: dict[str, Any],
    *,
    overwrite: bool,
    finished: Callable[[], str | None],
    differences: Callable[[dict[str, Any]], list[str]],
) -> bool:
    """Creates, checks or (with `overwrite`) replaces a run directory; True on a resume.

    Args:
      run_dir: the run directory.
      config: the run's settings (JSON values), written to ``run_dir/config.json``.
      overwrite: delete an existing run (a directory with config.json) first.
      finished: returns why the run in `run_dir` counts as finished (e.g. "result.json"),
        or None when it does not.
      differences: given the previous config.json, describes each setting that forbids a
        resume (empty when the run may resume).

    Raises:
      RunDirectoryError: a finished run, or an unfinished run with other settings, and
        no `overwrite`.
      DamagedFileError: the previous config.json cannot be read (without `overwrite`).
    """
    config_path = os.path.join(run_dir, "config.json")
    if os.path.exists(config_path) and overwrite:
        shutil.rmtree(run_dir)
    resumed = os.path.exists(config_path)
    if resumed:
        reason = finished()
        if reason is not None:
            raise RunDirectoryError(
                f"{run_dir} already holds a finished run ({reason}). Pass --overwrite to "
                "replace it, or choose another --output_dir."
            )
        different = differences(read_json(config_path))
        if different:
            raise RunDirectoryError(
                f"{run_dir} holds an unfinished run with other settings "
                f"({'; '.join(different)}); it cannot be resumed with these. Pass "
                "--overwrite to start over, or choose another --output_dir."
            )
    os.makedirs(run_dir, exist_ok=True)
    write_json(config_path, config)
    return resumed


class DirectoryLock:
    """An exclusive, advisory lock on a directory, for one runner at a time.

    The lock file sits beside the directory (``<parent>/.<name>.lock``), so that replacing
    the directory (``--overwrite``) keeps it. It is held by an open file
    (``fcntl.flock``): the operating system releases it when the process ends, however it
    ends. Where ``fcntl`` does not exist (Windows) the lock does nothing.

    Usage::

        with DirectoryLock(run_dir):
            ...  # only this process works in run_dir

    Raises (on entry):
      RunDirectoryError: another process holds the lock.
    """

    def __init__(self, directory: str):
        self.directory = directory
        self._stream = None

    def __enter__(self) -> DirectoryLock:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks here
            return self
        absolute = os.path.abspath(self.directory)
        parent, name = os.path.split(absolute.rstrip(os.sep))
        os.makedirs(parent, exist_ok=True)
        stream = open(os.path.join(parent, f".{name}{LOCK_SUFFIX}"), "a+")  # noqa: SIM115
        try:
            fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            stream.seek(0)
            holder = stream.read().strip() or "another process"
            stream.close()
            raise RunDirectoryError(
                f"{self.directory} is in use by {holder}; wait for it to finish or stop it, "
                "or choose another --output_dir."
            ) from error
        stream.seek(0)
        stream.truncate()
        stream.write(f"process {os.getpid()}\n")
        stream.flush()
        self._stream = stream
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._stream is not None:
            self._stream.close()  # releases the lock
            self._stream = None


def check_output_dir(path: str, flag: str = "--output_dir") -> str:
    """Checks that `path` is, or can become, a writable directory; returns its absolute path.

    Nothing is left behind (a nameless temporary file probes the nearest existing
    directory). For scripts, before any work starts.

    Raises:
      ValueError: naming `flag`: `path` is empty, a file, or inside a directory this
        process cannot write.
    """
    if not path:
        raise ValueError(f"{flag} is empty.")
    absolute = os.path.abspath(os.path.expanduser(path))
    if os.path.exists(absolute) and not os.path.isdir(absolute):
        raise ValueError(f"{flag}={path!r} is a file, not a directory.")
    existing = absolute
    while not os.path.exists(existing):
        parent = os.path.dirname(existing)
        if parent == existing:
            break
        existing = parent
    if not os.path.isdir(existing):
        raise ValueError(f"{flag}={path!r}: {existing} is a file, not a directory.")
    try:  # os.access says yes to root even on read-only or special file systems
        with tempfile.TemporaryFile(dir=existing, prefix=TEMPORARY_PREFIX):
            pass
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise ValueError(f"{flag}={path!r}: cannot write in {existing} ({reason}).") from None
    return absolute
