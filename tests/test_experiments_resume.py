"""Exact resume: a cell killed at any point ends with the uninterrupted cell's record.

The uninterrupted grid (two seeds of one entry; the second cell reuses the first one's
compiled model) runs once in this process, without checkpoints or summaries. Interrupted
runs must end with the same record files, byte for byte:

* the ablation script, killed with SIGKILL at a random moment of the second cell and
  rerun (the resumed cell builds a new model in a new process);
* cells stopped at exact points (mid-epoch, between epochs before and after the
  checkpoint, after the last epoch before the record) by an exception that, like a kill,
  leaves the files as they are, and rerun in this process.

Both run for LS under the ``standard`` protocol and for the published CC-LS (fallback
share, skipped-step counter) under the ``paper`` protocol (rotation and shift
augmentation).
"""

import collections
import glob
import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from keras_cc_experiments import grid, training
from keras_cc_experiments.model import Regularizers

# The slow lane (interrupted and resumed experiment runs): `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ABLATION = os.path.join(REPO, "examples", "label_smoothing_ablation.py")
# Dropout, batch norm and augmentation on: every source of randomness of a cell.
ROW = Regularizers(dropout=True, weight_decay=False, batch_norm=True)
SETTINGS = dict(
    train_examples=400,
    test_examples=60,
    epochs=5,
    batch_size=20,
    width=0.25,
    augment=True,
    batch_norm_momentum=0.99,  # given: the protocols' defaults differ
    steps_per_execution=4,
    checkpoint_interval_s=0.0,
    save_models=False,
)
# (protocol, loss) pairs; the module's tests run once for each.
VARIANTS = [("standard", "ls"), ("paper", "cc_ls_published")]
_VARIANT = {"protocol": "standard", "loss": "ls"}


def _flags():
    return [
        f"--rows={ROW.key}",
        f"--losses={_VARIANT['loss']}",
        f"--protocol={_VARIANT['protocol']}",
        "--seeds=0,1",
        *(f"--{name}={str(value).lower()}" for name, value in SETTINGS.items()),
    ]


def _config(**changes):
    return training.TrainingConfig(**{**SETTINGS, "protocol": _VARIANT["protocol"], **changes})


def _cells():
    return grid.enumerate_cells([ROW], [_VARIANT["loss"]], [0, 1])


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _assert_same_records(output_dir, reference_dir, cells):
    for cell in cells:
        ours = training.cell_paths(output_dir, cell)["record"]
        theirs = training.cell_paths(reference_dir, cell)["record"]
        assert _read(ours) == _read(theirs), cell.cell_id


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: f"{v[0]}-{v[1]}")
def uninterrupted(request, tmp_path_factory):
    _VARIANT.update(protocol=request.param[0], loss=request.param[1])
    output_dir = str(tmp_path_factory.mktemp("uninterrupted"))
    # Settings that do not change the numbers do not change the record either.
    config = _config(checkpoint_interval_s=60.0, tensorboard=False)
    records = grid.run_grid(_cells(), config, output_dir, printer=lambda line: None)
    assert {r["status"] for r in records.values()} == {"done"}, records
    assert all(len(r["curves"]["test_accuracy"]) == SETTINGS["epochs"] for r in records.values())
    if _VARIANT["loss"] == "cc_ls_published":
        assert all(len(r["curves"]["fallback"]) == SETTINGS["epochs"] for r in records.values())
        assert all("skipped_steps" in r["curves"] for r in records.values())
    return output_dir


def _start_script(output_dir):
    return subprocess.Popen(
        [sys.executable, ABLATION, *_flags(), f"--output_dir={output_dir}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )


def test_sigkill_at_a_random_moment_then_rerun_gives_the_uninterrupted_records(
    uninterrupted, tmp_path
):
    output_dir = str(tmp_path / "killed")
    second = _cells()[1]
    checkpoint = training.cell_paths(output_dir, second)["checkpoint_file"]
    delay = random.uniform(0.0, 0.15)
    process = _start_script(output_dir)
    try:
        deadline = time.monotonic() + 240
        while not os.path.exists(checkpoint) and process.poll() is None:
            assert time.monotonic() < deadline, "no checkpoint of the second cell"
            time.sleep(0.02)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
    finally:
        output, _ = process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL, output[-3000:]
    epoch = training.resume_epoch(output_dir, second, _config())
    assert epoch is not None and epoch >= 1, f"killed {delay:.3f}s after the first checkpoint"
    assert not os.path.exists(training.cell_paths(output_dir, second)["record"])

    process = _start_script(output_dir)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    assert f"{second.cell_id} ... resuming after epoch {epoch}/5" in output, output
    assert f"resumed after epoch {epoch} in" in output, output
    _assert_same_records(output_dir, uninterrupted, _cells())
    provenance = training.read_provenance(output_dir, second)
    assert provenance["resumed_after_epoch"] == epoch
    assert [a["start_epoch"] for a in provenance["attempts"]] == [0, epoch]
    assert len({a["pid"] for a in provenance["attempts"]}) == 2
    assert not os.path.exists(os.path.join(output_dir, "checkpoints"))


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the point runs, nothing is written."""


def _kill_at(monkeypatch, cell_id, point):
    """Raises :class:`Killed` at ``point`` of ``cell_id``'s training.

    ``("batch", E, B)``: after batch B of epoch E; ``("epoch_end", E)``: after epoch E's
    metrics, before its checkpoint; ``("checkpointed", E)``: right after it;
    ``("record",)``: when the trained cell is about to write its results. Epochs count
    from 1, batches from 0.
    """
    checkpoint, write_json = training.CellCheckpoint, training.atomic_write_json
    epoch_end = checkpoint.on_epoch_end

    def on_epoch_begin(self, epoch, logs=None):
        self.current_epoch = epoch + 1

    def on_train_batch_end(self, batch, logs=None):
        if point[0] == "batch" and cell_id in self.path and self.current_epoch == point[1]:
            if batch >= point[2]:
                raise Killed(point)

    def on_epoch_end(self, epoch, logs=None):
        here = cell_id in self.path and point[0] != "record" and epoch + 1 == point[1]
        if point[0] == "epoch_end" and here:
            raise Killed(point)
        epoch_end(self, epoch, logs)
        if point[0] == "checkpointed" and here:
            raise Killed(point)

    def atomic_write_json(path, obj):
        if point[0] == "record" and path.endswith(os.path.join("provenance", cell_id + ".json")):
            raise Killed(point)
        write_json(path, obj)

    monkeypatch.setattr(checkpoint, "on_epoch_begin", on_epoch_begin, raising=False)
    monkeypatch.setattr(checkpoint, "on_train_batch_end", on_train_batch_end, raising=False)
    monkeypatch.setattr(checkpoint, "on_epoch_end", on_epoch_end)
    monkeypatch.setattr(training, "atomic_write_json", atomic_write_json)


def test_stopped_at_every_kind_of_point_the_cell_ends_with_the_uninterrupted_record(
    uninterrupted, tmp_path, monkeypatch
):
    output_dir = str(tmp_path / "stopped")
    cells = _cells()
    second = cells[1]
    # Each stop resumes from the checkpoint the previous one left.
    for point, resumes_after in [
        (("batch", 3, 8), None),  # mid-epoch 3: the checkpoint of epoch 2 survives
        (("epoch_end", 4), 2),  # epoch 4 finished, not checkpointed: epochs 3-4 rerun
        (("checkpointed", 4), 3),  # killed right after the checkpoint of epoch 4
        (("record",), 4),  # trained to the end, stopped before the record
    ]:
        with monkeypatch.context() as patch:
            _kill_at(patch, second.cell_id, point)
            lines = []
            with pytest.raises(Killed):
                grid.run_grid(cells, _config(), output_dir, printer=lines.append)
        assert not os.path.exists(training.cell_paths(output_dir, second)["record"])
        if resumes_after is not None:
            expected = f"{second.cell_id} ... resuming after epoch {resumes_after}/5"
            assert any(line.endswith(expected) for line in lines), lines
    lines = []
    grid.run_grid(cells, _config(), output_dir, printer=lines.append)
    assert any(line.endswith(f"{second.cell_id} ... resuming after epoch 5/5") for line in lines)
    _assert_same_records(output_dir, uninterrupted, cells)
    provenance = training.read_provenance(output_dir, second)
    assert [a["start_epoch"] for a in provenance["attempts"]] == [0, 2, 3, 4, 5]
    assert len(provenance["epoch_time_s"]) == 5
    # The TensorBoard logs of the resumed cell hold each epoch once.
    summaries = training.cell_paths(output_dir, second)["tensorboard"]
    assert sorted(os.listdir(summaries)) == ["train", "validation"]
    for run, tag in (("train", "epoch_test_accuracy"), ("validation", "epoch_accuracy")):
        counts = _summary_counts(os.path.join(summaries, run))
        assert set(counts.values()) == {1}, counts
        assert sorted(step for t, step in counts if t == tag) == list(range(5))


def _summary_counts(directory):
    """How often each (tag, step) pair occurs in the event files of ``directory``."""
    counts = collections.Counter()
    for path in glob.glob(os.path.join(directory, "events.out.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                counts[(value.tag, event.step)] += 1
    return counts


def test_directories_of_the_earlier_version_still_resume(uninterrupted, tmp_path):
    """Version-1 records are kept; a checkpoint without the data and dropout state restarts
    its cell, which then ends with the uninterrupted record."""
    output_dir = str(tmp_path / "earlier")
    first, second = _cells()
    paths = [training.cell_paths(output_dir, cell) for cell in (first, second)]
    os.makedirs(os.path.dirname(paths[0]["record"]))
    with open(training.cell_paths(uninterrupted, first)["record"]) as f:
        record = json.load(f)
    record.update(version=1, host="elsewhere", pid=1, wall_time_s=1.0, resumed=False)
    with open(paths[0]["record"], "w") as f:
        json.dump(record, f)
    # What Keras' BackupAndRestore left of an interrupted cell.
    backup = os.path.join(paths[1]["checkpoint"], "backup")
    os.makedirs(backup)
    for name in ("training_metadata.json", "latest.weights.h5"):
        with open(os.path.join(backup, name), "w") as f:
            f.write('{"epoch": 2, "batch": 0}')
    lines = []
    records = grid.run_grid(_cells(), _config(), output_dir, printer=lines.append)
    assert records[first.cell_id] == record
    assert any("1 of 2 cells already have records" in line for line in lines), lines
    assert any("written by an earlier version" in line for line in lines), lines
    assert any("starts again from epoch 1" in line for line in lines), lines
    _assert_same_records(output_dir, uninterrupted, [second])
    assert not os.path.exists(paths[1]["checkpoint"])


def test_a_checkpoint_of_other_settings_is_not_resumed(uninterrupted, tmp_path):
    """Such a checkpoint restarts its cell, as the earlier version's does above."""
    output_dir = str(tmp_path / "other")
    cell = _cells()[0]
    config, other = _config(), _config(learning_rate=0.01)
    model = training.build_model(cell, other, training.get_dataset(other))
    model.optimizer.build(model.trainable_variables)
    path = training.cell_paths(output_dir, cell)["checkpoint_file"]
    metadata = {
        "cell_id": cell.cell_id,
        "config_fingerprint": other.fingerprint(),
        "execution": training.execution_settings(other),
        "epoch": 3,
    }
    training.save_checkpoint(path, model, metadata)
    assert training.resume_epoch(output_dir, cell, other) == 3
    assert training.resume_epoch(output_dir, cell, config) is None
    assert training.resume_epoch(output_dir, _cells()[1], other) is None
    # The same settings, but the ops ran otherwise (XLA on where it is off here).
    execution = {**training.execution_settings(config), "jit_compile": True}
    metadata.update(config_fingerprint=config.fingerprint(), execution=execution)
    training.save_checkpoint(path, model, metadata)
    assert training.resume_epoch(output_dir, cell, config) is None
    metadata.update(execution=training.execution_settings(config))
    training.save_checkpoint(path, model, metadata)
    assert training.resume_epoch(output_dir, cell, config) == 3
    # A network of another shape is refused before anything is assigned.
    narrow = training.build_model(cell, _config(width=0.125), training.get_dataset(other))
    narrow.optimizer.build(narrow.trainable_variables)
    before = [v.numpy().copy() for v in narrow.variables]
    with pytest.raises(training.CheckpointMismatchError, match="in the checkpoint"):
        training.restore_checkpoint(path, narrow)
    for variable, value in zip(narrow.variables, before):
        np.testing.assert_array_equal(variable.numpy(), value)
    # The same network takes every variable, the optimizer's step counter included.
    twin = training.build_model(cell, config, training.get_dataset(config))
    twin.optimizer.build(twin.trainable_variables)
    model.optimizer.iterations.assign(7)
    training.save_checkpoint(path, model, metadata)
    assert training.restore_checkpoint(path, twin)["epoch"] == 3
    assert int(twin.optimizer.iterations.numpy()) == 7
    for ours, theirs in zip(twin.variables, model.variables):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
