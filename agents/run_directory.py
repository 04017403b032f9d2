"""Run directories of the long trainings (DQN experts, actor-mimic students).

A run directory holds a `config.json` with the run's settings and result files that are
rewritten atomically (a temporary file in the same directory, then `os.replace`), so an
interrupted run never leaves a half-written file. `prepare_run_directory` applies the rule
both trainers share: a new directory starts a run, an unfinished run with compatible
settings resumes, and a finished run or a run with other settings is only replaced with
`overwrite`.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from typing import Any


class RunDirectoryError(ValueError):
    """The output directory holds a finished run, or a run with incompatible settings."""


# --------------------------------------------------------------------------- files


def write_atomically(path: str, text: str) -> None:
    """Writes `text` to `path` through a temporary file in the same directory."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "w", newline="") as f:
            f.write(text)
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.remove(temporary)
        raise


def write_json(path: str, values: Any) -> None:
    """Writes `values` as indented, key-sorted JSON, atomically."""
    write_atomically(path, json.dumps(values, indent=2, sort_keys=True) + "\n")


def read_json(path: str) -> Any:
    with open(path) as f:
        return json.load(f)


def write_csv(path: str, columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> None:
    """Writes `rows` (the given `columns` of each) as a CSV file with a header, atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({column: row[column] for column in columns})
    write_atomically(path, buffer.getvalue())


def read_csv(path: str) -> list[dict[str, str]]:
    """Rows of a CSV file written by `write_csv` (empty if it does not exist yet)."""
    if not os.path.exists(path):
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def replace_directory(temporary: str, directory: str) -> None:
    """Moves the completely written `temporary` directory to `directory`, replacing it.

    The old `directory` is moved aside first and deleted last, so at every moment one
    complete version exists.
    """
    previous = directory + ".old"
    shutil.rmtree(previous, ignore_errors=True)
    if os.path.exists(directory):
        os.replace(directory, previous)
    os.replace(temporary, directory)
    shutil.rmtree(previous, ignore_errors=True)


# --------------------------------------------------------------------------- the run rule


def differing_settings(
    previous: dict[str, Any], current: dict[str, Any], keys: Iterable[str]
) -> list[str]:
    """ "key: old there, new here" for each of `keys` whose value differs."""
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
      config: the run's settings (JSON values), written to `run_dir/config.json`.
      overwrite: delete an existing run (a directory with config.json) first.
      finished: returns why the run in `run_dir` counts as finished (e.g. "result.json"),
        or None when it does not.
      differences: given the previous config.json, describes each setting that forbids a
        resume (empty when the run may resume).

    Raises:
      RunDirectoryError: a finished run, or an unfinished run with other settings, and
        no `overwrite`.
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
