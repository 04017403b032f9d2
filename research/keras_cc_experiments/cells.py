"""A cell of the label-smoothing ablation (one row × one loss × one seed), the settings it
trains under (:class:`TrainingConfig`, whose result fields form the fingerprint a resumed
grid must match), where its files live, and how its ops run (threads, XLA, determinism,
distribution strategy).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Sequence

import tensorflow as tf

from keras_cc.core import hyperparameters
from keras_cc_experiments import data as data_lib
from keras_cc_experiments import model as model_lib
from keras_cc_experiments.protocols import get_protocol

__all__ = [
    "CHECKPOINT_FORMAT",
    "RECORD_VERSION",
    "STATUS_DONE",
    "STATUS_FAILED",
    "Cell",
    "CellDivergedError",
    "TrainingConfig",
    "cell_paths",
    "configure_threads",
    "execution_settings",
    "get_dataset",
    "make_strategy",
    "resolve_deterministic_ops",
    "resolve_jit_compile",
]

STATUS_DONE = "done"
STATUS_FAILED = "failed"
# 2: epoch-keyed data order and exact resume; where, when and how long a cell ran moved
# to provenance/<cell_id>.json. 3: protocols, a validation split (val_* curves), the test
# set's curves as test_*, max and validation-selected test accuracy, models output logits.
# Earlier records are read as they are.
RECORD_VERSION = 3
CHECKPOINT_FORMAT = 1


class CellDivergedError(RuntimeError):
    """The training loss of a cell became NaN or infinite."""


@dataclasses.dataclass(frozen=True, order=True)
class Cell:
    """One grid cell: a row of regularizers, a loss (one of ``model.LOSSES``), a seed."""

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
    protocol: str = "standard"
    validation_fraction: float = 0.1
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
    deterministic_ops: str = "auto"
    strategy: str = "default"
    save_models: bool = True
    tensorboard: bool = True
    log_epochs: bool = False
    checkpoint_interval_s: float = 60.0
    steps_per_execution: int = 32

    RESULT_FIELDS = (
        "dataset",
        "protocol",
        "validation_fraction",
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
        get_protocol(self.protocol)
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ValueError(
                f"--validation_fraction must lie in [0, 1); received {self.validation_fraction!r}."
            )
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1; received {self.epochs!r}.")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; received {self.batch_size!r}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0; received {self.learning_rate!r}.")
        hyperparameters.label_smoothing(self.label_smoothing, positive=True)
        for name in ("jit_compile", "deterministic_ops"):
            if getattr(self, name) not in ("auto", "true", "false"):
                raise ValueError(
                    f"{name} must be 'auto', 'true' or 'false'; received {getattr(self, name)!r}."
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

    @property
    def protocol_spec(self):
        """The :class:`~keras_cc_experiments.protocols.Protocol` named by ``protocol``."""
        return get_protocol(self.protocol)

    def result_settings(self) -> dict:
        return {name: getattr(self, name) for name in self.RESULT_FIELDS}

    def fingerprint(self) -> str:
        text = json.dumps(self.result_settings(), sort_keys=True, default=list)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def cell_paths(output_dir: str, cell: Cell) -> dict[str, str]:
    """Where a cell keeps its record, provenance, summaries, checkpoint and model."""
    cid = cell.cell_id
    checkpoint = os.path.join(output_dir, "checkpoints", cid)
    return {
        "record": os.path.join(output_dir, "cells", f"{cid}.json"),
        "provenance": os.path.join(output_dir, "provenance", f"{cid}.json"),
        "tensorboard": os.path.join(output_dir, "tensorboard", cid),
        "checkpoint": checkpoint,
        "checkpoint_file": os.path.join(checkpoint, "state.npz"),
        "model": os.path.join(output_dir, "models", f"{cid}.keras"),
    }


# ------------------------------------------------------------------------- environment

_DATASETS: dict[tuple, data_lib.ImageDataset] = {}


def get_dataset(config: TrainingConfig) -> data_lib.ImageDataset:
    """The data set of ``config``, loaded once per process: subset if asked, then a
    class-stratified ``validation_fraction`` of the training images held out (seed 0)."""
    key = (
        config.dataset,
        config.data_dir,
        config.download,
        config.train_examples,
        config.test_examples,
        config.validation_fraction,
    )
    if key not in _DATASETS:
        full = data_lib.load_dataset(config.dataset, config.data_dir, config.download)
        subset = full.subset(config.train_examples, config.test_examples, seed=0)
        _DATASETS[key] = subset.hold_out_validation(config.validation_fraction, seed=0)
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


def resolve_deterministic_ops(setting: str) -> bool:
    """``auto``: on when a GPU is visible.

    GPU kernels such as cuDNN's convolution gradients are not deterministic by default,
    so neither an uninterrupted run nor a resumed one would repeat itself; with
    ``tf.config.experimental.enable_op_determinism`` they do, at some cost in speed. The
    CPU kernels used here repeat themselves without it (the resume tests check this).
    """
    if setting == "auto":
        return bool(tf.config.list_physical_devices("GPU"))
    return setting == "true"


def execution_settings(config: TrainingConfig) -> dict:
    """How the cell's ops run; a checkpoint resumes only under the same settings."""
    return {
        "jit_compile": resolve_jit_compile(config.jit_compile),
        "deterministic_ops": resolve_deterministic_ops(config.deterministic_ops),
        "strategy": config.strategy,
    }


def make_strategy(name: str, devices: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """``default``: the current strategy; ``mirrored``: all local GPUs (or ``devices``)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices=devices)
    raise ValueError(f"Unknown strategy {name!r}; choose 'default' or 'mirrored'.")
