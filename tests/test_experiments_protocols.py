"""The two protocols: the CC paper's setup item by item, and one protocol per directory."""

import math
import os
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from interpreters import python

from keras_cc_experiments import cli, grid, training
from keras_cc_experiments import model as model_lib
from keras_cc_experiments.data import load_digits
from keras_cc_experiments.model import Regularizers, build_ablation_cnn
from keras_cc_experiments.protocols import PROTOCOLS, get_protocol
from keras_cc_experiments.records import atomic_write_json
from keras_cc_runs import cli as runs_cli

# The slow lane (the experiments' training protocols): `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ABLATION = os.path.join(REPO, "examples", "label_smoothing_ablation.py")
TINY = dict(train_examples=200, test_examples=60, epochs=2, batch_size=30, width=0.25)


def _flag_config(*argv):
    """The config the scripts' flags give for ``argv``, parsed into flags of its own.

    A private ``FlagValues`` keeps this independent of flags other modules declare on
    absl's global ``FLAGS`` (for example a script imported by another test).
    """
    settings_lib = _settings_module()
    values = flags.FlagValues()
    runs_cli.define_flags(settings_lib.TrainingSettings, flag_values=values)
    values(["prog", *argv])
    settings = runs_cli.config_from_flags(settings_lib.TrainingSettings, flag_values=values)
    return cli.training_config(settings)


def _settings_module():
    """``examples/label_smoothing_settings.py``, the scripts' settings."""
    examples = os.path.join(REPO, "examples")
    if examples not in sys.path:
        sys.path.insert(0, examples)
    import label_smoothing_settings

    return label_smoothing_settings


def test_paper_protocol_defaults_follow_the_authors():
    cifar = _flag_config("--protocol=paper", "--dataset=cifar10")
    assert (cifar.epochs, cifar.batch_size, cifar.learning_rate) == (500, 128, 1e-3)
    assert cifar.width == 1.0 and cifar.augment and cifar.weight_decay == 1e-4
    assert cifar.batch_norm_momentum == 0.99  # Keras' default, as in their code
    assert cifar.label_smoothing == 0.1
    digits = _flag_config("--protocol=paper")
    assert (digits.epochs, digits.batch_size, digits.width, digits.augment) == (300, 128, 1.0, True)
    standard = _flag_config()
    assert standard.protocol == "standard" and (standard.epochs, standard.batch_size) == (10, 64)
    assert standard.batch_norm_momentum == 0.9 and not standard.augment
    paper = get_protocol("paper")
    assert paper.reported[0] == "max_test_accuracy" and paper.std_ddof == 0
    assert paper.summed_losses == ("ls", "cc_ls", "cc_ls_published")
    assert paper.skip_nonfinite_steps and not PROTOCOLS["standard"].skip_nonfinite_steps
    with pytest.raises(ValueError, match="--protocol='other' is unknown"):
        training.TrainingConfig(protocol="other")
    with pytest.raises(ValueError, match="--validation_fraction must lie in"):
        training.TrainingConfig(validation_fraction=1.0)


def _layer_kinds(model, block=1):
    kinds = {keras.layers.Conv2D: "conv", keras.layers.BatchNormalization: "bn"}
    out = []
    for layer in model.layers:
        if layer.name.startswith(f"block{block}_"):
            if isinstance(layer, keras.layers.Activation):
                out.append("elu")
            elif type(layer) in kinds:
                out.append(kinds[type(layer)])
    return out


def test_paper_network_runs_conv_elu_bn_with_weight_decay_on_the_logits_kernel_only():
    row = Regularizers(dropout=True, weight_decay=True, batch_norm=True)
    paper = build_ablation_cnn(
        (32, 32, 3), 10, row, layer_order="conv_elu_bn", weight_decay_on="logits"
    )
    assert _layer_kinds(paper) == ["conv", "elu", "bn", "conv", "elu", "bn"]
    assert all(c.use_bias for c in paper.layers if isinstance(c, keras.layers.Conv2D))
    assert [c.filters for c in paper.layers if isinstance(c, keras.layers.Conv2D)] == [
        32,
        32,
        64,
        64,
        128,
        128,
    ]
    rates = [d.rate for d in paper.layers if isinstance(d, keras.layers.Dropout)]
    assert rates == [0.2, 0.3, 0.4]
    assert not any(isinstance(layer, keras.layers.Dense) for layer in paper.layers[:-1])
    paper(np.zeros((1, 32, 32, 3), "float32"))
    kernel = paper.get_layer("logits").kernel.numpy()
    assert len(paper.losses) == 1
    np.testing.assert_allclose(float(paper.losses[0]), 1e-4 * np.sum(kernel**2), rtol=1e-5)
    standard = build_ablation_cnn((32, 32, 3), 10, row)
    assert _layer_kinds(standard) == ["conv", "bn", "elu", "conv", "bn", "elu"]
    standard(np.zeros((1, 32, 32, 3), "float32"))
    assert len(standard.losses) == 7
    with pytest.raises(ValueError, match="layer_order must be one of"):
        build_ablation_cnn((8, 8, 1), 10, row, layer_order="bn_conv")


def test_paper_cell_compiles_the_authors_losses_optimizer_and_standardization():
    config = training.TrainingConfig(**TINY, protocol="paper")
    dataset = training.get_dataset(config)
    row = Regularizers(False, True, True)
    for loss, reduction in [
        ("none", "sum_over_batch_size"),
        ("ls", "sum"),
        ("cc_ls", "sum"),
        ("cc_ls_published", "sum"),
    ]:
        model = training.build_model(training.Cell(row, loss, 0), config, dataset)
        assert model.loss.reduction == reduction, loss
        assert type(model.optimizer).__name__ == "SkipNonFiniteAdam"
        assert float(model.optimizer.learning_rate) == pytest.approx(1e-3)
    norm = model.get_layer("standardize")
    scaled = dataset.x_train.astype(np.float64) / dataset.pixel_max
    np.testing.assert_allclose(np.ravel(norm.mean), scaled.mean(), rtol=1e-5)
    np.testing.assert_allclose(np.ravel(norm.variance), scaled.var(), rtol=1e-5)
    standard = training.TrainingConfig(**TINY)
    model = training.build_model(training.Cell(row, "ls", 0), standard, dataset)
    assert model.loss.reduction == "sum_over_batch_size"
    assert type(model.optimizer) is keras.optimizers.Adam
    published = training.build_model(training.Cell(row, "cc_ls_published", 0), standard, dataset)
    assert type(published.optimizer).__name__ == "SkipNonFiniteAdam"
    training.release_models()


def test_rotation_and_shift_transform_moves_pixels_as_stated():
    image = np.zeros((7, 7, 1), np.float32)
    image[1, 3] = 1.0  # above the centre (3, 3)

    def apply(angle, dx, dy):
        transform = model_lib.rotate_shift_transform(
            tf.constant(angle), tf.constant(dx), tf.constant(dy), 7, 7
        )
        return tf.raw_ops.ImageProjectiveTransformV3(
            images=image[None],
            transforms=transform[None],
            output_shape=[7, 7],
            fill_value=0.0,
            interpolation="NEAREST",
            fill_mode="CONSTANT",
        )[0, ..., 0].numpy()

    shifted = apply(0.0, 2.0, 1.0)  # two right, one down
    assert shifted[2, 5] == 1.0 and shifted.sum() == 1.0
    turned = apply(math.pi / 2, 0.0, 0.0)  # a quarter turn about the centre
    assert turned.sum() == 1.0 and turned[3, 1] + turned[3, 5] == 1.0


def test_paper_augmentation_is_seeded_per_epoch_and_keeps_the_images_whole():
    data = load_digits()
    x, y = data.x_train[:64], data.y_train[:64]

    def batch(seed, epoch):
        pipeline = model_lib.make_train_dataset(
            x, y, 10, 64, seed=seed, augment=True, epoch=epoch, augmentation="rotate_shift_flip"
        )
        return next(iter(pipeline))[0].numpy()

    first = batch(3, 0)
    np.testing.assert_array_equal(first, batch(3, 0))
    assert not np.array_equal(first, batch(3, 1)) and not np.array_equal(first, batch(4, 0))
    assert first.shape == x.shape and first.dtype == np.float32
    # Bilinear resampling with nearest-pixel borders stays within the pixel range.
    assert first.min() >= 0.0 and first.max() <= 16.0
    plain = model_lib.make_train_dataset(x, y, 10, 64, seed=3, epoch=0)
    order = next(iter(plain))[1].numpy()
    np.testing.assert_array_equal(
        next(
            iter(
                model_lib.make_train_dataset(
                    x, y, 10, 64, seed=3, augment=True, epoch=0, augmentation="rotate_shift_flip"
                )
            )
        )[1].numpy(),
        order,
    )
    with pytest.raises(ValueError, match="augmentation must be one of"):
        model_lib.make_train_dataset(x, y, 10, 8, seed=0, augment=True, augmentation="mixup")


def test_validation_split_is_held_out_of_training_and_stratified():
    config = training.TrainingConfig(protocol="paper")
    dataset = training.get_dataset(config)
    full = load_digits()
    assert len(dataset.y_valid) + len(dataset.y_train) == len(full.y_train)
    assert len(dataset.y_test) == len(full.y_test)
    assert abs(len(dataset.y_valid) / len(full.y_train) - 0.1) < 0.01
    assert set(np.bincount(dataset.y_valid, minlength=10)) <= {14, 15}
    rows = {a.tobytes() for a in dataset.x_train}
    assert not any(a.tobytes() in rows for a in dataset.x_valid[:20])
    whole = training.get_dataset(training.TrainingConfig(validation_fraction=0.0))
    assert whole.x_valid is None and len(whole.y_train) == len(full.y_train)


def test_the_validation_split_selects_the_epoch():
    curves = {
        "val_accuracy": [0.5, 0.9, 0.8, 0.9, 0.9],
        "val_nll": [1.0, 0.4, 0.5, 0.3, 0.3],
        "test_accuracy": [0.4, 0.85, 0.95, 0.88, 0.87],
    }
    # Ties at 0.9 go to the lower validation cross-entropy, then the earlier epoch.
    assert training.selected_epoch(curves) == 4
    summary = training.summarize_curves(curves)
    assert summary["selected_test_accuracy"] == 0.88 and summary["selected_epoch"] == 4
    assert summary["max_test_accuracy"] == 0.95 and summary["max_epoch"] == 3
    assert summary["final_test_accuracy"] == 0.87
    no_split = training.summarize_curves({"test_accuracy": [0.1, 0.2]})
    assert no_split["selected_test_accuracy"] is None and no_split["selected_epoch"] is None


def test_a_results_directory_refuses_another_protocol(tmp_path):
    def must_not_run(*args, **kwargs):
        raise AssertionError("a cell ran")

    cells = grid.enumerate_cells([Regularizers(False, False, False)], ["ls"], [0])
    standard = training.TrainingConfig(**TINY)
    paper = training.TrainingConfig(**TINY, protocol="paper")
    # A grid that started (config.json written) but finished no cell yet.
    atomic_write_json(str(tmp_path / "config.json"), {"config": standard.as_dict()})
    with pytest.raises(grid.ConfigMismatchError) as error:
        grid.run_grid(cells, paper, str(tmp_path), cell_fn=must_not_run)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("--protocol=paper, but ") and "--protocol=standard" in message
    # A record without a protocol was made before protocols existed: the standard one.
    other = tmp_path / "older"
    record = {"cell_id": cells[0].cell_id, "status": "done", "config": {"epochs": 2}}
    atomic_write_json(training.cell_paths(str(other), cells[0])["record"], record)
    with pytest.raises(grid.ConfigMismatchError, match="holds results of --protocol=standard"):
        grid.run_grid(cells, paper, str(other), cell_fn=must_not_run)


def test_ablation_script_states_the_protocol_and_refuses_to_mix(tmp_path):
    output_dir = str(tmp_path / "run")
    common = [
        "--rows=none",
        "--losses=ls",
        "--seeds=0",
        "--epochs=1",
        "--train_examples=200",
        "--test_examples=60",
        "--width=0.25",
        "--save_models=false",
        "--tensorboard=false",
        f"--output_dir={output_dir}",
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = python(ABLATION, *common, "--protocol=paper", env=env, timeout=300)
    assert "Grid (--protocol=paper)" in done.stdout
    assert "Table 1: maximum test accuracy over epochs (the CC paper's number)" in done.stdout
    assert "Table 1: test accuracy at the epoch of best validation accuracy" in done.stdout
    assert "(± population std)" in done.stdout
    refused = python(ABLATION, *common, expect=2, env=env, timeout=300)
    lines = [line for line in refused.stderr.splitlines() if line.startswith("error:")]
    assert lines == [
        f"error: --protocol=standard, but {output_dir} holds results of --protocol=paper "
        "(config.json); a results directory holds one protocol: use another --output_dir."
    ]
