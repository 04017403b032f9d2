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

import dataclasses
import math
import os
import sys
import time

import numpy as np
from absl import flags

from keras_cc_runs import cli, run_directory

FLAGS = flags.FLAGS


@dataclasses.dataclass
class StudyConfig:
    """Settings of the correlation study (one flag each)."""

    logits: str | None = cli.setting(
        None,
        "A .npy or .npz file holding a [num_vectors, num_classes] matrix of logits. Default: "
        "logits of a softmax classifier trained here on scikit-learn's digits.",
    )
    logits_key: str | None = cli.setting(
        None, "Array name inside an .npz file (default: 'logits' or the only one)."
    )
    output_dir: str = cli.setting(
        "divergence_correlations", "Directory for the table, JSON and figures."
    )
    temperatures: tuple[str, ...] = cli.setting(
        ("1", "10", "100"), "Softmax temperatures to sweep."
    )
    query_index: int = cli.setting(
        0, "Row used as the query of the one-against-many study.", minimum=0
    )
    num_queries: int = cli.setting(
        5,
        "Number of query rows: --query_index plus randomly chosen others; the table shows "
        "mean ± std of rho over them, the Shepard diagrams the first.",
        minimum=1,
    )
    max_rows: int = cli.setting(
        10000,
        "Use at most this many rows (a random subset, as the paper's first 10,000 images).",
        minimum=3,
    )
    num_pairs: int = cli.setting(2000, "Number of random pairs of distinct rows.", minimum=2)
    target_roughness: float = cli.setting(
        1e-6,
        "Find the temperature whose mean measure of roughness equals this (paper: e.g. 1e-6).",
        minimum=0.0,
    )
    max_points: int = cli.setting(2000, "At most this many points per Shepard panel.", minimum=1)
    seed: int = cli.setting(0, "Seed of the classifier, row subset, queries and pairs.")


cli.define_flags(StudyConfig)


def _parse_temperatures(values):
    temperatures = []
    for value in values:
        try:
            t = float(value)
        except ValueError:
            raise cli.ScriptError(f"--temperatures: {value!r} is not a number.") from None
        if not math.isfinite(t) or t <= 0:
            raise cli.ScriptError(f"--temperatures must be finite and > 0; received {value!r}.")
        temperatures.append(t)
    if not temperatures:
        raise cli.ScriptError("--temperatures must name at least one temperature.")
    return temperatures


def _load(rng, analysis):
    if FLAGS.logits:
        try:
            logits = analysis.load_logits(FLAGS.logits, FLAGS.logits_key)
        except (OSError, ValueError) as error:
            raise cli.ScriptError(f"--logits: {error}") from None
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
    with cli.checks():
        run_directory.check_output_dir(output_dir)
        if FLAGS.logits and not os.path.isfile(FLAGS.logits):
            raise ValueError(f"--logits: {FLAGS.logits!r} is not a file.")
    import keras_cc_analysis as analysis  # TensorFlow: after the flags are checked

    rng = np.random.default_rng(FLAGS.seed)
    start = time.time()
    logits, rows, source = _load(rng, analysis)
    n = logits.shape[0]
    if not 0 <= FLAGS.query_index < n:
        raise cli.ScriptError(f"--query_index={FLAGS.query_index} is outside [0, {n}).")
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
        "flags": {field.name: FLAGS[field.name].value for field in dataclasses.fields(StudyConfig)},
        "seconds": time.time() - start,
    }
    run_directory.write_text(os.path.join(output_dir, "rho_table.md"), table)
    run_directory.write_json(os.path.join(output_dir, "results.json"), summary)
    return summary, table


def main(argv):
    del argv
    summary, table = run(FLAGS.output_dir)
    print(table)
    print(f"Wrote the table, results.json and figures to {os.path.abspath(FLAGS.output_dir)}")


if __name__ == "__main__":
    cli.run(main)
