"""The epoch skeleton: tables written atomically, TensorBoard, checkpoints, resume."""

import os

import pytest
import tensorflow as tf

from keras_cc_agents.training import EVAL_TABLES, EpochRun
from keras_cc_runs import run_directory

EXTRA = {"train_epochs.csv": ("game", "epoch", "loss")}


def _run(run_dir, counter):
    return EpochRun(run_dir, {**EVAL_TABLES, **EXTRA}, {"counter": counter}, max_to_keep=2)


def test_epochs_are_written_checkpointed_and_resumed(tmp_path):
    run_dir = str(tmp_path)
    counter = tf.Variable(0, dtype=tf.int64)
    run = _run(run_dir, counter)
    assert run.restore() is None
    for epoch in (1, 2):
        mean, std = run.add_evaluation("Pong", epoch, 100 * epoch, [1.0, 3.0], [10, 12])
        assert (mean, std) == (2.0, 1.0)
        run.rows["train_epochs.csv"].append(dict(game="Pong", epoch=epoch, loss=0.5))
        run.scalars(epoch, {"eval/mean_score": mean})
        counter.assign(epoch)
        run.end_epoch(checkpoint_number=epoch)
    episodes = run_directory.read_csv(os.path.join(run_dir, "eval_episodes.csv"))
    assert [(r["epoch"], r["episode"], r["score"]) for r in episodes][:2] == [
        ("1", "0", "1.0"),
        ("1", "1", "3.0"),
    ]
    assert os.listdir(os.path.join(run_dir, "tensorboard"))

    # A third epoch's rows reached the tables, but its checkpoint did not (a kill).
    run.add_evaluation("Pong", 3, 300, [5.0], [9])
    run.write_tables()

    restored = tf.Variable(0, dtype=tf.int64)
    again = _run(run_dir, restored)
    assert again.restore().endswith("ckpt-2") and int(restored.numpy()) == 2
    again.load_rows(int(restored.numpy()))
    assert [r["epoch"] for r in again.rows["eval_epochs.csv"]] == ["1", "2"]
    assert len(again.rows["eval_episodes.csv"]) == 4


def test_a_checkpoint_of_other_objects_is_refused(tmp_path):
    run = _run(str(tmp_path), tf.Variable(1, dtype=tf.int64))
    run.end_epoch(checkpoint_number=1)
    other = EpochRun(str(tmp_path), EVAL_TABLES, {"other": tf.Variable(0.0)})
    with pytest.raises(AssertionError):
        other.restore()
