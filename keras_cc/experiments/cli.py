"""absl flags shared by the label-smoothing scripts in ``examples/``.

:func:`define_training_flags` declares the protocol, data, model, optimization and
engine flags; :func:`training_config_from_flags` turns them into a
:class:`TrainingConfig`, filling the protocol's per-dataset defaults for flags left unset.
"""

from __future__ import annotations

import os

from absl import flags

from keras_cc.experiments import data as data_lib
from keras_cc.experiments import model as model_lib
from keras_cc.experiments.protocols import PROTOCOLS, get_protocol
from keras_cc.experiments.training import TrainingConfig

__all__ = [
    "default_output_dir",
    "define_training_flags",
    "parse_float_list",
    "parse_int_list",
    "parse_losses",
    "parse_rows",
    "training_config_from_flags",
]

_LOG_EPOCHS = {"digits": False, "cifar10": True}


def _defaults_help(name: str) -> str:
    return "; ".join(
        f"{p}: " + ", ".join(f"{d} {v[name]}" for d, v in PROTOCOLS[p].defaults.items())
        for p in PROTOCOLS
    )


def define_training_flags() -> None:
    """Declares the flags of one training cell (protocol, data, model, optimizer, engine)."""
    flags.DEFINE_enum(
        "protocol",
        "standard",
        sorted(PROTOCOLS),
        "standard: conv -> batch norm -> ELU, L2 on every kernel, random crop + flip, "
        "per-channel standardization, losses averaged over the batch, Table 1 shows the "
        "final test accuracy (± sample std). paper: the CC paper's setup as its code ran it: "
        "conv -> ELU -> batch norm, L2 on the final dense kernel only, Adam 1e-3 without a "
        "schedule, batch 128, 500 epochs on cifar10 (300 on digits), rotation 15 deg + "
        "shifts 0.1 + flip with one scalar mean and std, LS and CC-LS summed over the "
        "batch, steps with non-finite gradients skipped, Table 1 shows the maximum test "
        "accuracy over epochs (± population std). Both also report the test accuracy at "
        "the epoch the validation split selects. A results directory holds one protocol.",
    )
    flags.DEFINE_float(
        "validation_fraction",
        0.1,
        "Share of the training images held out (class-stratified, fixed) as the "
        "validation split that selects the epoch; 0: train on all of them (as the CC "
        "paper did) and report no validation-selected accuracy.",
    )
    flags.DEFINE_enum(
        "dataset",
        "digits",
        list(data_lib.DATASETS),
        "digits: scikit-learn's bundled 8x8 digits (no download). cifar10: CIFAR-10 from "
        "--data_dir, Keras' cache (~/.keras/datasets) or a TensorFlow Datasets data_dir.",
    )
    flags.DEFINE_string(
        "data_dir",
        None,
        "CIFAR-10 location: a directory holding the original pickled batches "
        "(data_batch_1..5, test_batch, batches.meta) or 'cifar-10-batches-py', or a "
        "TensorFlow Datasets data_dir with a prepared cifar10. Default: search the caches.",
    )
    flags.DEFINE_bool(
        "download",
        False,
        "Allow downloading CIFAR-10 (~170 MB, keras.datasets.cifar10) when no local copy "
        "is found. Without it a missing data set stops the run at once.",
    )
    flags.DEFINE_integer(
        "train_examples", None, "Use a class-stratified subset of this many training images."
    )
    flags.DEFINE_integer(
        "test_examples", None, "Use a class-stratified subset of this many test images."
    )
    flags.DEFINE_integer("epochs", None, f"Training epochs per cell ({_defaults_help('epochs')}).")
    flags.DEFINE_integer("batch_size", None, f"Global batch size ({_defaults_help('batch_size')}).")
    flags.DEFINE_float("learning_rate", 1e-3, "Adam learning rate.")
    flags.DEFINE_float(
        "label_smoothing", 0.1, "epsilon of label smoothing, for LS and CC-LS (CC paper eq. 5)."
    )
    flags.DEFINE_float(
        "width",
        None,
        f"Multiplier on the CNN's 32/64/128 filters ({_defaults_help('width')}).",
    )
    flags.DEFINE_list(
        "dropout_rates",
        [str(r) for r in model_lib.DEFAULT_DROPOUT_RATES],
        "Dropout rate after each conv block (rows with dropout).",
    )
    flags.DEFINE_float(
        "weight_decay",
        1e-4,
        "L2 coefficient (rows with weight decay): loss += wd * sum(w^2) over every kernel "
        "(standard) or the final dense kernel only (paper).",
    )
    flags.DEFINE_float(
        "batch_norm_momentum",
        None,
        f"Momentum of the batch norms' moving averages ({_defaults_help('batch_norm_momentum')}).",
    )
    flags.DEFINE_enum(
        "augment",
        "auto",
        ["auto", "true", "false"],
        "Augment training images: random crop (4-pixel padding) and horizontal flip "
        "(standard), or random rotation, shifts and flip (paper). auto: "
        f"{_defaults_help('augment')}.",
    )
    flags.DEFINE_enum(
        "jit_compile",
        "auto",
        ["auto", "true", "false"],
        "XLA-compile the train step. auto: on when a GPU is visible (on CPUs XLA "
        "convolutions are slower).",
    )
    flags.DEFINE_enum(
        "deterministic_ops",
        "auto",
        ["auto", "true", "false"],
        "Deterministic TensorFlow kernels (tf.config.experimental.enable_op_determinism), "
        "so that a run, and a run resumed after a kill, repeat themselves bit for bit. "
        "auto: on when a GPU is visible (GPU kernels are not deterministic otherwise; "
        "false is faster there); the CPU kernels used here are deterministic already.",
    )
    flags.DEFINE_enum(
        "strategy",
        "default",
        ["default", "mirrored"],
        "mirrored: train each cell on all local GPUs with tf.distribute.MirroredStrategy "
        "(--batch_size is the global batch).",
    )
    flags.DEFINE_bool(
        "log_epochs",
        None,
        "Print a line per epoch of each cell (default: on for cifar10, off for digits).",
    )
    flags.DEFINE_integer(
        "steps_per_execution",
        32,
        "Train steps per call of the compiled step function (fewer Python round trips; "
        "the numbers do not change). --strategy=mirrored uses 1.",
    )
    flags.DEFINE_float(
        "checkpoint_interval_s",
        60.0,
        "Checkpoint a cell at the end of an epoch when this many seconds have passed since "
        "its last checkpoint (0: every epoch); a killed cell resumes from it and ends with "
        "the record of an uninterrupted run.",
    )
    flags.DEFINE_string(
        "output_dir",
        None,
        "Results directory (records, TensorBoard logs, models, tables, figures); it holds "
        "one protocol. Default: runs/<script>/<dataset>-<protocol>.",
    )


def parse_float_list(values, name: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in values)
    except ValueError as error:
        raise ValueError(f"--{name} must be a comma-separated list of numbers: {error}") from None


def parse_int_list(values, name: str) -> tuple[int, ...]:
    """Integers from a list of strings; ``a-b`` expands to a range (``0-9``: ten seeds)."""
    out = []
    for value in values:
        value = str(value).strip()
        try:
            if "-" in value.lstrip("-"):
                low, high = value.split("-", 1)
                out.extend(range(int(low), int(high) + 1))
            else:
                out.append(int(value))
        except ValueError:
            raise ValueError(f"--{name}: {value!r} is not an integer or range a-b.") from None
    return tuple(out)


def parse_rows(values) -> list[model_lib.Regularizers]:
    """``all`` (Table 1's eight rows) or '+'-joined regularizer names per row."""
    values = [v.strip() for v in values]
    if values == ["all"]:
        return model_lib.paper_rows()
    return [model_lib.Regularizers.parse(v) for v in values]


def parse_losses(values) -> list[str]:
    losses = [v.strip() for v in values]
    unknown = [x for x in losses if x not in model_lib.LOSSES]
    if unknown:
        raise ValueError(f"--losses: unknown {unknown}; choose from {list(model_lib.LOSSES)}.")
    return losses


def _tri_state(value: str, default: bool) -> bool:
    return default if value == "auto" else value == "true"


def training_config_from_flags(
    flag_values: flags.FlagValues, save_models: bool = True, tensorboard: bool = True
) -> TrainingConfig:
    """A :class:`TrainingConfig` from the flags, with the protocol's per-dataset defaults
    filled in for flags left unset.

    Raises:
        ValueError: a bad value, naming its flag.
    """
    defaults = {
        **get_protocol(flag_values.protocol).defaults[flag_values.dataset],
        "log_epochs": _LOG_EPOCHS[flag_values.dataset],
    }

    def pick(name):
        value = getattr(flag_values, name)
        return defaults[name] if value is None else value

    return TrainingConfig(
        dataset=flag_values.dataset,
        protocol=flag_values.protocol,
        validation_fraction=flag_values.validation_fraction,
        data_dir=flag_values.data_dir,
        download=flag_values.download,
        train_examples=flag_values.train_examples,
        test_examples=flag_values.test_examples,
        epochs=pick("epochs"),
        batch_size=pick("batch_size"),
        learning_rate=flag_values.learning_rate,
        label_smoothing=flag_values.label_smoothing,
        width=pick("width"),
        dropout_rates=parse_float_list(flag_values.dropout_rates, "dropout_rates"),
        weight_decay=flag_values.weight_decay,
        batch_norm_momentum=pick("batch_norm_momentum"),
        augment=_tri_state(flag_values.augment, defaults["augment"]),
        jit_compile=flag_values.jit_compile,
        deterministic_ops=flag_values.deterministic_ops,
        strategy=flag_values.strategy,
        save_models=save_models,
        tensorboard=tensorboard,
        log_epochs=pick("log_epochs"),
        checkpoint_interval_s=flag_values.checkpoint_interval_s,
        steps_per_execution=flag_values.steps_per_execution,
    )


def default_output_dir(script: str, dataset: str, protocol: str = "standard") -> str:
    """``runs/<script>/<dataset>-<protocol>``."""
    return os.path.join("runs", script, f"{dataset}-{protocol}")
