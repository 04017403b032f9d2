"""The ablation grid: cells run in-process, in local worker processes, or as Ray tasks.

Every cell (row × loss × seed) is independent and leaves exactly one record file,
``<output_dir>/cells/<cell_id>.json``, written atomically by :func:`training.run_cell`.
The results directory is the only state: a rerun with the same settings skips every
cell that has a record (finished or failed; ``retry_failed`` reruns the failed ones),
and a cell killed at any moment resumes from its last checkpoint and ends with the record
of the uninterrupted run (see ``training``). The three engines share these semantics:

* ``workers=1``: cells run one after another in this process;
* ``workers>1``: a pool of ``workers`` spawned processes, each limited to its share of
  the CPU threads, running one table entry (a row and loss, all its seeds) at a time;
* ``ray_address``: one Ray task per cell on the cluster at that address (``"local"``
  starts a local Ray). Tasks write their records on the worker node and return them;
  the driver writes each returned record into its own ``output_dir`` as well, so
  results arrive even where the nodes share no file system.

The three engines are :func:`keras_cc_runs.launcher.launch` calls.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Sequence

from keras_cc_experiments import model as model_lib
from keras_cc_experiments import training
from keras_cc_experiments.records import atomic_write_json, read_json, remove_stale_temporaries
from keras_cc_runs import launcher

__all__ = [
    "ConfigMismatchError",
    "GridProgress",
    "check_records",
    "enumerate_cells",
    "group_by_entry",
    "load_records",
    "pending_cells",
    "run_grid",
]

CONFIG_FILE = "config.json"


class ConfigMismatchError(ValueError):
    """The output directory holds results of a grid run with different settings."""


def _protocol_of(config: dict | None) -> str:
    """The protocol of a stored config; records before protocols ran ``standard``."""
    return (config or {}).get("protocol") or "standard"


def check_protocol(output_dir: str, records: dict[str, dict], config: training.TrainingConfig):
    """Raises :class:`ConfigMismatchError` (one line) when ``output_dir`` already holds
    cells, or a grid's ``config.json``, of another protocol."""
    stored = read_json(os.path.join(output_dir, CONFIG_FILE))
    sources = [("config.json", stored.get("config"))] if stored else []
    sources += [(f"cell {cid}", r.get("config")) for cid, r in sorted(records.items())]
    for where, theirs in sources:
        if _protocol_of(theirs) != config.protocol:
            raise ConfigMismatchError(
                f"--protocol={config.protocol}, but {output_dir} holds results of "
                f"--protocol={_protocol_of(theirs)} ({where}); a results directory holds one "
                "protocol: use another --output_dir."
            )


def enumerate_cells(
    rows: Sequence[model_lib.Regularizers], losses: Sequence[str], seeds: Sequence[int]
) -> list[training.Cell]:
    """All cells, row by row and loss by loss; the seeds of an entry are consecutive.

    Consecutive cells that differ only in their seed reuse one compiled model in a
    process (see ``training.run_cell``).
    """
    if not rows or not losses or not seeds:
        raise ValueError(
            f"The grid needs at least one row, loss and seed; received {len(rows)} rows, "
            f"{len(losses)} losses, {len(seeds)} seeds."
        )
    for name, values in (("rows", rows), ("losses", losses), ("seeds", seeds)):
        if len(set(values)) != len(values):
            raise ValueError(f"{name} has duplicates: {list(values)}.")
    return [
        training.Cell(row, loss, int(seed)) for row in rows for loss in losses for seed in seeds
    ]


def group_by_entry(cells: Sequence[training.Cell]) -> list[list[training.Cell]]:
    """Consecutive runs of cells sharing row and loss (one table entry, many seeds)."""
    groups: list[list[training.Cell]] = []
    for cell in cells:
        if groups and (groups[-1][0].regularizers, groups[-1][0].loss) == (
            cell.regularizers,
            cell.loss,
        ):
            groups[-1].append(cell)
        else:
            groups.append([cell])
    return groups


def load_records(output_dir: str, cells: Iterable[training.Cell]) -> dict[str, dict]:
    """The records present in ``output_dir`` for ``cells``, keyed by cell id."""
    records = {}
    for cell in cells:
        record = read_json(training.cell_paths(output_dir, cell)["record"])
        if record is not None:
            records[cell.cell_id] = record
    return records


def check_records(
    output_dir: str, records: dict[str, dict], config: training.TrainingConfig
) -> None:
    """Raises :class:`ConfigMismatchError` (one line) when ``records`` (or the grid's
    ``config.json``) were made under another protocol or other result settings than
    ``config``."""
    check_protocol(output_dir, records, config)
    _check_fingerprints(records, config)


def _check_fingerprints(records: dict[str, dict], config: training.TrainingConfig) -> None:
    expected = config.fingerprint()
    ours = config.result_settings()
    for cell_id, record in records.items():
        if record.get("config_fingerprint") == expected:
            continue
        theirs = record.get("config", {})
        differences = [
            f"{name}: {theirs.get(name)!r} there, {ours[name]!r} now"
            for name in ours
            if _normalized(theirs.get(name)) != _normalized(ours[name])
        ]
        raise ConfigMismatchError(
            f"The output directory already holds results made with other settings "
            f"(cell {cell_id}: {'; '.join(differences) or 'different fingerprint'}). "
            "Use another --output_dir, or the same settings to resume."
        )


def _normalized(value):
    return list(value) if isinstance(value, (list, tuple)) else value


def pending_cells(
    cells: Sequence[training.Cell], records: dict[str, dict], retry_failed: bool = False
) -> list[training.Cell]:
    """Cells without a record (and failed ones when ``retry_failed``)."""
    pending = []
    for cell in cells:
        record = records.get(cell.cell_id)
        if record is None or (retry_failed and record.get("status") != training.STATUS_DONE):
            pending.append(cell)
    return pending


class GridProgress:
    """Prints one line per finished cell with counts, elapsed time and an estimate to go.

    A cell that resumes from a checkpoint says so, with the epochs it had finished: in
    the line announcing it (cells run in this process) and in the line reporting it.
    """

    def __init__(
        self,
        total: int,
        printer: Callable[[str], None] = print,
        output_dir: str | None = None,
        config: training.TrainingConfig | None = None,
    ):
        self.total, self.printer = total, printer
        self.output_dir, self.config = output_dir, config
        self.done = 0
        self.failed = 0
        self.start = time.perf_counter()

    @staticmethod
    def _clock(seconds: float) -> str:
        seconds = int(round(seconds))
        return f"{seconds // 60:d}:{seconds % 60:02d}"

    def started(self, cell: training.Cell) -> None:
        note = ""
        if self.output_dir is not None and self.config is not None:
            epoch = training.resume_epoch(self.output_dir, cell, self.config)
            if epoch is not None:
                note = f" resuming after epoch {epoch}/{self.config.epochs}"
        self.printer(f"[{self.done + self.failed + 1}/{self.total}] {cell.cell_id} ...{note}")

    def _provenance(self, record: dict) -> dict:
        if self.output_dir is None:
            return {}
        path = os.path.join(self.output_dir, "provenance", f"{record['cell_id']}.json")
        provenance = read_json(path) or {}
        return provenance if provenance.get("cell_id") == record["cell_id"] else {}

    def finished(self, record: dict) -> None:
        if record.get("status") == training.STATUS_DONE:
            self.done += 1
            outcome = f"test acc final {100 * record['final_test_accuracy']:.2f}%"
            if record.get("selected_test_accuracy") is not None:
                outcome += (
                    f", validation-selected {100 * record['selected_test_accuracy']:.2f}% "
                    f"(epoch {record['selected_epoch']})"
                )
            outcome += f", max {100 * record['max_test_accuracy']:.2f}%"
            if "fallback_last_epoch" in record:
                outcome += (
                    f", fallback {100 * record['fallback_first_epoch']:.0f}% -> "
                    f"{100 * record['fallback_last_epoch']:.1f}% of rows"
                )
        else:
            self.failed += 1
            outcome = f"FAILED: {record.get('reason')}"
        provenance = self._provenance(record)
        if provenance.get("resumed_after_epoch"):
            outcome += f", resumed after epoch {provenance['resumed_after_epoch']}"
        wall_time = provenance.get("wall_time_s", record.get("wall_time_s", 0.0))
        finished = self.done + self.failed
        elapsed = time.perf_counter() - self.start
        remaining = elapsed / finished * (self.total - finished)
        self.printer(
            f"[{finished}/{self.total}] {record['cell_id']}: {outcome} in "
            f"{wall_time:.1f}s | elapsed {self._clock(elapsed)}, "
            f"~{self._clock(remaining)} to go"
        )


# ------------------------------------------------------------------------------ engines


def _worker_init(threads: int | None) -> None:
    training.configure_threads(threads)


def _cell_tasks(function, cells, *args) -> list[launcher.Task]:
    """One task ``function(cell, *args)`` per cell, keyed by the cell's id."""
    return [launcher.Task(cell.cell_id, function, (cell, *args)) for cell in cells]


def _run_in_process(cells, config, output_dir, progress, cell_fn, printer):
    by_id = {cell.cell_id: cell for cell in cells}
    tasks = _cell_tasks(cell_fn, cells, config, output_dir, printer)
    try:
        outcomes = launcher.launch(
            tasks, catch=False, on_start=lambda task: progress.started(by_id[task.key])
        )
        for outcome in outcomes:
            progress.finished(outcome.result)
    finally:
        training.release_models()


def _run_group(cell_fn, cells, config, output_dir):
    """Runs one entry's cells in a worker process; returns their records."""
    try:
        return [cell_fn(cell, config, output_dir, None) for cell in cells]
    finally:
        training.release_models()


def _run_in_processes(cells, config, output_dir, progress, cell_fn, workers, threads):
    tasks = [
        launcher.Task(group[0].cell_id, _run_group, (cell_fn, group, config, output_dir))
        for group in group_by_entry(cells)
    ]
    outcomes = launcher.launch(
        tasks,
        max_parallel=workers,
        initializer=_worker_init,
        initargs=(threads,),
        catch=False,
    )
    for outcome in outcomes:
        for record in outcome.result:
            progress.finished(record)


def _ray_cell(cell, config, output_dir, threads):
    training.configure_threads(threads)
    record = training.run_cell(cell, config, output_dir, None, reuse_model=False)
    return record, training.read_provenance(output_dir, cell)


def _failed_record(cell: training.Cell, config: training.TrainingConfig, reason: str) -> dict:
    """The record of a cell whose task died before it could write one."""
    return {
        "cell_id": cell.cell_id,
        **cell.as_dict(),
        "config_fingerprint": config.fingerprint(),
        "config": config.result_settings(),
        "status": training.STATUS_FAILED,
        "reason": reason,
    }


def _run_on_ray(cells, config, output_dir, progress, ray_address, cpus_per_cell, gpus_per_cell):
    by_id = {cell.cell_id: cell for cell in cells}
    threads = max(1, int(round(cpus_per_cell))) if cpus_per_cell else None
    tasks = _cell_tasks(_ray_cell, cells, config, os.path.abspath(output_dir), threads)
    outcomes = launcher.launch(
        tasks,
        ray_address=ray_address,
        num_cpus=cpus_per_cell,
        num_gpus=gpus_per_cell,
        catch=True,  # a task whose worker died becomes a failed record; the others go on
    )
    for outcome in outcomes:
        cell = by_id[outcome.key]
        if outcome.ok:
            record, provenance = outcome.result
        else:
            record = _failed_record(cell, config, f"Ray task failed: {outcome.error}")
            provenance = None
        paths = training.cell_paths(output_dir, cell)
        for key, content in (("provenance", provenance), ("record", record)):
            if content is not None and read_json(paths[key]) != content:
                atomic_write_json(paths[key], content)
        progress.finished(record)


def run_grid(
    cells: Sequence[training.Cell],
    config: training.TrainingConfig,
    output_dir: str,
    *,
    workers: int = 1,
    ray_address: str | None = None,
    ray_cpus_per_cell: float = 1.0,
    ray_gpus_per_cell: float = 0.0,
    retry_failed: bool = False,
    cell_fn: Callable[..., dict] = training.run_cell,
    printer: Callable[[str], None] = print,
) -> dict[str, dict]:
    """Runs every cell without a record; returns the records of all ``cells``.

    Args:
        cells: from :func:`enumerate_cells`.
        config: the settings shared by all cells. A results directory made with other
            result-changing settings raises :class:`ConfigMismatchError`.
        output_dir: the results directory (created).
        workers: 1 runs cells in this process; more runs a pool of spawned processes.
        ray_address: run cells as Ray tasks (``"local"`` starts a local Ray).
        ray_cpus_per_cell, ray_gpus_per_cell: resources each Ray task asks for.
        retry_failed: rerun cells whose record says they failed.
        cell_fn: trains one cell (``training.run_cell``); must be picklable for processes.
        printer: where progress lines go.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1; received {workers!r}.")
    if ray_address and workers > 1:
        raise ValueError("Give either --workers > 1 or --ray_address, not both.")
    if config.strategy == "mirrored" and (workers > 1 or ray_address):
        raise ValueError(
            "--strategy=mirrored trains one cell on all local GPUs; run it with --workers=1 "
            "and without --ray_address."
        )
    os.makedirs(os.path.join(output_dir, "cells"), exist_ok=True)
    for sub in ("cells", "models", "provenance"):
        remove_stale_temporaries(os.path.join(output_dir, sub))
    remove_stale_temporaries(output_dir)

    records = load_records(output_dir, cells)
    check_records(output_dir, records, config)
    for cell in cells:
        checkpoint = training.cell_paths(output_dir, cell)["checkpoint"]
        if cell.cell_id in records:  # killed after its record was written
            shutil.rmtree(checkpoint, ignore_errors=True)
        else:
            remove_stale_temporaries(checkpoint)
    atomic_write_json(
        os.path.join(output_dir, CONFIG_FILE),
        {"fingerprint": config.fingerprint(), "config": config.as_dict(), "argv": sys.argv},
    )
    todo = pending_cells(cells, records, retry_failed)
    skipped = len(cells) - len(todo)
    if skipped:
        failed = sum(
            1
            for cell in cells
            if cell not in todo and records[cell.cell_id].get("status") != training.STATUS_DONE
        )
        printer(
            f"Resuming: {skipped} of {len(cells)} cells already have records"
            + (f" ({failed} failed; --retry_failed reruns them)" if failed else "")
            + f"; {len(todo)} to run."
        )
        older = sum(1 for r in records.values() if r.get("version", 1) < training.RECORD_VERSION)
        if older and todo:
            printer(
                f"Note: {older} of these records were written by an earlier version, whose "
                "data order differs; for a grid of one version use a new --output_dir."
            )
    if not todo:
        return load_records(output_dir, cells)

    if ray_address:
        engine = f"Ray ({ray_address})"
    elif workers > 1:
        engine = f"{workers} local worker processes"
    else:
        engine = "this process"
    printer(f"Running {len(todo)} cells in {engine}; results in {os.path.abspath(output_dir)}")
    progress = GridProgress(len(todo), printer, output_dir, config)
    if ray_address:
        _run_on_ray(
            todo, config, output_dir, progress, ray_address, ray_cpus_per_cell, ray_gpus_per_cell
        )
    elif workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        _run_in_processes(todo, config, output_dir, progress, cell_fn, workers, threads)
    else:
        _run_in_process(todo, config, output_dir, progress, cell_fn, printer)
    try:  # every cell removed its own checkpoint
        os.rmdir(os.path.join(output_dir, "checkpoints"))
    except OSError:
        pass
    return load_records(output_dir, cells)
