"""The skeleton the long trainings share: run directory, epochs, CSV rows, TensorBoard, checkpoint.

A DQN expert and an actor-mimic student both train in evaluation epochs inside a run
directory (``keras_cc_runs.run_directory``) and, after every epoch:

1. append the epoch's rows to their CSV tables (``eval_episodes.csv`` and
   ``eval_epochs.csv`` in one format for both, plus their own) and rewrite each table
   atomically;
2. write TensorBoard scalars (``<run_dir>/tensorboard``);
3. save a TensorFlow checkpoint (``<run_dir>/checkpoints``) of the objects that define the
   run's state.

On resume, the latest checkpoint is restored (every saved object must match) and the
tables keep only the rows of the epochs that checkpoint had finished, so a run killed
between writing its tables and saving its checkpoint repeats that epoch cleanly.
:class:`EpochRun` holds these steps; the trainers keep their own loops.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from keras_cc_runs import run_directory

EVAL_EPISODE_COLUMNS = ("game", "epoch", "frames", "episode", "score", "length")
EVAL_EPOCH_COLUMNS = ("game", "epoch", "frames", "mean_score", "std_score", "num_episodes")
EVAL_TABLES = {"eval_episodes.csv": EVAL_EPISODE_COLUMNS, "eval_epochs.csv": EVAL_EPOCH_COLUMNS}


class EpochRun:
    """Results tables, TensorBoard writer and checkpoints of one run directory.

    Args:
      run_dir: the run directory (prepared by the caller).
      tables: ``{file name: columns}`` of the CSV tables (each has an ``epoch`` column).
      checkpoint_objects: the trackable objects of the checkpoint (agent, counters, ...).
      max_to_keep: checkpoints kept on disk.

    Attributes:
      rows: ``{file name: list of row dicts}``, the tables as they will be written.
      writer: the TensorBoard summary writer.
    """

    def __init__(
        self,
        run_dir: str,
        tables: Mapping[str, Sequence[str]],
        checkpoint_objects: Mapping[str, Any],
        max_to_keep: int = 2,
    ):
        self.run_dir = run_dir
        self.columns = {name: tuple(columns) for name, columns in tables.items()}
        self.rows: dict[str, list[dict[str, Any]]] = {name: [] for name in self.columns}
        self.checkpoint_dir = os.path.join(run_dir, "checkpoints")
        self.checkpoint = tf.train.Checkpoint(**checkpoint_objects)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, self.checkpoint_dir, max_to_keep=max_to_keep
        )
        self.writer = tf.summary.create_file_writer(os.path.join(run_dir, "tensorboard"))

    @property
    def latest_checkpoint(self) -> str | None:
        return self.manager.latest_checkpoint

    def restore(self) -> str | None:
        """Restores the latest checkpoint, if any; returns its path.

        Raises:
          AssertionError: the checkpoint lacks an object of this run or holds others.
        """
        path = self.manager.latest_checkpoint
        if path is not None:
            self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def load_rows(self, epochs_done: int) -> None:
        """Reads the tables back, keeping the rows of the first `epochs_done` epochs; a
        column that a table written by an earlier version lacks reads empty.

        Raises:
          keras_cc_runs.run_directory.DamagedFileError: a table cannot be read.
        """
        for name, columns in self.columns.items():
            rows = run_directory.read_csv(os.path.join(self.run_dir, name))
            self.rows[name] = [
                {column: row.get(column, "") for column in columns}
                for row in rows
                if int(row["epoch"]) <= epochs_done
            ]

    def add_evaluation(
        self, game: str, epoch: int, frames: int, scores: Sequence[float], lengths: Sequence[int]
    ) -> tuple[float, float]:
        """Appends one game's evaluation to the two evaluation tables; (mean, std) of scores."""
        for index, (score, length) in enumerate(zip(scores, lengths, strict=True)):
            self.rows["eval_episodes.csv"].append(
                dict(
                    game=game, epoch=epoch, frames=frames, episode=index, score=score, length=length
                )
            )
        mean, std = float(np.mean(scores)), float(np.std(scores))
        self.rows["eval_epochs.csv"].append(
            dict(
                game=game,
                epoch=epoch,
                frames=frames,
                mean_score=mean,
                std_score=std,
                num_episodes=len(scores),
            )
        )
        return mean, std

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Writes TensorBoard scalars ``{tag: value}`` at `step`."""
        with self.writer.as_default(step=step):
            for tag, value in values.items():
                tf.summary.scalar(tag, value)

    def write_tables(self) -> None:
        """Rewrites every table atomically."""
        for name, columns in self.columns.items():
            run_directory.write_csv(os.path.join(self.run_dir, name), columns, self.rows[name])

    def end_epoch(self, checkpoint_number: int) -> str:
        """Tables, then TensorBoard, then the checkpoint (which commits the epoch)."""
        self.write_tables()
        self.writer.flush()
        return self.manager.save(checkpoint_number=checkpoint_number)
