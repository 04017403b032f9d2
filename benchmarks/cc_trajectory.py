"""Cost of CC label smoothing along its training trajectory, against softmax CE with LS.

CC label smoothing moves each row of logits from a unit-normal cluster (initialization)
to a target node about K / epsilon above the rest (the optimum). Here the target logit of
every row stands ``t K / epsilon`` above a unit-normal cluster, for t = 0, 0.03, 0.1, 0.3
and 1, and loss + gradient are timed under ``tf.function(jit_compile=True)`` for
``keras_cc.losses.cc_label_smoothing`` and for the baseline, TensorFlow's fused
``softmax_cross_entropy_with_logits`` on the label-smoothed targets (the fastest honest
cross-entropy), interleaved in rounds in one process. It prints, per K and t, the
median milliseconds of each, the median ratio with its range over the rounds, the
sequential steps one call takes (series terms and table steps: what bounds latency on a
GPU) and the method each row took. The first call (trace + XLA compile) of each K is
reported beside it.

    python benchmarks/cc_trajectory.py --repeats 7
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
flags.DEFINE_list("num_classes", ["10", "100", "1000"], "Numbers of classes K.")
flags.DEFINE_list("positions", ["0", "0.03", "0.1", "0.3", "1"], "Trajectory points t.")
flags.DEFINE_float("label_smoothing", 0.1, "epsilon.")
flags.DEFINE_integer("repeats", 7, "Interleaved rounds.", lower_bound=1)
flags.DEFINE_integer("inner", 5, "Calls per timed sample.", lower_bound=1)
flags.DEFINE_string("json_out", None, "Also write the results to this JSON file.")

if __name__ == "__main__":
    cli.parse_flags()  # --help and bad flags answer before TensorFlow loads

from _cc_steps import loss_and_gradient, row_methods, trajectory_logits  # noqa: E402

from keras_cc import ops  # noqa: E402


def main(argv):
    del argv
    epsilon = FLAGS.label_smoothing
    rows = []
    for num_classes in map(int, FLAGS.num_classes):
        steps = {name: loss_and_gradient(name, epsilon) for name in ("ce_ls", "cc_ls")}
        first_call = {}
        for name, step in steps.items():
            logits, one_hot = trajectory_logits(FLAGS.batch_size, num_classes, 0.0, epsilon)
            start = time.perf_counter()
            float(step(logits, one_hot)[0])
            first_call[name] = time.perf_counter() - start
        for t in map(float, FLAGS.positions):
            logits, one_hot = trajectory_logits(FLAGS.batch_size, num_classes, t, epsilon)
            contenders = {
                name: (lambda s=s, x=logits, y=one_hot: s(x, y)) for name, s in steps.items()
            }
            samples = _timing.side_by_side(
                contenders,
                FLAGS.repeats,
                inner=FLAGS.inner,
                finish=lambda result: float(result[0]),
                warmup=1,
            )
            row = _timing.ratio_row(samples, "ce_ls")
            row.update(
                num_classes=num_classes,
                t=t,
                sequential_steps=int(ops.continuous_categorical.sequential_steps(logits)),
                methods=row_methods(logits),
                first_call_s={name: round(s, 2) for name, s in first_call.items()},
            )
            rows.append(row)
            print(
                f"K={num_classes:5d} t={t:<5g} CE+LS {row['ce_ls_ms']:.3f} ms  "
                f"CC-LS {row['cc_ls_ms']:.3f} ms  {row['cc_ls/ce_ls']:.1f}x "
                f"({row['cc_ls/ce_ls_spread']})  steps {row['sequential_steps']}  "
                f"{row['methods']}",
                flush=True,
            )
        print(
            f"K={num_classes:5d} first call (trace + compile + run): "
            f"CE+LS {first_call['ce_ls']:.2f} s, CC-LS {first_call['cc_ls']:.2f} s",
            flush=True,
        )
    record = {
        "device": platform.processor() or platform.machine(),
        "batch_size": FLAGS.batch_size,
        "label_smoothing": epsilon,
        "repeats": FLAGS.repeats,
        "rows": rows,
    }
    _timing.print_record(record, FLAGS.json_out)


if __name__ == "__main__":
    cli.run(main)
