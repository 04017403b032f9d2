"""Loss + gradient time of CCLabelSmoothing against CategoricalCrossentropy(label_smoothing)
on the active Keras backend, across the logit-spread sweep.

Both losses take logits (``from_logits=True``, ε = 0.1) and are timed as one call of the
value and the gradient with respect to the logits, compiled the way each backend compiles
a training step: ``tf.function(jit_compile=True)`` on TensorFlow, ``jax.jit`` on JAX,
eager on PyTorch (torch.compile runs the CC loops eagerly anyway). Contenders alternate
within each round; the ratio is the median over rounds of CC-LS time / LS time, with its
range over the rounds. One run per backend:

    KERAS_BACKEND=tensorflow python benchmarks/backend_loss_ratio.py
    KERAS_BACKEND=jax python benchmarks/backend_loss_ratio.py --json_out=jax.json
    KERAS_BACKEND=torch python benchmarks/backend_loss_ratio.py --quick
"""

import argparse
import pathlib
import sys


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7, help="interleaved rounds per case")
    parser.add_argument("--quick", action="store_true", help="two shapes, three spreads")
    parser.add_argument("--json_out", default=None, help="also write the JSON record here")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be >= 1")
    return args


if __name__ == "__main__":
    ARGUMENTS = parse_arguments()  # --help and bad flags answer here, before any framework

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_cc  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _timing  # noqa: E402
from _spread_cases import SWEEP_SHAPES, SWEEP_SPREADS, spread_arrays  # noqa: E402

LABEL_SMOOTHING = 0.1


def value_and_gradient(loss):
    """``(logits, one_hot) -> (loss, d loss / d logits)``, compiled for the backend."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(jax.value_and_grad(lambda z, y: loss(y, z)))
    if backend == "torch":
        import torch

        def step(z, y):
            z = z.detach().requires_grad_(True)
            value = loss(y, z)
            (gradient,) = torch.autograd.grad(value, z)
            return value, gradient

        return step
    import tensorflow as tf

    @tf.function(jit_compile=True)
    def step(z, y):
        with tf.GradientTape() as tape:
            tape.watch(z)
            value = loss(y, z)
        return value, tape.gradient(value, z)

    return step


def _finish(result):
    return [keras.ops.convert_to_numpy(part) for part in result]


def sweep(repeats, shapes=SWEEP_SHAPES, spreads=SWEEP_SPREADS):
    """One row per (shape, spread): milliseconds of each loss and the ratio CC-LS / LS."""
    contenders = {
        "cc_ls": value_and_gradient(keras_cc.CCLabelSmoothing(LABEL_SMOOTHING, from_logits=True)),
        "ls": value_and_gradient(
            keras.losses.CategoricalCrossentropy(label_smoothing=LABEL_SMOOTHING, from_logits=True)
        ),
    }
    rows = []
    for batch, num_classes in shapes:
        for spread in spreads:
            logits, targets = spread_arrays(batch, num_classes, spread)
            labels = np.eye(num_classes, dtype=np.float32)[targets.argmax(-1)]
            z, y = keras.ops.convert_to_tensor(logits), keras.ops.convert_to_tensor(labels)
            calls = {name: (lambda f=f, z=z, y=y: f(z, y)) for name, f in contenders.items()}
            for call in calls.values():
                _finish(call())  # compile
            samples = _timing.side_by_side(calls, repeats, finish=_finish)
            row = {"batch": batch, "K": num_classes, "spread": spread}
            row.update(_timing.ratio_row(samples, "ls"))
            print(row, flush=True)
            rows.append(row)
    return rows


def main(args):
    shapes, spreads = SWEEP_SHAPES, SWEEP_SPREADS
    if args.quick:
        shapes, spreads = ((128, 10), (128, 100)), (1.0, 150.0, 1e4)
    rows = sweep(args.repeats, shapes, spreads)
    record = {
        "benchmark": "backend_loss_ratio",
        "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "repeats": args.repeats,
        "rows": rows,
    }
    print(f"\nCC-LS / LS, loss + gradient, backend {record['backend']}:")
    print(f"{'batch':>6} {'K':>5} {'spread':>7} {'ratio':>7}  range over rounds")
    for row in rows:
        ratio = row["cc_ls/ls"]
        print(
            f"{row['batch']:>6} {row['K']:>5} {row['spread']:>7g} {ratio:>7.2f}  "
            f"{row['cc_ls/ls_spread']}"
        )
    _timing.print_record(record, args.json_out)


if __name__ == "__main__":
    main(ARGUMENTS)
