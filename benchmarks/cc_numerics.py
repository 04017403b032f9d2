"""Benchmark of the CC normalizer: accuracy, loss+gradient time, sampler speed, peak memory.

Everything is measured side by side in one run (XLA, CPU or GPU) and printed as tables and
JSON. Usage:  python benchmarks/cc_numerics.py [--quick] [--json_out results.json]

(a) max |error| of log C^{-1} for the CC paper's closed form (eq. 4) and for
    keras_cc.ops.cc_log_normalizer, float32 and float64, against an mpmath reference;
(b) time of loss+gradient of the CC negative log-likelihood of soft targets, as ratios to
    the closed form and to softmax cross-entropy;
(c) sampler throughput (samples/s);
(d) peak memory of loss+gradient at (4096, 1000), in units of the logits tensor's size.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import tensorflow as tf  # noqa: E402

import keras_cc  # noqa: F401  (configures TensorFlow's Keras routing first)
from keras_cc import ops  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _timing  # noqa: E402
import cc_reference  # noqa: E402

TIMING_SHAPES = ((4096, 10), (256, 100), (64, 1000))


def median_time(function, *args, repeats=15):
    """Median seconds of one call (results copied to NumPy), after an untimed compiling call."""
    function(*args)  # compile
    return _timing.median_seconds(
        lambda: function(*args),
        repeats,
        finish=lambda result: tf.nest.map_structure(lambda t: t.numpy(), result),
    )


def accuracy_table(sizes, cases_per_cell, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for num_classes in sizes:
        for kind in cc_reference.KINDS:
            logits = np.stack(
                [cc_reference.make_logits(kind, num_classes, rng) for _ in range(cases_per_cell)]
            )
            row = {"K": num_classes, "regime": kind}
            for dtype in (np.float32, np.float64):
                inputs = logits.astype(dtype)
                reference = np.array(
                    [cc_reference.log_inverse_normalizer(r.astype(np.float64)) for r in inputs]
                )
                ours = ops.cc_log_normalizer(tf.constant(inputs)).numpy().astype(np.float64)
                closed = ops.cc_closed_form_log_normalizer(tf.constant(inputs)).numpy()
                closed = closed.astype(np.float64)
                bits = np.dtype(dtype).itemsize * 8
                row[f"ours_f{bits}"] = float(np.max(np.abs(ours - reference)))
                closed_error = np.abs(closed - reference)
                row[f"closed_f{bits}"] = float(
                    np.inf if not np.all(np.isfinite(closed_error)) else np.max(closed_error)
                )
            rows.append(row)
    return rows


def _loss_and_gradient(log_normalizer):
    @tf.function(jit_compile=True)
    def step(logits, targets):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            log_probs = tf.nn.log_softmax(logits)
            loss = tf.reduce_mean(
                log_normalizer(log_probs) - tf.reduce_sum(targets * log_probs, axis=-1)
            )
        return loss, tape.gradient(loss, logits)

    return step


@tf.function(jit_compile=True)
def _softmax_cross_entropy_step(logits, targets):
    with tf.GradientTape() as tape:
        tape.watch(logits)
        loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(targets, logits))
    return loss, tape.gradient(loss, logits)


def example_batch(batch, num_classes, seed=0):
    """Network-like logits (unit-normal) and soft targets near the logits' softmax."""
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((batch, num_classes)).astype(np.float32)
    targets = rng.dirichlet(np.full(num_classes, 2.0), size=batch).astype(np.float32)
    return tf.constant(logits), tf.constant(targets)


def timing_table(repeats):
    ours = _loss_and_gradient(ops.cc_log_normalizer)
    closed = _loss_and_gradient(ops.cc_closed_form_log_normalizer)
    rows = []
    for batch, num_classes in TIMING_SHAPES:
        logits, targets = example_batch(batch, num_classes)
        t_ours = median_time(ours, logits, targets, repeats=repeats)
        t_closed = median_time(closed, logits, targets, repeats=repeats)
        t_ce = median_time(_softmax_cross_entropy_step, logits, targets, repeats=repeats)
        closed_loss = closed(logits, targets)[0].numpy()
        rows.append(
            {
                "batch": batch,
                "K": num_classes,
                "ours_ms": 1e3 * t_ours,
                "closed_form_ms": 1e3 * t_closed,
                "softmax_ce_ms": 1e3 * t_ce,
                "ours/closed_form": t_ours / t_closed,
                "ours/softmax_ce": t_ours / t_ce,
                "closed_form_loss_finite": bool(np.isfinite(closed_loss)),
            }
        )
    return rows


def sampler_table(num_samples, repeats):
    rows = []
    for num_classes in (10, 100, 1000):
        logits = tf.constant(np.random.default_rng(1).standard_normal((1, num_classes)), tf.float32)
        sample = tf.function(lambda x, s: ops.cc_sample(x, [num_samples], seed=s))
        seconds = median_time(sample, logits, tf.constant([1, 2]), repeats=repeats)
        rows.append(
            {"K": num_classes, "samples": num_samples, "samples_per_s": num_samples / seconds}
        )
    return rows


_MEMORY_CHILD = """
import sys
import keras_cc, tensorflow as tf
sys.path.insert(0, {here!r})
import cc_numerics as b
batch, k, which = {batch}, {k}, {which!r}
step = b._softmax_cross_entropy_step if which == 'softmax_ce' else b._loss_and_gradient(
    keras_cc.ops.cc_log_normalizer)
logits, targets = b.example_batch(batch, k)
step(logits, targets)[1].numpy()  # compile and run once
device = 'GPU:0' if tf.config.list_physical_devices('GPU') else 'CPU:0'
tf.config.experimental.reset_memory_stats(device)
baseline = tf.config.experimental.get_memory_info(device)['current']
step(logits, targets)[1].numpy()
extra = tf.config.experimental.get_memory_info(device)['peak'] - baseline
print('PEAK', max(extra, 0))
"""


def peak_memory(batch=4096, num_classes=1000):
    """Peak memory one loss+gradient call adds (TensorFlow allocator statistics), fresh process."""
    here = str(pathlib.Path(__file__).resolve().parent)
    result = {}
    for which in ("ours", "softmax_ce"):
        code = _MEMORY_CHILD.format(here=here, batch=batch, k=num_classes, which=which)
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        peak = int(next(line.split()[1] for line in out.splitlines() if line.startswith("PEAK")))
        result[which] = peak / (batch * num_classes * 4)
    return {
        "batch": batch,
        "K": num_classes,
        "peak_over_logits_ours": result["ours"],
        "peak_over_logits_softmax_ce": result["softmax_ce"],
    }


def _print_table(title, rows):
    print(f"\n{title}")
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(
            " | ".join(f"{row[k]:.3g}" if isinstance(row[k], float) else str(row[k]) for k in keys)
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases and repeats")
    parser.add_argument("--json_out", default=None, help="also write the results here")
    args = parser.parse_args()
    repeats = 5 if args.quick else 15
    sizes = (2, 10, 100) if args.quick else (2, 5, 10, 20, 50, 100, 256)
    results = {
        "device": "GPU" if tf.config.list_physical_devices("GPU") else f"CPU x{os.cpu_count()}",
        "accuracy": accuracy_table(sizes, cases_per_cell=2 if args.quick else 4),
        "timing": timing_table(repeats),
        "sampler": sampler_table(20000 if args.quick else 100000, max(3, repeats // 3)),
        "memory": peak_memory(),
    }
    _print_table("(a) max |error| of log C^-1 (inf: NaN or inf)", results["accuracy"])
    _print_table("(b) loss+gradient time, XLA (median)", results["timing"])
    _print_table("(c) sampler throughput", results["sampler"])
    _print_table("(d) peak memory of loss+gradient / logits size", [results["memory"]])
    text = json.dumps(results, indent=1)
    print("\nJSON\n" + text)
    if args.json_out:
        pathlib.Path(args.json_out).write_text(text)


if __name__ == "__main__":
    main()
