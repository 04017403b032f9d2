"""What `import keras_cc` and `import keras_cc_agents` do to a fresh interpreter.

Each check runs in its own interpreter, started with a clean environment (only PATH, HOME
and the path to the keras_cc under test), because what ``tf.keras`` is gets fixed, once per
process, on its first use.

* ``import keras_cc`` changes no environment variable and leaves ``tf.keras`` as it was,
  whatever the import order; TensorFlow Probability used before it works.
  TensorFlow Probability 0.23 (the version TF-Agents 0.19 pins) cannot itself run with
  Keras 3; the checks that need that are skipped there, and the clear error keras_cc
  raises after such a use is checked instead.
* ``import keras_cc`` imports none of its submodules until they are used, and no research
  package; ``import keras_cc.ops``, the core and the agents' CC loss load no Keras object of
  keras_cc and no TensorFlow Probability; a saved model with keras_cc objects loads after
  ``import keras_cc`` alone. ``keras_cc_analysis`` and ``keras_cc_experiments`` are imported
  on use and name their pip extra when it is missing.
* ``import keras_cc_agents`` imports no keras_cc module and routes ``tf.keras`` to Keras 2.
* Scripts log at WARNING unless ``--verbosity`` is given.
"""

import importlib.metadata
import importlib.util
import json
import os
import re
import textwrap

import pytest
from interpreters import python

# The slow lane (fresh interpreters per environment): `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

_KERAS_CC_ROOT = os.path.dirname(os.path.dirname(importlib.util.find_spec("keras_cc").origin))


def _tfp_release():
    match = re.match(r"(\d+)\.(\d+)", importlib.metadata.version("tensorflow-probability"))
    return int(match.group(1)), int(match.group(2))


TFP_NEEDS_LEGACY_KERAS = _tfp_release() < (0, 24)
LEGACY_ONLY = pytest.mark.skipif(
    not TFP_NEEDS_LEGACY_KERAS,
    reason="TensorFlow Probability >= 0.24 runs on Keras 3: no Keras 2 routing, no error",
)
TFP_RUNS_ON_KERAS_3 = pytest.mark.skipif(
    TFP_NEEDS_LEGACY_KERAS,
    reason="TensorFlow Probability 0.23 itself fails when used with Keras 3 "
    "(it needs TF_USE_LEGACY_KERAS=1); keras_cc cannot change that",
)

# Printed by every probe: its last stdout line is a JSON object.
PRELUDE = textwrap.dedent(
    """
    import json, os, sys

    def report(**values):
        print(json.dumps(values))

    def env_change(before):
        return {k: os.environ.get(k) for k in set(before) | set(os.environ)
                if os.environ.get(k) != before.get(k)}

    def describe_tf_keras(tf):
        dense = tf.keras.layers.Dense
        return f"{dense.__module__}.{dense.__qualname__}"
    """
)


def _run(body, environment):
    """Runs PRELUDE + body in a fresh interpreter with only ``environment`` beside PATH/HOME."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": _KERAS_CC_ROOT,
        **environment,
    }
    return python("-c", PRELUDE + textwrap.dedent(body), expect=None, env=env, timeout=300)


def run_probe(body, **environment):
    """Runs PRELUDE + body in a fresh interpreter; returns its report (the last line)."""
    result = _run(body, environment)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def run_failing_probe(body, **environment):
    """Runs PRELUDE + body, which must fail; returns its stderr."""
    result = _run(body, environment)
    assert result.returncode != 0, result.stdout[-3000:]
    return result.stderr


@pytest.fixture(scope="module")
def without_keras_cc():
    """What TensorFlow and Keras alone do: the environment they change, and tf.keras."""
    return run_probe(
        """
        before = dict(os.environ)
        import tensorflow as tf, keras
        report(env=env_change(before), tf_keras=describe_tf_keras(tf))
        """
    )


def test_tf_keras_and_environment_unchanged_when_tensorflow_comes_first(without_keras_cc):
    report = run_probe(
        """
        import tensorflow as tf, keras
        dense = tf.keras.layers.Dense
        before = dict(os.environ)
        import keras_cc
        # The issue this guards: a tf.keras layer inside a Keras 3 model.
        keras.Sequential([keras.Input((3,)), tf.keras.layers.Dense(2)])
        report(env=env_change(before), same=tf.keras.layers.Dense is dense,
               tf_keras=describe_tf_keras(tf))
        """
    )
    assert report["env"] == {}
    assert report["same"]
    assert report["tf_keras"] == without_keras_cc["tf_keras"]


@pytest.fixture(scope="module")
def keras_cc_first():
    """keras_cc imported first in a clean interpreter, then used with Keras 3 and tf.keras."""
    return run_probe(
        """
        before = dict(os.environ)
        import keras_cc
        modules = sorted(m for m in sys.modules if m.startswith("keras_cc"))
        import numpy as np
        import tensorflow as tf, keras

        # The issue this guards: a tf.keras layer inside a Keras 3 model.
        keras.Sequential([keras.Input((3,)), tf.keras.layers.Dense(2)])
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
        model.compile(optimizer="adam", loss=keras_cc.CCLabelSmoothing(0.1), jit_compile=True)
        x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
        y = np.eye(3, dtype="float32")[np.arange(64) % 3]
        history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
        report(env=env_change(before), tf_keras=describe_tf_keras(tf), modules=modules,
               dir=dir(keras_cc), keras=keras.__version__, loss=history.history["loss"])
        """
    )


def test_tf_keras_and_environment_unchanged_when_keras_cc_comes_first(
    keras_cc_first, without_keras_cc
):
    # Only what importing TensorFlow and Keras sets by itself (e.g. TF2_BEHAVIOR).
    assert keras_cc_first["env"] == without_keras_cc["env"]
    assert "TF_USE_LEGACY_KERAS" not in keras_cc_first["env"]
    # JAX, when installed, sets TF_CPP_MIN_LOG_LEVEL on TensorFlow's import; keras_cc never.
    if "TF_CPP_MIN_LOG_LEVEL" not in without_keras_cc["env"]:
        assert "TF_CPP_MIN_LOG_LEVEL" not in keras_cc_first["env"]
    assert keras_cc_first["tf_keras"] == without_keras_cc["tf_keras"]


def test_fresh_interpreter_fits_a_keras_3_model_with_the_losses(keras_cc_first):
    assert keras_cc_first["keras"].startswith("3")
    assert all(abs(value) < 1e6 for value in keras_cc_first["loss"])  # also False for NaN


def test_import_keras_cc_loads_its_submodules_on_use(keras_cc_first):
    # The model fitted with keras_cc.CCLabelSmoothing after the listing loaded the losses.
    assert keras_cc_first["modules"] == ["keras_cc", "keras_cc._environment", "keras_cc._saving"]
    assert {"CCLabelSmoothing", "ContinuousCategorical", "losses", "ops"} <= set(
        keras_cc_first["dir"]
    )
    assert not {"analysis", "experiments"} & set(keras_cc_first["dir"])


# With TF_USE_LEGACY_KERAS=1 TensorFlow Probability 0.23 needs no routing at import
# (keras_cc/_environment.py), so what each entry point loads is its own doing.
ENTRY_POINT = """
    import importlib
    importlib.import_module(ENTRY)
    keras_cc_modules = sorted(m for m in sys.modules if m.split(".")[0] == "keras_cc")
    report(keras_cc=keras_cc_modules,
           rooms=sorted({m.split(".")[1] for m in keras_cc_modules if "." in m}),
           tensorflow="tensorflow" in sys.modules,
           tensorflow_probability="tensorflow_probability" in sys.modules)
    """


def _entry_point(module, **environment):
    body = ENTRY_POINT.replace("ENTRY", repr(module))
    return run_probe(body, TF_USE_LEGACY_KERAS="1", **environment)


def test_import_keras_cc_ops_loads_no_keras_object_and_no_tensorflow_probability():
    report = _entry_point("keras_cc.ops")
    assert report["rooms"] == ["_environment", "_saving", "core", "ops"]
    assert not report["tensorflow_probability"]


def test_the_core_loads_no_framework():
    # Keras on JAX imports no TensorFlow; nor does the core written on array namespaces.
    report = _entry_point("keras_cc.core.log_normalizer", KERAS_BACKEND="jax")
    assert report["rooms"] == ["_environment", "_saving", "core"]
    assert not report["tensorflow"]


def test_the_agents_cc_loss_loads_keras_cc_ops_and_none_of_its_keras_objects():
    report = _entry_point("keras_cc_agents.actor_mimic.losses")
    assert report["rooms"] == ["_environment", "_saving", "core", "ops"]
    assert not report["tensorflow_probability"]


def test_a_saved_model_with_keras_cc_objects_loads_after_import_keras_cc_alone(tmp_path):
    saved = run_probe(
        f"""
        import keras, numpy as np
        import keras_cc
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        model.compile(loss=keras_cc.CCLabelSmoothing(0.2, from_logits=True),
                      metrics=[keras_cc.metrics.CCNegativeLogLikelihood(from_logits=True)])
        model.save({str(tmp_path / "class.keras")!r})
        model.compile(loss=keras_cc.losses.cc_label_smoothing)
        model.save({str(tmp_path / "function.keras")!r})
        x, y = np.ones((2, 4), "float32"), np.eye(3, dtype="float32")[[0, 1]]
        report(values=np.asarray(model.loss(y, model(x))).tolist())
        """
    )
    loaded = run_probe(
        f"""
        import keras, numpy as np
        import keras_cc
        before = sorted(m for m in sys.modules if m.split(".")[0] == "keras_cc")
        by_class = keras.saving.load_model({str(tmp_path / "class.keras")!r})
        by_function = keras.saving.load_model({str(tmp_path / "function.keras")!r})
        by_function.save({str(tmp_path / "again.keras")!r})
        again = keras.saving.load_model({str(tmp_path / "again.keras")!r})
        x, y = np.ones((2, 4), "float32"), np.eye(3, dtype="float32")[[0, 1]]
        report(before=before, loss=type(by_class.loss).__name__,
               config=by_class.loss.get_config(),
               metrics=sorted(by_class.evaluate(x, y, verbose=0, return_dict=True)),
               values=np.asarray(again.loss(y, again(x))).tolist())
        """
    )
    assert loaded["before"] == ["keras_cc", "keras_cc._environment", "keras_cc._saving"]
    assert loaded["loss"] == "CCLabelSmoothing"
    assert loaded["config"]["label_smoothing"] == 0.2 and loaded["config"]["from_logits"]
    assert loaded["metrics"] == ["cc_negative_log_likelihood", "loss"]
    assert loaded["values"] == pytest.approx(saved["values"])


USE_TFP_FIRST = """
    import tensorflow as tf
    import keras
    import tensorflow_probability as tfp
    normal = float(tfp.distributions.Normal(0.0, 1.0).log_prob(0.0))
    before = dict(os.environ)
    import keras_cc
    dist = keras_cc.ContinuousCategorical(logits=[0.0, 1.0, 2.0])
    report(env=env_change(before), normal=normal,
           log_prob=float(dist.log_prob([0.2, 0.3, 0.5])),
           kl=float(tfp.distributions.kl_divergence(dist, dist)))
    """


def _check_tfp_first(report):
    assert report["env"] == {}
    assert report["normal"] == pytest.approx(-0.9189385)
    assert report["log_prob"] == pytest.approx(0.9104975, rel=1e-5)
    assert report["kl"] == pytest.approx(0.0, abs=1e-5)


@TFP_RUNS_ON_KERAS_3
def test_tensorflow_probability_used_before_keras_cc():
    _check_tfp_first(run_probe(USE_TFP_FIRST))


def test_tensorflow_probability_used_before_keras_cc_with_legacy_keras_set_by_the_user():
    _check_tfp_first(run_probe(USE_TFP_FIRST, TF_USE_LEGACY_KERAS="1"))


@LEGACY_ONLY
def test_tensorflow_probability_0_23_used_with_keras_3_gives_a_clear_error():
    stderr = run_failing_probe(
        """
        import tensorflow as tf
        try:
            import tensorflow_probability  # TFP 0.23 fails here, with its own error
        except AttributeError:
            pass
        import keras_cc
        """
    )
    assert "ImportError: keras_cc: TensorFlow Probability 0.23" in stderr
    assert "tensorflow-probability>=0.24" in stderr
    assert "import keras_cc before using tensorflow_probability" in stderr
    assert "TF_USE_LEGACY_KERAS=1" in stderr


@LEGACY_ONLY
def test_tensorflow_probability_0_23_imported_but_unused_before_keras_cc():
    report = run_probe(
        """
        import tensorflow_probability as tfp  # TensorFlow not imported yet: TFP stays lazy
        before = dict(os.environ)
        import keras_cc
        import tensorflow as tf
        dist = keras_cc.ContinuousCategorical(logits=[0.0, 1.0, 2.0])
        report(env=env_change(before), kl=float(tfp.distributions.kl_divergence(dist, dist)))
        """
    )
    assert "TF_USE_LEGACY_KERAS" not in report["env"]
    assert report["kl"] == pytest.approx(0.0, abs=1e-5)


def test_the_library_imports_no_research_package():
    report = run_probe(
        """
        import keras_cc
        research = sorted(
            name for name in sys.modules
            if name.split(".")[0] in ("keras_cc_experiments", "keras_cc_analysis",
                                      "keras_cc_agents", "keras_cc_runs")
        )
        attributes = [name for name in ("experiments", "analysis") if hasattr(keras_cc, name)]
        report(research=research, attributes=attributes)
        """
    )
    assert report == {"research": [], "attributes": []}


def test_a_missing_extra_is_named():
    report = run_probe(
        """
        sys.modules["sklearn"] = None  # stands for any module of an extra that is missing
        messages = {}
        for name in ("analysis", "experiments"):
            try:
                __import__(f"keras_cc_{name}")
            except ImportError as error:
                messages[name] = str(error)
        report(messages=messages)
        """
    )
    assert sorted(report["messages"]) == ["analysis", "experiments"], report
    for name, message in report["messages"].items():
        needs = re.match(rf"keras_cc_{name} needs (.*), which cannot be imported", message)
        assert needs and "scikit-learn" in needs.group(1).split(", "), message
        assert f'pip install -e . -e "./research[{name}]"' in message


def test_agents_and_its_scripts_name_the_rl_extra_when_it_is_missing():
    report = run_probe(
        """
        import runpy
        sys.modules["ale_py"] = None  # stands for any package of the rl extra that is missing
        messages = {}
        for form, run in [
            ("import", lambda: __import__("keras_cc_agents")),
            ("script", lambda: runpy.run_path(
                os.path.join(os.environ["PYTHONPATH"], "examples", "train_dqn_expert.py"),
                run_name="__main__")),
        ]:
            sys.modules.pop("keras_cc_agents", None)
            try:
                run()
            except ImportError as error:
                messages[form] = str(error)
        report(messages=messages)
        """
    )
    assert sorted(report["messages"]) == ["import", "script"], report
    for message in report["messages"].values():
        assert message.startswith("keras_cc_agents needs ale-py, which are not installed"), message
        assert 'pip install -e . -e "./research[rl]"' in message


def test_import_agents_imports_no_keras_cc_module_and_routes_tf_keras_to_keras_2():
    report = run_probe(
        """
        import keras_cc_agents
        keras_cc_modules = [m for m in sys.modules if m.split(".")[0] == "keras_cc"]
        tensorflow_imported = "tensorflow" in sys.modules
        legacy = os.environ.get("TF_USE_LEGACY_KERAS")
        import tensorflow as tf
        report(keras_cc_modules=keras_cc_modules, tensorflow_imported=tensorflow_imported,
               legacy=legacy, tf_keras=describe_tf_keras(tf))
        """
    )
    assert report["keras_cc_modules"] == []
    assert not report["tensorflow_imported"]
    assert report["legacy"] == "1"
    assert report["tf_keras"].startswith("tf_keras.")


def test_import_agents_after_tf_keras_was_used_as_keras_3_gives_a_clear_error():
    stderr = run_failing_probe(
        """
        import tensorflow as tf
        tf.keras.layers.Dense
        import keras_cc_agents
        """
    )
    assert "ImportError: keras_cc_agents needs tf.keras to be Keras 2" in stderr
    assert "Import keras_cc_agents before anything uses tf.keras" in stderr
