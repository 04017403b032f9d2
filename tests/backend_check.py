"""keras_cc's losses and metrics on the active Keras backend: values, gradients, training.

``tests/test_backends.py`` runs this file with ``KERAS_BACKEND=jax`` and ``torch`` in
subprocesses (``python backend_check.py INPUTS.npz OUTPUT_DIR``) and compares what it
writes with :func:`values_and_gradients` on TensorFlow, computed in the test's own process.
"""

import json
import pathlib
import sys

import keras
import numpy as np

import keras_cc
from keras_cc import losses, metrics

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "examples"))
import cc_distillation  # noqa: E402 (examples/cc_distillation.py)

# name -> (per-example function, target key, keyword arguments)
FUNCTIONS = {
    "cc_label_smoothing": (losses.cc_label_smoothing, "one_hot", {"label_smoothing": 0.1}),
    "sparse_cc_label_smoothing": (
        losses.sparse_cc_label_smoothing,
        "labels",
        {"label_smoothing": 0.2},
    ),
    "continuous_categorical_nll": (losses.continuous_categorical_nll, "soft", {}),
    "continuous_categorical_nll_t3": (
        losses.continuous_categorical_nll,
        "soft",
        {"temperature": 3.0},
    ),
    "triangular_divergence": (losses.triangular_divergence, "soft", {}),
    "jensen_shannon_divergence": (losses.jensen_shannon_divergence, "soft", {}),
}

# name -> (constructor, target key); each takes logits.
OBJECTS = {
    "CCLabelSmoothing": (lambda: keras_cc.CCLabelSmoothing(0.1, from_logits=True), "one_hot"),
    "SparseCCLabelSmoothing": (
        lambda: keras_cc.SparseCCLabelSmoothing(0.1, from_logits=True),
        "labels",
    ),
    "ContinuousCategoricalLoss": (
        lambda: keras_cc.ContinuousCategoricalLoss(from_logits=True),
        "soft",
    ),
    "TriangularDivergence": (lambda: keras_cc.TriangularDivergence(from_logits=True), "soft"),
    "JensenShannonDivergence": (
        lambda: keras_cc.JensenShannonDivergence(from_logits=True),
        "soft",
    ),
    "CCNegativeLogLikelihoodMetric": (
        lambda: metrics.CCNegativeLogLikelihood(from_logits=True, label_smoothing=0.1),
        "one_hot",
    ),
    "TriangularDivergenceMetric": (
        lambda: metrics.TriangularDivergence(from_logits=True),
        "soft",
    ),
    "JensenShannonDivergenceMetric": (
        lambda: metrics.JensenShannonDivergence(from_logits=True),
        "soft",
    ),
}


def make_inputs(rng, num_classes, batch, scale):
    """Logits N(0, scale²) and three kinds of targets, float32, for ``num_classes``."""
    logits = rng.normal(0.0, scale, (batch, num_classes)).astype(np.float32)
    labels = rng.integers(0, num_classes, batch)
    soft = rng.dirichlet(np.full(num_classes, 0.5), batch).astype(np.float32)
    one_hot = np.eye(num_classes, dtype=np.float32)[labels]
    return {"logits": logits, "labels": labels.astype(np.int32), "soft": soft, "one_hot": one_hot}


def float64_downcasts():
    """The array-namespace primitives that return another dtype for float64 inputs on the
    active backend (none may: the certified closed form and the series' scale need
    float64)."""
    from keras_cc.core.namespace import keras_namespace

    xp = keras_namespace(keras.backend.backend())
    with xp.float64_scope():
        x = xp.cast(keras.ops.convert_to_tensor(np.array([[1.5, 0.25], [0.5, 4.0]])), "float64")
        cases = {
            "exp": lambda: xp.exp(x),
            "log": lambda: xp.log(x),
            "log1p": lambda: xp.log1p(x),
            "expm1": lambda: xp.expm1(x),
            "sqrt": lambda: xp.sqrt(x),
            "ceil": lambda: xp.ceil(x),
            "abs": lambda: xp.abs(x),
            "square": lambda: xp.square(x),
            "arctanh": lambda: xp.arctanh(x * 0.1),
            "maximum": lambda: xp.maximum(x, 1e-300),
            "minimum": lambda: xp.minimum(x, 1.0),
            "divide_no_nan": lambda: xp.divide_no_nan(x, x),
            "xlogy": lambda: xp.xlogy(x, x),
            "sum": lambda: xp.sum(x, axis=-1),
            "max": lambda: xp.max(x, axis=-1),
            "min": lambda: xp.min(x, axis=-1),
            "prod": lambda: xp.prod(x, axis=-1),
            "where": lambda: xp.where(x > 1.0, x, 0.0),
            "ones_like": lambda: xp.ones_like(x),
            "zeros_like": lambda: xp.zeros_like(x),
            "eye": lambda: xp.eye(2, "float64"),
            "reshape": lambda: xp.reshape(x, (4,)),
            "matvec": lambda: xp.matvec(x, x[0]),
        }
        return sorted(name for name, case in cases.items() if xp.dtype(case()) != "float64")


def _gradient(function, logits):
    """d mean(function(logits)) / d logits on the active backend, as NumPy."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return np.asarray(jax.grad(lambda z: keras.ops.mean(function(z)))(logits))
    if backend == "torch":
        import torch

        z = torch.tensor(logits, requires_grad=True)
        keras.ops.mean(function(z)).backward()
        return z.grad.numpy()
    import tensorflow as tf

    z = tf.constant(logits)
    with tf.GradientTape() as tape:
        tape.watch(z)
        value = tf.reduce_mean(function(z))
    return tape.gradient(value, z).numpy()


def values_and_gradients(inputs):
    """Every function's per-example values and gradient, every object's value, as NumPy.

    ``inputs`` maps a case name to :func:`make_inputs`' dictionary; the result maps
    ``"{case}/{name}"`` and ``"{case}/{name}/gradient"`` to arrays.
    """
    results = {}
    for case, arrays in inputs.items():
        logits = arrays["logits"]
        for name, (function, target, kwargs) in FUNCTIONS.items():
            y = arrays[target]

            def per_example(z, function=function, y=y, kwargs=kwargs):
                return function(y, z, from_logits=True, **kwargs)

            results[f"{case}/{name}"] = keras.ops.convert_to_numpy(per_example(logits))
            results[f"{case}/{name}/gradient"] = _gradient(per_example, logits)
        for name, (make, target) in OBJECTS.items():
            instance = make()
            if isinstance(instance, keras.metrics.Metric):
                instance.update_state(arrays[target], logits)
                value = instance.result()
            else:
                value = instance(arrays[target], logits)
            results[f"{case}/{name}"] = keras.ops.convert_to_numpy(value)
    return results


def _digits_model(num_classes=10, softmax_dtype=None):
    return keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(num_classes),
            keras.layers.Activation("softmax", dtype=softmax_dtype),
        ]
    )


def training_checks(directory):
    """compile/fit with each loss and the metrics (jit_compile where the backend has it),
    mixed precision, and a ``.keras`` round trip without ``custom_objects``."""
    from sklearn.datasets import load_digits

    x, labels = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)[:512]
    labels = labels[:512]
    one_hot = np.eye(10, dtype=np.float32)[labels]
    report = {}
    # JAX compiles every step by default; PyTorch's torch.compile is tried on one loss.
    torch_compile = keras.backend.backend() == "torch"
    loss_targets = {
        "CCLabelSmoothing": (keras_cc.CCLabelSmoothing(0.1), one_hot),
        "SparseCCLabelSmoothing": (keras_cc.SparseCCLabelSmoothing(0.1), labels),
        "ContinuousCategoricalLoss": (keras_cc.ContinuousCategoricalLoss(), one_hot * 0.9 + 0.01),
        "TriangularDivergence": (keras_cc.TriangularDivergence(), one_hot),
        "JensenShannonDivergence": (keras_cc.JensenShannonDivergence(), one_hot),
    }
    for name, (loss, targets) in loss_targets.items():
        keras.utils.set_random_seed(0)
        model = _digits_model()
        model.compile(
            keras.optimizers.Adam(0.01),
            loss=loss,
            metrics=[
                "accuracy" if name.startswith("Sparse") else "categorical_accuracy",
                *([] if name.startswith("Sparse") else _metrics()),
            ],
            jit_compile=True if torch_compile and name == "CCLabelSmoothing" else "auto",
        )
        history = model.fit(x, targets, epochs=10, batch_size=64, verbose=0).history
        report[name] = {key: [float(v) for v in values] for key, values in history.items()}
        if name == "CCLabelSmoothing":
            path = pathlib.Path(directory) / "model.keras"
            model.save(path)
            loaded = keras.saving.load_model(path)
            report["round_trip"] = {
                "loss_config_equal": loaded.loss.get_config() == model.loss.get_config(),
                "metric_names": [type(m).__name__ for m in loaded.metrics],
                "max_prediction_difference": float(
                    np.max(np.abs(loaded.predict(x, verbose=0) - model.predict(x, verbose=0)))
                ),
                "evaluate": loaded.evaluate(x, targets, verbose=0, return_dict=True),
            }
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        keras.utils.set_random_seed(0)
        model = _digits_model(softmax_dtype="float32")
        model.compile(keras.optimizers.Adam(0.01), loss=keras_cc.CCLabelSmoothing(0.1))
        history = model.fit(x, one_hot, epochs=4, batch_size=64, verbose=0).history
        report["mixed_float16"] = [float(v) for v in history["loss"]]
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return report


def distillation_check():
    """Distils a teacher MLP (64-128-10) into a smaller student (64-16-10) on digits with
    :class:`keras_cc.ContinuousCategoricalDistillation` (``examples/cc_distillation.py``):
    the held-out accuracies and the distiller's loss per epoch."""
    x, y, x_test, y_test = cc_distillation.digits_split(0)
    teacher = cc_distillation.train_teacher(x, y, epochs=20, seed=0)
    loss = keras_cc.ContinuousCategoricalDistillation(temperature=3.0)
    student, history = cc_distillation.distil(teacher, loss, x, y, 20, 0, student_units=16)
    return {
        "teacher_accuracy": cc_distillation.accuracy(teacher, x_test, y_test),
        "student_accuracy": cc_distillation.accuracy(student, x_test, y_test),
        "distillation_loss": history,
    }


def _metrics():
    return [
        metrics.CCNegativeLogLikelihood(label_smoothing=0.1),
        metrics.TriangularDivergence(),
        metrics.JensenShannonDivergence(),
    ]


# name -> (call with bad input); each must raise the library's own message.
BAD_INPUTS = {
    "targets_off_the_simplex": lambda: keras_cc.ContinuousCategoricalLoss(validate=True)(
        np.array([[0.5, 0.2, 0.2]]), np.ones((1, 3)) / 3
    ),
    "nan_targets": lambda: keras_cc.TriangularDivergence(validate=True)(
        np.array([[np.nan, 0.5, 0.5]]), np.ones((1, 3)) / 3
    ),
    "labels_out_of_range": lambda: keras_cc.SparseCCLabelSmoothing()(
        np.array([0, 5]), np.ones((2, 5)) / 5
    ),
    "labels_in_a_dense_loss": lambda: keras_cc.CCLabelSmoothing()(
        np.array([0, 2]), np.ones((2, 5)) / 5
    ),
}


def _fit_on_targets_off_the_simplex():
    """``model.fit`` (compiled as the backend compiles by default) with ``validate=True``."""
    x = np.random.default_rng(0).normal(size=(32, 4)).astype("float32")
    targets = np.full((32, 3), 1 / 3, "float32")
    targets[5] = [0.5, 0.6, 0.1]
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile("adam", loss=keras_cc.ContinuousCategoricalLoss(from_logits=True, validate=True))
    model.fit(x, targets, epochs=1, verbose=0)


BAD_INPUTS["targets_off_the_simplex_in_fit"] = _fit_on_targets_off_the_simplex


def bad_input_errors():
    """``{case: [error type, message]}`` of each call in :data:`BAD_INPUTS`."""
    errors = {}
    for name, call in BAD_INPUTS.items():
        try:
            call()
        except Exception as error:  # noqa: BLE001 (the type is what is reported)
            errors[name] = [type(error).__name__, str(error)]
        else:
            errors[name] = ["no error", ""]
    return errors


def main(inputs_path, output_directory):
    output = pathlib.Path(output_directory)
    with np.load(inputs_path) as stored:
        inputs = {}
        for key in stored.files:
            case, name = key.split("/")
            inputs.setdefault(case, {})[name] = stored[key]
    np.savez(output / "values.npz", **values_and_gradients(inputs))
    report = {
        "backend": keras.backend.backend(),
        "float64_downcasts": float64_downcasts(),
        **training_checks(output),
        "distillation": distillation_check(),
        "bad_input_errors": bad_input_errors(),
    }
    (output / "training.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
