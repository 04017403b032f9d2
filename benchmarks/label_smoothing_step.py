r"""Training-step time of the ablation CNN with CC-LS against LS (and no LS), side by side.

The CC paper's CIFAR-10 CNN (32×32×3 inputs, 32/64/128 filters, dropout + weight decay +
batch norm by default), batch 128, Adam, XLA on. Each loss gets its own compiled model;
after warm-up the losses are timed in interleaved rounds (so drifting machine load hits
all of them alike) and the median step time per loss is reported with the ratios
CC-LS / LS and LS / no LS, as a table and as JSON. A second table times the loss alone
(value and gradient with respect to the logits, through the softmax, same batch and XLA
setting): the part of the step the losses do not share, measured without the network's
noise.

    python benchmarks/label_smoothing_step.py
    python benchmarks/label_smoothing_step.py --jit_compile=false --json_out=step.json
"""

import functools
import json
import os
import pathlib
import platform
import sys

from absl import app, flags

from keras_cc_runs import cli

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _timing  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_integer("image_size", 32, "Height and width of the (random) input images.")
flags.DEFINE_integer("channels", 3, "Image channels.")
flags.DEFINE_integer("num_classes", 10, "Classes (K of the CC distribution).")
flags.DEFINE_float("width", 1.0, "Multiplier on the 32/64/128 filters.")
flags.DEFINE_string("row", "dropout+weight_decay+batch_norm", "Regularizers of the CNN.")
flags.DEFINE_list("losses", ["none", "ls", "cc_ls"], "Losses to time.")
flags.DEFINE_float("label_smoothing", 0.1, "epsilon of LS and CC-LS.")
flags.DEFINE_enum("jit_compile", "true", ["true", "false"], "XLA-compile the train step.")
flags.DEFINE_integer("warmup_steps", 3, "Untimed steps per loss after compiling.")
flags.DEFINE_integer("steps", 5, "Timed steps per loss and round.")
flags.DEFINE_integer("repeats", 5, "Rounds; each loss's median step time over rounds is kept.")
flags.DEFINE_integer("loss_calls", 200, "Calls per round when timing the losses alone.")
flags.DEFINE_list(
    "loss_logit_scales",
    ["3", "30"],
    "Standard deviations of the random logits when timing the losses alone (the CC "
    "normalizer's series gets longer as the logits spread, as in a confident network).",
)
flags.DEFINE_string("json_out", None, "Also write the results to this JSON file.")

if __name__ == "__main__":
    cli.parse_flags()  # --help and bad flags answer before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_cc  # noqa: E402, F401 (loads TensorFlow Probability)
from keras_cc_experiments import model as model_lib  # noqa: E402
from keras_cc_experiments.records import atomic_write_json  # noqa: E402


def build(loss_name, row, input_shape):
    model = model_lib.build_ablation_cnn(
        input_shape, FLAGS.num_classes, row, width=FLAGS.width, pixel_max=255.0
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=model_lib.make_loss(loss_name, FLAGS.label_smoothing),
        jit_compile=FLAGS.jit_compile == "true",
    )
    return model


def _wait_for_loss(logs):
    float(logs["loss"])  # waits for the device


def time_losses(names, y, jit_compile, calls, repeats, scale):
    """Median ms of one value-and-gradient call of each loss on random logits."""
    logits = tf.Variable(tf.random.stateless_normal(y.shape, seed=(1, 2)) * scale)
    functions = {}
    for name in names:
        loss = model_lib.make_loss(name, FLAGS.label_smoothing)

        @tf.function(jit_compile=jit_compile)
        def value_and_gradient(loss=loss):
            with tf.GradientTape() as tape:
                value = loss(y, tf.nn.softmax(logits))
            return value, tape.gradient(value, logits)

        value_and_gradient()
        functions[name] = value_and_gradient
    samples = _timing.side_by_side(
        functions, repeats, inner=calls, finish=lambda result: float(result[0]), alternate=False
    )
    return {name: 1000 * seconds for name, seconds in _timing.medians(samples).items()}


def main(argv):
    del argv
    row = model_lib.Regularizers.parse(FLAGS.row)
    shape = (FLAGS.image_size, FLAGS.image_size, FLAGS.channels)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (FLAGS.batch_size,) + shape).astype("float32")
    y = tf.one_hot(rng.integers(0, FLAGS.num_classes, FLAGS.batch_size), FLAGS.num_classes)
    batches = tf.data.Dataset.from_tensors((x, y)).repeat()

    steppers = {}
    for name in FLAGS.losses:
        keras.utils.set_random_seed(0)
        model = build(name, row, shape)
        model.make_train_function()
        iterator = iter(batches)
        step = functools.partial(model.train_function, iterator)
        compile_s = _timing.mean_seconds(step, 1, _wait_for_loss)
        if FLAGS.warmup_steps:
            _timing.mean_seconds(step, FLAGS.warmup_steps, _wait_for_loss)
        steppers[name] = (step, compile_s)

    samples = _timing.side_by_side(
        {name: step for name, (step, _) in steppers.items()},
        FLAGS.repeats,
        inner=FLAGS.steps,
        finish=_wait_for_loss,
        alternate=False,
    )

    median_ms = {name: 1000 * seconds for name, seconds in _timing.medians(samples).items()}
    scales = [float(v) for v in FLAGS.loss_logit_scales]
    loss_ms = {
        scale: time_losses(
            FLAGS.losses, y, FLAGS.jit_compile == "true", FLAGS.loss_calls, FLAGS.repeats, scale
        )
        for scale in scales
    }
    ratios = {}
    if "cc_ls" in median_ms and "ls" in median_ms:
        ratios["cc_ls/ls"] = median_ms["cc_ls"] / median_ms["ls"]
    if "ls" in median_ms and "none" in median_ms:
        ratios["ls/none"] = median_ms["ls"] / median_ms["none"]
    if "cc_ls" in median_ms and "none" in median_ms:
        ratios["cc_ls/none"] = median_ms["cc_ls"] / median_ms["none"]

    devices = [d.device_type for d in tf.config.list_logical_devices()]
    device = "GPU" if "GPU" in devices else "CPU"
    print(
        f"Train step of the ablation CNN ({row.key}, width {FLAGS.width}), input {shape}, "
        f"batch {FLAGS.batch_size}, XLA {FLAGS.jit_compile}, {device} "
        f"({os.cpu_count()} CPUs); median of {FLAGS.repeats} rounds x {FLAGS.steps} steps"
    )
    print(f"{'loss':<8}{'median ms/step':>16}{'min':>10}{'max':>10}{'first call s':>14}")
    for name in FLAGS.losses:
        values = [1000 * v for v in samples[name]]
        print(
            f"{model_lib.LOSS_LABELS[name]:<8}{median_ms[name]:>16.2f}{min(values):>10.2f}"
            f"{max(values):>10.2f}{steppers[name][1]:>14.1f}"
        )
    for key, value in ratios.items():
        print(f"ratio {key}: {value:.3f}")
    print(f"\nLoss alone (value + gradient wrt logits, batch {FLAGS.batch_size}), ms:")
    print(f"{'logit std':<10}" + "".join(f"{model_lib.LOSS_LABELS[n]:>10}" for n in FLAGS.losses))
    for scale in scales:
        cells = "".join(f"{loss_ms[scale][n]:>10.3f}" for n in FLAGS.losses)
        print(f"{scale:<10g}{cells}")
    if "cc_ls" in FLAGS.losses and "ls" in FLAGS.losses:
        for scale in scales:
            extra = loss_ms[scale]["cc_ls"] - loss_ms[scale]["ls"]
            print(
                f"logit std {scale:g}: CC-LS adds {extra:.3f} ms per step, "
                f"{extra / median_ms['ls']:.2%} of the LS step"
            )
    result = {
        "benchmark": "label_smoothing_step",
        "row": row.key,
        "input_shape": list(shape),
        "batch_size": FLAGS.batch_size,
        "width": FLAGS.width,
        "jit_compile": FLAGS.jit_compile == "true",
        "device": device,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "steps": FLAGS.steps,
        "repeats": FLAGS.repeats,
        "median_ms": median_ms,
        "samples_ms": {k: [1000 * v for v in s] for k, s in samples.items()},
        "first_call_s": {k: s[1] for k, s in steppers.items()},
        "ratios": ratios,
        "loss_only_ms": {f"logit_std_{k:g}": v for k, v in loss_ms.items()},
    }
    print(json.dumps(result))
    if FLAGS.json_out:
        atomic_write_json(FLAGS.json_out, result)


if __name__ == "__main__":
    app.run(main)
