"""Image data sets for the label-smoothing experiments (CC paper, section 3).

Two sources:

* ``digits``: scikit-learn's bundled 8×8 handwritten digits (1,797 images, 10 classes),
  shipped inside the scikit-learn wheel, split once into train and test with a fixed
  seed. The embedded default: no file, no network.
* ``cifar10``: CIFAR-10 from a copy already on disk, in this order: ``data_dir`` if
  given (a directory of the original pickled batches, a directory holding
  ``cifar-10-batches-py/``, or a TensorFlow Datasets ``data_dir`` that holds a prepared
  ``cifar10``), then Keras' cache (``$KERAS_HOME`` or ``~/.keras``, ``datasets/``), then
  TensorFlow Datasets' default ``data_dir``. Nothing is downloaded unless
  ``download=True``; without data :class:`DatasetNotFoundError` says at once where it
  looked and how to get the data.

Images are kept as stored (uint8 for CIFAR-10, 0–16 floats for digits); models
rescale and standardize them with the constants of :class:`ImageDataset` so a saved
model takes raw pixels.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
from collections.abc import Sequence

import numpy as np

from keras_cc_runs import extras

__all__ = [
    "CIFAR10_CLASS_NAMES",
    "DATASETS",
    "DatasetNotFoundError",
    "ImageDataset",
    "cifar10_search_locations",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "read_cifar10_pickle_dir",
]

DATASETS = ("digits", "cifar10")
CIFAR10_CLASS_NAMES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_PICKLE_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + (
    "test_batch",
    "batches.meta",
)
_CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
_KERAS3_CACHE_SUBDIR = os.path.join("cifar-10-batches-py-target", "cifar-10-batches-py")
_KERAS2_CACHE_SUBDIR = "cifar-10-batches-py"


class DatasetNotFoundError(FileNotFoundError):
    """The requested data set is not on disk and downloading was not allowed."""


@dataclasses.dataclass(frozen=True, eq=False)
class ImageDataset:
    """A labelled image classification data set, already split into train and test.

    Attributes:
        name: ``"digits"`` or ``"cifar10"``.
        x_train, x_test: images ``[N, H, W, C]`` as stored (see ``pixel_max``).
        y_train, y_test: integer class labels ``[N]`` (int64).
        class_names: one name per class.
        pixel_max: the value of a white pixel (16 for digits, 255 for CIFAR-10).
        source: where the data was read from (for the run's records).
        x_valid, y_valid: a validation split held out of the training images
            (:meth:`hold_out_validation`), or None.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    pixel_max: float
    source: str
    x_valid: np.ndarray | None = None
    y_valid: np.ndarray | None = None

    def __post_init__(self):
        if (self.x_valid is None) != (self.y_valid is None):
            raise ValueError("x_valid and y_valid must both be given or both be None.")
        for split in ("train", "test") + (("valid",) if self.x_valid is not None else ()):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.ndim != 4:
                raise ValueError(f"x_{split} must be [N, H, W, C]; received shape {x.shape}.")
            if y.shape != (x.shape[0],):
                raise ValueError(
                    f"y_{split} must hold one label per image: x_{split}.shape={x.shape}, "
                    f"y_{split}.shape={y.shape}."
                )
            if y.size and (y.min() < 0 or y.max() >= len(self.class_names)):
                raise ValueError(
                    f"y_{split} labels must lie in [0, {len(self.class_names)}); found "
                    f"[{y.min()}, {y.max()}]."
                )
        if self.x_valid is not None and self.x_valid.shape[1:] != self.x_train.shape[1:]:
            raise ValueError(
                f"Train and validation images differ in shape: {self.x_train.shape[1:]} vs "
                f"{self.x_valid.shape[1:]}."
            )
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise ValueError(
                f"Train and test images differ in shape: {self.x_train.shape[1:]} vs "
                f"{self.x_test.shape[1:]}."
            )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])

    def channel_statistics(self) -> tuple[list[float], list[float]]:
        """Per-channel mean and variance of the training images scaled to [0, 1]."""
        scaled = self.x_train.astype(np.float64) / self.pixel_max
        axes = (0, 1, 2)
        return scaled.mean(axis=axes).tolist(), scaled.var(axis=axes).tolist()

    def scalar_statistics(self) -> tuple[list[float], list[float]]:
        """One mean and variance over all training pixels scaled to [0, 1], repeated per
        channel (the CC paper's standardization)."""
        scaled = self.x_train.astype(np.float64) / self.pixel_max
        channels = self.input_shape[-1]
        return [float(scaled.mean())] * channels, [float(scaled.var())] * channels

    def hold_out_validation(self, fraction: float, seed: int = 0) -> ImageDataset:
        """A copy whose training images lose a class-stratified ``fraction`` to
        ``x_valid``/``y_valid`` (fixed by ``seed``); 0 returns the data set unchanged.

        Raises:
            ValueError: ``fraction`` outside ``[0, 1)``, a validation split already held
                out, or too few images for one per class on each side.
        """
        if not 0.0 <= fraction < 1.0:
            raise ValueError(f"--validation_fraction must lie in [0, 1); received {fraction!r}.")
        if fraction == 0.0:
            return self
        if self.x_valid is not None:
            raise ValueError("This data set already holds a validation split.")
        from sklearn.model_selection import train_test_split

        try:
            x_train, x_valid, y_train, y_valid = train_test_split(
                self.x_train,
                self.y_train,
                test_size=fraction,
                random_state=seed,
                stratify=self.y_train,
            )
        except ValueError as error:
            raise ValueError(
                f"--validation_fraction={fraction} cannot split {len(self.y_train)} training "
                f"images by class: {error}"
            ) from None
        return dataclasses.replace(
            self, x_train=x_train, y_train=y_train, x_valid=x_valid, y_valid=y_valid
        )

    def subset(
        self, train_examples: int | None = None, test_examples: int | None = None, seed: int = 0
    ) -> ImageDataset:
        """A class-stratified random subset (for quick runs); ``None`` keeps a split whole."""
        rng = np.random.default_rng(seed)

        def pick(x, y, n, split):
            if n is None or n >= len(y):
                return x, y
            if n < self.num_classes:
                raise ValueError(
                    f"{split}_examples={n} is smaller than the number of classes "
                    f"({self.num_classes}); a stratified subset needs one per class."
                )
            order = rng.permutation(len(y))
            # Round-robin over classes in a random order within each class.
            ranks = np.empty(len(y), dtype=np.int64)
            for label in range(self.num_classes):
                members = order[y[order] == label]
                ranks[members] = np.arange(len(members))
            chosen = np.lexsort((order.argsort(), ranks))[:n]
            chosen.sort()
            return x[chosen], y[chosen]

        x_train, y_train = pick(self.x_train, self.y_train, train_examples, "train")
        x_test, y_test = pick(self.x_test, self.y_test, test_examples, "test")
        return dataclasses.replace(
            self, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test
        )


# ---------------------------------------------------------------------------- digits


def load_digits(test_fraction: float = 0.2, seed: int = 0) -> ImageDataset:
    """scikit-learn's bundled 8×8 digits with a fixed, stratified train/test split."""
    from sklearn.datasets import load_digits as sklearn_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1); received {test_fraction!r}.")
    bunch = sklearn_digits()
    images = bunch.images.astype(np.float32)[..., None]
    labels = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, labels, test_size=test_fraction, random_state=seed, stratify=labels
    )
    return ImageDataset(
        name="digits",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        class_names=tuple(str(d) for d in range(10)),
        pixel_max=16.0,
        source=f"sklearn.datasets.load_digits (test_fraction={test_fraction}, seed={seed})",
    )


# --------------------------------------------------------------------------- CIFAR-10


def _keras_home() -> str:
    return os.path.expanduser(os.environ.get("KERAS_HOME", os.path.join("~", ".keras")))


def _tfds_default_data_dir() -> str:
    return os.path.expanduser(
        os.environ.get("TFDS_DATA_DIR", os.path.join("~", "tensorflow_datasets"))
    )


def _is_pickle_dir(path: str) -> bool:
    return all(os.path.isfile(os.path.join(path, name)) for name in CIFAR10_PICKLE_FILES)


def _is_tfds_dir(path: str) -> bool:
    """Whether ``path`` is a TFDS data_dir holding a prepared ``cifar10``."""
    root = os.path.join(path, "cifar10")
    if not os.path.isdir(root):
        return False
    for version in os.listdir(root):
        if os.path.isfile(os.path.join(root, version, "dataset_info.json")):
            return True
    return False


def cifar10_search_locations(data_dir: str | None = None) -> list[tuple[str, str]]:
    """The places searched for CIFAR-10, in order, as ``(kind, path)``.

    ``kind`` is ``"pickle"`` (a directory of the original python batches) or ``"tfds"``
    (a TensorFlow Datasets data_dir).
    """
    locations = []
    if data_dir:
        data_dir = os.path.expanduser(data_dir)
        locations += [
            ("pickle", data_dir),
            ("pickle", os.path.join(data_dir, _KERAS2_CACHE_SUBDIR)),
            ("pickle", os.path.join(data_dir, _KERAS3_CACHE_SUBDIR)),
            ("tfds", data_dir),
        ]
    else:
        cache = os.path.join(_keras_home(), "datasets")
        locations += [
            ("pickle", os.path.join(cache, _KERAS3_CACHE_SUBDIR)),
            ("pickle", os.path.join(cache, _KERAS2_CACHE_SUBDIR)),
            ("tfds", _tfds_default_data_dir()),
        ]
    return locations


def _read_pickle(path: str) -> dict:
    try:
        with open(path, "rb") as f:
            return pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise ValueError(
            f"{path} is not a CIFAR-10 pickle batch ({error}); the directory should hold "
            f"the files of {_CIFAR10_URL} unpacked."
        ) from error


def _decode_keys(record: dict) -> dict:
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in record.items()}


def _read_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    record = _decode_keys(_read_pickle(path))
    if "data" not in record or "labels" not in record:
        raise ValueError(
            f"{path} has no 'data'/'labels' entries (found {sorted(record)}); it is not a "
            "CIFAR-10 batch."
        )
    data = np.asarray(record["data"], dtype=np.uint8)
    labels = np.asarray(record["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{path}: expected 'data' of shape [N, 3072] and N labels; found data "
            f"{data.shape} and {labels.shape[0]} labels."
        )
    # Rows are channel-major (1024 red, 1024 green, 1024 blue values, each row-major).
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


def read_cifar10_pickle_dir(path: str) -> ImageDataset:
    """CIFAR-10 from a directory of the original pickled batches.

    The directory holds ``data_batch_1`` … ``data_batch_5``, ``test_batch`` and
    ``batches.meta`` as unpacked from ``cifar-10-python.tar.gz``.
    """
    missing = [n for n in CIFAR10_PICKLE_FILES if not os.path.isfile(os.path.join(path, n))]
    if missing:
        raise DatasetNotFoundError(f"{path} lacks the CIFAR-10 files {missing}.")
    train = [_read_batch(os.path.join(path, f"data_batch_{i}")) for i in range(1, 6)]
    x_test, y_test = _read_batch(os.path.join(path, "test_batch"))
    meta = _decode_keys(_read_pickle(os.path.join(path, "batches.meta")))
    names = meta.get("label_names", CIFAR10_CLASS_NAMES)
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    return ImageDataset(
        name="cifar10",
        x_train=np.concatenate([x for x, _ in train]),
        y_train=np.concatenate([y for _, y in train]),
        x_test=x_test,
        y_test=y_test,
        class_names=names,
        pixel_max=255.0,
        source=os.path.abspath(path),
    )


def _read_tfds(data_dir: str) -> ImageDataset:
    try:
        import tensorflow_datasets as tfds
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise ImportError(
            f"{data_dir} holds a TensorFlow Datasets copy of cifar10, but "
            f"tensorflow-datasets is not installed: {extras.install_command('data')} in a "
            "clone of keras-cc."
        ) from error

    builder = tfds.builder("cifar10", data_dir=data_dir)
    splits = {}
    for split in ("train", "test"):
        images, labels = tfds.as_numpy(
            builder.as_dataset(split=split, as_supervised=True, batch_size=-1)
        )
        splits[split] = (np.asarray(images, np.uint8), np.asarray(labels, np.int64))
    names = tuple(builder.info.features["label"].names) or CIFAR10_CLASS_NAMES
    return ImageDataset(
        name="cifar10",
        x_train=splits["train"][0],
        y_train=splits["train"][1],
        x_test=splits["test"][0],
        y_test=splits["test"][1],
        class_names=names,
        pixel_max=255.0,
        source=f"tfds:{os.path.abspath(data_dir)}",
    )


def _download_cifar10() -> ImageDataset:
    import keras

    (x_train, y_train), (x_test, y_test) = keras.datasets.cifar10.load_data()
    return ImageDataset(
        name="cifar10",
        x_train=np.asarray(x_train, np.uint8),
        y_train=np.asarray(y_train, np.int64).reshape(-1),
        x_test=np.asarray(x_test, np.uint8),
        y_test=np.asarray(y_test, np.int64).reshape(-1),
        class_names=CIFAR10_CLASS_NAMES,
        pixel_max=255.0,
        source=f"keras.datasets.cifar10 (downloaded from {_CIFAR10_URL})",
    )


def _not_found_message(locations: Sequence[tuple[str, str]]) -> str:
    looked = "\n".join(f"  - {path}  ({kind})" for kind, path in locations)
    return (
        "CIFAR-10 was not found on disk. Looked in:\n"
        f"{looked}\n"
        "To get it, either\n"
        "  * pass --download (keras.datasets.cifar10 fetches ~170 MB into "
        f"{os.path.join(_keras_home(), 'datasets')}), or\n"
        f"  * download {_CIFAR10_URL}, unpack it and pass --data_dir=<dir holding "
        "cifar-10-batches-py or its files data_batch_1..5, test_batch, batches.meta>, or\n"
        "  * pass --data_dir=<a TensorFlow Datasets data_dir with a prepared cifar10>."
    )


def load_cifar10(data_dir: str | None = None, download: bool = False) -> ImageDataset:
    """CIFAR-10 from a local copy (see the module docstring), downloading only if asked.

    Raises:
        DatasetNotFoundError: no copy was found and ``download`` is False; the message
            lists every place searched and how to get the data.
    """
    if data_dir and not os.path.isdir(os.path.expanduser(data_dir)):
        raise DatasetNotFoundError(
            f"--data_dir={data_dir!r} is not a directory.\n"
            + _not_found_message(cifar10_search_locations(data_dir))
        )
    locations = cifar10_search_locations(data_dir)
    for kind, path in locations:
        if kind == "pickle" and _is_pickle_dir(path):
            return read_cifar10_pickle_dir(path)
        if kind == "tfds" and _is_tfds_dir(path):
            return _read_tfds(path)
    if download:
        return _download_cifar10()
    raise DatasetNotFoundError(_not_found_message(locations))


def load_dataset(
    name: str, data_dir: str | None = None, download: bool = False, seed: int = 0
) -> ImageDataset:
    """The data set ``name`` (``"digits"`` or ``"cifar10"``)."""
    if name == "digits":
        return load_digits(seed=seed)
    if name == "cifar10":
        return load_cifar10(data_dir=data_dir, download=download)
    raise ValueError(f"Unknown dataset {name!r}; choose one of {DATASETS}.")
