"""What one wide row costs the rest of its batch: CC label smoothing with and without it.

A batch of unit-normal rows of logits, and the same batch with its first row replaced by a
wide row that no certified closed form takes: two clusters of K/2 nodes, ``--spread``
apart (neither the closed form on all nodes, whose close nodes cancel, nor the one on the
top nodes, whose top cluster has more than four nodes, certifies it; the lifted series needs
a lone top node). Loss + gradient of ``keras_cc.losses.cc_label_smoothing`` under
``tf.function(jit_compile=True)`` are timed for both batches, interleaved in rounds in one
process, beside TensorFlow's fused softmax cross-entropy on the label-smoothed targets of
the narrow batch. It prints the medians, the ratio of the batch with the wide row to the
batch without it (the target is at most 1.5) with its range over the rounds, the sequential
steps of each batch and the method each row took.

    python benchmarks/cc_wide_row.py --repeats 5
"""

import functools
import pathlib
import platform
import sys

from absl import flags

from keras_cc_runs import cli

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _timing  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "cases",
    ["4096x100:2000", "512x1000:3000", "4096x10:1e6"],
    "Cases BxK:spread (batch rows, classes, distance between the wide row's clusters).",
)
flags.DEFINE_float("label_smoothing", 0.1, "epsilon.")
flags.DEFINE_integer("repeats", 5, "Interleaved rounds.", lower_bound=1)
flags.DEFINE_integer("inner", 3, "Calls per timed sample.", lower_bound=1)
flags.DEFINE_string("json_out", None, "Also write the results to this JSON file.")


def _parse_case(text):
    """``"4096x100:2000"`` -> (4096, 100, 2000.0); ValueError naming the case."""
    try:
        shape, spread = text.split(":")
        batch, classes = (int(x) for x in shape.lower().split("x"))
        spread = float(spread)
    except ValueError:
        raise ValueError(f"--cases: {text!r} is not BxK:spread (e.g. 4096x100:2000).") from None
    if batch < 2 or classes < 2 or not spread > 0:
        raise ValueError(f"--cases: {text!r} needs B >= 2, K >= 2 and a spread > 0.")
    return batch, classes, spread


if __name__ == "__main__":
    cli.parse_flags()  # --help and bad flags answer before TensorFlow loads
    with cli.checks():
        CASES = [_parse_case(case) for case in FLAGS.cases]

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from _cc_steps import loss_and_gradient, row_methods  # noqa: E402

from keras_cc import ops  # noqa: E402


def batches(batch_size, num_classes, spread, seed=0):
    """([B, K] unit-normal logits, the same with a two-cluster wide first row, one-hot
    targets), float32."""
    rng = np.random.default_rng(seed)
    narrow = rng.standard_normal((batch_size, num_classes))
    wide = narrow.copy()
    wide[0, num_classes // 2 :] += spread
    labels = np.arange(batch_size) % num_classes
    return (
        tf.constant(narrow, tf.float32),
        tf.constant(wide, tf.float32),
        tf.one_hot(labels, num_classes),
    )


def main(argv):
    del argv
    epsilon = FLAGS.label_smoothing
    rows = []
    for batch_size, num_classes, spread in CASES:
        cc, ce = loss_and_gradient("cc_ls", epsilon), loss_and_gradient("ce_ls", epsilon)
        narrow, wide, one_hot = batches(batch_size, num_classes, spread)
        contenders = {
            "ce_ls": functools.partial(ce, narrow, one_hot),
            "cc_ls": functools.partial(cc, narrow, one_hot),
            "cc_ls_wide_row": functools.partial(cc, wide, one_hot),
        }
        samples = _timing.side_by_side(
            contenders,
            FLAGS.repeats,
            inner=FLAGS.inner,
            finish=lambda result: float(result[0]),
            warmup=1,
        )
        row = _timing.ratio_row(samples, "cc_ls")
        ce_row = _timing.ratio_row({k: samples[k] for k in ("ce_ls", "cc_ls")}, "ce_ls")
        row.update(
            batch_size=batch_size,
            num_classes=num_classes,
            spread=spread,
            **{"cc_ls/ce_ls": ce_row["cc_ls/ce_ls"]},
            sequential_steps={
                "narrow": int(ops.continuous_categorical.sequential_steps(narrow)),
                "wide": int(ops.continuous_categorical.sequential_steps(wide)),
            },
            wide_row_method=row_methods(wide[:1]),
            finite=bool(np.isfinite(cc(wide, one_hot)[0].numpy())),
        )
        rows.append(row)
        print(
            f"{batch_size}x{num_classes} spread {spread:g}: CC-LS {row['cc_ls_ms']:.2f} ms, "
            f"with the wide row {row['cc_ls_wide_row_ms']:.2f} ms: "
            f"{row['cc_ls_wide_row/cc_ls']:.2f}x ({row['cc_ls_wide_row/cc_ls_spread']}); "
            f"CC-LS/CE+LS {row['cc_ls/ce_ls']:.1f}x; steps {row['sequential_steps']}; "
            f"wide row by {row['wide_row_method']}",
            flush=True,
        )
    record = {
        "device": platform.processor() or platform.machine(),
        "label_smoothing": epsilon,
        "repeats": FLAGS.repeats,
        "target": "cc_ls_wide_row/cc_ls <= 1.5",
        "rows": rows,
    }
    _timing.print_record(record, FLAGS.json_out)


if __name__ == "__main__":
    cli.run(main)
