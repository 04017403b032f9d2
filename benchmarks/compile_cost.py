"""First-call cost under XLA: CC label smoothing against Keras' cross-entropy with LS.

Keras compiles a model's train, evaluate and predict functions with XLA when
``jit_compile=True`` (the default on GPUs with TensorFlow, and always on JAX), once per
batch shape. What the loss adds to that compilation is paid on every new shape. Two
measurements, each in a fresh interpreter per sample (so nothing is cached), the two
losses interleaved over ``--repeats`` rounds:

* ``loss_and_gradient``: the first call (trace + compile + run) of the jit-compiled loss +
  gradient of ``benchmarks/_cc_steps.py`` on [128, K] unit-normal logits, for
  ``keras_cc.losses.cc_label_smoothing`` and ``tf.nn.softmax_cross_entropy_with_logits``
  on label-smoothed targets, and the memory maps it adds to the process (``jit_maps``:
  XLA keeps each compiled program's JIT code in maps that are never released, and Linux
  allows a process 65,530 of them by default);
* ``fit``: the first epoch (then the second) of ``model.fit`` with ``jit_compile=True`` of
  a 64-128-10 MLP on scikit-learn's digits (1,437 training images, batch 128: a partial
  last batch) with ``keras_cc.CCLabelSmoothing(0.1)`` against
  ``keras.losses.CategoricalCrossentropy(label_smoothing=0.1)``, on each Keras backend of
  ``--backends``; then the first ``evaluate``.

It prints the medians, the ratio of CC-LS to LS with its range over the rounds, and a
JSON record.

    python benchmarks/compile_cost.py --repeats 3
"""

import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys

from absl import flags

from keras_cc_runs import cli

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _timing  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("num_classes", ["10", "100", "1000"], "K of the loss + gradient case.")
flags.DEFINE_list("backends", ["tensorflow", "jax"], "Keras backends of the fit case.")
flags.DEFINE_integer("repeats", 3, "Interleaved rounds (fresh interpreters).", lower_bound=1)
flags.DEFINE_string("json_out", None, "Also write the results to this JSON file.")
flags.DEFINE_string("sample", None, "Internal: run one sample in this process.")

_LOSS_AND_GRADIENT = """
import json, sys, time
sys.path.insert(0, {benchmarks!r})
from _cc_steps import loss_and_gradient, trajectory_logits
logits, one_hot = trajectory_logits(128, {num_classes}, 0.0, 0.1)
step = loss_and_gradient("{loss}", 0.1)

def memory_maps():  # the process's memory maps (Linux), where XLA keeps its JIT code
    try:
        with open("/proc/self/maps") as maps:
            return sum(1 for _ in maps)
    except OSError:
        return float("nan")

maps_before = memory_maps()
start = time.perf_counter()
float(step(logits, one_hot)[0])
seconds = time.perf_counter() - start
print("RESULT", json.dumps({{"first_call_s": seconds, "jit_maps": memory_maps() - maps_before}}))
"""

_FIT = """
import json, os, time
import numpy as np
import keras
import keras_cc
from sklearn.datasets import load_digits
x, labels = load_digits(return_X_y=True)
x = (x / 16.0).astype("float32")
y = keras.utils.to_categorical(labels, 10)
x_train, y_train, x_test, y_test = x[:1437], y[:1437], x[1437:], y[1437:]
keras.utils.set_random_seed(0)
layers = keras.layers
model = keras.Sequential(
    [keras.Input((64,)), layers.Dense(128, activation="relu"), layers.Dense(10)]
)
losses = {{
    "cc_ls": lambda: keras_cc.CCLabelSmoothing(0.1, from_logits=True),
    "ce_ls": lambda: keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
}}
loss = losses["{loss}"]()
model.compile(optimizer="adam", loss=loss, jit_compile=True)
times = {{}}
for epoch in (1, 2):
    start = time.perf_counter()
    model.fit(x_train, y_train, batch_size=128, epochs=1, verbose=0)
    times[f"epoch_{{epoch}}_s"] = time.perf_counter() - start
start = time.perf_counter()
model.evaluate(x_test, y_test, batch_size=128, verbose=0)
times["evaluate_s"] = time.perf_counter() - start
print("RESULT", json.dumps(times))
"""


def _sample(code, backend="tensorflow"):
    """Runs ``code`` in a fresh interpreter; returns the dict it prints after RESULT."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    for line in completed.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"sample failed:\n{completed.stderr[-3000:]}")


def _ratio(cc, ce):
    ratios = [a / b for a, b in zip(cc, ce)]
    return {
        "cc_ls": statistics.median(cc),
        "ce_ls": statistics.median(ce),
        "ratio": statistics.median(ratios),
        "ratio_spread": f"{min(ratios):.3g}-{max(ratios):.3g}",
    }


def main(argv):
    del argv
    record = {"device": platform.processor() or platform.machine(), "repeats": FLAGS.repeats}
    cases = []
    for num_classes in map(int, FLAGS.num_classes):
        fields = {"num_classes": num_classes, "benchmarks": str(pathlib.Path(__file__).parent)}
        cases.append(("loss_and_gradient", f"K={num_classes}", "tensorflow", _LOSS_AND_GRADIENT,
                      fields))  # fmt: skip
    for backend in FLAGS.backends:
        cases.append(("fit", backend, backend, _FIT, {}))
    for kind, label, backend, template, fields in cases:
        samples = {"cc_ls": [], "ce_ls": []}
        for _, loss in _timing.rounds(samples, FLAGS.repeats):
            samples[loss].append(_sample(template.format(loss=loss, **fields), backend))
        keys = samples["cc_ls"][0].keys()
        rows = {
            key: _ratio([s[key] for s in samples["cc_ls"]], [s[key] for s in samples["ce_ls"]])
            for key in keys
        }
        record.setdefault(kind, {})[label] = rows
        for key, row in rows.items():
            unit = " s" if key.endswith("_s") else ""  # seconds, or a count of maps
            print(
                f"{kind:18s} {label:12s} {key:14s} CE+LS {row['ce_ls']:6.2f}{unit}  "
                f"CC-LS {row['cc_ls']:6.2f}{unit}  {row['ratio']:.2f}x ({row['ratio_spread']})",
                flush=True,
            )
    _timing.print_record(record, FLAGS.json_out)


if __name__ == "__main__":
    cli.parse_flags()
    cli.run(main)
