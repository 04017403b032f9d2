"""The ablation CNN, its four losses and the input pipeline (CC paper, section 3.1).

The CNN follows the CIFAR-10 classifier of the CC paper's Table 1: pairs of 3×3
convolutions with ELU activations at 32, 64 and 128 filters, each pair followed by 2×2
max-pooling, then a dense layer of class logits (the model's output; the losses take
logits). Three switches turn the regularizers of the ablation on and off:

* dropout after each pooling (rates 0.2, 0.3, 0.4 by default),
* weight decay: an L2 penalty ``weight_decay · Σ w²`` on every kernel, or on the final
  dense kernel only (the ``paper`` protocol),
* batch normalization after every convolution, before the ELU or, in the ``paper``
  protocol, after it.

``width`` scales the filter counts (the small 8×8 digits use half width). The layer
named ``"penultimate"`` holds the representation ``z`` and the layer ``"logits"`` the
template vectors ``w_k`` of CC paper eq. 8.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_cc.core import hyperparameters

__all__ = [
    "LOSS_LABELS",
    "LOSSES",
    "REGULARIZER_ALIASES",
    "Regularizers",
    "build_ablation_cnn",
    "epoch_key",
    "make_eval_dataset",
    "make_loss",
    "make_train_dataset",
    "paper_rows",
]

LOSSES = ("none", "ls", "cc_ls", "cc_ls_published")
LOSS_LABELS = {
    "none": "w/o LS",
    "ls": "with LS",
    "cc_ls": "CC-LS",
    "cc_ls_published": "CC-LS published",
}
LAYER_ORDERS = ("conv_bn_elu", "conv_elu_bn")
WEIGHT_DECAY_TARGETS = ("kernels", "logits")
AUGMENTATIONS = ("crop_flip", "rotate_shift_flip")
BASE_FILTERS = (32, 64, 128)
DEFAULT_DROPOUT_RATES = (0.2, 0.3, 0.4)


# Names of the regularizers in a row ('+'-joined), with their short forms.
REGULARIZER_ALIASES = {
    "dropout": "dropout",
    "do": "dropout",
    "weight_decay": "weight_decay",
    "wd": "weight_decay",
    "batch_norm": "batch_norm",
    "batchnorm": "batch_norm",
    "bn": "batch_norm",
}


@dataclasses.dataclass(frozen=True, order=True)
class Regularizers:
    """One row of Table 1: which of dropout, weight decay and batch norm are on."""

    dropout: bool
    weight_decay: bool
    batch_norm: bool

    _NAMES = ("dropout", "weight_decay", "batch_norm")

    @property
    def key(self) -> str:
        """``"dropout+weight_decay+batch_norm"`` style name; ``"none"`` for no regularizer."""
        on = [name for name in self._NAMES if getattr(self, name)]
        return "+".join(on) if on else "none"

    @classmethod
    def parse(cls, text: str) -> Regularizers:
        """The inverse of :attr:`key`; also accepts ``wd``/``bn`` and ``,`` separators."""
        aliases = REGULARIZER_ALIASES
        text = text.strip().lower()
        if text in ("none", ""):
            return cls(False, False, False)
        parts = [p.strip() for p in text.replace(",", "+").split("+")]
        unknown = [p for p in parts if p not in aliases]
        if unknown:
            raise ValueError(
                f"Unknown regularizer(s) {unknown} in row {text!r}; use '+'-joined names "
                "from dropout, weight_decay (wd), batch_norm (bn), or 'none'."
            )
        chosen = {aliases[p] for p in parts}
        return cls(**{name: name in chosen for name in cls._NAMES})

    def as_dict(self) -> dict:
        return {name: getattr(self, name) for name in self._NAMES}


def paper_rows() -> list[Regularizers]:
    """All eight rows in Table 1's order: batch norm first, then weight decay, dropout."""
    rows = []
    for batch_norm, weight_decay, dropout in itertools.product((True, False), repeat=3):
        rows.append(Regularizers(dropout, weight_decay, batch_norm))
    # (bn, wd, do) runs TTT, TTF, TFT, ...: Table 1's rows, dropout varying fastest.
    return rows


def make_loss(
    name: str, label_smoothing: float = 0.1, reduction: str = "sum_over_batch_size"
) -> keras.losses.Loss:
    """The loss of one Table 1 column, on logits ``[B, K]`` and one-hot targets.

    ``"none"``: ``CategoricalCrossentropy`` (always the batch mean); ``"ls"``:
    ``CategoricalCrossentropy(label_smoothing=ε)`` (CC paper eq. 6); ``"cc_ls"``:
    ``keras_cc.CCLabelSmoothing(ε)`` (eq. 7, exact); ``"cc_ls_published"``: the authors'
    float32 closed form with its fallback
    (:class:`keras_cc_experiments.published.PublishedCCLabelSmoothing`).
    ``reduction`` applies to the last three (the ``paper`` protocol sums them).

    Raises:
        ValueError: an unknown name, or ``label_smoothing`` outside ``(0, 1)``.
    """
    if name == "none":
        return keras.losses.CategoricalCrossentropy(from_logits=True)
    label_smoothing = hyperparameters.label_smoothing(label_smoothing, positive=True)
    if name == "ls":
        return keras.losses.CategoricalCrossentropy(
            label_smoothing=label_smoothing, from_logits=True, reduction=reduction
        )
    if name == "cc_ls":
        from keras_cc.losses import CCLabelSmoothing

        return CCLabelSmoothing(label_smoothing, from_logits=True, reduction=reduction)
    if name == "cc_ls_published":
        from keras_cc_experiments.published import PublishedCCLabelSmoothing

        return PublishedCCLabelSmoothing(label_smoothing, reduction=reduction)
    raise ValueError(f"Unknown loss {name!r}; choose one of {LOSSES}.")


def _pyramid_depth(input_shape: Sequence[int], max_blocks: int) -> int:
    """How many 2×2 poolings the input allows (down to 1×1), at most ``max_blocks``."""
    side = min(input_shape[0], input_shape[1])
    depth = 0
    while depth < max_blocks and side >= 2:
        side //= 2
        depth += 1
    return max(depth, 1)


def build_ablation_cnn(
    input_shape: Sequence[int],
    num_classes: int,
    regularizers: Regularizers,
    *,
    width: float = 1.0,
    dropout_rates: Sequence[float] = DEFAULT_DROPOUT_RATES,
    weight_decay: float = 1e-4,
    batch_norm_momentum: float = 0.9,
    pixel_max: float = 255.0,
    channel_mean: Sequence[float] | None = None,
    channel_variance: Sequence[float] | None = None,
    layer_order: str = "conv_bn_elu",
    weight_decay_on: str = "kernels",
    name: str | None = None,
) -> keras.Model:
    """The ablation CNN (see the module docstring); takes raw pixels, outputs logits.

    Args:
        input_shape: ``(H, W, C)``. Inputs smaller than 8×8 get fewer blocks.
        num_classes: size of the softmax.
        regularizers: which of dropout / weight decay / batch norm to use.
        width: multiplier on the 32/64/128 filters (rounded, at least 4).
        dropout_rates: one rate per block, used when ``regularizers.dropout``.
        weight_decay: L2 coefficient on kernels, used when ``regularizers.weight_decay``.
        batch_norm_momentum: moving-average momentum of the batch norms.
        pixel_max: value of a white pixel; inputs are divided by it.
        channel_mean, channel_variance: per-channel statistics of the scaled training
            images used to standardize inputs (none: no standardization).
        layer_order: ``"conv_bn_elu"`` or ``"conv_elu_bn"`` (the CC paper's code; the
            convolutions then keep their bias).
        weight_decay_on: ``"kernels"`` (every kernel) or ``"logits"`` (the final dense
            kernel only, as in the CC paper's code).

    Raises:
        ValueError: a bad shape, width, rate, weight decay, layer order or target, with
            the argument's name.
    """
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (H, W, C); received {tuple(input_shape)}.")
    if width <= 0:
        raise ValueError(f"width must be positive; received {width!r}.")
    if weight_decay < 0:
        raise ValueError(f"weight_decay must be >= 0; received {weight_decay!r}.")
    depth = _pyramid_depth(input_shape, len(BASE_FILTERS))
    if regularizers.dropout and len(dropout_rates) < depth:
        raise ValueError(
            f"dropout_rates needs one rate per block ({depth}); received {tuple(dropout_rates)}."
        )
    if any(not 0.0 <= r < 1.0 for r in dropout_rates):
        raise ValueError(f"dropout rates must lie in [0, 1); received {tuple(dropout_rates)}.")
    if layer_order not in LAYER_ORDERS:
        raise ValueError(f"layer_order must be one of {LAYER_ORDERS}; received {layer_order!r}.")
    if weight_decay_on not in WEIGHT_DECAY_TARGETS:
        raise ValueError(
            f"weight_decay_on must be one of {WEIGHT_DECAY_TARGETS}; received {weight_decay_on!r}."
        )

    logits_regularizer = (
        keras.regularizers.L2(weight_decay) if regularizers.weight_decay and weight_decay else None
    )
    kernel_regularizer = logits_regularizer if weight_decay_on == "kernels" else None
    norm_first = layer_order == "conv_bn_elu"
    inputs = keras.Input(shape=tuple(input_shape), name="pixels")
    h = keras.layers.Rescaling(1.0 / pixel_max, name="rescale")(inputs)
    if channel_mean is not None and channel_variance is not None:
        h = keras.layers.Normalization(
            mean=list(channel_mean), variance=list(channel_variance), name="standardize"
        )(h)
    for block in range(depth):
        filters = max(4, int(round(BASE_FILTERS[block] * width)))
        for conv in range(2):
            h = keras.layers.Conv2D(
                filters,
                3,
                padding="same",
                use_bias=not (regularizers.batch_norm and norm_first),
                kernel_regularizer=kernel_regularizer,
                name=f"block{block + 1}_conv{conv + 1}",
            )(h)
            if not norm_first:
                h = keras.layers.Activation("elu", name=f"block{block + 1}_elu{conv + 1}")(h)
            if regularizers.batch_norm:
                h = keras.layers.BatchNormalization(
                    momentum=batch_norm_momentum, name=f"block{block + 1}_bn{conv + 1}"
                )(h)
            if norm_first:
                h = keras.layers.Activation("elu", name=f"block{block + 1}_elu{conv + 1}")(h)
        h = keras.layers.MaxPooling2D(2, name=f"block{block + 1}_pool")(h)
        if regularizers.dropout:
            h = keras.layers.Dropout(dropout_rates[block], name=f"block{block + 1}_dropout")(h)
    z = keras.layers.Flatten(name="penultimate")(h)
    logits = keras.layers.Dense(num_classes, kernel_regularizer=logits_regularizer, name="logits")(
        z
    )
    return keras.Model(
        inputs, logits, name=name or "ablation_cnn_" + regularizers.key.replace("+", "-")
    )


# ------------------------------------------------------------------------ input pipeline


def _one_hot(num_classes):
    def fn(x, y):
        return tf.cast(x, tf.float32), tf.one_hot(y, num_classes)

    return fn


def _augment(image, seed, pad: int):
    """Random crop after zero padding by ``pad`` pixels, and random horizontal flip."""
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    padded = tf.pad(image, [[pad, pad], [pad, pad], [0, 0]])
    image = tf.image.stateless_random_crop(padded, tf.shape(image), seed=seeds[0])
    return tf.image.stateless_random_flip_left_right(image, seed=seeds[1])


def rotate_shift_transform(angle, shift_x, shift_y, height, width) -> tf.Tensor:
    """The ``[8]`` projective transform (output → input pixel) of a rotation about the
    image centre by ``angle`` radians followed by a shift of ``(shift_x, shift_y)`` pixels.

    In the layout of ``tf.raw_ops.ImageProjectiveTransformV3``: an output point
    ``(x, y)`` samples the input at ``(a0 x + a1 y + a2, b0 x + b1 y + b2)``.
    """
    cos, sin = tf.cos(angle), tf.sin(angle)
    cx, cy = (tf.cast(width, tf.float32) - 1.0) / 2.0, (tf.cast(height, tf.float32) - 1.0) / 2.0
    # input = R⁻¹ (output − shift − c) + c
    x0, y0 = cx + shift_x, cy + shift_y
    return tf.stack(
        [
            cos,
            sin,
            cx - cos * x0 - sin * y0,
            -sin,
            cos,
            cy + sin * x0 - cos * y0,
            0.0,
            0.0,
        ]
    )


def _augment_rotate_shift_flip(image, seed, degrees: float = 15.0, shift: float = 0.1):
    """The CC paper's augmentation (Keras' ``ImageDataGenerator(rotation_range=15,
    width_shift_range=0.1, height_shift_range=0.1, horizontal_flip=True)``): a rotation
    uniform in ±``degrees``, shifts uniform in ± ``shift`` of the width and height,
    bilinear sampling, borders filled with the nearest pixel, and a horizontal flip with
    probability 1/2. ``image`` is ``[H, W, C]`` float32; ``seed`` a ``[2]`` stateless seed.
    """
    seeds = tf.random.experimental.stateless_split(seed, num=2)
    draws = tf.random.stateless_uniform([3], seed=seeds[0], minval=-1.0, maxval=1.0)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    transform = rotate_shift_transform(
        draws[0] * degrees * math.pi / 180.0,
        draws[1] * shift * tf.cast(width, tf.float32),
        draws[2] * shift * tf.cast(height, tf.float32),
        height,
        width,
    )
    moved = tf.raw_ops.ImageProjectiveTransformV3(
        images=image[None],
        transforms=transform[None],
        output_shape=tf.shape(image)[:2],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )[0]
    return tf.image.stateless_random_flip_left_right(moved, seed=seeds[1])


def epoch_key(seed: int, epoch) -> tf.Tensor:
    """The ``[2]`` stateless seed of one epoch's data: ``(seed, epoch)`` as int64."""
    epoch = tf.cast(epoch.value() if isinstance(epoch, tf.Variable) else epoch, tf.int64)
    return tf.stack([tf.constant(seed, tf.int64), epoch])


def make_train_dataset(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    batch_size: int,
    seed: int,
    augment: bool = False,
    pad: int = 4,
    epoch: int | tf.Variable = 0,
    augmentation: str = "crop_flip",
) -> tf.data.Dataset:
    """One epoch of shuffled, one-hot, batched training data (full batches only).

    The data of an epoch is a pure function of ``(seed, epoch)``: the order is
    ``tf.random.experimental.stateless_shuffle`` keyed by ``(seed, epoch)``, and the
    augmentation (random crop after padding by ``pad`` pixels, random horizontal flip) of
    the example at position ``i`` is keyed by ``stateless_fold_in((seed, epoch), i)``.
    ``augmentation`` is ``"crop_flip"`` (random crop after padding, flip) or
    ``"rotate_shift_flip"`` (the CC paper's rotation, shifts and flip; see
    :func:`_augment_rotate_shift_flip`).
    Nothing depends on how many times the data set was iterated before, so a training
    run resumed at epoch ``e`` sees exactly the batches it would have seen without the
    interruption.

    ``epoch`` may be a ``tf.Variable``: every new iterator then reads its current value,
    so one data set serves all epochs of ``keras.Model.fit`` when a callback assigns the
    epoch in ``on_epoch_begin`` (Keras makes each epoch's iterator after that call).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; received {batch_size!r}.")
    if augmentation not in AUGMENTATIONS:
        raise ValueError(f"augmentation must be one of {AUGMENTATIONS}; received {augmentation!r}.")
    if batch_size > len(y):
        raise ValueError(
            f"batch_size={batch_size} exceeds the {len(y)} training examples; lower --batch_size."
        )
    count, steps = len(y), len(y) // batch_size
    # Images stay in their stored dtype (uint8 for CIFAR-10) until batched.
    images = tf.convert_to_tensor(x)
    labels = tf.convert_to_tensor(y.astype(np.int64))

    def shuffled(_):
        key = epoch_key(seed, epoch)
        order = tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=key)
        if not augment:  # batches of indices, gathered a batch at a time
            return tf.data.Dataset.from_tensor_slices(
                tf.reshape(order[: steps * batch_size], [steps, batch_size])
            )
        keys = tf.broadcast_to(key, [count, 2])
        return tf.data.Dataset.from_tensor_slices((keys, tf.range(count, dtype=tf.int64), order))

    def fetch(index):
        return tf.gather(images, index), tf.gather(labels, index)

    def fetch_augmented(key, position, index):
        image, label = fetch(index)
        example_key = tf.random.experimental.stateless_fold_in(key, position)
        if augmentation == "crop_flip":
            return _augment(image, example_key, pad), label
        return _augment_rotate_shift_flip(tf.cast(image, tf.float32), example_key), label

    data = tf.data.Dataset.from_tensors(0).flat_map(shuffled)
    if augment:
        data = data.map(fetch_augmented, num_parallel_calls=tf.data.AUTOTUNE).batch(
            batch_size, drop_remainder=True
        )
    else:
        data = data.map(fetch, num_parallel_calls=tf.data.AUTOTUNE)
    return (
        data.map(_one_hot(num_classes), num_parallel_calls=tf.data.AUTOTUNE)
        .apply(tf.data.experimental.assert_cardinality(steps))
        .prefetch(tf.data.AUTOTUNE)
    )


def make_eval_dataset(
    x: np.ndarray, y: np.ndarray, num_classes: int, batch_size: int = 1000
) -> tf.data.Dataset:
    """One-hot evaluation data in fixed order (one batch when it has <= ``batch_size``)."""
    batch_size = max(1, min(batch_size, len(y)))
    images = tf.data.Dataset.from_tensor_slices((x, y.astype(np.int64)))
    return images.batch(batch_size).map(_one_hot(num_classes)).cache().prefetch(tf.data.AUTOTUNE)
