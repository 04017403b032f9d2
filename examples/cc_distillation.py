"""Knowledge distillation on digits: the CC likelihood against KL, on the same budget.

For each seed: a teacher MLP (64-128-10) is trained on scikit-learn's digits (1,297
training images; 500 held out); then two students of the same smaller architecture
(64-16-10), from the same initial weights, are distilled from it with
``keras.distillation.Distiller`` for the same epochs, optimizer and batches, one with
``keras_cc.ContinuousCategoricalDistillation`` and one with
``keras.distillation.LogitsDistillation`` (KL divergence), both at the same temperature
with T² scaling and ``student_loss_weight=0.5``. Prints the held-out accuracies (mean ±
standard deviation over seeds, and the paired difference) and writes them as JSON.
Runs on any Keras 3 backend (``KERAS_BACKEND``).

    python examples/cc_distillation.py --seeds=0-4 --output=/tmp/distillation.json
"""

import numpy as np
from absl import flags

from keras_cc_runs import cli, run_directory

_SEEDS = flags.DEFINE_string("seeds", "0-4", "Seeds, e.g. '0,1,2' or '0-4'.")
_EPOCHS = flags.DEFINE_integer(
    "epochs", 20, "Epochs of the teacher and of each student.", lower_bound=1
)
_TEMPERATURE = flags.DEFINE_float("temperature", 3.0, "Distillation temperature T > 0.")
_STUDENT_UNITS = flags.DEFINE_integer(
    "student_units", 16, "Hidden units of the student.", lower_bound=1
)
flags.register_validator(
    "temperature", lambda value: value > 0, message="--temperature must be > 0"
)


@flags.validator("seeds", message="--seeds must be integers or ranges a-b, e.g. '0-4'")
def _valid_seeds(text):
    try:
        return bool(cli.parse_int_list(text))
    except ValueError:
        return False


_OUTPUT = flags.DEFINE_string("output", None, "Where to write the results as JSON.")

TEACHER_UNITS = 128
BATCH_SIZE = 64
LEARNING_RATE = 0.005


def digits_split(seed=0):
    """scikit-learn's digits scaled to [0, 1], shuffled by ``seed``: (x_train, y_train,
    x_test, y_test) with 1,297 training and 500 test images, int32 labels."""
    from sklearn.datasets import load_digits

    x, labels = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(x))
    x, labels = x[order], labels[order].astype(np.int32)
    return x[500:], labels[500:], x[:500], labels[:500]


def mlp(hidden_units):
    """64 inputs, one ReLU layer, 10 logits."""
    import keras

    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(hidden_units, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def accuracy(model, x, y):
    """Held-out accuracy of a model of logits."""
    import keras

    logits = keras.ops.convert_to_numpy(model.predict(x, batch_size=500, verbose=0))
    return float(np.mean(logits.argmax(-1) == y))


def train_teacher(x, y, epochs, seed):
    import keras

    keras.utils.set_random_seed(seed)
    teacher = mlp(TEACHER_UNITS)
    teacher.compile(
        keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    teacher.fit(x, y, epochs=epochs, batch_size=BATCH_SIZE, verbose=0)
    return teacher


def distil(teacher, distillation_loss, x, y, epochs, seed, student_units):
    """A new student distilled from ``teacher``; its initial weights and batch order depend
    on ``seed`` only. Returns ``(student, loss history)``."""
    import keras

    keras.utils.set_random_seed(seed + 1000)
    student = mlp(student_units)
    distiller = keras.distillation.Distiller(
        teacher=teacher,
        student=student,
        distillation_losses=distillation_loss,
        student_loss_weight=0.5,
    )
    distiller.compile(
        keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    history = distiller.fit(x, y, epochs=epochs, batch_size=BATCH_SIZE, verbose=0).history
    return student, [float(v) for v in history["loss"]]


def distillation_losses(temperature):
    """The two contenders, by name."""
    import keras

    import keras_cc

    return {
        "cc": keras_cc.ContinuousCategoricalDistillation(temperature=temperature),
        "kl": keras.distillation.LogitsDistillation(temperature=temperature, loss="kl_divergence"),
    }


def run_seed(seed, epochs=20, temperature=3.0, student_units=16):
    """Teacher and both students for one seed: their held-out accuracies."""
    x, y, x_test, y_test = digits_split(seed)
    teacher = train_teacher(x, y, epochs, seed)
    result = {"seed": seed, "teacher": accuracy(teacher, x_test, y_test)}
    for name, loss in distillation_losses(temperature).items():
        student, history = distil(teacher, loss, x, y, epochs, seed, student_units)
        result[name] = accuracy(student, x_test, y_test)
        result[f"{name}_loss"] = history
    return result


def summary(results):
    """Mean ± standard deviation (ddof 1) of each accuracy, and of the paired difference."""
    table = {}
    for name in ("teacher", "cc", "kl"):
        values = np.array([result[name] for result in results])
        table[name] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else 0.0)
    difference = np.array([result["cc"] - result["kl"] for result in results])
    spread = float(difference.std(ddof=1)) if len(difference) > 1 else 0.0
    table["cc - kl"] = (float(difference.mean()), spread)
    return table


def main(argv):
    del argv
    import keras

    results = [
        run_seed(seed, _EPOCHS.value, _TEMPERATURE.value, _STUDENT_UNITS.value)
        for seed in cli.parse_int_list(_SEEDS.value)
    ]
    table = summary(results)
    print(f"backend {keras.backend.backend()}, {len(results)} seeds, {_EPOCHS.value} epochs")
    for name, (mean, std) in table.items():
        print(f"{name:>8}: {100 * mean:6.2f} ± {100 * std:4.2f} % held-out accuracy")
    if _OUTPUT.value:
        record = {"backend": keras.backend.backend(), "results": results, "summary": table}
        run_directory.write_json(_OUTPUT.value, record)


if __name__ == "__main__":
    cli.run(main)
