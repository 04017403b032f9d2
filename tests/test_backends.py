"""Every loss and metric on Keras 3's JAX and PyTorch backends, each in a subprocess.

The values and gradients must equal TensorFlow's (this process) to 1e-6 on random inputs
across spreads and class counts; compile/fit (jit_compile where the backend has it), mixed
precision and a ``.keras`` round trip without ``custom_objects`` must work. JAX comes with
the test extra; PyTorch cannot share that environment (its typing-extensions >= 4.10
against tf-agents' pin), so the PyTorch case builds a virtual environment of its own from
the project's files: ``pip install -e ".[torch,test-core]" -e ./research`` (the research
code, for ``examples/cc_distillation.py``) with
``tests/backend_constraints.txt``.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import backend_check
import numpy as np
import pytest

# The slow lane (every Keras backend in a fresh interpreter): `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[1]
CHECK = pathlib.Path(backend_check.__file__)
CONSTRAINTS = ROOT / "tests" / "backend_constraints.txt"

# (classes, batch, logit scale): near-uniform to wide rows; K = 200 has no closed form,
# and its wide rows take the divided-difference table on TensorFlow and the series here.
CASES = {
    "k3_narrow": (3, 16, 0.5),
    "k10_moderate": (10, 32, 3.0),
    "k10_wide": (10, 32, 60.0),
    "k10_sd20": (10, 32, 20.0),
    "k50_sd100": (50, 16, 100.0),
    "k200_wide": (200, 8, 40.0),
}


def _inputs(seed):
    rng = np.random.default_rng(seed)
    return {case: backend_check.make_inputs(rng, *parameters) for case, parameters in CASES.items()}


def _environment(backend):
    environment = {key: value for key, value in os.environ.items() if not key.startswith("KERAS_")}
    environment.update(KERAS_BACKEND=backend, CUDA_VISIBLE_DEVICES="", PYTHONHASHSEED="0")
    environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return environment


def _torch_python(directory):
    """A Python with keras_cc[torch] installed from this checkout, in a new venv."""
    subprocess.run([sys.executable, "-m", "venv", str(directory)], check=True)
    python = directory / "bin" / "python"
    subprocess.run(
        [
            str(python), "-m", "pip", "install", "--quiet", "-e",
            f"{ROOT}[torch,test-core]", "-e", str(ROOT / "research"), "-c", str(CONSTRAINTS),
        ],
        check=True,
    )  # fmt: skip
    return python


@pytest.fixture(scope="module")
def pythons(tmp_path_factory):
    """Interpreters by backend, each built once for this module."""
    built = {}

    def python_for(backend):
        if backend not in built:
            if backend == "jax":
                if importlib.util.find_spec("jax") is None:
                    pytest.fail(
                        "JAX is missing: install the test extra "
                        '(pip install -e . -e "./research[test]").'
                    )
                built[backend] = pathlib.Path(sys.executable)
            else:
                built[backend] = _torch_python(tmp_path_factory.mktemp("torch-venv"))
        return built[backend]

    return python_for


@pytest.fixture(scope="module")
def reference():
    """The inputs and TensorFlow's values and gradients (the Keras backend of this process)."""
    import keras

    assert keras.backend.backend() == "tensorflow"
    inputs = _inputs(seed=20261130)
    return inputs, backend_check.values_and_gradients(inputs)


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_losses_and_metrics_match_tensorflow_and_train(backend, pythons, reference, tmp_path):
    inputs, expected = reference
    np.savez(
        tmp_path / "inputs.npz",
        **{
            f"{case}/{key}": array
            for case, arrays in inputs.items()
            for key, array in arrays.items()
        },
    )
    run = subprocess.run(
        [str(pythons(backend)), str(CHECK), str(tmp_path / "inputs.npz"), str(tmp_path)],
        env=_environment(backend),
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert run.returncode == 0, run.stderr[-6000:]
    with np.load(tmp_path / "values.npz") as values:
        assert sorted(values.files) == sorted(expected)
        for key, reference_value in expected.items():
            np.testing.assert_allclose(
                values[key], reference_value, rtol=1e-6, atol=1e-6, err_msg=f"{backend}: {key}"
            )
    report = json.loads((tmp_path / "training.json").read_text())
    assert report["backend"] == backend
    assert report["float64_downcasts"] == []
    for name in backend_check.OBJECTS:
        if name.endswith("Metric"):
            continue
        losses = report[name]["loss"]
        assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], (name, losses)
    accuracy = report["CCLabelSmoothing"]["categorical_accuracy"][-1]
    assert accuracy > 0.8, report["CCLabelSmoothing"]
    assert "cc_negative_log_likelihood" in report["CCLabelSmoothing"]
    round_trip = report["round_trip"]
    assert round_trip["loss_config_equal"]
    assert round_trip["max_prediction_difference"] == 0.0
    mixed = report["mixed_float16"]
    assert np.all(np.isfinite(mixed)) and mixed[-1] < mixed[0]
    distillation = report["distillation"]
    assert distillation["student_accuracy"] > 0.85, distillation
    assert distillation["distillation_loss"][-1] < distillation["distillation_loss"][0]
    # Bad input: Keras' ValueError on these backends, with the library's message alone.
    errors = report["bad_input_errors"]
    expected_messages = {
        "targets_off_the_simplex": "`continuous_categorical_nll`: `y_true` must lie on the "
        "simplex: its rows must sum to 1",
        "nan_targets": "`triangular_divergence`: `y_true` must lie on the simplex: it has NaN",
        "labels_out_of_range": "`sparse_cc_label_smoothing`: `y_true` labels must lie in",
        "labels_in_a_dense_loss": "`cc_label_smoothing`: `y_true` and `y_pred` must have",
    }
    for case, start in expected_messages.items():
        kind, message = errors[case]
        assert kind == "ValueError" and message.startswith(start), (case, errors[case])
    assert "SparseCCLabelSmoothing" in errors["labels_in_a_dense_loss"][1]
    # In a compiled training step too (JAX: a host callback; PyTorch: eager values).
    kind, message = errors["targets_off_the_simplex_in_fit"]
    assert "`continuous_categorical_nll`: `y_true` must lie on the simplex" in message, kind
