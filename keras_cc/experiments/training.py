"""Training one cell of the label-smoothing ablation: one row × one loss × one seed.

:func:`run_cell` builds the ablation CNN for the cell, fits it with Adam and evaluates on
the test set after every epoch, and returns a results record (a JSON-ready dict) that it
also writes atomically to ``<output_dir>/cells/<cell_id>.json``. Along the way a cell
keeps:

* ``<output_dir>/tensorboard/<cell_id>/``: TensorBoard summaries per epoch (``train``
  and ``validation`` runs; validation is the test set);
* ``<output_dir>/checkpoints/<cell_id>/``: Keras' ``BackupAndRestore`` state at the end
  of an epoch once ``checkpoint_interval_s`` seconds have passed since the last one, so
  a killed cell resumes from its last checkpoint (removed when the cell is done);
* ``<output_dir>/models/<cell_id>.keras``: the trained model (``save_models``).

A cell whose training loss becomes NaN or infinite stops at once and its record says
``"status": "failed"`` with the reason; any other exception is recorded the same way.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import shutil
import socket
import time
import traceback
from collections.abc import Callable, Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_cc.experiments import data as data_lib
from keras_cc.experiments import model as model_lib
from keras_cc.experiments.records import atomic_write_json, read_json

__all__ = [
    "Cell",
    "CellDivergedError",
    "TrainingConfig",
    "cell_paths",
    "configure_threads",
    "get_dataset",
    "make_strategy",
    "resolve_jit_compile",
    "release_models",
    "run_cell",
]

STATUS_DONE = "done"
STATUS_FAILED = "failed"
RECORD_VERSION = 1


class CellDivergedError(RuntimeError):
    """The training loss of a cell became NaN or infinite."""


@dataclasses.dataclass(frozen=True, order=True)
class Cell:
    """One grid cell: a row of regularizers, a loss (``none``/``ls``/``cc_ls``), a seed."""

    regularizers: model_lib.Regularizers
    loss: str
    seed: int

    def __post_init__(self):
        if self.loss not in model_lib.LOSSES:
            raise ValueError(f"Unknown loss {self.loss!r}; choose one of {model_lib.LOSSES}.")

    @property
    def cell_id(self) -> str:
        return f"{self.regularizers.key}__{self.loss}__seed{self.seed}"

    def as_dict(self) -> dict:
        return {"row": self.regularizers.as_dict(), "loss": self.loss, "seed": self.seed}


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """Everything a cell needs besides its row, loss and seed.

    Fields listed in ``RESULT_FIELDS`` change the numbers a cell produces; they form the
    :meth:`fingerprint` that a resumed grid must match. The rest (where the data lives,
    XLA, the distribution strategy, what is written besides the record) do not.
    """

    dataset: str = "digits"
    data_dir: str | None = None
    download: bool = False
    train_examples: int | None = None
    test_examples: int | None = None
    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    label_smoothing: float = 0.1
    width: float = 0.5
    dropout_rates: tuple[float, ...] = model_lib.DEFAULT_DROPOUT_RATES
    weight_decay: float = 1e-4
    batch_norm_momentum: float = 0.9
    augment: bool = False
    jit_compile: str = "auto"
    strategy: str = "default"
    save_models: bool = True
    tensorboard: bool = True
    log_epochs: bool = False
    checkpoint_interval_s: float = 60.0
    steps_per_execution: int = 32

    RESULT_FIELDS = (
        "dataset",
        "train_examples",
        "test_examples",
        "epochs",
        "batch_size",
        "learning_rate",
        "label_smoothing",
        "width",
        "dropout_rates",
        "weight_decay",
        "batch_norm_momentum",
        "augment",
    )

    def __post_init__(self):
        if self.dataset not in data_lib.DATASETS:
            raise ValueError(
                f"Unknown dataset {self.dataset!r}; choose one of {data_lib.DATASETS}."
            )
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1; received {self.epochs!r}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; received {self.batch_size!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0; received {self.learning_rate!r}.")
        if not 0.0 < self.label_smoothing < 1.0:
            raise ValueError(
                f"label_smoothing must lie in (0, 1); received {self.label_smoothing!r}."
            )
        if self.jit_compile not in ("auto", "true", "false"):
            raise ValueError(
                f"jit_compile must be 'auto', 'true' or 'false'; received {self.jit_compile!r}."
            )
        if self.strategy not in ("default", "mirrored"):
            raise ValueError(
                f"strategy must be 'default' or 'mirrored'; received {self.strategy!r}."
            )
        if self.steps_per_execution < 1:
            raise ValueError(
                f"steps_per_execution must be >= 1; received {self.steps_per_execution!r}."
            )
        if self.checkpoint_interval_s < 0:
            raise ValueError(
                f"checkpoint_interval_s must be >= 0; received {self.checkpoint_interval_s!r}."
            )
        for name in ("train_examples", "test_examples"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None; received {value!r}.")
        object.__setattr__(self, "dropout_rates", tuple(float(r) for r in self.dropout_rates))

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def result_settings(self) -> dict:
        return {name: getattr(self, name) for name in self.RESULT_FIELDS}

    def fingerprint(self) -> str:
        text = json.dumps(self.result_settings(), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def cell_paths(output_dir: str, cell: Cell) -> dict[str, str]:
    """Where a cell keeps its record, summaries, checkpoint and model."""
    cid = cell.cell_id
    return {
        "record": os.path.join(output_dir, "cells", f"{cid}.json"),
        "tensorboard": os.path.join(output_dir, "tensorboard", cid),
        "checkpoint": os.path.join(output_dir, "checkpoints", cid),
        "model": os.path.join(output_dir, "models", f"{cid}.keras"),
    }


# ------------------------------------------------------------------------- environment

_DATASETS: dict[tuple, data_lib.ImageDataset] = {}


def get_dataset(config: TrainingConfig) -> data_lib.ImageDataset:
    """The (possibly subset) data set of ``config``, loaded once per process."""
    key = (
        config.dataset,
        config.data_dir,
        config.download,
        config.train_examples,
        config.test_examples,
    )
    if key not in _DATASETS:
        full = data_lib.load_dataset(config.dataset, config.data_dir, config.download)
        _DATASETS[key] = full.subset(config.train_examples, config.test_examples, seed=0)
    return _DATASETS[key]


def configure_threads(threads: int | None) -> None:
    """Limit TensorFlow's CPU threads (call before TensorFlow runs its first op)."""
    if threads:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(max(1, threads))
        except RuntimeError:  # TensorFlow already initialized; keep its settings.
            pass


def resolve_jit_compile(setting: str) -> bool:
    """``auto``: XLA when a GPU is visible; on CPUs XLA convolutions are slower."""
    if setting == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    return setting == "true"


def make_strategy(name: str, devices: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """``default``: the current strategy; ``mirrored``: all local GPUs (or ``devices``)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    raise ValueError(f"Unknown strategy {name!r}; choose 'default' or 'mirrored'.")


# --------------------------------------------------------------------------- callbacks


class DivergenceGuard(keras.callbacks.Callback):
    """Raises :class:`CellDivergedError` as soon as the training loss is not finite."""

    def __init__(self, check_every: int = 1):
        super().__init__()
        self.check_every = check_every
        self._epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def _check(self, logs, where):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise CellDivergedError(f"training loss became {float(loss)} at {where}")

    def on_train_batch_end(self, batch, logs=None):
        if batch % self.check_every == 0:
            self._check(logs, f"epoch {self._epoch + 1}, batch {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"the end of epoch {epoch + 1}")


class CurveRecorder(keras.callbacks.Callback):
    """Keeps per-epoch metrics; :meth:`save` persists them next to the checkpoint.

    On the first epoch of a run resumed from a checkpoint it truncates what it loaded to
    the epochs the checkpoint holds. Must come before :class:`TimedBackupAndRestore` in
    the callback list so an epoch's metrics are recorded before its checkpoint.
    """

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        loaded = read_json(path)
        self.curves: dict[str, list] = loaded if isinstance(loaded, dict) else {}
        self.epoch_times: list[float] = self.curves.pop("epoch_time_s", [])
        self._started = False
        self._epoch_start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        if not self._started:
            self._started = True
            self.curves = {k: v[:epoch] for k, v in self.curves.items()}
            self.epoch_times = self.epoch_times[:epoch]
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_times.append(time.perf_counter() - self._epoch_start)
        for key, value in (logs or {}).items():
            self.curves.setdefault(key, []).append(float(value))

    def save(self) -> None:
        atomic_write_json(self.path, {**self.curves, "epoch_time_s": self.epoch_times})


class TimedBackupAndRestore(keras.callbacks.BackupAndRestore):
    """Keras' ``BackupAndRestore``, saving at an epoch's end only when ``interval_s``
    seconds have passed since the last save (0: every epoch).

    Saving costs a fraction of a second; the digits' epochs take less, CIFAR-10's take
    minutes on a CPU. ``before_save`` runs just before each save.
    """

    def __init__(self, backup_dir: str, interval_s: float, before_save: Callable[[], None]):
        super().__init__(backup_dir, save_freq="epoch", double_checkpoint=True)
        self.interval_s = interval_s
        self.before_save = before_save
        self._last_save = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        self._current_epoch = epoch + 1
        self._last_batch_seen = 0
        now = time.monotonic()
        if now - self._last_save >= self.interval_s:
            self.before_save()
            self._save_model()
            self._last_save = time.monotonic()


class EpochSummaries(keras.callbacks.Callback):
    """TensorBoard scalars per epoch: ``train/`` and ``validation/`` runs (test set)."""

    def __init__(self, log_dir: str):
        super().__init__()
        self.log_dir = log_dir
        self._writers = {}

    def _writer(self, run):
        if run not in self._writers:
            self._writers[run] = tf.summary.create_file_writer(os.path.join(self.log_dir, run))
        return self._writers[run]

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            run, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
            with self._writer(run).as_default():
                tf.summary.scalar(f"epoch_{name}", float(value), step=epoch)

    def on_train_end(self, logs=None):
        for writer in self._writers.values():
            writer.close()
        self._writers = {}


class EpochLogger(keras.callbacks.Callback):
    """Prints one line per epoch (for long cells)."""

    def __init__(self, label: str, epochs: int, printer: Callable[[str], None] = print):
        super().__init__()
        self.label, self.epochs, self.printer = label, epochs, printer
        self._start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.printer(
            f"    {self.label} epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', 0):.4f} "
            f"train acc {logs.get('accuracy', 0):.4f} test acc "
            f"{logs.get('val_accuracy', 0):.4f} ({time.perf_counter() - self._start:.1f}s)"
        )


# ---------------------------------------------------------------------------- one cell


def build_network(
    cell: Cell, config: TrainingConfig, dataset: data_lib.ImageDataset
) -> keras.Model:
    """The cell's CNN for ``dataset`` (not compiled)."""
    mean, variance = dataset.channel_statistics()
    return model_lib.build_ablation_cnn(
        dataset.input_shape,
        dataset.num_classes,
        cell.regularizers,
        width=config.width,
        dropout_rates=config.dropout_rates,
        weight_decay=config.weight_decay,
        batch_norm_momentum=config.batch_norm_momentum,
        pixel_max=dataset.pixel_max,
        channel_mean=mean,
        channel_variance=variance,
    )


def build_model(cell: Cell, config: TrainingConfig, dataset: data_lib.ImageDataset) -> keras.Model:
    """The cell's CNN, compiled with Adam and its loss (inside the current strategy)."""
    model = build_network(cell, config, dataset)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate),
        loss=model_lib.make_loss(cell.loss, config.label_smoothing),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.CategoricalCrossentropy(name="nll"),
        ],
        jit_compile=resolve_jit_compile(config.jit_compile),
        steps_per_execution=effective_steps_per_execution(config),
    )
    return model


def effective_steps_per_execution(config: TrainingConfig) -> int:
    """``config.steps_per_execution``, or 1 under ``MirroredStrategy``.

    Keras 3.15's multi-step loop fails on a mirrored iterator ("You must feed a value for
    placeholder tensor ... while/cond/Placeholder"), so mirrored training runs one step
    per call.
    """
    return 1 if config.strategy == "mirrored" else config.steps_per_execution


class _WarmModel:
    """The last compiled model of this process, reused by the next cell that differs only
    in its seed.

    Tracing a Keras train step costs seconds, as much as training a small CNN on the
    digits for several epochs. A cell with another seed but the same row, loss and
    settings gets the same traced functions: every model variable (weights, batch-norm
    statistics, dropout seed states) is overwritten with a freshly built network's values
    for the seed, and the optimizer's variables with their initial values, which is
    exactly the state a newly built model would start from.
    """

    def __init__(self):
        self.key = None
        self.model = None
        self.strategy = None
        self.optimizer_start = None

    def clear(self):
        self.key = self.model = self.strategy = self.optimizer_start = None
        keras.backend.clear_session()

    def get(self, cell: Cell, config: TrainingConfig, dataset) -> tuple[keras.Model, object]:
        key = (cell.regularizers, cell.loss, config, id(dataset))
        keras.utils.set_random_seed(cell.seed)
        if key == self.key:
            with self.strategy.scope():
                fresh = build_network(cell, config, dataset)
            _copy_variables(fresh.variables, self.model.variables)
            for variable, value in zip(self.model.optimizer.variables, self.optimizer_start):
                variable.assign(value)
            self.model._initial_epoch = None  # left set by a BackupAndRestore resume
            return self.model, self.strategy
        self.clear()
        keras.utils.set_random_seed(cell.seed)
        strategy = make_strategy(config.strategy)
        with strategy.scope():
            model = build_model(cell, config, dataset)
            model.optimizer.build(model.trainable_variables)
        self.key, self.model, self.strategy = key, model, strategy
        self.optimizer_start = [v.numpy() for v in model.optimizer.variables]
        return model, strategy


def _copy_variables(sources, targets) -> None:
    if len(sources) != len(targets):
        raise RuntimeError(f"Cannot reuse the model: {len(sources)} vs {len(targets)} variables.")
    for source, target in zip(sources, targets):
        if tuple(source.shape) != tuple(target.shape):
            raise RuntimeError(
                f"Cannot reuse the model: {source.path} {source.shape} vs "
                f"{target.path} {target.shape}."
            )
        target.assign(source.value)


_WARM = _WarmModel()


def _save_model(model: keras.Model, path: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = os.path.join(os.path.dirname(path), f".tmp-{os.getpid()}-{os.path.basename(path)}")
    model.save(temporary)
    os.replace(temporary, path)


def _summary(curves: dict[str, list]) -> dict:
    test_accuracy = curves.get("val_accuracy", [])
    if not test_accuracy:
        return {}
    best_epoch = int(np.argmax(test_accuracy))
    return {
        "final_test_accuracy": test_accuracy[-1],
        "best_test_accuracy": test_accuracy[best_epoch],
        "best_epoch": best_epoch + 1,
        "final_test_nll": curves.get("val_nll", [None])[-1],
        "final_train_accuracy": curves.get("accuracy", [None])[-1],
    }


_EVAL_DATASETS: dict[int, tuple] = {}


def _eval_dataset(dataset: data_lib.ImageDataset):
    """The test set pipeline, made once per data set and process (its cache is reused)."""
    key = id(dataset)
    if key not in _EVAL_DATASETS or _EVAL_DATASETS[key][0] is not dataset:
        pipeline = model_lib.make_eval_dataset(dataset.x_test, dataset.y_test, dataset.num_classes)
        _EVAL_DATASETS[key] = (dataset, pipeline)
    return _EVAL_DATASETS[key][1]


def _cold_model(cell, config, dataset):
    _WARM.clear()
    keras.utils.set_random_seed(cell.seed)
    strategy = make_strategy(config.strategy)
    with strategy.scope():
        model = build_model(cell, config, dataset)
    return model, strategy


def _train(cell, config, output_dir, printer, reuse) -> tuple[dict, dict]:
    paths = cell_paths(output_dir, cell)
    dataset = get_dataset(config)
    backup_dir = os.path.join(paths["checkpoint"], "backup")
    resuming = any(
        os.path.exists(os.path.join(backup_dir, name))
        for name in ("training_metadata.json", "training_metadata.json.bkp")
    )
    if not resuming:
        # Leftovers of a run killed before its first checkpoint.
        shutil.rmtree(paths["tensorboard"], ignore_errors=True)
        shutil.rmtree(paths["checkpoint"], ignore_errors=True)
    model, strategy = (
        _WARM.get(cell, config, dataset) if reuse else _cold_model(cell, config, dataset)
    )
    os.makedirs(paths["checkpoint"], exist_ok=True)
    recorder = CurveRecorder(os.path.join(paths["checkpoint"], "curves.json"))
    callbacks = [DivergenceGuard(), recorder]
    if config.log_epochs:
        callbacks.append(EpochLogger(cell.cell_id, config.epochs, printer))
    if config.tensorboard:
        callbacks.append(EpochSummaries(paths["tensorboard"]))
    callbacks.append(
        TimedBackupAndRestore(
            backup_dir,
            config.checkpoint_interval_s,
            before_save=recorder.save,
        )
    )
    train = model_lib.make_train_dataset(
        dataset.x_train,
        dataset.y_train,
        dataset.num_classes,
        config.batch_size,
        seed=cell.seed,
        augment=config.augment,
    )
    test = _eval_dataset(dataset)
    try:
        model.fit(
            train,
            epochs=config.epochs,
            validation_data=test,
            callbacks=callbacks,
            verbose=0,
            shuffle=False,  # the data set shuffles itself, seeded by the cell
        )
    except CellDivergedError as error:
        error.curves = recorder.curves  # the epochs finished before the divergence
        raise
    extra = {
        "resumed": resuming,
        "epoch_time_s": recorder.epoch_times,
        "num_parameters": int(model.count_params()),
        "jit_compile": resolve_jit_compile(config.jit_compile),
        "replicas": int(strategy.num_replicas_in_sync),
        "data_source": dataset.source,
    }
    if config.save_models:
        _save_model(model, paths["model"])
        extra["model_path"] = os.path.relpath(paths["model"], output_dir)
    return recorder.curves, extra


def _silent(_line: str) -> None:
    pass


def run_cell(
    cell: Cell,
    config: TrainingConfig,
    output_dir: str,
    printer: Callable[[str], None] | None = print,
    reuse_model: bool = True,
) -> dict:
    """Trains one cell and writes its record atomically; returns the record.

    With ``reuse_model`` a cell that follows one with the same row, loss and settings in
    this process reuses its compiled model (see ``_WarmModel``), reinitialized for the
    cell's seed; the numbers are those of a newly built model.

    The record holds the cell, the config and its fingerprint, ``status`` (``"done"`` or
    ``"failed"`` with ``reason``), final and best test accuracy, the per-epoch curves
    (``loss``, ``accuracy``, ``nll`` and their ``val_`` test counterparts), timings and
    where the model was saved.
    """
    paths = cell_paths(output_dir, cell)
    record = {
        "version": RECORD_VERSION,
        "cell_id": cell.cell_id,
        **cell.as_dict(),
        "config_fingerprint": config.fingerprint(),
        "config": config.as_dict(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    start = time.perf_counter()
    try:
        curves, extra = _train(cell, config, output_dir, printer or _silent, reuse_model)
        record.update(status=STATUS_DONE, **_summary(curves), curves=curves, **extra)
    except CellDivergedError as error:
        _WARM.clear()
        record.update(
            status=STATUS_FAILED, reason=f"diverged: {error}", curves=getattr(error, "curves", {})
        )
    except Exception as error:  # noqa: BLE001 - a failed cell must not stop the grid
        _WARM.clear()
        record.update(
            status=STATUS_FAILED,
            reason=f"{type(error).__name__}: {error}",
            traceback=traceback.format_exc(),
        )
    except BaseException:
        _WARM.clear()
        raise
    if not reuse_model:
        _WARM.clear()
    record["wall_time_s"] = time.perf_counter() - start
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    atomic_write_json(paths["record"], record)
    # Only once the record exists: a kill before this point resumes from the checkpoint.
    shutil.rmtree(paths["checkpoint"], ignore_errors=True)
    return record


def release_models() -> None:
    """Drops the model kept for reuse and clears Keras' session."""
    _WARM.clear()
