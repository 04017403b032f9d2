"""Set-up cost of a graph that holds a loss: CC label smoothing against Keras' CE with LS.

The first call of a new ``tf.function`` instantiates its graph: placement, grappler and
kernel creation over the graph and every function it calls. The CC loss's graph holds the
normalizer's method choice, its XLA clusters and the divided-difference table's loops, so
it costs more to instantiate than the cross-entropy's. ``tf.random.set_seed`` clears
TensorFlow's kernel and function caches, so a graph called after it is instantiated again.
Both happen once per graph, not per step; an epoch costs the same with either loss (see the
README's main job).

Per round, and for each loss in turn (interleaved), it builds a new ``tf.function`` of
loss + gradient on [batch_size, num_classes] logits and times its first call, then calls
``tf.random.set_seed`` and times the next call. It prints the median milliseconds with
their range over the rounds, and the ratio to the cross-entropy. The process is warmed up
first (each loss traced and its XLA clusters compiled once), as in a training script whose
second model reuses them.

    python benchmarks/graph_setup_cost.py --repeats 7
"""

import pathlib
import platform
import sys
import time

from absl import flags

from keras_cc_runs import cli

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _timing  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("batch_size", 128, "Rows of the logits.", lower_bound=1)
flags.DEFINE_integer("num_classes", 10, "Classes (K).", lower_bound=2)
flags.DEFINE_float("label_smoothing", 0.1, "epsilon of both losses.")
flags.DEFINE_integer("repeats", 7, "Rounds (new graphs per loss).", lower_bound=1)
flags.DEFINE_string("json_out", None, "Also write the results to this JSON file.")

if __name__ == "__main__":
    cli.parse_flags()  # --help and bad flags answer before TensorFlow loads

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_cc  # noqa: E402


def _losses(label_smoothing):
    return {
        "ce_ls": lambda: keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=label_smoothing
        ),
        "cc_ls": lambda: keras_cc.CCLabelSmoothing(label_smoothing),
    }


def _new_graph(make_loss, weights):
    loss = make_loss()

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            value = loss(y, tf.matmul(x, weights))
        return value, tape.gradient(value, weights)

    return step


def _timed_call(function, *args):
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main(argv):
    del argv
    x = tf.random.normal((FLAGS.batch_size, FLAGS.num_classes), stddev=3.0, seed=0)
    y = tf.one_hot(tf.range(FLAGS.batch_size) % FLAGS.num_classes, FLAGS.num_classes)
    weights = tf.Variable(tf.eye(FLAGS.num_classes))
    losses = _losses(FLAGS.label_smoothing)
    for make_loss in losses.values():  # warm-up: each loss traced, its clusters compiled
        _new_graph(make_loss, weights)(x, y)
    first = {name: [] for name in losses}
    after_seed = {name: [] for name in losses}
    for round_index in range(FLAGS.repeats):
        for name, make_loss in losses.items():
            step = _new_graph(make_loss, weights)
            step.get_concrete_function(x, y)  # tracing is not what is timed
            first[name].append(_timed_call(step, x, y))
            step(x, y)
            tf.random.set_seed(round_index)
            after_seed[name].append(_timed_call(step, x, y))
    record = {
        "device": platform.processor() or platform.machine(),
        "shape": [FLAGS.batch_size, FLAGS.num_classes],
        "repeats": FLAGS.repeats,
        "first_call_of_a_new_graph": _timing.ratio_row(first, "ce_ls"),
        "first_call_after_tf_random_set_seed": _timing.ratio_row(after_seed, "ce_ls"),
    }
    for label, samples in (("new graph", first), ("after set_seed", after_seed)):
        row = _timing.ratio_row(samples, "ce_ls")
        print(
            f"{label:15s} CE+LS {row['ce_ls_ms']:.0f} ms, CC-LS {row['cc_ls_ms']:.0f} ms "
            f"({row['cc_ls/ce_ls']:.0f}x, {row['cc_ls/ce_ls_spread']} over the rounds)"
        )
    _timing.print_record(record, FLAGS.json_out)


if __name__ == "__main__":
    cli.run(main)
