"""The ablation CNN's flags, the three losses and the input pipelines."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_cc
from keras_cc_experiments import model as model_lib
from keras_cc_experiments.model import Regularizers, build_ablation_cnn


def _layers_of(model, kind):
    return [layer for layer in model.layers if isinstance(layer, kind)]


def test_rows_parse_and_follow_table_1_order():
    rows = model_lib.paper_rows()
    assert len(set(rows)) == 8
    # Table 1: (dropout, weight decay, batch norm) = YYY, NYY, YNY, NNY, YYN, NYN, YNN, NNN.
    expected = [
        (True, True, True),
        (False, True, True),
        (True, False, True),
        (False, False, True),
        (True, True, False),
        (False, True, False),
        (True, False, False),
        (False, False, False),
    ]
    assert [(r.dropout, r.weight_decay, r.batch_norm) for r in rows] == expected
    for row in rows:
        assert Regularizers.parse(row.key) == row
    assert Regularizers.parse("bn+wd") == Regularizers(False, True, True)
    assert Regularizers.parse("none").key == "none"
    with pytest.raises(ValueError, match="Unknown regularizer"):
        Regularizers.parse("dropout+l1")


def test_unregularized_cnn_structure_and_output():
    model = build_ablation_cnn((32, 32, 3), 10, Regularizers(False, False, False))
    convs = _layers_of(model, keras.layers.Conv2D)
    assert [c.filters for c in convs] == [32, 32, 64, 64, 128, 128]
    assert all(c.kernel_size == (3, 3) and c.use_bias for c in convs)
    assert len(_layers_of(model, keras.layers.MaxPooling2D)) == 3
    assert not _layers_of(model, keras.layers.Dropout)
    assert not _layers_of(model, keras.layers.BatchNormalization)
    assert all(
        layer.get_config()["activation"] == "elu"
        for layer in model.layers
        if isinstance(layer, keras.layers.Activation) and "elu" in layer.name
    )
    assert model.get_layer("penultimate").output.shape[-1] == 4 * 4 * 128
    assert model.get_layer("logits").units == 10
    x = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    logits = model(x).numpy()  # the output is the logits layer's
    assert model.layers[-1].name == "logits" and logits.shape == (3, 10)
    assert np.isfinite(logits).all()
    assert model.losses == []


def test_dropout_flag_adds_dropout_after_each_block_with_its_rate():
    model = build_ablation_cnn(
        (32, 32, 3), 10, Regularizers(True, False, False), dropout_rates=(0.1, 0.2, 0.3)
    )
    assert [d.rate for d in _layers_of(model, keras.layers.Dropout)] == [0.1, 0.2, 0.3]
    x = np.ones((2, 32, 32, 3), "float32")
    # Inference is deterministic; training mode drops units.
    np.testing.assert_allclose(model(x, training=False), model(x, training=False))
    z = keras.Model(model.inputs[0], model.get_layer("block3_dropout").output)
    assert np.mean(z(x, training=True).numpy() == 0) > np.mean(z(x, training=False).numpy() == 0)


def test_weight_decay_flag_adds_l2_on_every_kernel():
    wd = 3e-4
    model = build_ablation_cnn((8, 8, 1), 10, Regularizers(False, True, False), weight_decay=wd)
    kernels = [layer.kernel for layer in model.layers if hasattr(layer, "kernel")]
    assert len(kernels) == 7  # six convolutions and the logits layer
    expected = sum(wd * float(np.sum(np.square(k.numpy()))) for k in kernels)
    model(np.zeros((1, 8, 8, 1), "float32"))
    assert len(model.losses) == 7
    np.testing.assert_allclose(float(sum(model.losses)), expected, rtol=1e-5)


def test_batch_norm_flag_adds_a_batch_norm_after_every_conv():
    model = build_ablation_cnn(
        (8, 8, 1), 10, Regularizers(False, False, True), batch_norm_momentum=0.8
    )
    norms = _layers_of(model, keras.layers.BatchNormalization)
    assert len(norms) == 6 and all(n.momentum == 0.8 for n in norms)
    assert not any(c.use_bias for c in _layers_of(model, keras.layers.Conv2D))
    x = np.random.default_rng(1).uniform(0, 16, (4, 8, 8, 1)).astype("float32")
    assert not np.allclose(model(x, training=True), model(x, training=False))


def test_width_and_small_inputs():
    model = build_ablation_cnn((8, 8, 1), 10, Regularizers(True, True, True), width=0.5)
    assert [c.filters for c in _layers_of(model, keras.layers.Conv2D)] == [16, 16, 32, 32, 64, 64]
    assert model.get_layer("penultimate").output.shape[-1] == 64  # 8 -> 4 -> 2 -> 1
    tiny = build_ablation_cnn((4, 4, 1), 3, Regularizers(False, False, False))
    assert len(_layers_of(tiny, keras.layers.MaxPooling2D)) == 2
    with pytest.raises(ValueError, match="width must be positive"):
        build_ablation_cnn((8, 8, 1), 10, Regularizers(False, False, False), width=0)
    with pytest.raises(ValueError, match="one rate per block"):
        build_ablation_cnn((8, 8, 1), 10, Regularizers(True, False, False), dropout_rates=(0.1,))


def test_standardization_uses_the_given_channel_statistics():
    model = build_ablation_cnn(
        (8, 8, 1),
        10,
        Regularizers(False, False, False),
        pixel_max=16.0,
        channel_mean=[0.5],
        channel_variance=[0.25],
    )
    standardize = keras.Model(model.inputs[0], model.get_layer("standardize").output)
    out = standardize(np.full((1, 8, 8, 1), 12.0, "float32")).numpy()
    np.testing.assert_allclose(out, (12.0 / 16.0 - 0.5) / 0.5, rtol=1e-5)


def test_make_loss_gives_the_four_columns_on_logits():
    none = model_lib.make_loss("none")
    ls = model_lib.make_loss("ls", 0.2)
    cc = model_lib.make_loss("cc_ls", 0.2)
    published = model_lib.make_loss("cc_ls_published", 0.2, reduction="sum")
    assert published.label_smoothing == 0.2 and published.reduction == "sum"
    assert model_lib.make_loss("ls", 0.2, reduction="sum").reduction == "sum"
    assert model_lib.make_loss("none", reduction="sum").reduction == "sum_over_batch_size"
    assert isinstance(none, keras.losses.CategoricalCrossentropy)
    assert none.get_config()["label_smoothing"] == 0.0
    assert isinstance(ls, keras.losses.CategoricalCrossentropy)
    assert ls.get_config()["label_smoothing"] == 0.2
    assert isinstance(cc, keras_cc.CCLabelSmoothing) and cc.label_smoothing == 0.2
    y = tf.one_hot([0, 2], 3)
    z = tf.math.log(tf.constant([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]]))
    # CC-LS is LS plus the CC log-normalizer of the predictions (CC paper eq. 7).
    extra = keras_cc.ops.cc_log_normalizer(tf.nn.log_softmax(z))
    np.testing.assert_allclose(
        float(cc(y, z)), float(ls(y, z)) + float(tf.reduce_mean(extra)), rtol=1e-4
    )
    # The losses take logits: a shift of every logit changes nothing.
    np.testing.assert_allclose(float(ls(y, z + 3.0)), float(ls(y, z)), rtol=1e-5)
    with pytest.raises(ValueError, match="Unknown loss"):
        model_lib.make_loss("focal")
    with pytest.raises(ValueError, match=r"`label_smoothing` must lie in \(0, 1\)"):
        model_lib.make_loss("cc_ls", 0.0)


def test_train_dataset_full_one_hot_batches_and_seeded_order():
    x = np.arange(10 * 2 * 2, dtype="float32").reshape(10, 2, 2, 1)
    y = np.arange(10) % 3
    batches = list(model_lib.make_train_dataset(x, y, 3, batch_size=4, seed=0))
    assert len(batches) == 2 and all(b[0].shape == (4, 2, 2, 1) for b in batches)
    assert batches[0][1].shape == (4, 3)
    order = [int(v) for b in batches for v in b[0][:, 0, 0, 0] // 4]
    again = [
        int(v)
        for b in model_lib.make_train_dataset(x, y, 3, 4, seed=0)
        for v in b[0][:, 0, 0, 0] // 4
    ]
    assert order == again and order != sorted(order)
    for images, labels in batches:
        np.testing.assert_array_equal(np.argmax(labels, -1), (images[:, 0, 0, 0].numpy() // 4) % 3)
    with pytest.raises(ValueError, match="exceeds"):
        model_lib.make_train_dataset(x, y, 3, batch_size=11, seed=0)


def test_each_epochs_data_is_a_function_of_seed_and_epoch_alone():
    """Epoch e's batches do not depend on how often the data set was iterated before."""
    rng = np.random.default_rng(1)
    x = rng.uniform(1, 255, (24, 8, 8, 1)).astype("float32")
    y = np.arange(24) % 3

    def epochs(data, count, epoch=None):
        out = []
        for e in range(count):
            if epoch is not None:
                epoch.assign(e)
            out.append(np.concatenate([b[0].numpy() for b in data]))
        return out

    for augment in (False, True):
        variable = tf.Variable(0, dtype=tf.int64)
        shared = model_lib.make_train_dataset(x, y, 3, 5, seed=4, augment=augment, epoch=variable)
        assert shared.cardinality().numpy() == 4
        by_variable = epochs(shared, 3, variable)
        for e in (2, 0, 1):  # new data sets, in another order
            alone = model_lib.make_train_dataset(x, y, 3, 5, seed=4, augment=augment, epoch=e)
            np.testing.assert_array_equal(epochs(alone, 1)[0], by_variable[e])
        assert not np.array_equal(by_variable[0], by_variable[1])
        other_seed = model_lib.make_train_dataset(x, y, 3, 5, seed=5, augment=augment, epoch=0)
        assert not np.array_equal(epochs(other_seed, 1)[0], by_variable[0])
        if not augment:  # 20 of the 24 examples, each at most once
            rows = {image.tobytes() for image in by_variable[0]}
            assert len(rows) == 20 and rows <= {image.tobytes() for image in x}


def test_augmentation_is_a_seeded_padded_crop_and_flip():
    rng = np.random.default_rng(0)
    x = rng.uniform(1, 255, (16, 8, 8, 3)).astype("float32")
    y = np.zeros(16, np.int64)

    def augmented(seed):
        batch = next(iter(model_lib.make_train_dataset(x, y, 1, 16, seed=seed, augment=True)))
        return batch[0].numpy()

    first, second = augmented(3), augmented(3)
    np.testing.assert_array_equal(first, second)
    assert first.shape == x.shape
    changed = 0
    for image in first:
        # Each output is a window of the zero-padded original, possibly mirrored.
        matches = False
        for source in x:
            padded = np.pad(source, ((4, 4), (4, 4), (0, 0)))
            for candidate in (padded, padded[:, ::-1]):
                for i in range(9):
                    for j in range(9):
                        if np.array_equal(candidate[i : i + 8, j : j + 8], image):
                            matches = True
                            changed += int((i, j) != (4, 4) or candidate is not padded)
                            break
                    if matches:
                        break
                if matches:
                    break
            if matches:
                break
        assert matches
    assert changed > 0
