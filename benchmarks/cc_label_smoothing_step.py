r"""Training-step time: CCLabelSmoothing against CategoricalCrossentropy(label_smoothing=0.1).

The model is the ablation-size CNN of the CC paper's Table 1 (32×32×3 inputs; pairs of
3×3 convolutions with ELU at 32, 64 and 128 filters, each pair followed by 2×2
max-pooling; a dense layer of logits and a softmax), trained at batch 128 with
``jit_compile=True``. Two copies with identical initial weights are compiled, one per
loss, and their training steps (``train_on_batch``, forward + backward + Adam update,
synchronized by reading the loss) are timed alternately so machine load hits both alike.
The ratio is the median over repeats of CC-LS time / LS time.

A second, loss-only measurement times the value and gradient of each loss alone on
``[batch, classes]`` random logits under XLA, the part of the step that differs, at
small and at trained-network logit spreads (the CC normalizer's series needs more terms
as the spread of the logits grows).

    python benchmarks/cc_label_smoothing_step.py
    python benchmarks/cc_label_smoothing_step.py --repeats=21 --steps_per_repeat=5
"""

import pathlib
import statistics
import sys
import time

from absl import app, flags

from keras_cc_runs import cli

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _timing  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 128, "Batch size.")
flags.DEFINE_integer("num_classes", 10, "Number of classes (CIFAR-10: 10).")
flags.DEFINE_float("label_smoothing", 0.1, "Label smoothing ε of both losses.")
flags.DEFINE_integer("repeats", 9, "Timed repeats per loss (alternating); medians reported.")
flags.DEFINE_integer("steps_per_repeat", 3, "Training steps per timed repeat.")
flags.DEFINE_integer("warmup_steps", 2, "Untimed steps after compilation.")
flags.DEFINE_integer("loss_only_calls", 200, "Calls per repeat of the loss-only measurement.")
flags.DEFINE_list(
    "loss_only_logit_scales",
    ["1", "20"],
    "Standard deviations of the random logits of the loss-only measurement (the CC "
    "normalizer's series grows with the logit spread, as logits do during training).",
)
flags.DEFINE_bool("from_logits", False, "Train on logits (no softmax layer) instead.")
flags.DEFINE_integer("seed", 0, "Seed of the weights and the random batch.")
flags.DEFINE_string("json_out", None, "Also write the JSON record to this file.")

if __name__ == "__main__":
    cli.parse_flags()  # --help and bad flags answer before TensorFlow loads

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_cc  # noqa: E402


def ablation_cnn(num_classes, softmax=True, seed=0):
    """The unregularized ablation CNN (CC paper, appendix A.1 sizes), for 32×32×3 inputs."""
    initializer = keras.initializers.GlorotUniform
    inputs = keras.Input((32, 32, 3))
    x = inputs
    layer = 0
    for filters in (32, 64, 128):
        for _ in range(2):
            x = keras.layers.Conv2D(
                filters,
                3,
                padding="same",
                activation="elu",
                kernel_initializer=initializer(seed=seed + layer),
            )(x)
            layer += 1
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(num_classes, kernel_initializer=initializer(seed=seed + layer))(x)
    if softmax:
        x = keras.layers.Softmax()(x)
    return keras.Model(inputs, x)


def _losses():
    eps = FLAGS.label_smoothing
    return {
        "LS": keras.losses.CategoricalCrossentropy(
            label_smoothing=eps, from_logits=FLAGS.from_logits
        ),
        "CC-LS": keras_cc.CCLabelSmoothing(eps, from_logits=FLAGS.from_logits),
    }


def _train_step_times(x, y):
    models = {}
    for name, loss in _losses().items():
        model = ablation_cnn(FLAGS.num_classes, softmax=not FLAGS.from_logits, seed=FLAGS.seed)
        model.compile(keras.optimizers.Adam(1e-3), loss=loss, jit_compile=True)
        start = time.perf_counter()
        model.train_on_batch(x, y)  # traces and compiles
        compile_seconds = time.perf_counter() - start
        for _ in range(FLAGS.warmup_steps):
            model.train_on_batch(x, y)
        models[name] = (model, compile_seconds)
    samples = _timing.side_by_side(
        {
            name: (lambda model=model: model.train_on_batch(x, y))
            for name, (model, _) in models.items()
        },
        FLAGS.repeats,
        inner=FLAGS.steps_per_repeat,
        finish=lambda loss: float(np.asarray(loss)),
    )
    ratios = [c / b for c, b in zip(samples["CC-LS"], samples["LS"], strict=True)]
    return {
        "seconds_per_step": _timing.medians(samples),
        "compile_seconds": {n: m[1] for n, m in models.items()},
        "ratio_median_of_pairs": statistics.median(ratios),
        "samples": samples,
    }


def _loss_only_times(y, logit_scale):
    logits = tf.constant(
        np.random.default_rng(FLAGS.seed).normal(
            scale=logit_scale, size=(FLAGS.batch_size, FLAGS.num_classes)
        ),
        tf.float32,
    )
    functions = {}
    for name, loss in _losses().items():
        from_logits = FLAGS.from_logits

        def value_and_gradient(z, loss=loss, from_logits=from_logits):
            with tf.GradientTape() as tape:
                tape.watch(z)
                value = loss(y, z if from_logits else tf.nn.softmax(z))
            return value, tape.gradient(value, z)

        compiled = tf.function(value_and_gradient, jit_compile=True)
        compiled(logits)[0].numpy()
        functions[name] = compiled
    samples = _timing.side_by_side(
        {name: (lambda fn=fn: fn(logits)) for name, fn in functions.items()},
        FLAGS.repeats,
        inner=FLAGS.loss_only_calls,
        finish=lambda result: result[0].numpy(),
    )
    return _timing.medians(samples)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    if FLAGS.repeats < 1 or FLAGS.steps_per_repeat < 1:
        raise app.UsageError("--repeats and --steps_per_repeat must be >= 1.")
    rng = np.random.default_rng(FLAGS.seed)
    x = tf.constant(rng.uniform(size=(FLAGS.batch_size, 32, 32, 3)), tf.float32)
    labels = rng.integers(0, FLAGS.num_classes, FLAGS.batch_size)
    y = tf.constant(np.eye(FLAGS.num_classes, dtype="float32")[labels])

    try:
        scales = [float(v) for v in FLAGS.loss_only_logit_scales]
    except ValueError:
        raise app.UsageError("--loss_only_logit_scales must be numbers.") from None
    steps = _train_step_times(x, y)
    loss_only = {scale: _loss_only_times(y, scale) for scale in scales}
    devices = [d.device_type for d in tf.config.list_physical_devices()]
    step = steps["seconds_per_step"]
    record = {
        "config": {
            "batch_size": FLAGS.batch_size,
            "num_classes": FLAGS.num_classes,
            "label_smoothing": FLAGS.label_smoothing,
            "from_logits": FLAGS.from_logits,
            "repeats": FLAGS.repeats,
            "steps_per_repeat": FLAGS.steps_per_repeat,
            "jit_compile": True,
            "devices": devices,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
        "train_step_seconds": step,
        "compile_seconds": steps["compile_seconds"],
        "loss_only_seconds": {f"logits_N(0,{s:g}^2)": v for s, v in loss_only.items()},
        "ratios": {
            "train_step_CCLS_over_LS": step["CC-LS"] / step["LS"],
            "train_step_CCLS_over_LS_median_of_pairs": steps["ratio_median_of_pairs"],
            **{
                f"loss_only_CCLS_over_LS_logit_scale_{s:g}": v["CC-LS"] / v["LS"]
                for s, v in loss_only.items()
            },
        },
        "train_step_samples": steps["samples"],
    }
    print(
        f"\nAblation CNN, 32x32x3, batch {FLAGS.batch_size}, {FLAGS.num_classes} classes, "
        f"jit_compile=True, devices {devices}; medians of {FLAGS.repeats} repeats\n"
    )
    header = f"{'':<34} {'LS (Keras CE)':>14} {'CC-LS':>12} {'CC-LS / LS':>11}"
    print(header)
    print("-" * len(header))
    print(
        f"{'train step (s)':<34} {step['LS']:>14.4e} {step['CC-LS']:>12.4e} "
        f"{record['ratios']['train_step_CCLS_over_LS']:>11.3f}"
    )
    for scale, times in loss_only.items():
        label = f"loss + gradient, z~N(0,{scale:g}^2) (s)"
        print(
            f"{label:<34} {times['LS']:>14.4e} {times['CC-LS']:>12.4e} "
            f"{times['CC-LS'] / times['LS']:>11.3f}"
        )
    print(
        f"{'compile + first step (s)':<34} {steps['compile_seconds']['LS']:>14.2f} "
        f"{steps['compile_seconds']['CC-LS']:>12.2f}"
    )
    print(
        f"\nMedian over repeats of the paired ratio CC-LS / LS: "
        f"{steps['ratio_median_of_pairs']:.3f} (target <= 1.05)"
    )
    _timing.print_record(record, FLAGS.json_out)


if __name__ == "__main__":
    app.run(main)
