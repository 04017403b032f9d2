"""Every example in the public docstrings runs (doctest): on TensorFlow, and on JAX for the
objects that run there (the losses, the metrics and the distillation loss).

Run as a script (``python tests/test_docstring_examples.py MODULE...``) it runs the examples
of the modules named on the active Keras backend and prints a JSON report; the JAX test
runs it so, with ``KERAS_BACKEND=jax``.
"""

import doctest
import importlib
import json
import os
import subprocess
import sys

import pytest

# The slow lane (docstring examples, on JAX in a fresh interpreter too): `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

# Modules whose objects run on every Keras backend.
KERAS_MODULES = ("keras_cc.losses", "keras_cc.metrics", "keras_cc.distillation")
# TensorFlow and TensorFlow Probability only.
TENSORFLOW_MODULES = (
    "keras_cc",
    "keras_cc.distributions.continuous_categorical",
    "keras_cc.ops.continuous_categorical",
    "keras_cc.ops.divergences",
    "keras_cc.ops.sampler",
    "keras_cc.ops.softmax",
)
# Public classes and functions that must carry an example.
WITH_EXAMPLES = {
    "keras_cc.losses": (
        "CCLabelSmoothing",
        "SparseCCLabelSmoothing",
        "ContinuousCategoricalLoss",
        "TriangularDivergence",
        "JensenShannonDivergence",
        "cc_label_smoothing",
        "continuous_categorical_nll",
        "validate_simplex",
    ),
    "keras_cc.metrics": (
        "TriangularDivergence",
        "JensenShannonDivergence",
        "CCNegativeLogLikelihood",
    ),
    "keras_cc.distillation": ("ContinuousCategoricalDistillation",),
    "keras_cc.distributions.continuous_categorical": ("ContinuousCategorical",),
    "keras_cc.ops.continuous_categorical": ("cc_log_normalizer", "cc_mean"),
    "keras_cc.ops.sampler": ("cc_sample",),
    "keras_cc.ops.divergences": ("cross_entropy_divergence", "triangular_divergence"),
}
OPTIONS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def run_examples(module_names):
    """``{test name: [examples, failures, report]}`` for the docstrings of the modules."""
    results = {}
    finder = doctest.DocTestFinder(exclude_empty=True)
    for module_name in module_names:
        module = importlib.import_module(module_name)
        for test in finder.find(module, module_name, globs={}):
            if not test.examples:
                continue
            output = []
            runner = doctest.DocTestRunner(optionflags=OPTIONS)
            outcome = runner.run(test, out=output.append, clear_globs=True)
            results[test.name] = [outcome.attempted, outcome.failed, "".join(output)]
    return results


def _check(results, module_names):
    failures = {name: report for name, (_, failed, report) in results.items() if failed}
    assert not failures, "\n".join(failures.values())
    for module_name in module_names:
        for name in WITH_EXAMPLES.get(module_name, ()):
            assert results.get(f"{module_name}.{name}", [0])[0] > 0, (
                f"{module_name}.{name} has no example"
            )


@pytest.mark.parametrize("module_name", KERAS_MODULES + TENSORFLOW_MODULES)
def test_examples_run_on_tensorflow(module_name):
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip(f"the Keras backend is {keras.backend.backend()} (KERAS_BACKEND)")
    _check(run_examples([module_name]), [module_name])


@pytest.mark.slow
def test_examples_run_on_jax(tmp_path):
    pytest.importorskip("jax", reason="the jax extra is not installed")
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), *KERAS_MODULES],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["backend"] == "jax"
    _check(report["results"], KERAS_MODULES)


if __name__ == "__main__":
    import keras

    print(json.dumps({"backend": keras.backend.backend(), "results": run_examples(sys.argv[1:])}))
