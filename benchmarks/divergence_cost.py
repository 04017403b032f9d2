r"""Cost of cross-entropy (CED) against the triangular divergence (TRI), side by side.

The correlations paper's Table 3 (MATLAB on an M1) timed one datum against 10,000 others
with ``CED = -sum(X .* log(Y), 2)`` and the rewritten ``TRI = 1 - sum(2 X .* Y ./ (X + Y), 2)``
(eq. 23) and found TRI 2-20x cheaper. This script measures the same two functions, as
keras_cc implements them, under XLA (``tf.function(jit_compile=True)``), eager TensorFlow
and NumPy, in two settings:

* one against many: one query ``q`` [K] against ``P`` [N, K] (the paper's setting);
* all pairs: ``Q`` [M, K] against ``P`` [M, K] -> [M, M]. Here CED is one matrix product
  with ``log P`` (``pairwise_cross_entropy_divergence``) while TRI has no product form
  and is evaluated elementwise in row blocks (``pairwise_triangular_divergence_rewritten``).

Extra rows for context: TRI as eq. 5, JSD (eq. 4), and CED with ``log P`` precomputed
(a matrix-vector product). Each timing is the median over ``--repeats`` of the mean over
``--inner`` calls, with CED and TRI measured alternately so load drifts hit both alike.

    python benchmarks/divergence_cost.py
    python benchmarks/divergence_cost.py --num_classes=365 --num_others=10000 --repeats=9
"""

import json
import pathlib
import sys

from absl import app, flags

from keras_cc_runs import cli

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _timing  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_classes", 1000, "Vector length K (AlexNet/SqueezeNet: 1000).")
flags.DEFINE_integer("num_others", 10000, "N, the vectors one query is compared with.")
flags.DEFINE_integer("all_pairs_rows", 500, "M for the all-pairs [M, K] x [M, K] case.")
flags.DEFINE_float("temperature", 10.0, "Softmax temperature applied to N(0, 5^2) logits.")
flags.DEFINE_enum("dtype", "float32", ["float32", "float64"], "Floating point type.")
flags.DEFINE_integer("repeats", 7, "Timed repeats; the median is reported.")
flags.DEFINE_integer("inner", 5, "Calls per timed repeat.")
flags.DEFINE_integer("seed", 0, "Seed of the random logits.")
flags.DEFINE_string("json_out", None, "Also write the JSON record to this file.")

if __name__ == "__main__":
    cli.parse_flags()  # --help and bad flags answer before TensorFlow loads

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_cc  # noqa: E402, F401 (loads TensorFlow Probability)
from keras_cc.ops import divergences as dv  # noqa: E402

# ---------------------------------------------------------------- NumPy references


def np_ced(q, p):
    return -np.sum(q * np.log(p), axis=-1)


def np_ced_precomputed(q, log_p):
    return -(log_p @ q)


def np_tri23(q, p):
    return 1.0 - 2.0 * np.sum(q * p / (q + p), axis=-1)


def np_tri5(q, p):
    return 0.5 * np.sum((q - p) ** 2 / (q + p), axis=-1)


def np_jsd(q, p):
    s = q + p
    return 1.0 + np.sum(q * np.log2(q) + p * np.log2(p) - s * np.log2(s), axis=-1) / 2.0


def np_pairwise_ced(q, p):
    return -(q @ np.log(p).T)


def np_pairwise_tri23(q, p, block=16):
    out = np.empty((q.shape[0], p.shape[0]), q.dtype)
    for start in range(0, q.shape[0], block):
        rows = q[start : start + block, None, :]
        out[start : start + block] = 1.0 - 2.0 * np.sum(rows * p / (rows + p), axis=-1)
    return out


# ---------------------------------------------------------------- timing


def _materialize(value):
    return value.numpy() if hasattr(value, "numpy") else value


def _materialized_call(fn, args):
    """``fn(*args)`` as a zero-argument call that waits for its result (copied to NumPy)."""
    return lambda: _materialize(fn(*args))


def _interleaved(contenders, repeats, inner):
    """Median seconds per call of each contender, measured round-robin.

    Every contender is called once first (tracing / compilation excluded) and once more,
    untimed, before each of its timed batches of ``inner`` calls.
    """
    calls = {name: _materialized_call(fn, args) for name, (fn, args) in contenders.items()}
    for call in calls.values():
        call()
    samples = _timing.side_by_side(calls, repeats, inner, alternate=False, warmup=1)
    return _timing.medians(samples)


def _tf_variants(fn):
    return {"eager TF": fn, "XLA": tf.function(fn, jit_compile=True)}


def _one_against_many(q, p, repeats, inner):
    q_tf, p_tf = tf.constant(q), tf.constant(p)
    log_p, log_p_tf = np.log(p), tf.math.log(p_tf)
    rows = {}
    cases = {
        "CED": (
            lambda a, b: dv.cross_entropy_divergence(a[None, :], b),
            np_ced,
        ),
        "TRI eq. 23": (
            lambda a, b: dv.triangular_divergence_rewritten(a[None, :], b),
            np_tri23,
        ),
        "TRI eq. 5": (lambda a, b: dv.triangular_divergence(a[None, :], b), np_tri5),
        "JSD eq. 4": (lambda a, b: dv.jensen_shannon_divergence(a[None, :], b), np_jsd),
        "CED, log P precomputed": (
            lambda a, lb: -tf.linalg.matvec(lb, a),
            np_ced_precomputed,
        ),
    }
    for backend in ("XLA", "eager TF", "NumPy"):
        contenders = {}
        for name, (tf_fn, np_fn) in cases.items():
            precomputed = name.startswith("CED, log")
            if backend == "NumPy":
                contenders[name] = (np_fn, (q, log_p if precomputed else p))
            else:
                contenders[name] = (
                    _tf_variants(tf_fn)[backend],
                    (q_tf, log_p_tf if precomputed else p_tf),
                )
        rows[backend] = _interleaved(contenders, repeats, inner)
    return rows


def _all_pairs(q, p, repeats, inner):
    q_tf, p_tf = tf.constant(q), tf.constant(p)
    rows = {}
    for backend in ("XLA", "eager TF", "NumPy"):
        if backend == "NumPy":
            contenders = {
                "CED": (np_pairwise_ced, (q, p)),
                "TRI eq. 23": (np_pairwise_tri23, (q, p)),
            }
        else:
            contenders = {
                "CED": (_tf_variants(dv.pairwise_cross_entropy_divergence)[backend], (q_tf, p_tf)),
                "TRI eq. 23": (
                    _tf_variants(dv.pairwise_triangular_divergence_rewritten)[backend],
                    (q_tf, p_tf),
                ),
            }
        rows[backend] = _interleaved(contenders, repeats, inner)
    return rows


def _check_agreement(q, p):
    """The timed implementations compute the same numbers (guards the comparison)."""
    np.testing.assert_allclose(
        dv.cross_entropy_divergence(q[None], p).numpy(), np_ced(q, p), rtol=1e-4
    )
    np.testing.assert_allclose(
        dv.triangular_divergence_rewritten(q[None], p).numpy(), np_tri23(q, p), atol=1e-4
    )
    np.testing.assert_allclose(
        dv.jensen_shannon_divergence(q[None], p).numpy(), np_jsd(q, p), atol=1e-4
    )


_HEADER = (
    f"{'backend':<9} {'function':<24} {'s / call':>10} {'s / divergence':>15} {'÷ TRI eq.23':>12}"
)


def _report(title, times_by_backend, divergences_per_call, section, record):
    """Prints one table (CED and the others against TRI eq. 23) and adds it to ``record``."""
    print(title)
    print(_HEADER)
    print("-" * len(_HEADER))
    for backend, times in times_by_backend.items():
        tri = times["TRI eq. 23"]
        for name, seconds in times.items():
            print(
                f"{backend:<9} {name:<24} {seconds:>10.3e} "
                f"{seconds / divergences_per_call:>15.3e} {seconds / tri:>12.2f}"
            )
        record[section][backend] = times
        record["ratios"][f"{section}/{backend}/CED_over_TRI23"] = times["CED"] / tri


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    rng = np.random.default_rng(FLAGS.seed)
    dtype = np.dtype(FLAGS.dtype)
    k, n, m = FLAGS.num_classes, FLAGS.num_others, FLAGS.all_pairs_rows

    def simplex(rows):
        z = rng.normal(scale=5.0, size=(rows, k)) / FLAGS.temperature
        z -= z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=-1, keepdims=True)).astype(dtype)

    others = simplex(n + 1)
    q, p = others[0], others[1:]
    _check_agreement(q, p)
    single = _one_against_many(q, p, FLAGS.repeats, FLAGS.inner)
    pair_rows = simplex(m)
    pairs = _all_pairs(pair_rows, pair_rows, FLAGS.repeats, max(1, FLAGS.inner // 2))

    record = {
        "config": {
            "num_classes": k,
            "num_others": n,
            "all_pairs_rows": m,
            "dtype": FLAGS.dtype,
            "temperature": FLAGS.temperature,
            "repeats": FLAGS.repeats,
            "inner": FLAGS.inner,
            "tensorflow": tf.__version__,
            "numpy": np.__version__,
        },
        "one_against_many": {},
        "all_pairs": {},
        "ratios": {},
    }
    _report(
        f"\nOne query against N={n} others, K={k}, {FLAGS.dtype}, t={FLAGS.temperature:g}\n"
        f"(seconds per call, and per divergence = per call / N; median of {FLAGS.repeats})\n",
        single,
        n,
        "one_against_many",
        record,
    )
    _report(
        f"\nAll pairs: [{m}, {k}] x [{m}, {k}] -> [{m}, {m}] (CED: one matmul with log P;\n"
        "TRI eq. 23: elementwise in row blocks)\n",
        pairs,
        m * m,
        "all_pairs",
        record,
    )
    print("\nCED / TRI time ratios (> 1: TRI cheaper):")
    print(json.dumps(record["ratios"], indent=2))
    _timing.print_record(record, FLAGS.json_out)


if __name__ == "__main__":
    app.run(main)
