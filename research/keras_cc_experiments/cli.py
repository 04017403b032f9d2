"""From the label-smoothing scripts' settings to a :class:`TrainingConfig`.

The scripts in ``examples/`` declare their flags, before TensorFlow is imported, from
the settings dataclass in ``examples/label_smoothing_settings.py`` (one
``keras_cc_runs.cli.setting`` field per flag, its help text beside it). After the flags
are parsed, :func:`training_config` makes the :class:`TrainingConfig`, filling in the
protocol's per-dataset defaults for settings left unset, and :func:`parse_rows` turns
row names into :class:`~keras_cc_experiments.model.Regularizers`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from keras_cc_experiments import model as model_lib
from keras_cc_experiments.cells import TrainingConfig
from keras_cc_experiments.protocols import PROTOCOLS, get_protocol

__all__ = ["parse_rows", "protocol_defaults_help", "training_config"]

_LOG_EPOCHS = {"digits": False, "cifar10": True}


def protocol_defaults_help(name: str) -> str:
    """The protocols' per-dataset defaults of setting `name`, as the flags' help gives them.

    E.g. ``"standard: digits 10, cifar10 100; paper: digits 300, cifar10 500"`` for
    ``"epochs"``.

    Raises:
      KeyError: `name` is not a per-dataset default of the protocols.
    """
    return "; ".join(
        f"{p}: " + ", ".join(f"{d} {v[name]}" for d, v in PROTOCOLS[p].defaults.items())
        for p in PROTOCOLS
    )


def parse_rows(values: Sequence[str]) -> list[model_lib.Regularizers]:
    """``["all"]`` (Table 1's eight rows) or '+'-joined regularizer names per row.

    Raises:
      ValueError: an unknown regularizer name.
    """
    values = [str(v).strip() for v in values]
    if values == ["all"]:
        return model_lib.paper_rows()
    return [model_lib.Regularizers.parse(v) for v in values]


def _tri_state(value: str, default: bool) -> bool:
    return default if value == "auto" else value == "true"


def _naming_the_flag(message: str) -> str:
    """``"epochs must be >= 1 ..."`` (or ``"`epochs` must ..."``) -> ``"--epochs must be >= 1
    ..."`` (a setting's name)."""
    first, _, rest = message.partition(" ")
    fields = {field.name for field in dataclasses.fields(TrainingConfig)}
    name = first.strip("`")
    return f"--{name} {rest}" if name in fields else message


def training_config(
    settings: Any, *, save_models: bool = True, tensorboard: bool = True
) -> TrainingConfig:
    """The :class:`TrainingConfig` of a script's settings.

    Args:
      settings: an object with the attributes of ``TrainingSettings`` in
        ``examples/label_smoothing_settings.py`` (that dataclass, or the parsed absl
        flags); None stands for the protocol's default for the data set.
      save_models, tensorboard: the config's fields of those names.

    Raises:
      ValueError: a bad value; a message about one setting starts with its flag
        (``--name``).
    """
    protocol = get_protocol(settings.protocol)
    if settings.dataset not in _LOG_EPOCHS:
        raise ValueError(
            f"--dataset={settings.dataset!r} is unknown; choose one of {list(_LOG_EPOCHS)}."
        )
    defaults = {**protocol.defaults[settings.dataset], "log_epochs": _LOG_EPOCHS[settings.dataset]}

    def pick(name: str) -> Any:
        value = getattr(settings, name)
        return defaults[name] if value is None else value

    try:
        return TrainingConfig(
            dataset=settings.dataset,
            protocol=settings.protocol,
            validation_fraction=settings.validation_fraction,
            data_dir=settings.data_dir,
            download=settings.download,
            train_examples=settings.train_examples,
            test_examples=settings.test_examples,
            epochs=pick("epochs"),
            batch_size=pick("batch_size"),
            learning_rate=settings.learning_rate,
            label_smoothing=settings.label_smoothing,
            width=pick("width"),
            dropout_rates=tuple(float(rate) for rate in settings.dropout_rates),
            weight_decay=settings.weight_decay,
            batch_norm_momentum=pick("batch_norm_momentum"),
            augment=_tri_state(settings.augment, defaults["augment"]),
            jit_compile=settings.jit_compile,
            deterministic_ops=settings.deterministic_ops,
            strategy=settings.strategy,
            save_models=save_models,
            tensorboard=tensorboard,
            log_epochs=pick("log_epochs"),
            checkpoint_interval_s=settings.checkpoint_interval_s,
            steps_per_execution=settings.steps_per_execution,
        )
    except ValueError as error:
        raise ValueError(_naming_the_flag(str(error))) from None
