"""A short tour of keras-cc on scikit-learn's bundled digits (runs in about a minute on CPU).

Fits the same small Keras 3 classifier with label smoothing (LS) and with CC label smoothing
(CC-LS, CC paper eq. 7), prints their test accuracies, then compares the CC normalizer
log C^{-1} of the paper's closed form (eq. 4) with keras_cc's exact series on near-uniform
parameters.

    pip install -e . -e "./research[experiments]"   # scikit-learn, for the digits
    python examples/cc_demo.py [--epochs 15] [--seed 0]
"""

import dataclasses

from absl import flags

from keras_cc_runs import cli

FLAGS = flags.FLAGS


@dataclasses.dataclass
class DemoConfig:
    """Settings of the tour (one flag each)."""

    epochs: int = cli.setting(15, "Training epochs per loss.", minimum=1)
    seed: int = cli.setting(0, "Random seed of the split and the initialization.")
    label_smoothing: float = cli.setting(
        0.1, "Label smoothing epsilon for LS and CC-LS, in [0, 1).", minimum=0.0, maximum=0.999
    )


cli.define_flags(DemoConfig)


def digits_split(seed):
    """The embedded 8x8 digits, scaled to [0, 1], one-hot labels, seeded 75/25 split."""
    from keras_cc_runs.extras import require_extra

    require_extra("examples/cc_demo.py", "experiments", ["sklearn"])
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = (digits.data / 16.0).astype("float32")
    y = np.eye(10, dtype="float32")[digits.target]
    return train_test_split(x, y, test_size=0.25, random_state=seed, stratify=digits.target)


def fit_and_score(loss, data, epochs, seed):
    import keras

    x_train, x_test, y_train, y_test = data
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="elu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"], jit_compile=True)
    model.fit(x_train, y_train, epochs=epochs, batch_size=64, verbose=0)
    return model.evaluate(x_test, y_test, verbose=0)[1]


def main(argv):
    del argv
    with cli.checks():
        config = cli.config_from_flags(DemoConfig)
    import keras  # TensorFlow and Keras: after the flags are checked
    import numpy as np
    import tensorflow as tf

    import keras_cc
    from keras_cc import ops

    data = digits_split(config.seed)
    eps = config.label_smoothing
    losses = {
        "LS": keras.losses.CategoricalCrossentropy(label_smoothing=eps),
        "CC-LS": keras_cc.CCLabelSmoothing(eps),
    }
    print(f"Test accuracy on digits after {config.epochs} epochs (seed {config.seed}):")
    for name, loss in losses.items():
        print(f"  {name:6s} {fit_and_score(loss, data, config.epochs, config.seed):.4f}")

    print("\nlog C^-1 near uniform parameters (K = 10, node gaps 1e-6), float32:")
    logits = tf.constant([np.arange(10) * 1e-6], tf.float32)
    exact = ops.cc_log_normalizer(tf.cast(logits, tf.float64)).numpy()[0]
    print(f"  closed form (eq. 4): {ops.cc_closed_form_log_normalizer(logits).numpy()[0]}")
    print(f"  keras_cc series:     {ops.cc_log_normalizer(logits).numpy()[0]:.7f}")
    uniform = -np.log(362880.0)
    print(f"  exact (float64):     {exact:.7f}  (exactly uniform: -log 9! = {uniform:.7f})")


if __name__ == "__main__":
    cli.run(main)
