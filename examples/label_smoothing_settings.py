"""Settings shared by the two label-smoothing scripts here, one absl flag per field.

Not a script: ``label_smoothing_ablation.py`` and ``label_smoothing_representations.py``
extend :class:`TrainingSettings` with their own fields and declare the flags with
``keras_cc_runs.cli.define_flags``. ``keras_cc_experiments.cli.training_config`` turns
the settings into a ``TrainingConfig``, filling in the protocol's per-dataset defaults
for settings left unset (None).

The names below repeat ``keras_cc_experiments``' (protocols, data sets, losses, dropout
rates, the protocols' defaults in the help texts); ``tests/examples`` checks that they
agree.
"""

# This module sits beside the scripts, not in keras_cc_experiments, because importing any
# keras_cc module imports TensorFlow, which the scripts' --help must not wait for.

from __future__ import annotations

import dataclasses
import os

from keras_cc_runs import cli
from keras_cc_runs.cli import parse_int_list  # noqa: F401 (the settings' parser of seeds)

__all__ = [
    "DATASETS",
    "REGULARIZER_NAMES",
    "LOSSES",
    "PROTOCOLS",
    "TrainingSettings",
    "check_row",
    "default_output_dir",
    "parse_int_list",
    "parse_losses",
    "parse_rows",
]

PROTOCOLS = ("paper", "standard")  # sorted(keras_cc_experiments.protocols.PROTOCOLS)
DATASETS = ("digits", "cifar10")  # keras_cc_experiments.data.DATASETS
LOSSES = ("none", "ls", "cc_ls", "cc_ls_published")  # keras_cc_experiments.model.LOSSES
DEFAULT_DROPOUT_RATES = (0.2, 0.3, 0.4)  # keras_cc_experiments.model.DEFAULT_DROPOUT_RATES
# The keys of keras_cc_experiments.model.REGULARIZER_ALIASES.
REGULARIZER_NAMES = ("dropout", "do", "weight_decay", "wd", "batch_norm", "batchnorm", "bn")
_TRI_STATE = ("auto", "true", "false")


def parse_losses(text: str) -> tuple[str, ...]:
    """Loss names from a comma-separated string.

    Raises:
      ValueError: a name is not one of :data:`LOSSES`.
    """
    losses = tuple(item.strip() for item in text.split(",") if item.strip())
    unknown = [loss for loss in losses if loss not in LOSSES]
    if unknown:
        raise ValueError(f"unknown {unknown}; choose from {list(LOSSES)}.")
    return losses


def check_row(text: str) -> str:
    """One row of Table 1 ('+'-joined regularizer names, or 'none'), checked by name.

    Raises:
      ValueError: an unknown regularizer name.
    """
    text = text.strip()
    if text.lower() in ("none", ""):
        return text
    unknown = [p.strip() for p in text.lower().split("+") if p.strip() not in REGULARIZER_NAMES]
    if unknown:
        raise ValueError(
            f"unknown regularizer(s) {unknown} in row {text!r}; use '+'-joined names from "
            "dropout, weight_decay (wd), batch_norm (bn), or 'none'."
        )
    return text


def parse_rows(text: str) -> tuple[str, ...]:
    """Rows of Table 1 from a comma-separated string ('all': the paper's eight).

    Raises:
      ValueError: an unknown regularizer name.
    """
    rows = tuple(item.strip() for item in text.split(",") if item.strip())
    if rows == ("all",):
        return rows
    return tuple(check_row(row) for row in rows)


def comma_joined(values) -> str:
    """The flag text of a tuple default: ``"0,1,2"``."""
    return ",".join(str(value) for value in values)


def default_output_dir(script: str, dataset: str, protocol: str = "standard") -> str:
    """``runs/<script>/<dataset>-<protocol>``."""
    return os.path.join("runs", script, f"{dataset}-{protocol}")


@dataclasses.dataclass
class TrainingSettings:
    """The settings of one training cell: protocol, data, model, optimizer, engine.

    None means the protocol's default for the data set (see ``--protocol``).
    """

    protocol: str = cli.setting(
        "standard",
        "standard: conv -> batch norm -> ELU, L2 on every kernel, random crop + flip, "
        "per-channel standardization, losses averaged over the batch, Table 1 shows the "
        "final test accuracy (± sample std). paper: the CC paper's setup as its code ran it: "
        "conv -> ELU -> batch norm, L2 on the final dense kernel only, Adam 1e-3 without a "
        "schedule, batch 128, 500 epochs on cifar10 (300 on digits), rotation 15 deg + "
        "shifts 0.1 + flip with one scalar mean and std, LS and CC-LS summed over the "
        "batch, steps with non-finite gradients skipped, Table 1 shows the maximum test "
        "accuracy over epochs (± population std). Both also report the test accuracy at "
        "the epoch the validation split selects. A results directory holds one protocol.",
        choices=PROTOCOLS,
    )
    validation_fraction: float = cli.setting(
        0.1,
        "Share of the training images held out (class-stratified, fixed) as the "
        "validation split that selects the epoch; 0: train on all of them (as the CC "
        "paper did) and report no validation-selected accuracy.",
    )
    dataset: str = cli.setting(
        "digits",
        "digits: scikit-learn's bundled 8x8 digits (no download). cifar10: CIFAR-10 from "
        "--data_dir, Keras' cache (~/.keras/datasets) or a TensorFlow Datasets data_dir.",
        choices=DATASETS,
    )
    data_dir: str | None = cli.setting(
        None,
        "CIFAR-10 location: a directory holding the original pickled batches "
        "(data_batch_1..5, test_batch, batches.meta) or 'cifar-10-batches-py', or a "
        "TensorFlow Datasets data_dir with a prepared cifar10. Default: search the caches.",
    )
    download: bool = cli.setting(
        False,
        "Allow downloading CIFAR-10 (~170 MB, keras.datasets.cifar10) when no local copy "
        "is found. Without it a missing data set stops the run at once.",
    )
    train_examples: int | None = cli.setting(
        None, "Use a class-stratified subset of this many training images.", minimum=1
    )
    test_examples: int | None = cli.setting(
        None, "Use a class-stratified subset of this many test images.", minimum=1
    )
    epochs: int | None = cli.setting(
        None,
        "Training epochs per cell (standard: digits 10, cifar10 100; paper: digits 300, "
        "cifar10 500).",
        minimum=1,
    )
    batch_size: int | None = cli.setting(
        None,
        "Global batch size (standard: digits 64, cifar10 128; paper: digits 128, cifar10 128).",
        minimum=1,
    )
    learning_rate: float = cli.setting(1e-3, "Adam learning rate.")
    label_smoothing: float = cli.setting(
        0.1, "epsilon of label smoothing, for LS and CC-LS (CC paper eq. 5)."
    )
    width: float | None = cli.setting(
        None,
        "Multiplier on the CNN's 32/64/128 filters (standard: digits 0.5, cifar10 1.0; "
        "paper: digits 1.0, cifar10 1.0).",
    )
    dropout_rates: tuple[float, ...] = cli.setting(
        DEFAULT_DROPOUT_RATES, "Dropout rate after each conv block (rows with dropout)."
    )
    weight_decay: float = cli.setting(
        1e-4,
        "L2 coefficient (rows with weight decay): loss += wd * sum(w^2) over every kernel "
        "(standard) or the final dense kernel only (paper).",
    )
    batch_norm_momentum: float | None = cli.setting(
        None,
        "Momentum of the batch norms' moving averages (standard: digits 0.9, cifar10 0.9; "
        "paper: digits 0.99, cifar10 0.99).",
    )
    augment: str = cli.setting(
        "auto",
        "Augment training images: random crop (4-pixel padding) and horizontal flip "
        "(standard), or random rotation, shifts and flip (paper). auto: standard: digits "
        "False, cifar10 True; paper: digits True, cifar10 True.",
        choices=_TRI_STATE,
    )
    jit_compile: str = cli.setting(
        "auto",
        "XLA-compile the train step. auto: on when a GPU is visible (on CPUs XLA "
        "convolutions are slower).",
        choices=_TRI_STATE,
    )
    deterministic_ops: str = cli.setting(
        "auto",
        "Deterministic TensorFlow kernels (tf.config.experimental.enable_op_determinism), "
        "so that a run, and a run resumed after a kill, repeat themselves bit for bit. "
        "auto: on when a GPU is visible (GPU kernels are not deterministic otherwise; "
        "false is faster there); the CPU kernels used here are deterministic already.",
        choices=_TRI_STATE,
    )
    strategy: str = cli.setting(
        "default",
        "mirrored: train each cell on all local GPUs with tf.distribute.MirroredStrategy "
        "(--batch_size is the global batch).",
        choices=("default", "mirrored"),
    )
    log_epochs: bool | None = cli.setting(
        None, "Print a line per epoch of each cell (default: on for cifar10, off for digits)."
    )
    steps_per_execution: int = cli.setting(
        32,
        "Train steps per call of the compiled step function (fewer Python round trips; "
        "the numbers do not change). --strategy=mirrored uses 1.",
        minimum=1,
    )
    checkpoint_interval_s: float = cli.setting(
        60.0,
        "Checkpoint a cell at the end of an epoch when this many seconds have passed since "
        "its last checkpoint (0: every epoch); a killed cell resumes from it and ends with "
        "the record of an uninterrupted run.",
    )
    output_dir: str | None = cli.setting(
        None,
        "Results directory (records, TensorBoard logs, models, tables, figures); it holds "
        "one protocol. Default: runs/<script>/<dataset>-<protocol>.",
    )


if __name__ == "__main__":
    raise SystemExit(
        "label_smoothing_settings.py is the settings module of label_smoothing_ablation.py "
        "and label_smoothing_representations.py, not a script; run one of those (--help)."
    )
