"""Benchmark of the CC normalizer: accuracy, loss+gradient time, sampler speed, peak memory.

Everything is measured side by side in one run (XLA, CPU or GPU) and printed as tables and
JSON. Usage:  python benchmarks/cc_numerics.py [--quick] [--json_out results.json]

(a) max |error| of log C^{-1} for the CC paper's closed form (eq. 4) and for
    keras_cc.ops.cc_log_normalizer, float32 and float64, against an mpmath reference;
(b) loss+gradient against the closed form at (4096, 10), logits N(0, 2^2): eq. 4 in the
    input's precision under XLA (one product of pairwise differences and a sum);
(c) the spread sweep: loss+gradient at logit spreads 1 to 1e4 as ratios to softmax
    cross-entropy on the same batch, with the number of sequential loop steps and the share
    of rows each method (series, table, certified closed forms on all or the top nodes) took;
(c') loss+gradient at spread 1e4 as a ratio to spread max(K, 10), batch 128;
(d) a training-shaped case: logits of a digits MLP trained with CC label smoothing;
(e) sampler throughput (samples/s);
(f) peak memory of loss+gradient at batch 4096 and K = 10, 100, 1000, in MiB and in units of
    the logits tensor's size: under XLA (every method's buffers count, taken or not) and in
    a graph without XLA (each method's only when a row takes it).
Timings are medians over interleaved rounds; "spread" gives the ratios' range over rounds.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys

SECTIONS = ("accuracy", "closed_form", "spread", "spread_target", "training", "sampler", "memory")


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cases and repeats")
    parser.add_argument("--json_out", default=None, help="also write the results here")
    parser.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help="comma-separated subset of: " + ", ".join(SECTIONS),
    )
    args = parser.parse_args(argv)
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"--sections: unknown {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


if __name__ == "__main__":
    ARGUMENTS = parse_arguments()  # --help and bad flags answer here, before TensorFlow loads

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_cc  # noqa: E402
from keras_cc import ops  # noqa: E402
from keras_cc_runs import run_directory  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _timing  # noqa: E402
import cc_reference  # noqa: E402
from _spread_cases import SWEEP_SHAPES, SWEEP_SPREADS, spread_arrays  # noqa: E402


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


def _loss_and_gradient(log_normalizer, jit_compile=True):
    @tf.function(jit_compile=jit_compile)
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


def _ratio_row(contenders, baseline, repeats):
    """:func:`_timing.ratio_row` of the contenders timed side by side (after compiling)."""
    finish = lambda result: tf.nest.map_structure(lambda t: t.numpy(), result)  # noqa: E731
    for function in contenders.values():
        finish(function())  # compile
    return _timing.ratio_row(_timing.side_by_side(contenders, repeats, finish=finish), baseline)


def closed_form_table(repeats):
    """(b): ours against eq. 4 at (4096, 10), logits N(0, 2^2)."""
    rng = np.random.default_rng(0)
    logits = tf.constant(2.0 * rng.standard_normal((4096, 10)), tf.float32)
    targets = tf.constant(rng.dirichlet(np.full(10, 2.0), size=4096), tf.float32)
    ours = _loss_and_gradient(ops.cc_log_normalizer)
    closed = _loss_and_gradient(ops.cc_closed_form_log_normalizer)
    row = _ratio_row(
        {
            "ours": lambda: ours(logits, targets),
            "closed_form": lambda: closed(logits, targets),
            "softmax_ce": lambda: _softmax_cross_entropy_step(logits, targets),
        },
        "closed_form",
        repeats,
    )
    failed = ops.cc_closed_form_failure(tf.nn.log_softmax(logits)).numpy().mean()
    return [{"batch": 4096, "K": 10, **row, "closed_form_rows_off_by_1e-3": float(failed)}]


def spread_batch(batch, num_classes, spread, seed=0):
    """:func:`spread_arrays` as TensorFlow tensors."""
    return tuple(tf.constant(x) for x in spread_arrays(batch, num_classes, spread, seed))


def spread_table(repeats, shapes=SWEEP_SHAPES, spreads=SWEEP_SPREADS):
    """(c): loss+gradient at each spread, as a ratio to softmax cross-entropy."""
    ours = _loss_and_gradient(ops.cc_log_normalizer)
    rows = []
    for batch, num_classes in shapes:
        for spread in spreads:
            logits, targets = spread_batch(batch, num_classes, spread)
            row = _ratio_row(
                {
                    "ours": lambda x=logits, y=targets: ours(x, y),
                    "softmax_ce": lambda x=logits, y=targets: _softmax_cross_entropy_step(x, y),
                },
                "softmax_ce",
                repeats,
            )
            rows.append({"batch": batch, "K": num_classes, "spread": spread, **row})
            rows[-1].update(_methods(logits))
            print(rows[-1], flush=True)
    return rows


def _methods(logits):
    """Sequential steps of one call and the share of rows each method took."""
    log_probs = tf.nn.log_softmax(logits)
    steps = ops.continuous_categorical.sequential_steps(log_probs)
    methods = ops.continuous_categorical.row_methods(log_probs).numpy()
    shares = {
        name: float(np.mean(methods == index))
        for index, name in enumerate(ops.continuous_categorical.METHODS)
    }
    described = ", ".join(f"{name} {share:.0%}" for name, share in shares.items() if share)
    return {"sequential_steps": int(steps), "methods": described}


TARGET_SPREAD = 1e4


def spread_target_table(repeats, num_classes_list=(10, 100, 1000), batch=128):
    """Loss+gradient at spread 1e4 against spread max(K, 10), side by side (batch 128)."""
    ours = _loss_and_gradient(ops.cc_log_normalizer)
    rows = []
    for num_classes in num_classes_list:
        reference_spread = float(max(num_classes, 10))
        wide, wide_targets = spread_batch(batch, num_classes, TARGET_SPREAD)
        narrow, narrow_targets = spread_batch(batch, num_classes, reference_spread)
        row = _ratio_row(
            {
                "spread_1e4": lambda x=wide, y=wide_targets: ours(x, y),
                "spread_max_K_10": lambda x=narrow, y=narrow_targets: ours(x, y),
            },
            "spread_max_K_10",
            repeats,
        )
        rows.append({"batch": batch, "K": num_classes, "reference_spread": reference_spread})
        rows[-1].update(row)
        print(rows[-1], flush=True)
    return rows


def trained_logits(epochs=50, seed=0):
    """Training-set logits of a 64-128-10 MLP fitted to scikit-learn's digits with
    CCLabelSmoothing(0.1) for ``epochs`` epochs (Adam, batch 128)."""
    import keras
    from sklearn.datasets import load_digits

    keras.utils.set_random_seed(seed)
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = keras.utils.to_categorical(digits.target, 10)
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(128, activation="relu"), keras.layers.Dense(10)]
    )
    model.compile("adam", loss=keras_cc.CCLabelSmoothing(0.1, from_logits=True))
    model.fit(x, y, batch_size=128, epochs=epochs, verbose=0)
    return model.predict(x, verbose=0), y


def training_table(repeats, epochs):
    """(d): loss+gradient on trained CC-LS logits, batches of 128 training examples."""
    logits, labels = trained_logits(epochs)
    spreads = np.ptp(logits, axis=-1)
    targets = 0.9 * labels + 0.01
    ours = _loss_and_gradient(ops.cc_log_normalizer)
    batch_logits = tf.constant(logits[:128])
    batch_targets = tf.constant(targets[:128], tf.float32)
    row = _ratio_row(
        {
            "ours": lambda: ours(batch_logits, batch_targets),
            "softmax_ce": lambda: _softmax_cross_entropy_step(batch_logits, batch_targets),
        },
        "softmax_ce",
        repeats,
    )
    return [
        {
            "epochs": epochs,
            "median_spread": float(np.median(spreads)),
            "max_spread": float(spreads.max()),
            **row,
        }
    ]


def _sampler_cases(num_classes):
    """(name, [1, K] float32 logits) of the sampler section: unit-normal logits rescaled to
    spreads 1, 150 and 1e3; the target K / 0.1 above a unit-normal cluster (the CC
    label-smoothing optimum); the same row with the target 1e6 above."""
    cases = [
        (f"normal, spread {spread:g}", spread_batch(1, num_classes, spread, seed=1)[0])
        for spread in (1.0, 150.0, 1e3)
    ]
    cluster = np.random.default_rng(1).standard_normal(num_classes - 1)
    for name, height in (("label-smoothing optimum", num_classes / 0.1), ("top 1e6", 1e6)):
        row = np.append(cluster, cluster.max() + height)
        cases.append((name, tf.constant([row], tf.float32)))
    return cases


def sampler_table(num_samples, repeats):
    """(e): samples/s of the exact sampler by number of classes and row shape, with the
    method it took (``keras_cc.ops.sampler``)."""
    rows = []
    sample = tf.function(lambda x, s: ops.cc_sample(x, [num_samples], seed=s))
    for num_classes in (10, 100, 1000):
        for name, logits in _sampler_cases(num_classes):
            seconds = median_time(sample, logits, tf.constant([1, 2]), repeats=repeats)
            truncated = bool(ops.sampler.sampler_methods(logits).numpy()[0])
            rows.append(
                {
                    "K": num_classes,
                    "row": name,
                    "spread": float(np.ptp(logits.numpy())),
                    "method": "truncated exponentials" if truncated else "Dirichlet mixture",
                    "samples": num_samples,
                    "samples_per_s": num_samples / seconds,
                }
            )
            print(rows[-1], flush=True)
    return rows


_MEMORY_CHILD = """
import sys
import keras_cc, tensorflow as tf
sys.path.insert(0, {here!r})
import cc_numerics as b
batch, k, which = {batch}, {k}, {which!r}
step = b._softmax_cross_entropy_step if which == 'softmax_ce' else b._loss_and_gradient(
    keras_cc.ops.cc_log_normalizer, jit_compile=which == 'ours')
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
    for which in ("ours", "ours_graph", "softmax_ce"):
        code = _MEMORY_CHILD.format(here=here, batch=batch, k=num_classes, which=which)
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        result[which] = int(
            next(line.split()[1] for line in out.splitlines() if line.startswith("PEAK"))
        )
    return {
        "batch": batch,
        "K": num_classes,
        "peak_MiB_ours": result["ours"] / 2**20,
        "peak_over_logits_ours": result["ours"] / (batch * num_classes * 4),
        "peak_over_logits_ours_without_xla": result["ours_graph"] / (batch * num_classes * 4),
        "peak_over_logits_softmax_ce": result["softmax_ce"] / (batch * num_classes * 4),
    }


def _print_table(title, rows):
    print(f"\n{title}")
    keys = list(rows[0])
    print(" | ".join(keys))
    for row in rows:
        print(
            " | ".join(f"{row[k]:.3g}" if isinstance(row[k], float) else str(row[k]) for k in keys)
        )


def main(args):
    repeats = 5 if args.quick else 15
    sizes = (2, 10, 100) if args.quick else (2, 5, 10, 20, 50, 100, 256)
    sections = args.sections.split(",")
    results = {
        "device": "GPU" if tf.config.list_physical_devices("GPU") else f"CPU x{os.cpu_count()}"
    }
    titles = {
        "accuracy": "(a) max |error| of log C^-1 (inf: NaN or inf)",
        "closed_form": "(b) loss+gradient against the closed form (eq. 4), XLA",
        "spread": "(c) loss+gradient against softmax cross-entropy by logit spread, XLA",
        "spread_target": "(c') loss+gradient at spread 1e4 against spread max(K, 10), XLA",
        "training": "(d) trained CC-LS logits (digits MLP), XLA",
        "sampler": "(e) sampler throughput",
        "memory": "(f) peak memory of loss+gradient / logits size",
    }
    makers = {
        "accuracy": lambda: accuracy_table(sizes, cases_per_cell=2 if args.quick else 4),
        "closed_form": lambda: closed_form_table(repeats),
        "spread": lambda: spread_table(repeats),
        "spread_target": lambda: spread_target_table(repeats),
        "training": lambda: training_table(repeats, epochs=10 if args.quick else 50),
        "sampler": lambda: sampler_table(20000 if args.quick else 100000, max(3, repeats // 3)),
        "memory": lambda: [peak_memory(num_classes=k) for k in (10, 100, 1000)],
    }
    for name in sections:
        results[name] = makers[name]()
        _print_table(titles[name], results[name])
    text = json.dumps(results, indent=1)
    print("\nJSON\n" + text)
    if args.json_out:
        run_directory.write_text(args.json_out, text)


if __name__ == "__main__":
    main(ARGUMENTS)
