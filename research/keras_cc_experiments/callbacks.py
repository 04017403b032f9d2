"""The Keras callbacks that train a cell: the test set evaluated every epoch, the epoch
told to the data pipeline, the curves recorded, the whole state checkpointed, a line per
epoch, and TensorBoard logs replayed on resume.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable

import keras
import tensorflow as tf

from keras_cc_experiments.checkpoints import save_checkpoint

__all__ = [
    "CellCheckpoint",
    "CurveRecorder",
    "EpochData",
    "EpochLogger",
    "SkippedSteps",
    "TestEvaluation",
    "replay_summaries",
]


class TestEvaluation(keras.callbacks.Callback):
    """Evaluates the test set at the end of every epoch into ``logs`` as ``test_*``.

    Must come before the callbacks that read the epoch's logs (recorder, logger,
    TensorBoard, checkpoint): Keras hands every callback the same ``logs``.
    """

    def __init__(self, data):
        super().__init__()
        self.data = data

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or self.model.stop_training:
            return
        results = self.model.evaluate(self.data, verbose=0, return_dict=True)
        logs.update({f"test_{name}": float(value) for name, value in results.items()})


class SkippedSteps(keras.callbacks.Callback):
    """Adds ``skipped_steps``, the optimizer's count of skipped non-finite steps so far,
    to each epoch's logs (:class:`~keras_cc_experiments.published.SkipNonFiniteAdam`)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["skipped_steps"] = int(self.model.optimizer.skipped_steps.numpy())


class EpochData(keras.callbacks.Callback):
    """Tells the training data which epoch begins (see ``model.make_train_dataset``).

    ``epoch`` is the ``tf.Variable`` the data set reads when Keras makes the epoch's
    iterator, which happens after ``on_epoch_begin``.
    """

    def __init__(self, epoch: tf.Variable):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch.assign(epoch)


class CurveRecorder(keras.callbacks.Callback):
    """Keeps the per-epoch metrics and epoch times, starting from those of a checkpoint."""

    def __init__(self, curves: dict[str, list] | None = None, epoch_times=None):
        super().__init__()
        self.curves: dict[str, list] = {k: list(v) for k, v in (curves or {}).items()}
        self.epoch_times: list[float] = list(epoch_times or [])
        self._epoch_start = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.curves = {k: v[:epoch] for k, v in self.curves.items()}
        self.epoch_times = self.epoch_times[:epoch]
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_times.append(time.perf_counter() - self._epoch_start)
        for key, value in (logs or {}).items():
            self.curves.setdefault(key, []).append(float(value))


class CellCheckpoint(keras.callbacks.Callback):
    """Saves the whole training state at the end of an epoch, once ``interval_s`` seconds
    have passed since the last save (0: every epoch); see :func:`save_checkpoint`.

    ``metadata()`` gives what is saved besides the variables (the curves so far, ...).
    Must come last in the callback list, so the epoch's metrics are recorded first.
    """

    def __init__(self, path: str, interval_s: float, metadata: Callable[[], dict]):
        super().__init__()
        self.path = path
        self.interval_s = interval_s
        self.metadata = metadata
        self._last_save = time.monotonic()

    def on_epoch_end(self, epoch, logs=None):
        if self.model.stop_training:  # a diverged epoch is never resumed from
            return
        if time.monotonic() - self._last_save >= self.interval_s:
            save_checkpoint(self.path, self.model, {**self.metadata(), "epoch": epoch + 1})
            self._last_save = time.monotonic()


def replay_summaries(log_dir: str, curves: dict[str, list]) -> None:
    """Writes the epochs of ``curves`` as ``keras.callbacks.TensorBoard`` does (scalars
    ``epoch_<name>``; ``val_*`` in the ``validation`` run, the rest in ``train``), so that
    a resumed cell's logs hold every epoch once."""
    epochs = min((len(v) for v in curves.values()), default=0)
    runs: dict[str, dict[str, list]] = {}
    for key, values in curves.items():
        run, name = ("validation", key[4:]) if key.startswith("val_") else ("train", key)
        runs.setdefault(run, {})[name] = values
    for run, series in runs.items():
        writer = tf.summary.create_file_writer(os.path.join(log_dir, run))
        with writer.as_default():
            for epoch in range(epochs):
                for name, values in series.items():
                    if values[epoch] is not None and math.isfinite(values[epoch]):
                        tf.summary.scalar(f"epoch_{name}", values[epoch], step=epoch)
        writer.close()


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
        validation = f"validation acc {logs['val_accuracy']:.4f} " if "val_accuracy" in logs else ""
        self.printer(
            f"    {self.label} epoch {epoch + 1}/{self.epochs}: loss {logs.get('loss', 0):.4f} "
            f"train acc {logs.get('accuracy', 0):.4f} {validation}test acc "
            f"{logs.get('test_accuracy', 0):.4f} ({time.perf_counter() - self._start:.1f}s)"
        )
