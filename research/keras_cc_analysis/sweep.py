"""The correlations paper's study: divergences over a temperature sweep, and their ranks.

For a matrix of logits ``z`` (one row per input) and each temperature ``t``, the rows are
mapped to ``p = softmax(z / t)`` (eq. 1) and, exactly as in the paper's Section 3,

* *one against many*: one query row ``q`` is compared with every other row, giving
  ``CED(q : p_j)`` (eq. 2) and the other divergences; and
* *random pairs*: random pairs of distinct rows ``(p_i, p_j)`` are compared,

after which Spearman's rho between CED and each other divergence measures how well
each preserves CED's ordering. KLD, JSD and TRI are taken over the tempered softmax;
EUC and COS over the raw logits, as in the paper's Section 9 (their values do not depend
on ``t``; their correlation with CED does). Everything is computed in float64 with the
ops of :mod:`keras_cc.ops.divergences`.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from keras_cc.ops import divergences as dv
from keras_cc.ops import softmax as softmax_ops
from keras_cc_analysis.rank_correlation import spearman_rho

__all__ = [
    "REFERENCE",
    "COMPARED",
    "LOGIT_SPACE",
    "TemperatureResult",
    "one_against_many_divergences",
    "random_pair_divergences",
    "random_pairs",
    "correlation_sweep",
    "rho_table_markdown",
]

REFERENCE = "CED"
COMPARED = ("KLD", "JSD", "TRI", "EUC", "COS")
LOGIT_SPACE = frozenset({"EUC", "COS"})
"""Divergences measured over the logits rather than the tempered softmax."""


@dataclasses.dataclass
class TemperatureResult:
    """Everything measured at one temperature.

    Attributes:
        temperature: the softmax temperature ``t``.
        mean_roughness: mean ``MR(softmax(z / t))`` over all rows (eq. 17).
        query_indices: the rows used as queries in the one-against-many comparison.
        rho_one_against_many: name -> Spearman rho (CED vs name), one per query.
        rho_random_pairs: name -> Spearman rho over the random pairs.
        one_against_many: name -> values for the first query (CED included), for plots.
        pairs: name -> values over the random pairs (CED included).
    """

    temperature: float
    mean_roughness: float
    query_indices: list
    rho_one_against_many: dict
    rho_random_pairs: dict
    one_against_many: dict
    pairs: dict

    def summary(self):
        """A JSON-ready dict without the raw samples."""
        return {
            "temperature": self.temperature,
            "mean_roughness": self.mean_roughness,
            "query_indices": [int(i) for i in self.query_indices],
            "rho_one_against_many": {
                k: list(map(float, v)) for k, v in self.rho_one_against_many.items()
            },
            "rho_one_against_many_mean": {
                k: float(np.mean(v)) for k, v in self.rho_one_against_many.items()
            },
            "rho_random_pairs": {k: float(v) for k, v in self.rho_random_pairs.items()},
        }


def _check_logits(logits):
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] < 3 or logits.shape[1] < 2:
        raise ValueError(
            "logits must be a [num_vectors >= 3, num_classes >= 2] matrix; received shape "
            f"{logits.shape}."
        )
    if not np.all(np.isfinite(logits)):
        raise ValueError("logits contain NaN or infinite values.")
    return logits


def _evaluate(names, probs_q, probs_p, logits_q, logits_p):
    out = {}
    for name in (REFERENCE, *names):
        if name in LOGIT_SPACE:
            out[name] = dv.DIVERGENCES[name](logits_q, logits_p).numpy()
        else:
            out[name] = dv.DIVERGENCES[name](probs_q, probs_p).numpy()
    return out


def one_against_many_divergences(logits, temperature, query_index, compared=COMPARED):
    """``{name: divergence(row query_index, every other row)}`` for CED and ``compared``.

    CED and KLD take the query as their first argument, ``CED(q : p_j)``.
    """
    logits = _check_logits(logits)
    if not 0 <= query_index < logits.shape[0]:
        raise ValueError(
            f"query_index={query_index} is outside [0, {logits.shape[0]}) rows of the logits."
        )
    z = tf.constant(logits)
    probs = softmax_ops.tempered_softmax(z, temperature)
    others = np.delete(np.arange(logits.shape[0]), query_index)
    return _evaluate(
        compared,
        probs[query_index][None, :],
        tf.gather(probs, others),
        z[query_index][None, :],
        tf.gather(z, others),
    )


def random_pairs(num_rows, num_pairs, rng):
    """``num_pairs`` index pairs ``(i, j)`` with ``i != j``, uniformly at random."""
    if num_rows < 2:
        raise ValueError(f"random pairs need at least 2 rows; received {num_rows}.")
    first = rng.integers(0, num_rows, size=num_pairs)
    second = (first + rng.integers(1, num_rows, size=num_pairs)) % num_rows
    return np.stack([first, second], axis=1)


def random_pair_divergences(logits, temperature, pairs, compared=COMPARED):
    """``{name: divergence(row i, row j)}`` over the index ``pairs`` ``[P, 2]``."""
    logits = _check_logits(logits)
    z = tf.constant(logits)
    probs = softmax_ops.tempered_softmax(z, temperature)
    i, j = pairs[:, 0], pairs[:, 1]
    return _evaluate(
        compared, tf.gather(probs, i), tf.gather(probs, j), tf.gather(z, i), tf.gather(z, j)
    )


def correlation_sweep(
    logits,
    temperatures=(1.0, 10.0, 100.0),
    query_indices=(0,),
    num_pairs=2000,
    compared=COMPARED,
    seed=0,
):
    """Runs the study at each temperature and returns a list of :class:`TemperatureResult`.

    The same random pairs are used at every temperature, so rows of the table differ
    only by ``t``.
    """
    logits = _check_logits(logits)
    for t in temperatures:
        softmax_ops.check_temperature(t)
    if not query_indices:
        raise ValueError("query_indices must name at least one row.")
    pairs = random_pairs(logits.shape[0], num_pairs, np.random.default_rng(seed))
    results = []
    for t in temperatures:
        rho_many = {name: [] for name in compared}
        first = None
        for index in query_indices:
            values = one_against_many_divergences(logits, t, int(index), compared)
            first = first if first is not None else values
            for name in compared:
                rho_many[name].append(spearman_rho(values[REFERENCE], values[name]))
        pair_values = random_pair_divergences(logits, t, pairs, compared)
        rho_pairs = {
            name: spearman_rho(pair_values[REFERENCE], pair_values[name]) for name in compared
        }
        probs = softmax_ops.tempered_softmax(tf.constant(logits), t)
        results.append(
            TemperatureResult(
                temperature=float(t),
                mean_roughness=float(
                    tf.reduce_mean(softmax_ops.measure_of_roughness(probs)).numpy()
                ),
                query_indices=[int(i) for i in query_indices],
                rho_one_against_many=rho_many,
                rho_random_pairs=rho_pairs,
                one_against_many=first,
                pairs=pair_values,
            )
        )
    return results


def _label(name):
    return f"{name}(z)" if name in LOGIT_SPACE else name


def _cell(values):
    values = np.asarray(values, dtype=np.float64)
    if values.size == 1:
        return f"{values[0]:.4f}"
    return f"{values.mean():.4f} ± {values.std(ddof=1):.4f}"


def rho_table_markdown(results, compared=COMPARED):
    """Markdown tables of Spearman's rho (CED vs each divergence) by temperature.

    One table for one-against-many (mean ± sample std over queries when there are
    several) and one for random pairs; ``(z)`` marks divergences over the logits.
    """
    header = "| t | MR | " + " | ".join(_label(n) for n in compared) + " |"
    rule = "|---|---|" + "---|" * len(compared)
    lines = [
        f"Spearman's rho between {REFERENCE} and each divergence, one query against all "
        f"other rows ({len(results[0].query_indices)} queries: rows "
        f"{', '.join(map(str, results[0].query_indices))}).",
        "",
        header,
        rule,
    ]
    for r in results:
        cells = " | ".join(_cell(r.rho_one_against_many[n]) for n in compared)
        lines.append(f"| {r.temperature:g} | {r.mean_roughness:.3g} | {cells} |")
    num_pairs = len(next(iter(results[0].pairs.values())))
    lines += [
        "",
        f"Spearman's rho between {REFERENCE} and each divergence over {num_pairs} random "
        "pairs of distinct rows.",
        "",
        header,
        rule,
    ]
    for r in results:
        cells = " | ".join(f"{r.rho_random_pairs[n]:.4f}" for n in compared)
        lines.append(f"| {r.temperature:g} | {r.mean_roughness:.3g} | {cells} |")
    return "\n".join(lines) + "\n"
