"""Data loading of the label-smoothing experiments: digits, CIFAR-10 from disk, no data."""

import os
import pickle
import time

import numpy as np
import pytest
from interpreters import python

from keras_cc_experiments import data as data_lib

# The slow lane (the experiments' data pipelines): `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------- digits


def test_digits_split_is_fixed_stratified_and_complete():
    first, second = data_lib.load_digits(), data_lib.load_digits()
    np.testing.assert_array_equal(first.x_train, second.x_train)
    np.testing.assert_array_equal(first.y_test, second.y_test)
    assert first.x_train.shape[1:] == (8, 8, 1) and first.input_shape == (8, 8, 1)
    assert len(first.y_train) + len(first.y_test) == 1797
    assert len(first.y_test) == 360
    assert first.num_classes == 10 and first.pixel_max == 16.0
    assert 0.0 <= first.x_train.min() and first.x_train.max() <= 16.0
    # Stratified: every class in both splits, test share close to 20 % per class.
    for label in range(10):
        n_train = int((first.y_train == label).sum())
        n_test = int((first.y_test == label).sum())
        assert n_test / (n_train + n_test) == pytest.approx(0.2, abs=0.02)
    other = data_lib.load_digits(seed=1)
    assert not np.array_equal(other.y_test, first.y_test)


def test_subset_is_stratified_and_deterministic():
    digits = data_lib.load_digits()
    small = digits.subset(train_examples=50, test_examples=20, seed=0)
    assert len(small.y_train) == 50 and len(small.y_test) == 20
    assert np.bincount(small.y_train, minlength=10).tolist() == [5] * 10
    again = digits.subset(train_examples=50, test_examples=20, seed=0)
    np.testing.assert_array_equal(small.x_train, again.x_train)
    assert digits.subset(None, None).y_train.shape == digits.y_train.shape
    with pytest.raises(ValueError, match="smaller than the number of classes"):
        digits.subset(train_examples=5)


def test_dataset_rejects_mismatched_arrays():
    x = np.zeros((4, 2, 2, 1), np.float32)
    with pytest.raises(ValueError, match="one label per image"):
        data_lib.ImageDataset(
            "t", x, np.zeros(3, np.int64), x, np.zeros(4, np.int64), ("a",), 1, ""
        )
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 1\)"):
        data_lib.ImageDataset("t", x, np.ones(4, np.int64), x, np.zeros(4, np.int64), ("a",), 1, "")


# ----------------------------------------------------------------- CIFAR-10 on disk


def _pixel(index, row, column, channel):
    """A pixel value that identifies image, position and channel."""
    return (index * 7 + row * 3 + column * 5 + channel * 101) % 256


def _image(index):
    r, c, ch = np.meshgrid(np.arange(32), np.arange(32), np.arange(3), indexing="ij")
    return _pixel(index, r, c, ch).astype(np.uint8)  # [32, 32, 3]


def _write_batch(path, indices, labels):
    # The original format: rows of 3072 bytes, 1024 red values (row-major), then green,
    # then blue; pickled by Python 2, so keys load as bytes.
    data = np.stack([_image(i).transpose(2, 0, 1).reshape(-1) for i in indices])
    record = {
        b"batch_label": b"training batch",
        b"labels": list(labels),
        b"data": data,
        b"filenames": [f"img_{i}.png".encode() for i in indices],
    }
    with open(path, "wb") as f:
        pickle.dump(record, f, protocol=2)


def write_cifar10_pickle_dir(directory, per_batch=3, test_size=4):
    """A tiny CIFAR-10 in the original python pickle layout; returns the expected labels."""
    os.makedirs(directory, exist_ok=True)
    train_labels = []
    for batch in range(1, 6):
        indices = range((batch - 1) * per_batch, batch * per_batch)
        labels = [(i * 3) % 10 for i in indices]
        train_labels += labels
        _write_batch(os.path.join(directory, f"data_batch_{batch}"), indices, labels)
    test_indices = range(1000, 1000 + test_size)
    test_labels = [i % 10 for i in test_indices]
    _write_batch(os.path.join(directory, "test_batch"), test_indices, test_labels)
    meta = {
        b"label_names": [n.encode() for n in data_lib.CIFAR10_CLASS_NAMES],
        b"num_cases_per_batch": per_batch,
        b"num_vis": 3072,
    }
    with open(os.path.join(directory, "batches.meta"), "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return train_labels, test_labels


@pytest.fixture
def no_default_caches(tmp_path, monkeypatch):
    """Keras' cache and TFDS' default data_dir point at empty directories."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.setenv("TFDS_DATA_DIR", str(tmp_path / "tfds_home"))
    return tmp_path


def test_cifar10_from_a_directory_of_original_pickles(tmp_path, no_default_caches):
    directory = tmp_path / "my_cifar"
    train_labels, test_labels = write_cifar10_pickle_dir(str(directory))
    dataset = data_lib.load_cifar10(data_dir=str(directory))
    assert dataset.name == "cifar10" and dataset.input_shape == (32, 32, 3)
    assert dataset.x_train.dtype == np.uint8 and dataset.pixel_max == 255.0
    assert dataset.y_train.tolist() == train_labels
    assert dataset.y_test.tolist() == test_labels
    assert dataset.class_names == data_lib.CIFAR10_CLASS_NAMES
    # Channel layout: image 4 of the training set, pixel (row 5, column 9), all channels.
    for channel in range(3):
        assert dataset.x_train[4, 5, 9, channel] == _pixel(4, 5, 9, channel)
    np.testing.assert_array_equal(dataset.x_test[2], _image(1002))
    # A parent directory holding cifar-10-batches-py is accepted too.
    parent = tmp_path / "parent"
    write_cifar10_pickle_dir(str(parent / "cifar-10-batches-py"))
    assert data_lib.load_cifar10(data_dir=str(parent)).y_test.tolist() == test_labels


def test_cifar10_found_in_keras_cache(no_default_caches):
    cache = no_default_caches / "keras_home" / "datasets"
    write_cifar10_pickle_dir(str(cache / "cifar-10-batches-py-target" / "cifar-10-batches-py"))
    dataset = data_lib.load_cifar10()
    assert len(dataset.y_train) == 15 and "cifar-10-batches-py" in dataset.source


def test_cifar10_missing_fails_fast_with_where_it_looked(no_default_caches):
    start = time.perf_counter()
    with pytest.raises(data_lib.DatasetNotFoundError) as error:
        data_lib.load_cifar10()
    assert time.perf_counter() - start < 5.0
    message = str(error.value)
    assert str(no_default_caches / "keras_home") in message
    assert str(no_default_caches / "tfds_home") in message
    assert "--download" in message and "--data_dir" in message
    with pytest.raises(data_lib.DatasetNotFoundError, match="is not a directory"):
        data_lib.load_cifar10(data_dir=str(no_default_caches / "nowhere"))


def test_cifar10_corrupt_batch_is_named(tmp_path, no_default_caches):
    directory = tmp_path / "bad"
    write_cifar10_pickle_dir(str(directory))
    with open(directory / "data_batch_3", "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match="data_batch_3.*3072"):
        data_lib.load_cifar10(data_dir=str(directory))


def test_cifar10_from_a_tfds_data_dir(tmp_path, no_default_caches, monkeypatch):
    """A TFDS data_dir with a prepared cifar10 (prepared offline from binary batches)."""
    tfds = pytest.importorskip("tensorflow_datasets")
    raw = tmp_path / "raw" / "cifar-10-batches-bin"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    labels = {}
    for name, count in [(f"data_batch_{i}.bin", 2) for i in range(1, 6)] + [("test_batch.bin", 3)]:
        rows = []
        labels[name] = rng.integers(0, 10, count).tolist()
        for label in labels[name]:
            rows.append(bytes([label]) + rng.integers(0, 256, 3072, dtype=np.uint8).tobytes())
        (raw / name).write_bytes(b"".join(rows))
    (raw / "batches.meta.txt").write_text("\n".join(data_lib.CIFAR10_CLASS_NAMES) + "\n")
    monkeypatch.setattr(
        tfds.download.DownloadManager,
        "download_and_extract",
        lambda self, url: str(tmp_path / "raw"),
    )
    tfds_dir = tmp_path / "tfds"
    tfds.builder("cifar10", data_dir=str(tfds_dir)).download_and_prepare()
    dataset = data_lib.load_cifar10(data_dir=str(tfds_dir))
    assert dataset.source.startswith("tfds:")
    assert len(dataset.y_train) == 10 and len(dataset.y_test) == 3
    assert sorted(dataset.y_test.tolist()) == sorted(labels["test_batch.bin"])
    assert dataset.x_train.shape == (10, 32, 32, 3)


def test_ablation_script_without_cifar_stops_at_once_with_instructions(tmp_path):
    env = dict(
        os.environ,
        KERAS_HOME=str(tmp_path / "keras_home"),
        TFDS_DATA_DIR=str(tmp_path / "tfds_home"),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    result = python(
        os.path.join(REPO, "examples", "label_smoothing_ablation.py"),
        "--dataset=cifar10",
        f"--output_dir={tmp_path / 'out'}",
        expect=2,
        env=env,
        timeout=120,
    )
    assert "CIFAR-10 was not found" in result.stderr
    assert str(tmp_path / "keras_home") in result.stderr and "--download" in result.stderr
    assert not (tmp_path / "out" / "cells").exists()


@pytest.mark.parametrize("protocol", ["standard", "paper"])
def test_a_cifar10_grid_cell_trains_from_a_pickle_directory(tmp_path, no_default_caches, protocol):
    """The CIFAR path end to end: uint8 32x32x3 images, augmentation, full-width CNN, in
    both protocols (20 training images: no validation split)."""
    from keras_cc_experiments import grid, training
    from keras_cc_experiments.model import Regularizers

    directory = tmp_path / "cifar"
    write_cifar10_pickle_dir(str(directory), per_batch=4, test_size=6)
    config = training.TrainingConfig(
        dataset="cifar10",
        data_dir=str(directory),
        epochs=2,
        batch_size=5,
        width=0.25,
        augment=True,
        tensorboard=False,
        protocol=protocol,
        validation_fraction=0.0,
    )
    cells = grid.enumerate_cells([Regularizers(True, True, True)], ["cc_ls_published"], [0])
    records = grid.run_grid(cells, config, str(tmp_path / "out"), printer=lambda line: None)
    record = records[cells[0].cell_id]
    assert record["status"] == "done", record.get("reason")
    assert record["data_source"] == str(directory)
    assert record["config"]["protocol"] == protocol
    assert len(record["curves"]["test_accuracy"]) == 2 and "val_accuracy" not in record["curves"]
    assert record["selected_test_accuracy"] is None
    correct = 6 * record["curves"]["test_accuracy"][-1]
    assert abs(correct - round(correct)) < 1e-5  # accuracy over the 6 test images


def test_download_is_used_only_when_allowed(no_default_caches, monkeypatch):
    import keras

    calls = []

    def fake_load_data():
        calls.append(1)
        x = np.zeros((4, 32, 32, 3), np.uint8)
        return (x, np.array([[1], [2], [3], [4]])), (x[:2], np.array([[5], [6]]))

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", fake_load_data)
    with pytest.raises(data_lib.DatasetNotFoundError):
        data_lib.load_cifar10()
    assert calls == []
    dataset = data_lib.load_cifar10(download=True)
    assert calls == [1]
    assert dataset.y_train.tolist() == [1, 2, 3, 4] and dataset.y_test.tolist() == [5, 6]
    assert dataset.source.startswith("keras.datasets.cifar10")
