"""A cell's whole training state in one ``.npz`` file: saved atomically, read back, and
checked against the cell, its settings and its network before anything is assigned.
"""

from __future__ import annotations

import io
import json

import keras
import numpy as np

from keras_cc_experiments.cells import (
    CHECKPOINT_FORMAT,
    Cell,
    TrainingConfig,
    cell_paths,
    execution_settings,
)
from keras_cc_experiments.records import atomic_write_bytes

__all__ = [
    "CheckpointMismatchError",
    "read_checkpoint_metadata",
    "restore_checkpoint",
    "resume_epoch",
    "save_checkpoint",
    "usable_checkpoint",
]


class CheckpointMismatchError(ValueError):
    """A checkpoint does not belong to this cell, these settings or this network."""


def save_checkpoint(path: str, model: keras.Model, metadata: dict) -> None:
    """Writes the whole training state of ``model`` to ``path`` (an ``.npz``), atomically.

    The state is every variable of the model (weights, batch-norm statistics and the
    states of the dropout layers' seed generators: ``model.variables``) and of its
    optimizer (step counter, learning rate, moments: ``model.optimizer.variables``),
    with ``metadata`` (JSON). Together with the epoch, which fixes the order and
    augmentation of the data (``model_lib.make_train_dataset``), that is everything the
    rest of the run depends on: Keras resets the metrics at every epoch.
    """
    arrays = {
        "metadata": np.array(json.dumps({**metadata, "format": CHECKPOINT_FORMAT})),
        "model_paths": np.array([v.path for v in model.variables]),
        "optimizer_paths": np.array([v.path for v in model.optimizer.variables]),
    }
    for kind, variables in (("model", model.variables), ("optimizer", model.optimizer.variables)):
        for i, variable in enumerate(variables):
            arrays[f"{kind}_{i:05d}"] = keras.ops.convert_to_numpy(variable)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def read_checkpoint_metadata(path: str) -> dict | None:
    """The metadata of the checkpoint at ``path`` (None when there is none)."""
    try:
        with np.load(path, allow_pickle=False) as state:
            return json.loads(str(state["metadata"]))
    except FileNotFoundError:
        return None


def restore_checkpoint(path: str, model: keras.Model) -> dict:
    """Assigns the state saved by :func:`save_checkpoint` to ``model``; returns its metadata.

    Raises :class:`CheckpointMismatchError`, before assigning anything, when the saved
    variables do not match the model's in number or shape.
    """
    with np.load(path, allow_pickle=False) as state:
        metadata = json.loads(str(state["metadata"]))
        pairs = []
        for kind, variables in (
            ("model", model.variables),
            ("optimizer", model.optimizer.variables),
        ):
            saved = [str(p) for p in state[f"{kind}_paths"]]
            if len(saved) != len(variables):
                raise CheckpointMismatchError(
                    f"the checkpoint holds {len(saved)} {kind} variables, the network "
                    f"{len(variables)}"
                )
            for i, (variable, name) in enumerate(zip(variables, saved)):
                value = state[f"{kind}_{i:05d}"]
                if tuple(value.shape) != tuple(variable.shape):
                    raise CheckpointMismatchError(
                        f"{name} has shape {value.shape} in the checkpoint, "
                        f"{tuple(variable.shape)} in the network"
                    )
                pairs.append((variable, value))
    for variable, value in pairs:
        variable.assign(value)
    return metadata


def usable_checkpoint(path: str, cell: Cell, config: TrainingConfig) -> tuple[dict | None, str]:
    """The metadata of the cell's checkpoint if it can resume the cell, else why not."""
    try:
        metadata = read_checkpoint_metadata(path)
    except Exception as error:  # noqa: BLE001 - any unreadable file: start again
        return None, f"its checkpoint is unreadable ({type(error).__name__}: {error})"
    if metadata is None:
        return None, ""
    if metadata.get("format") != CHECKPOINT_FORMAT:
        return None, f"its checkpoint has format {metadata.get('format')!r}"
    if metadata.get("cell_id") != cell.cell_id:
        return None, f"its checkpoint belongs to {metadata.get('cell_id')!r}"
    if metadata.get("config_fingerprint") != config.fingerprint():
        return None, "its checkpoint was made with other settings"
    if metadata.get("execution") != execution_settings(config):
        return None, (
            f"its checkpoint ran with {metadata.get('execution')}, this run with "
            f"{execution_settings(config)}"
        )
    return metadata, ""


def resume_epoch(output_dir: str, cell: Cell, config: TrainingConfig) -> int | None:
    """The epochs a killed run of ``cell`` finished and checkpointed (None: none saved)."""
    path = cell_paths(output_dir, cell)["checkpoint_file"]
    metadata, _ = usable_checkpoint(path, cell, config)
    return None if metadata is None else int(metadata["epoch"])
