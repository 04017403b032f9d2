"""The ablation grid end to end: records, resume after a kill, failed cells, engines."""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_cc_experiments import grid, tables, training
from keras_cc_experiments.model import Regularizers
from keras_cc_experiments.records import read_json

# The slow lane (experiment grids end to end): `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ABLATION = os.path.join(REPO, "examples", "label_smoothing_ablation.py")
TINY = dict(train_examples=120, test_examples=60, epochs=2, batch_size=30, width=0.25)
ROW = Regularizers(dropout=True, weight_decay=False, batch_norm=True)


def _records(output_dir):
    out = {}
    for path in glob.glob(os.path.join(output_dir, "cells", "*.json")):
        with open(path) as f:
            out[os.path.basename(path)[:-5]] = json.load(f)  # every file parses: complete
    return out


def test_two_cell_grid_end_to_end_and_rerun_skips(tmp_path):
    config = training.TrainingConfig(**TINY)
    cells = grid.enumerate_cells([ROW], ["ls", "cc_ls"], [0])
    lines = []
    records = grid.run_grid(cells, config, str(tmp_path), printer=lines.append)
    assert set(records) == {"dropout+batch_norm__ls__seed0", "dropout+batch_norm__cc_ls__seed0"}
    for cell in cells:
        record = records[cell.cell_id]
        assert record["status"] == "done", record.get("reason")
        assert record["loss"] == cell.loss and record["seed"] == 0
        assert record["row"] == {"dropout": True, "weight_decay": False, "batch_norm": True}
        assert record["config_fingerprint"] == config.fingerprint()
        curves = record["curves"]
        assert len(curves["test_accuracy"]) == len(curves["loss"]) == TINY["epochs"]
        assert len(curves["val_accuracy"]) == TINY["epochs"]  # the validation split
        assert record["final_test_accuracy"] == curves["test_accuracy"][-1]
        assert record["max_test_accuracy"] == max(curves["test_accuracy"])
        epoch = record["selected_epoch"]
        assert record["selected_test_accuracy"] == curves["test_accuracy"][epoch - 1]
        assert record["selected_validation_accuracy"] == max(curves["val_accuracy"])
        assert record["config"]["protocol"] == "standard"
        assert 0.0 <= record["final_test_accuracy"] <= 1.0
        paths = training.cell_paths(str(tmp_path), cell)
        assert glob.glob(os.path.join(paths["tensorboard"], "validation", "events.out.*"))
        assert glob.glob(os.path.join(paths["tensorboard"], "train", "events.out.*"))
        assert not os.path.exists(paths["checkpoint"])
        model = keras.saving.load_model(paths["model"], compile=False)
        assert model.output.shape[-1] == 10
    # The saved model reproduces the recorded final test accuracy.
    dataset = training.get_dataset(config)
    model = keras.saving.load_model(
        training.cell_paths(str(tmp_path), cells[0])["model"], compile=False
    )
    predicted = np.argmax(model.predict(dataset.x_test, verbose=0), -1)  # logits
    accuracy = float(np.mean(predicted == dataset.y_test))
    assert accuracy == pytest.approx(records[cells[0].cell_id]["final_test_accuracy"], abs=1e-6)
    assert any("[2/2]" in line and "test acc" in line for line in lines)
    assert not glob.glob(os.path.join(tmp_path, "**", ".tmp-*"), recursive=True)

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished cell was run again")

    lines = []
    again = grid.run_grid(cells, config, str(tmp_path), cell_fn=must_not_run, printer=lines.append)
    assert again == records
    assert any("2 of 2 cells already have records" in line for line in lines)

    summary = tables.summarize_grid(records, [ROW], ["ls", "cc_ls"], [0])
    text = tables.format_table1(summary, [ROW], ["ls", "cc_ls"])
    assert text.splitlines()[2].startswith("Yes      No            Yes")

    changed = training.TrainingConfig(**{**TINY, "epochs": 3})
    with pytest.raises(grid.ConfigMismatchError, match="epochs: 2 there, 3 now"):
        grid.run_grid(cells, changed, str(tmp_path), cell_fn=must_not_run)


def test_reused_model_gives_the_numbers_of_a_new_model(tmp_path):
    """Cells differing only in seed share a traced model; the record is a fresh build's."""
    config = training.TrainingConfig(**TINY, tensorboard=False, save_models=False)
    cells = grid.enumerate_cells([ROW], ["cc_ls"], [0, 1])
    warm = grid.run_grid(cells, config, str(tmp_path / "warm"), printer=lambda line: None)
    cold = training.run_cell(cells[1], config, str(tmp_path / "cold"), None, reuse_model=False)
    with open(training.cell_paths(str(tmp_path / "warm"), cells[1])["record"], "rb") as f:
        warm_record = f.read()
    with open(training.cell_paths(str(tmp_path / "cold"), cells[1])["record"], "rb") as f:
        assert f.read() == warm_record
    assert warm[cells[1].cell_id]["curves"]["loss"] == cold["curves"]["loss"]
    assert warm[cells[0].cell_id]["curves"]["loss"] != cold["curves"]["loss"]


def test_diverging_cells_are_recorded_as_failed_and_the_grid_goes_on(tmp_path):
    config = training.TrainingConfig(**TINY, learning_rate=1e10, tensorboard=False)
    row = Regularizers(False, False, False)
    cells = grid.enumerate_cells([row], ["none", "cc_ls"], [0])
    lines = []
    records = grid.run_grid(cells, config, str(tmp_path), printer=lines.append)
    assert len(records) == 2
    for record in records.values():
        assert record["status"] == "failed"
        assert record["reason"].startswith("diverged: training loss became nan")
        assert "epoch 1" in record["reason"]
    assert sum("FAILED" in line for line in lines) == 2
    summary = tables.summarize_grid(records, [row], ["none", "cc_ls"], [0])
    assert "failed (1)" in tables.format_table1(summary, [row], ["none", "cc_ls"])
    # A rerun keeps the failures; --retry_failed runs them again.
    ran = []

    def count(cell, *args, **kwargs):
        ran.append(cell.cell_id)
        return training.run_cell(cell, *args, **kwargs)

    grid.run_grid(cells, config, str(tmp_path), cell_fn=count, printer=lambda line: None)
    assert ran == []
    grid.run_grid(
        cells, config, str(tmp_path), cell_fn=count, retry_failed=True, printer=lambda line: None
    )
    assert ran == [c.cell_id for c in cells]


def test_an_exception_in_one_cell_is_recorded_and_the_next_cell_runs(tmp_path, monkeypatch):
    config = training.TrainingConfig(**TINY, tensorboard=False, save_models=False)
    original = training.build_model

    def broken_for_ls(cell, *args):
        if cell.loss == "ls":
            raise MemoryError("out of memory while building")
        return original(cell, *args)

    monkeypatch.setattr(training, "build_model", broken_for_ls)
    training.release_models()
    cells = grid.enumerate_cells([ROW], ["ls", "none"], [0])
    records = grid.run_grid(cells, config, str(tmp_path), printer=lambda line: None)
    failed = records["dropout+batch_norm__ls__seed0"]
    assert failed["status"] == "failed"
    assert failed["reason"] == "MemoryError: out of memory while building"
    assert "Traceback" in failed["traceback"]
    assert records["dropout+batch_norm__none__seed0"]["status"] == "done"


def _run_ablation(args, **kwargs):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen(
        [sys.executable, ABLATION, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        **kwargs,
    )


def test_resume_after_the_process_is_killed_mid_grid(tmp_path):
    output_dir = str(tmp_path / "run")
    args = [
        "--rows=dropout+batch_norm,none",
        "--losses=none,ls",
        "--seeds=0",
        "--epochs=6",
        "--train_examples=200",
        "--test_examples=60",
        "--batch_size=20",
        "--width=0.25",
        "--checkpoint_interval_s=0",
        "--save_models=false",
        f"--output_dir={output_dir}",
    ]
    process = _run_ablation(args)
    cells_dir = os.path.join(output_dir, "cells")
    checkpoints = os.path.join(output_dir, "checkpoints")
    deadline = time.monotonic() + 240
    killed_mid_cell = False
    try:
        while time.monotonic() < deadline and process.poll() is None:
            done = glob.glob(os.path.join(cells_dir, "*.json"))
            in_progress = glob.glob(os.path.join(checkpoints, "*", "state.npz"))
            if done and in_progress:
                # One cell finished, the next one has checkpointed at least one epoch.
                process.send_signal(signal.SIGKILL)
                killed_mid_cell = True
                break
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.kill()
        output, _ = process.communicate(timeout=60)
    assert killed_mid_cell, output[-3000:]

    before = _records(output_dir)
    assert 1 <= len(before) < 4
    assert all(r["status"] == "done" and "final_test_accuracy" in r for r in before.values())
    assert not os.path.exists(os.path.join(output_dir, "table1.md"))
    interrupted = [os.path.basename(p) for p in glob.glob(os.path.join(checkpoints, "*"))]
    assert len(interrupted) == 1

    # A report of the grid in progress trains nothing and leaves the checkpoint alone.
    process = _run_ablation([*args, "--report_only"])
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output[-3000:]
    assert f"{len(before)} of 4 cells have a record." in output
    assert "–" in output  # the entries without a record
    assert _records(output_dir) == before
    assert os.path.isfile(os.path.join(output_dir, "table1.md"))
    assert [os.path.basename(p) for p in glob.glob(os.path.join(checkpoints, "*"))] == interrupted

    # Resume through the other local engine: a pool of worker processes.
    process = _run_ablation([*args, "--workers=2"])
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]
    assert f"Resuming: {len(before)} of 4 cells already have records" in output
    assert "in 2 local worker processes" in output
    after = _records(output_dir)
    assert len(after) == 4
    for cell_id, record in before.items():
        assert after[cell_id] == record  # finished cells were not redone
    provenance = {
        cid: read_json(os.path.join(output_dir, "provenance", f"{cid}.json")) for cid in after
    }
    new_pids = {provenance[cid]["attempts"][-1]["pid"] for cid in after if cid not in before}
    assert process.pid not in new_pids and len(new_pids) == min(2, 4 - len(before))
    resumed = after[interrupted[0]]
    assert resumed["status"] == "done"
    assert provenance[interrupted[0]]["resumed_after_epoch"] >= 1
    assert f"{interrupted[0]}: test acc" in output and "resumed after epoch" in output
    assert len(resumed["curves"]["test_accuracy"]) == 6
    assert not glob.glob(os.path.join(checkpoints, "*"))
    assert "Table 1" in output and "w/o LS" in output
    with open(os.path.join(output_dir, "table1.md")) as f:
        assert "| Yes | No | Yes |" in f.read()
    assert os.path.getsize(os.path.join(output_dir, "table1.png")) > 1000


def test_two_cell_grid_as_ray_tasks(tmp_path):
    ray = pytest.importorskip("ray")
    config = training.TrainingConfig(**TINY, tensorboard=False, save_models=False)
    cells = grid.enumerate_cells([ROW], ["ls", "cc_ls"], [0])
    lines = []
    records = grid.run_grid(cells, config, str(tmp_path), ray_address="local", printer=lines.append)
    assert not ray.is_initialized()
    assert {r["status"] for r in records.values()} == {"done"}, records
    for cell in cells:
        provenance = training.read_provenance(str(tmp_path), cell)
        assert provenance["attempts"][-1]["pid"] != os.getpid()
    assert len(_records(str(tmp_path))) == 2
    assert any("Ray (local)" in line for line in lines)


def test_mirrored_strategy_trains_a_cell_on_two_replicas(tmp_path):
    """tf.distribute: one cell on two (logical CPU) replicas, in a fresh interpreter."""
    script = f"""
import keras_cc, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_cc_experiments import training
from keras_cc_experiments.model import Regularizers
original = training.make_strategy
training.make_strategy = lambda name: original(name, devices=["/cpu:0", "/cpu:1"])
config = training.TrainingConfig(train_examples=120, test_examples=60, epochs=2,
    batch_size=30, width=0.25, strategy="mirrored", tensorboard=False)
record = training.run_cell(training.Cell(Regularizers(True, True, True), "cc_ls", 0), config,
    {str(tmp_path)!r}, None)
assert record["status"] == "done", record.get("reason")
assert record["replicas"] == 2, record["replicas"]
print("OK", record["final_test_accuracy"])
"""
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr[-3000:]


def test_grid_arguments_are_checked(tmp_path):
    config = training.TrainingConfig(**TINY)
    cells = grid.enumerate_cells([ROW], ["ls"], [0])
    with pytest.raises(ValueError, match="duplicates"):
        grid.enumerate_cells([ROW], ["ls", "ls"], [0])
    with pytest.raises(ValueError, match="workers must be >= 1"):
        grid.run_grid(cells, config, str(tmp_path), workers=0)
    with pytest.raises(ValueError, match="not both"):
        grid.run_grid(cells, config, str(tmp_path), workers=2, ray_address="local")
    mirrored = training.TrainingConfig(**TINY, strategy="mirrored")
    with pytest.raises(ValueError, match="--workers=1"):
        grid.run_grid(cells, mirrored, str(tmp_path), workers=2)
    with pytest.raises(ValueError, match="`label_smoothing` must lie in"):
        training.TrainingConfig(label_smoothing=1.0)
