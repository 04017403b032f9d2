r"""Correlations of cross-entropy with KLD, JSD, TRI, EUC and COS over a temperature sweep.

Reproduces the study of Connor et al., "Correlations of Cross-Entropy Loss in Machine
Learning" (Entropy 2024) on a matrix of logits: for each softmax temperature, one query
row is compared with every other row (and random pairs of rows are compared), Spearman's
rho between CED and each other divergence is tabulated, Shepard diagrams with an
isotonic-regression fit are drawn, and the measure of roughness is traced against
temperature together with the temperature that reaches a target roughness.

Default (no data needed): the logits of a softmax classifier the script trains in about
a second on scikit-learn's bundled digits.

    python examples/divergence_correlations.py --output_dir=/tmp/correlations
    python examples/divergence_correlations.py --logits=my_logits.npy \
        --temperatures=1,10,100 --num_queries=5 --output_dir=/tmp/mine

Outputs in --output_dir: rho_table.md (markdown tables of rho), results.json (rho per
query, roughness, the temperature for the target roughness, the configuration),
shepard_one_against_many.png, shepard_random_pairs.png, roughness.png, series.png.
"""

import os
import sys
import time

import numpy as np
from absl import app, flags

import keras_cc  # noqa: F401  (configures TensorFlow before it is imported)
from keras_cc import analysis
from keras_cc._environment import quiet_script_logging

FLAGS = flags.FLAGS

flags.DEFINE_string(
    "logits",
    None,
    "A .npy or .npz file holding a [num_vectors, num_classes] matrix of logits. Default: "
    "logits of a softmax classifier trained here on scikit-learn's digits.",
)
flags.DEFINE_string(
    "logits_key", None, "Array name inside an .npz file (default: 'logits' or the only one)."
)
flags.DEFINE_string(
    "output_dir", "divergence_correlations", "Directory for the table, JSON and figures."
)
flags.DEFINE_list("temperatures", ["1", "10", "100"], "Softmax temperatures to sweep.")
flags.DEFINE_integer("query_index", 0, "Row used as the query of the one-against-many study.")
flags.DEFINE_integer(
    "num_queries",
    5,
    "Number of query rows: --query_index plus randomly chosen others; the table shows "
    "mean ± std of rho over them, the Shepard diagrams the first.",
)
flags.DEFINE_integer(
    "max_rows",
    10000,
    "Use at most this many rows (a random subset, as the paper's first 10,000 images).",
)
flags.DEFINE_integer("num_pairs", 2000, "Number of random pairs of distinct rows.")
flags.DEFINE_float(
    "target_roughness",
    1e-6,
    "Find the temperature whose mean measure of roughness equals this (paper: e.g. 1e-6).",
)
flags.DEFINE_integer("max_points", 2000, "At most this many points per Shepard panel.")
flags.DEFINE_integer("seed", 0, "Seed of the classifier, row subset, queries and pairs.")


def _parse_temperatures(values):
    temperatures = []
    for value in values:
        try:
            t = float(value)
        except ValueError:
            raise app.UsageError(f"--temperatures: {value!r} is not a number.") from None
        if not np.isfinite(t) or t <= 0:
            raise app.UsageError(f"--temperatures must be finite and > 0; received {value!r}.")
        temperatures.append(t)
    if not temperatures:
        raise app.UsageError("--temperatures must name at least one temperature.")
    return temperatures


def _load(rng):
    if FLAGS.logits:
        try:
            logits = analysis.load_logits(FLAGS.logits, FLAGS.logits_key)
        except (OSError, ValueError) as error:
            raise app.UsageError(f"--logits: {error}") from None
        source = {"logits": os.path.abspath(FLAGS.logits), "logits_key": FLAGS.logits_key}
    else:
        logits, accuracy = analysis.digits_logits(seed=FLAGS.seed)
        source = {"logits": "digits (scikit-learn), logistic regression", "accuracy": accuracy}
    source["num_rows"] = int(logits.shape[0])
    rows = None
    if logits.shape[0] > FLAGS.max_rows:
        rows = np.sort(rng.choice(logits.shape[0], FLAGS.max_rows, replace=False))
        logits = logits[rows]
    return logits, rows, source


def run(output_dir):
    """Runs the study with the current flags; returns the results dictionary."""
    temperatures = _parse_temperatures(FLAGS.temperatures)
    if FLAGS.num_queries < 1 or FLAGS.num_pairs < 2 or FLAGS.max_rows < 3:
        raise app.UsageError("--num_queries >= 1, --num_pairs >= 2 and --max_rows >= 3.")
    rng = np.random.default_rng(FLAGS.seed)
    start = time.time()
    logits, rows, source = _load(rng)
    n = logits.shape[0]
    if not 0 <= FLAGS.query_index < n:
        raise app.UsageError(f"--query_index={FLAGS.query_index} is outside [0, {n}).")
    others = np.setdiff1d(np.arange(n), [FLAGS.query_index])
    extra = rng.choice(others, size=min(FLAGS.num_queries - 1, others.size), replace=False)
    queries = [FLAGS.query_index, *map(int, extra)]

    results = analysis.correlation_sweep(
        logits, temperatures, queries, num_pairs=FLAGS.num_pairs, seed=FLAGS.seed
    )
    table = analysis.rho_table_markdown(results)

    sweep = np.geomspace(min(0.1, min(temperatures)), max(1e4, 10 * max(temperatures)), 61)
    roughness = analysis.roughness_curve(logits, sweep)
    try:
        target_t = analysis.temperature_for_roughness(logits, FLAGS.target_roughness)
    except ValueError as error:
        print(f"target roughness not reached: {error}", file=sys.stderr)
        target_t = None
    if target_t is not None:
        table += (
            f"\nTemperature reaching mean measure of roughness {FLAGS.target_roughness:g}: "
            f"t = {target_t:.6g}.\n"
        )

    os.makedirs(output_dir, exist_ok=True)
    shepard_figures = [  # (which comparison, file name, what the title says it shows)
        (
            "one_against_many",
            "shepard_one_against_many.png",
            f"query row {queries[0]} vs {n - 1} others",
        ),
        ("pairs", "shepard_random_pairs.png", f"{FLAGS.num_pairs} random pairs"),
    ]
    for kind, file_name, what in shepard_figures:
        analysis.shepard_grid(
            os.path.join(output_dir, file_name),
            results,
            kind,
            analysis.COMPARED,
            max_points=FLAGS.max_points,
            seed=FLAGS.seed,
            title=f"CED against each divergence, {what}",
        )
    analysis.roughness_figure(
        os.path.join(output_dir, "roughness.png"),
        sweep,
        roughness,
        FLAGS.target_roughness,
        target_t,
    )
    analysis.series_figure(
        os.path.join(output_dir, "series.png"),
        logits[queries[0]],
        logits[int(extra[0]) if extra.size else 1],
    )

    summary = {
        "source": source,
        "num_vectors": int(n),
        "num_classes": int(logits.shape[1]),
        "rows_used": "all" if rows is None else rows.tolist(),
        "logit_range": [float(logits.min()), float(logits.max())],
        "temperatures": temperatures,
        "results": [r.summary() for r in results],
        "target_roughness": FLAGS.target_roughness,
        "temperature_for_target_roughness": target_t,
        "roughness_curve": {"temperatures": sweep.tolist(), "mean_roughness": roughness.tolist()},
        "flags": {name: FLAGS[name].value for name in _FLAG_NAMES},
        "seconds": time.time() - start,
    }
    analysis.write_text_atomic(os.path.join(output_dir, "rho_table.md"), table)
    analysis.write_json_atomic(os.path.join(output_dir, "results.json"), summary)
    return summary, table


_FLAG_NAMES = (
    "logits",
    "logits_key",
    "output_dir",
    "temperatures",
    "query_index",
    "num_queries",
    "max_rows",
    "num_pairs",
    "target_roughness",
    "max_points",
    "seed",
)


def main(argv):
    quiet_script_logging()
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    summary, table = run(FLAGS.output_dir)
    print(table)
    print(f"Wrote the table, results.json and figures to {os.path.abspath(FLAGS.output_dir)}")


if __name__ == "__main__":
    app.run(main)
