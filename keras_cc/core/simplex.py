"""Whether concrete values lie on the probability simplex, as one message naming the problem.

The check behind every ``validate`` argument where values are at hand (eager TensorFlow,
JAX and PyTorch arrays); compiled TensorFlow graphs assert the same conditions with
``tf.debugging.Assert`` (:func:`keras_cc.ops.divergences._simplex_assertions`). NumPy only.
"""

import numpy as np

_SHOWN_ROWS = 3


def violation(rows, where, name, atol):
    """The message of the first simplex condition that ``rows`` break, or None.

    Args:
      rows: array-like of shape ``[N, K]`` (event axis last), any float dtype.
      where: the function checking, for the message (e.g. "`cc_label_smoothing`").
      name: the argument checked (e.g. "y_true").
      atol: tolerance on ``|Σ_k rows[n, k] - 1|``.

    Returns:
      ``f"{where}: `{name}` must lie on the simplex: <what>; first offending rows: <rows>"``
      for the first of: NaN or infinite entries; negative entries (NaN entries are not
      reported as negative); rows not summing to 1 within ``atol`` (rows summing to NaN are
      reported only as non-finite). None if every row lies on the simplex.
    """
    rows = np.asarray(rows)
    if rows.dtype.kind != "f" or rows.dtype.itemsize < 4:
        rows = rows.astype(np.float32)
    with np.errstate(invalid="ignore"):
        checks = (
            (~np.isfinite(rows).all(axis=-1), "it has NaN or infinite entries"),
            ((rows < 0.0).any(axis=-1), "it has negative entries"),
            (np.abs(rows.sum(axis=-1) - 1.0) > atol, f"its rows must sum to 1 (atol={atol})"),
        )
    for bad, what in checks:
        if bad.any():
            shown = np.array2string(rows[bad][:_SHOWN_ROWS], threshold=8 * _SHOWN_ROWS)
            return (
                f"{where}: `{name}` must lie on the simplex: {what}; first offending rows: {shown}"
            )
    return None
