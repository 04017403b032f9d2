"""The TensorFlow Keras routing works in a fresh interpreter with a clean environment."""

import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import os
    import tensorflow as tf            # the user imported TensorFlow first
    import numpy as np
    import keras
    import keras_cc
    import tensorflow_probability as tfp

    assert keras.__version__.startswith("3"), keras.__version__
    dist = keras_cc.ContinuousCategorical(logits=[0.0, 1.0, 2.0])
    assert np.isfinite(float(tfp.distributions.kl_divergence(dist, dist)))

    def cc_nll(y_true, y_pred):
        return -keras_cc.ops.cc_log_prob(y_true, tf.math.log(tf.clip_by_value(y_pred, 1e-7, 1.0)))

    loss = getattr(keras_cc, "CCLabelSmoothing", None)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer="adam", loss=loss(0.1) if loss else cc_nll, jit_compile=True)
    x = np.random.default_rng(0).normal(size=(64, 4)).astype("float32")
    y = np.eye(3, dtype="float32")[np.arange(64) % 3]
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert np.all(np.isfinite(history.history["loss"])), history.history
    print("OK", os.environ.get("TF_USE_LEGACY_KERAS"))
    """
)


def test_fresh_interpreter_with_clean_environment_imports_and_fits():
    environment = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp")}
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK 1")
