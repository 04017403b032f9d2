r"""The CC paper's Table 1: label smoothing ablation, w/o LS vs LS vs CC-LS.

Trains the ablation CNN for every cell of rows (dropout × weight decay × batch norm) ×
losses (no LS, LS, CC-LS) × seeds, one results record per cell, and prints and writes
Table 1: test accuracy in percent, mean (± std over seeds), best of each row marked.

Default: all 8 rows × 3 losses × 3 seeds on scikit-learn's bundled 8×8 digits (no
download), a few minutes on 2 CPU cores:

    python examples/label_smoothing_ablation.py

The CIFAR-10 protocol (10 seeds as in the paper; use GPUs or a Ray cluster):

    python examples/label_smoothing_ablation.py --dataset=cifar10 \
        --data_dir=/path/to/cifar-10-batches-py --seeds=0-9 --workers=1

Rerunning the same command resumes: cells with a record are skipped, and a cell killed
at any moment continues from its last checkpoint and ends with the record the
uninterrupted run writes, byte for byte. Outputs in --output_dir: ``cells/*.json`` (one
record per cell), ``table1.md``, ``table1.png`` (accuracy per cell), ``curves.png`` (test
accuracy per epoch, mean ± std over seeds), ``summary.json``, ``config.json``,
``provenance/<cell>.json`` (hosts, process ids, timings), ``tensorboard/<cell>/`` and
``models/<cell>.keras``.
"""

import os
import sys
import time

from absl import app, flags

from keras_cc._environment import quiet_script_logging
from keras_cc.experiments import cli, figures, grid, tables
from keras_cc.experiments.data import DatasetNotFoundError
from keras_cc.experiments.records import atomic_write_json, atomic_write_text
from keras_cc.experiments.training import get_dataset

FLAGS = flags.FLAGS
cli.define_training_flags()
flags.adopt_module_key_flags(cli)  # list the shared flags in --help too
flags.DEFINE_list(
    "rows",
    ["all"],
    "Rows of Table 1: 'all' (the 8 combinations, in the paper's order) or a list of "
    "'+'-joined regularizers per row, e.g. 'dropout+weight_decay+batch_norm,none' "
    "(short names: wd, bn).",
)
flags.DEFINE_list("losses", ["none", "ls", "cc_ls"], "Columns: none (w/o LS), ls, cc_ls.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds per entry, e.g. '0,1,2' or '0-9'.")
flags.DEFINE_integer(
    "workers",
    1,
    "1: run cells in this process. N > 1: a pool of N local worker processes, each with "
    "an equal share of the CPU threads.",
)
flags.DEFINE_string(
    "ray_address",
    None,
    "Run each cell as a Ray task on the cluster at this address ('auto' for the running "
    "cluster, 'local' to start a local Ray). The output_dir should be on storage shared "
    "by the nodes for TensorBoard logs and models; records come back to this process.",
)
flags.DEFINE_float("ray_cpus_per_cell", 1.0, "CPUs each Ray task asks for.")
flags.DEFINE_float("ray_gpus_per_cell", 0.0, "GPUs each Ray task asks for.")
flags.DEFINE_bool("retry_failed", False, "Rerun cells whose record says they failed.")
flags.DEFINE_bool("save_models", True, "Save each trained model to models/<cell>.keras.")
flags.DEFINE_bool("tensorboard", True, "Write TensorBoard summaries per cell.")
flags.DEFINE_enum(
    "table_metric",
    "final_test_accuracy",
    ["final_test_accuracy", "best_test_accuracy"],
    "Accuracy shown in Table 1: after the last epoch, or the best over epochs.",
)
flags.DEFINE_integer("decimals", 1, "Decimals of the percentages in the table.")


def write_outputs(records, rows, losses, seeds, config, output_dir, metric, decimals):
    """Writes table1.md, summary.json and the figures; returns the text table."""
    summary = tables.summarize_grid(records, rows, losses, seeds, metric)
    metric_text = tables.METRICS[metric]
    caption = (
        f"{config.dataset}: {metric_text} (%), mean (± std) over seeds {list(seeds)}, "
        f"label smoothing ε={config.label_smoothing}, {config.epochs} epochs"
    )
    text = tables.format_table1(summary, rows, losses, decimals)
    markdown = tables.format_table1(summary, rows, losses, decimals, markdown=True)
    atomic_write_text(
        os.path.join(output_dir, "table1.md"),
        f"Table 1 ({caption}; best of each row in bold).\n\n{markdown}\n",
    )
    atomic_write_json(
        os.path.join(output_dir, "summary.json"),
        {
            "metric": metric,
            "config": config.as_dict(),
            "seeds": list(seeds),
            "entries": [
                {"row": row.as_dict(), "loss": loss, **summary[(row.key, loss)].as_dict()}
                for row in rows
                for loss in losses
            ],
        },
    )
    if any(e.values for e in summary.values()):
        figures.plot_ablation(
            summary, rows, losses, os.path.join(output_dir, "table1.png"), title=caption
        )
        figures.plot_curves(records, rows, losses, seeds, os.path.join(output_dir, "curves.png"))
    return f"Table 1 ({caption}; * best of row)\n{text}"


def main(argv):
    quiet_script_logging()
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        config = cli.training_config_from_flags(
            FLAGS, save_models=FLAGS.save_models, tensorboard=FLAGS.tensorboard
        )
        rows = cli.parse_rows(FLAGS.rows)
        losses = cli.parse_losses(FLAGS.losses)
        seeds = cli.parse_int_list(FLAGS.seeds, "seeds")
        cells = grid.enumerate_cells(rows, losses, seeds)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    output_dir = FLAGS.output_dir or cli.default_output_dir(
        "label_smoothing_ablation", FLAGS.dataset
    )
    start = time.perf_counter()
    try:  # fails fast, before any worker starts, when the data is missing
        dataset = get_dataset(config)
    except DatasetNotFoundError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(
        f"{dataset.name}: {len(dataset.y_train)} training / {len(dataset.y_test)} test images "
        f"{dataset.input_shape}, {dataset.num_classes} classes, from {dataset.source}",
        flush=True,
    )
    print(
        f"Grid: {len(rows)} rows x {len(losses)} losses x {len(seeds)} seeds = {len(cells)} "
        f"cells, {config.epochs} epochs each. TensorBoard: tensorboard --logdir "
        f"{os.path.join(output_dir, 'tensorboard')}",
        flush=True,
    )

    def printer(line):
        print(line, flush=True)

    interrupted = False
    try:
        records = grid.run_grid(
            cells,
            config,
            output_dir,
            workers=FLAGS.workers,
            ray_address=FLAGS.ray_address,
            ray_cpus_per_cell=FLAGS.ray_cpus_per_cell,
            ray_gpus_per_cell=FLAGS.ray_gpus_per_cell,
            retry_failed=FLAGS.retry_failed,
            printer=printer,
        )
    except KeyboardInterrupt:
        interrupted = True
        records = grid.load_records(output_dir, cells)
    except grid.ConfigMismatchError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    table = write_outputs(
        records, rows, losses, seeds, config, output_dir, FLAGS.table_metric, FLAGS.decimals
    )
    print("\n" + table, flush=True)
    elapsed = time.perf_counter() - start
    print(
        f"\nWrote {os.path.join(output_dir, 'table1.md')}, table1.png, curves.png, "
        f"summary.json ({elapsed / 60:.1f} min).",
        flush=True,
    )
    if interrupted:
        print("Interrupted: rerun the same command to resume.", flush=True)
        sys.exit(130)


if __name__ == "__main__":
    app.run(main)
