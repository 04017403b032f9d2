"""Training one cell of the label-smoothing ablation: one row × one loss × one seed.

:func:`run_cell` builds the ablation CNN for the cell, fits it with Adam and evaluates on
the test set after every epoch, and returns a results record (a JSON-ready dict) that it
also writes atomically to ``<output_dir>/cells/<cell_id>.json``. Along the way a cell
keeps:

* ``<output_dir>/tensorboard/<cell_id>/``: TensorBoard summaries per epoch
  (``keras.callbacks.TensorBoard``: a ``train`` run, with the test set's ``test_*``
  scalars, and a ``validation`` run for the held-out validation split);
* ``<output_dir>/checkpoints/<cell_id>/state.npz``: the whole training state (see
  :func:`save_checkpoint`), saved atomically at the end of an epoch once
  ``checkpoint_interval_s`` seconds have passed since the last save, and removed when
  the cell is done;
* ``<output_dir>/models/<cell_id>.keras``: the trained model (``save_models``);
* ``<output_dir>/provenance/<cell_id>.json``: hosts, process ids, the epoch each attempt
  started from, epoch and wall times.

A run is a function of the cell and the settings alone. The data of an epoch depends on
``(seed, epoch)`` only (``model.make_train_dataset``), and the checkpoint holds every
variable of the model and optimizer, the dropout seed generators' states included. So a
cell killed at any moment, mid-epoch or between epochs, resumes from its last
checkpoint and writes the record of the uninterrupted run, byte for byte; the record
holds nothing that depends on when or where the cell ran.

Every epoch ends with the held-out validation split (Keras' ``val_*`` metrics) and the
test set (``test_*``) evaluated. The record reports the test accuracy three ways: after
the last epoch (``final_test_accuracy``), its maximum over epochs (``max_test_accuracy``,
the CC paper's number) and at the epoch the validation split selects
(``selected_test_accuracy``: highest validation accuracy, ties to the lower validation
cross-entropy, then the earlier epoch).

A cell whose training loss becomes NaN or infinite stops (``keras.callbacks.
TerminateOnNaN``) and its record says ``"status": "failed"`` with the reason; any other
exception is recorded the same way. Cells whose optimizer skips non-finite steps (the
``paper`` protocol, and ``cc_ls_published`` everywhere) train on instead, as the CC
paper's code did.
"""

from __future__ import annotations

import math
import os
import random
import shutil
import socket
import time
import traceback
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

# Private Keras modules, only to seed Keras without clearing TensorFlow's caches
# (_seed_keeping_graphs); keras.utils.set_random_seed offers no such choice.
from keras.src.backend.common import global_state
from keras.src.random import seed_generator
from keras.src.utils import rng_utils

from keras_cc_experiments import data as data_lib
from keras_cc_experiments import model as model_lib
from keras_cc_experiments import published
from keras_cc_experiments.callbacks import (
    CellCheckpoint,
    CurveRecorder,
    EpochData,
    EpochLogger,
    SkippedSteps,
    TestEvaluation,
    replay_summaries,
)

# The cell, its settings and its checkpoints live in their own modules; they are part of
# this module's API, as they were before they moved.
from keras_cc_experiments.cells import (
    RECORD_VERSION,
    STATUS_DONE,
    STATUS_FAILED,
    Cell,
    CellDivergedError,
    TrainingConfig,
    cell_paths,
    configure_threads,
    execution_settings,
    get_dataset,
    make_strategy,
    resolve_deterministic_ops,
    resolve_jit_compile,
)
from keras_cc_experiments.checkpoints import (
    CheckpointMismatchError,
    read_checkpoint_metadata,
    restore_checkpoint,
    resume_epoch,
    save_checkpoint,
    usable_checkpoint,
)
from keras_cc_experiments.records import atomic_write_json, read_json

__all__ = [
    "STATUS_DONE",
    "STATUS_FAILED",
    "Cell",
    "CellCheckpoint",
    "CellDivergedError",
    "CheckpointMismatchError",
    "TrainingConfig",
    "build_model",
    "build_network",
    "cell_paths",
    "configure_threads",
    "execution_settings",
    "get_dataset",
    "make_strategy",
    "read_checkpoint_metadata",
    "read_provenance",
    "release_models",
    "resolve_deterministic_ops",
    "resolve_jit_compile",
    "restore_checkpoint",
    "resume_epoch",
    "run_cell",
    "save_checkpoint",
    "selected_epoch",
    "summarize_curves",
]

# ---------------------------------------------------------------------------- one cell


def build_network(
    cell: Cell, config: TrainingConfig, dataset: data_lib.ImageDataset
) -> keras.Model:
    """The cell's CNN for ``dataset`` (not compiled), as its protocol builds it."""
    protocol = config.protocol_spec
    if protocol.standardization == "scalar":
        mean, variance = dataset.scalar_statistics()
    else:
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
        layer_order=protocol.layer_order,
        weight_decay_on=protocol.weight_decay_on,
    )


def skips_nonfinite_steps(cell: Cell, config: TrainingConfig) -> bool:
    """Whether the cell's optimizer skips steps with a non-finite gradient."""
    return config.protocol_spec.skip_nonfinite_steps or cell.loss == "cc_ls_published"


def build_model(cell: Cell, config: TrainingConfig, dataset: data_lib.ImageDataset) -> keras.Model:
    """The cell's CNN, compiled with Adam and its loss (inside the current strategy).

    Metrics: ``accuracy``, ``nll`` (cross-entropy against the one-hot label), ``spread``
    (mean logit spread, max − min) and, for ``cc_ls_published``, ``fallback`` (the share
    of rows whose loss fell back to the cross-entropy).
    """
    model = build_network(cell, config, dataset)
    protocol = config.protocol_spec
    reduction = "sum" if cell.loss in protocol.summed_losses else "sum_over_batch_size"
    adam = (
        published.SkipNonFiniteAdam
        if skips_nonfinite_steps(cell, config)
        else keras.optimizers.Adam
    )
    metrics = [
        keras.metrics.CategoricalAccuracy(name="accuracy"),
        keras.metrics.CategoricalCrossentropy(name="nll", from_logits=True),
        published.LogitSpread(name="spread"),
    ]
    if cell.loss == "cc_ls_published":
        metrics.append(published.FallbackShare(name="fallback"))
    model.compile(
        optimizer=adam(config.learning_rate),
        loss=model_lib.make_loss(cell.loss, config.label_smoothing, reduction),
        metrics=metrics,
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
        if key == self.key:
            _seed_keeping_graphs(cell.seed)
            with self.strategy.scope():
                fresh = build_network(cell, config, dataset)
            _copy_variables(fresh.variables, self.model.variables)
            for variable, value in zip(self.model.optimizer.variables, self.optimizer_start):
                variable.assign(value)
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


def _seed_keeping_graphs(seed: int) -> None:
    """``keras.utils.set_random_seed(seed)`` without ``tf.random.set_seed``.

    Setting TensorFlow's global seed clears its kernel and function caches, so every traced
    graph of a reused model would be instantiated again on its next call (about a second
    for a graph that holds the CC loss). Nothing in a cell draws from TensorFlow's global
    seed: the data order, augmentation and dropout use stateless ops keyed by the seed, and
    the fresh network's initial values come from Keras' generator, seeded here.
    """
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 (the global state keras.utils.set_random_seed seeds)
    # Keras has no public call that seeds its generator alone; these are the two lines of
    # keras.utils.set_random_seed (Keras 3.15) that do it.
    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)


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


def selected_epoch(curves: dict[str, list]) -> int | None:
    """The epoch (from 1) the validation split selects: the highest ``val_accuracy``,
    ties to the lower ``val_nll``, then the earlier epoch; None without a validation
    split."""
    accuracy = curves.get("val_accuracy") or []
    if not accuracy:
        return None
    nll = curves.get("val_nll") or [0.0] * len(accuracy)
    keys = [
        (-a if a is not None else math.inf, n if n is not None else math.inf, e)
        for e, (a, n) in enumerate(zip(accuracy, nll))
    ]
    return min(keys)[2] + 1


def summarize_curves(curves: dict[str, list]) -> dict:
    """The record's summary of per-epoch curves (accuracies in [0, 1], epochs from 1).

    ``final_test_accuracy`` (last epoch), ``max_test_accuracy`` and ``max_epoch`` (the CC
    paper's number), ``selected_test_accuracy``, ``selected_epoch`` and
    ``selected_validation_accuracy`` (None without a validation split), the final test
    cross-entropy and train accuracy, and for ``cc_ls_published`` the fallback share of
    the first and last epochs.
    """
    test_accuracy = curves.get("test_accuracy", [])
    if not test_accuracy:
        return {}
    best = int(np.argmax(test_accuracy))
    chosen = selected_epoch(curves)
    summary = {
        "final_test_accuracy": test_accuracy[-1],
        "max_test_accuracy": test_accuracy[best],
        "max_epoch": best + 1,
        "selected_test_accuracy": None if chosen is None else test_accuracy[chosen - 1],
        "selected_epoch": chosen,
        "selected_validation_accuracy": (
            None if chosen is None else curves["val_accuracy"][chosen - 1]
        ),
        "final_test_nll": curves.get("test_nll", [None])[-1],
        "final_train_accuracy": curves.get("accuracy", [None])[-1],
    }
    if "fallback" in curves:
        summary["fallback_first_epoch"] = curves["fallback"][0]
        summary["fallback_last_epoch"] = curves["fallback"][-1]
    return summary


_EVAL_DATASETS: dict[tuple, tuple] = {}


def _eval_dataset(dataset: data_lib.ImageDataset, split: str = "test"):
    """The ``test`` or ``valid`` pipeline, made once per data set, split and process (its
    cache is reused); None for a missing validation split."""
    x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
    if x is None:
        return None
    key = (id(dataset), split)
    if key not in _EVAL_DATASETS or _EVAL_DATASETS[key][0] is not dataset:
        pipeline = model_lib.make_eval_dataset(x, y, dataset.num_classes)
        _EVAL_DATASETS[key] = (dataset, pipeline)
    return _EVAL_DATASETS[key][1]


def _cold_model(cell, config, dataset):
    _WARM.clear()
    keras.utils.set_random_seed(cell.seed)
    strategy = make_strategy(config.strategy)
    with strategy.scope():
        model = build_model(cell, config, dataset)
        model.optimizer.build(model.trainable_variables)
    return model, strategy


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _train(cell, config, output_dir, printer, reuse, run) -> tuple[dict, dict]:
    paths = cell_paths(output_dir, cell)
    dataset = get_dataset(config)
    if resolve_deterministic_ops(config.deterministic_ops):
        tf.config.experimental.enable_op_determinism()
    metadata, reason = usable_checkpoint(paths["checkpoint_file"], cell, config)
    if metadata is None and os.path.isdir(os.path.join(paths["checkpoint"], "backup")):
        reason = "its checkpoint predates the saved data order and dropout state"
    model, strategy = (
        _WARM.get(cell, config, dataset) if reuse else _cold_model(cell, config, dataset)
    )
    if metadata is not None:
        try:  # assigns nothing unless every variable matches
            with strategy.scope():
                metadata = restore_checkpoint(paths["checkpoint_file"], model)
        except CheckpointMismatchError as error:
            metadata, reason = None, str(error)
    if metadata is None:
        if reason:
            printer(f"    {cell.cell_id} starts again from epoch 1: {reason}.")
        # Leftovers of a run killed before its first checkpoint.
        shutil.rmtree(paths["checkpoint"], ignore_errors=True)
    # The logs are rewritten from the checkpoint's curves: each epoch appears once.
    shutil.rmtree(paths["tensorboard"], ignore_errors=True)
    metadata = metadata or {}
    initial_epoch = int(metadata.get("epoch", 0))
    run["start_epoch"] = initial_epoch
    run["earlier_attempts"] = metadata.get("attempts", [])
    this_attempt = {key: run[key] for key in ("host", "pid", "started_at", "start_epoch")}
    if initial_epoch and config.log_epochs:
        printer(f"    {cell.cell_id} resumes after epoch {initial_epoch}/{config.epochs}.")

    recorder = run["recorder"] = CurveRecorder(metadata.get("curves"), metadata.get("epoch_time_s"))
    epoch = tf.Variable(initial_epoch, dtype=tf.int64, trainable=False, name="data_epoch")
    # Order matters: the test metrics and skipped steps join the logs before the
    # callbacks that read them.
    callbacks = [EpochData(epoch), TestEvaluation(_eval_dataset(dataset, "test"))]
    if skips_nonfinite_steps(cell, config):
        callbacks.append(SkippedSteps())
    else:
        callbacks.append(keras.callbacks.TerminateOnNaN())
    callbacks.append(recorder)
    if config.log_epochs:
        callbacks.append(EpochLogger(cell.cell_id, config.epochs, printer))
    if config.tensorboard:
        replay_summaries(paths["tensorboard"], recorder.curves)
        callbacks.append(keras.callbacks.TensorBoard(paths["tensorboard"], write_graph=False))
    callbacks.append(
        CellCheckpoint(
            paths["checkpoint_file"],
            config.checkpoint_interval_s,
            lambda: {
                "cell_id": cell.cell_id,
                "config_fingerprint": config.fingerprint(),
                "execution": execution_settings(config),
                "curves": recorder.curves,
                "epoch_time_s": recorder.epoch_times,
                "attempts": [*run["earlier_attempts"], this_attempt],
            },
        )
    )
    train = model_lib.make_train_dataset(
        dataset.x_train,
        dataset.y_train,
        dataset.num_classes,
        config.batch_size,
        seed=cell.seed,
        augment=config.augment,
        epoch=epoch,
        augmentation=config.protocol_spec.augmentation,
    )
    model.fit(
        train,
        initial_epoch=initial_epoch,
        epochs=config.epochs,
        validation_data=_eval_dataset(dataset, "valid"),
        callbacks=callbacks,
        verbose=0,
        shuffle=False,  # the data set orders each epoch itself, keyed by (seed, epoch)
    )
    losses = recorder.curves.get("loss", [])
    if model.stop_training or len(losses) < config.epochs:  # TerminateOnNaN stopped it
        error = CellDivergedError(
            f"training loss became {losses[-1] if losses else 'non-finite'} in epoch {len(losses)}"
        )
        error.curves = recorder.curves  # the epochs up to the divergence
        raise error
    extra = {
        "num_parameters": int(model.count_params()),
        "jit_compile": resolve_jit_compile(config.jit_compile),
        "deterministic_ops": resolve_deterministic_ops(config.deterministic_ops),
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

    A cell whose run was killed resumes from its checkpoint (see :func:`save_checkpoint`)
    and ends with the record the uninterrupted run writes, byte for byte.

    The record holds the cell, the settings that change its numbers
    (``TrainingConfig.RESULT_FIELDS``, the protocol among them) and their fingerprint,
    how the ops ran (XLA, deterministic kernels, replicas), ``status`` (``"done"`` or
    ``"failed"`` with ``reason``), the summary of :func:`summarize_curves` (final, maximum
    and validation-selected test accuracy), the per-epoch curves (training ``loss``,
    ``accuracy``, ``nll``, ``spread``; ``val_*`` on the validation split; ``test_*`` on
    the test set; ``fallback`` for ``cc_ls_published``; ``skipped_steps`` where steps
    can be skipped) and where the model was saved: only what the cell and its settings
    determine. The whole config, and where,
    when and how long the cell ran (hosts, process ids, the epoch each attempt started
    from, epoch and wall times) go to ``provenance/<cell_id>.json``.
    """
    paths = cell_paths(output_dir, cell)
    record = {
        "version": RECORD_VERSION,
        "cell_id": cell.cell_id,
        **cell.as_dict(),
        "config_fingerprint": config.fingerprint(),
        # The settings that make the numbers; the rest (checkpoint interval, summaries,
        # where the data is, ...) go to the provenance, so that they leave the record as
        # it is.
        "config": config.result_settings(),
    }
    run = {"host": socket.gethostname(), "pid": os.getpid(), "started_at": _now()}
    start = time.perf_counter()
    try:
        curves, extra = _train(cell, config, output_dir, printer or _silent, reuse_model, run)
        record.update(status=STATUS_DONE, **summarize_curves(curves), curves=curves, **extra)
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
    wall_time = time.perf_counter() - start
    recorder = run.pop("recorder", None)
    earlier = run.pop("earlier_attempts", [])
    atomic_write_json(
        paths["provenance"],
        {
            "cell_id": cell.cell_id,
            "status": record["status"],
            "config": config.as_dict(),
            "resumed_after_epoch": run.get("start_epoch") or None,
            "wall_time_s": wall_time,
            "epoch_time_s": recorder.epoch_times if recorder else [],
            "attempts": [*earlier, {**run, "wall_time_s": wall_time, "finished_at": _now()}],
        },
    )
    atomic_write_json(paths["record"], record)
    # Only once the record exists: a kill before this point resumes from the checkpoint.
    shutil.rmtree(paths["checkpoint"], ignore_errors=True)
    return record


def read_provenance(output_dir: str, cell: Cell) -> dict | None:
    """Where, when and how long ``cell`` ran (``provenance/<cell_id>.json``), if known."""
    return read_json(cell_paths(output_dir, cell)["provenance"])


def release_models() -> None:
    """Drops the model kept for reuse and clears Keras' session."""
    _WARM.clear()
