"""Logits in, results out: loading logit matrices, the default digits logits, atomic writes.

The atomic writes are ``keras_cc_runs.run_directory``'s, under the names this module
has always exported.
"""

import os

import numpy as np

from keras_cc_runs import run_directory

__all__ = [
    "load_logits",
    "digits_logits",
    "write_text_atomic",
    "write_json_atomic",
    "save_figure_atomic",
]


def load_logits(path, key=None):
    """A ``[num_vectors, num_classes]`` float64 matrix from a ``.npy`` or ``.npz`` file.

    For ``.npz`` files, ``key`` names the array; by default the array called ``logits``
    or, failing that, the only array in the file. Raises ``ValueError`` for anything
    that is not a finite 2-D matrix with at least 3 rows and 2 columns.
    """
    path = os.fspath(path)
    if path.endswith(".npz"):
        with np.load(path, allow_pickle=False) as archive:
            names = list(archive.files)
            if key is None:
                if "logits" in names:
                    key = "logits"
                elif len(names) == 1:
                    key = names[0]
                else:
                    raise ValueError(
                        f"{path} holds several arrays {names}; name one with --logits_key."
                    )
            if key not in names:
                raise ValueError(f"{path} has no array {key!r}; it holds {names}.")
            logits = archive[key]
    elif path.endswith(".npy"):
        logits = np.load(path, allow_pickle=False)
    else:
        raise ValueError(f"logits must be a .npy or .npz file; received {path!r}.")
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] < 3 or logits.shape[1] < 2:
        raise ValueError(
            f"{path}: logits must be a [num_vectors >= 3, num_classes >= 2] matrix; "
            f"received shape {logits.shape}."
        )
    if not np.all(np.isfinite(logits)):
        raise ValueError(f"{path}: logits contain NaN or infinite values.")
    return logits


def digits_logits(seed=0, test_fraction=0.5):
    """Logits of a softmax classifier trained in about a second on scikit-learn's digits.

    A multinomial logistic regression (softmax + cross-entropy, the setting of the
    correlations paper) is fitted on half of the 1,797 bundled 8×8 digit images; the
    logits (``decision_function``) of the held-out half are returned with their test
    accuracy: ``(logits [n, 10], accuracy)``.
    """
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=test_fraction, random_state=seed, stratify=y
    )
    scaler = StandardScaler().fit(x_train)
    model = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
    model.fit(scaler.transform(x_train), y_train)
    x_test = scaler.transform(x_test)
    return model.decision_function(x_test), float(model.score(x_test, y_test))


def write_text_atomic(path, text):
    """Writes ``text`` (UTF-8) to ``path`` atomically (``keras_cc_runs.run_directory``)."""
    run_directory.write_text(os.fspath(path), text)


def write_json_atomic(path, value):
    """Writes ``value`` as indented, key-sorted JSON to ``path`` atomically."""
    run_directory.write_json(os.fspath(path), value)


def save_figure_atomic(figure, path, dpi=120):
    """Saves a matplotlib figure as PNG to ``path`` atomically."""
    run_directory.write_figure(figure, os.fspath(path), dpi=dpi)
