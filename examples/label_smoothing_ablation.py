r"""The CC paper's Table 1: label smoothing ablation, w/o LS vs LS vs CC-LS (exact and
as published).

Trains the ablation CNN for every cell of rows (dropout × weight decay × batch norm) ×
losses (no LS, LS, exact CC-LS, the authors' published CC-LS) × seeds, one results
record per cell, and prints and writes Table 1 (mean ± std over seeds, best of each row
marked) once per reported number, each table saying which one it shows: the final test
accuracy, the test accuracy at the epoch the held-out validation split selects, and under
``--protocol=paper`` the maximum test accuracy over epochs (the paper's number).

Default (``--protocol=standard``): 4 of the 8 rows × 4 losses × 3 seeds on
scikit-learn's bundled 8×8 digits (no download), under 10 minutes on 2 CPU cores
(``--rows=all`` for the eight rows):

    python examples/label_smoothing_ablation.py

The CC paper's protocol (see ``--help`` for ``--protocol``) on digits, or on CIFAR-10
with 10 seeds as in the paper (use GPUs or a Ray cluster):

    python examples/label_smoothing_ablation.py --protocol=paper --rows=all --seeds=0-4
    python examples/label_smoothing_ablation.py --protocol=paper --dataset=cifar10 \
        --rows=all --data_dir=/path/to/cifar-10-batches-py --seeds=0-9

Rerunning the same command resumes: cells with a record are skipped, and a cell killed
at any moment continues from its last checkpoint and ends with the record the
uninterrupted run writes, byte for byte. A results directory holds one protocol. Outputs
in --output_dir (default ``runs/label_smoothing_ablation/<dataset>-<protocol>``):
``cells/*.json`` (one record per cell), ``table1.md``, ``table1.png`` (the headline
number per cell), ``curves.png`` (test accuracy per epoch, mean ± std over seeds),
``spread.png`` (mean logit spread per epoch), ``fallback.png`` (rows where the published
CC-LS fell back, per epoch), ``summary.json``, ``config.json``, ``provenance/<cell>.json``
(hosts, process ids, timings), ``tensorboard/<cell>/`` and ``models/<cell>.keras``.
"""

import contextlib
import dataclasses
import os
import sys
import time

import label_smoothing_settings as settings_lib  # beside this script; imports no TensorFlow

from keras_cc_runs import cli, run_directory


@dataclasses.dataclass
class AblationSettings(settings_lib.TrainingSettings):
    """The training settings plus the grid's rows, losses, seeds and engine."""

    rows: tuple[str, ...] = cli.setting(
        ("dropout+weight_decay+batch_norm", "batch_norm", "dropout+weight_decay", "none"),
        "Rows of Table 1: 'all' (the 8 combinations, in the paper's order) or a list of "
        "'+'-joined regularizers per row (short names: wd, bn). Default: 4 of the 8 (all "
        "regularizers, batch norm alone, dropout and weight decay, none), which keep the "
        "batch-norm contrast and the main job under 10 minutes on 2 CPU cores.",
        parse=settings_lib.parse_rows,
        format=settings_lib.comma_joined,
    )
    losses: tuple[str, ...] = cli.setting(
        settings_lib.LOSSES,
        "Columns (a comma-separated list): none (w/o LS), ls, cc_ls (exact CC-LS, "
        "keras_cc.CCLabelSmoothing), cc_ls_published (the CC paper's float32 closed form, "
        "falling back to LS on rows where it fails, non-finite steps skipped; its records "
        "hold the share of rows that fell back per epoch).",
        parse=settings_lib.parse_losses,
        format=settings_lib.comma_joined,
    )
    seeds: tuple[int, ...] = cli.setting(
        (0, 1, 2),
        "Seeds per entry, e.g. '0,1,2' or '0-9'.",
        parse=settings_lib.parse_int_list,
        format=settings_lib.comma_joined,
    )
    workers: int = cli.setting(
        1,
        "1: run cells in this process. N > 1: a pool of N local worker processes, each with "
        "an equal share of the CPU threads.",
        minimum=1,
    )
    ray_address: str | None = cli.setting(
        None,
        "Run each cell as a Ray task on the cluster at this address ('auto' for the running "
        "cluster, 'local' to start a local Ray). The output_dir should be on storage shared "
        "by the nodes for TensorBoard logs and models; records come back to this process.",
    )
    ray_cpus_per_cell: float = cli.setting(1.0, "CPUs each Ray task asks for.")
    ray_gpus_per_cell: float = cli.setting(0.0, "GPUs each Ray task asks for.")
    retry_failed: bool = cli.setting(False, "Rerun cells whose record says they failed.")
    save_models: bool = cli.setting(True, "Save each trained model to models/<cell>.keras.")
    tensorboard: bool = cli.setting(True, "Write TensorBoard summaries per cell.")
    decimals: int = cli.setting(1, "Decimals of the percentages in the table.", minimum=0)
    report_only: bool = cli.setting(
        False,
        "Train nothing: write the tables and figures from the cell records already in "
        "--output_dir (missing cells show as '–'). Safe beside a runner on the same "
        "directory, to look at a grid in progress.",
    )


cli.define_flags(AblationSettings)


def write_outputs(records, rows, losses, seeds, config, output_dir, decimals):
    """Writes table1.md, summary.json and the figures; returns the text tables.

    One Table 1 per number the protocol reports (``Protocol.reported``), each captioned
    with what it shows.
    """
    from keras_cc_experiments import figures, tables
    from keras_cc_experiments.records import atomic_write_json, atomic_write_text

    protocol = config.protocol_spec
    texts, markdowns, summaries = [], [], {}
    for metric in protocol.reported:
        summary = tables.summarize_grid(records, rows, losses, seeds, metric, protocol.std_ddof)
        summaries[metric] = summary
        caption = tables.table_caption(
            metric, protocol.std_ddof, seeds, config.dataset, config.protocol, config.epochs
        )
        text = tables.format_table1(summary, rows, losses, decimals)
        markdown = tables.format_table1(summary, rows, losses, decimals, markdown=True)
        texts.append(f"Table 1: {caption}; * best of row\n{text}")
        markdowns.append(f"Table 1: {caption}; best of each row in bold.\n\n{markdown}\n")
    atomic_write_text(os.path.join(output_dir, "table1.md"), "\n".join(markdowns))
    atomic_write_json(
        os.path.join(output_dir, "summary.json"),
        {
            "protocol": config.protocol,
            "config": config.as_dict(),
            "seeds": list(seeds),
            "tables": {
                metric: [
                    {"row": row.as_dict(), "loss": loss, **summary[(row.key, loss)].as_dict()}
                    for row in rows
                    for loss in losses
                ]
                for metric, summary in summaries.items()
            },
        },
    )
    headline = summaries[protocol.reported[0]]
    if any(e.values for e in headline.values()):
        figures.plot_ablation(
            headline,
            rows,
            losses,
            os.path.join(output_dir, "table1.png"),
            title=tables.table_caption(
                protocol.reported[0],
                protocol.std_ddof,
                seeds,
                config.dataset,
                config.protocol,
                config.epochs,
            ),
        )
        figures.plot_curves(records, rows, losses, seeds, os.path.join(output_dir, "curves.png"))
        figures.plot_curves(
            records,
            rows,
            losses,
            seeds,
            os.path.join(output_dir, "spread.png"),
            curve="spread",
            label="logit spread (max - min)",
            scale=1.0,
        )
        if "cc_ls_published" in losses:
            figures.plot_curves(
                records,
                rows,
                ["cc_ls_published"],
                seeds,
                os.path.join(output_dir, "fallback.png"),
                curve="fallback",
                label="rows falling back to LS (%)",
            )
    return "\n\n".join(texts)


def main(argv):
    del argv  # cli.run refuses extra arguments
    with cli.checks():
        settings = cli.config_from_flags(AblationSettings)
        output_dir = settings.output_dir or settings_lib.default_output_dir(
            "label_smoothing_ablation", settings.dataset, settings.protocol
        )
        run_directory.check_output_dir(output_dir)
        if settings.report_only and not os.path.isdir(os.path.join(output_dir, "cells")):
            raise ValueError(f"--report_only: {output_dir} holds no cell records (no cells/).")
        if settings.ray_address and settings.workers > 1:
            raise ValueError("Give either --workers > 1 or --ray_address, not both.")
    with contextlib.ExitStack() as stack:
        if not settings.report_only:
            with cli.checks():  # a second runner on the same directory refuses
                stack.enter_context(run_directory.DirectoryLock(output_dir))
        # TensorFlow: after the flags are checked.
        from keras_cc_experiments import cli as experiments_cli
        from keras_cc_experiments import grid

        with cli.checks():
            config = experiments_cli.training_config(
                settings, save_models=settings.save_models, tensorboard=settings.tensorboard
            )
            rows = experiments_cli.parse_rows(settings.rows)
            cells = grid.enumerate_cells(rows, settings.losses, settings.seeds)
        if settings.report_only:
            report(settings, config, rows, cells, output_dir)
        else:
            run(settings, config, rows, cells, output_dir)


def report(settings, config, rows, cells, output_dir):
    """Writes and prints the tables and figures of the records present; trains nothing."""
    from keras_cc_experiments import grid

    records = grid.load_records(output_dir, cells)
    with cli.checks():  # ConfigMismatchError is a ValueError: one line, exit 2
        grid.check_records(output_dir, records, config)
    table = write_outputs(
        records, rows, settings.losses, settings.seeds, config, output_dir, settings.decimals
    )
    print(f"{len(records)} of {len(cells)} cells have a record.\n\n{table}", flush=True)


def run(settings, config, rows, cells, output_dir):
    """Trains the missing cells, then writes and prints the tables; exits 2 or 130 on a
    stop (missing data, another run's directory, an interrupt)."""
    from keras_cc_experiments import grid
    from keras_cc_experiments.cells import get_dataset
    from keras_cc_experiments.data import DatasetNotFoundError

    losses, seeds = settings.losses, settings.seeds
    start = time.perf_counter()
    try:  # fails fast, before any worker starts, when the data is missing
        dataset = get_dataset(config)
    except DatasetNotFoundError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    validation = 0 if dataset.y_valid is None else len(dataset.y_valid)
    print(
        f"{dataset.name}: {len(dataset.y_train)} training / {validation} validation / "
        f"{len(dataset.y_test)} test images {dataset.input_shape}, {dataset.num_classes} "
        f"classes, from {dataset.source}",
        flush=True,
    )
    print(
        f"Grid (--protocol={config.protocol}): {len(rows)} rows x {len(losses)} losses x "
        f"{len(seeds)} seeds = {len(cells)} cells, {config.epochs} epochs each. TensorBoard: "
        f"tensorboard --logdir {os.path.join(output_dir, 'tensorboard')}",
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
            workers=settings.workers,
            ray_address=settings.ray_address,
            ray_cpus_per_cell=settings.ray_cpus_per_cell,
            ray_gpus_per_cell=settings.ray_gpus_per_cell,
            retry_failed=settings.retry_failed,
            printer=printer,
        )
    except KeyboardInterrupt:
        interrupted = True
        records = grid.load_records(output_dir, cells)
    except grid.ConfigMismatchError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        sys.exit(2)
    table = write_outputs(records, rows, losses, seeds, config, output_dir, settings.decimals)
    print("\n" + table, flush=True)
    elapsed = time.perf_counter() - start
    print(
        f"\nWrote {os.path.join(output_dir, 'table1.md')}, table1.png, curves.png, "
        f"spread.png{', fallback.png' if 'cc_ls_published' in losses else ''}, summary.json "
        f"({elapsed / 60:.1f} min).",
        flush=True,
    )
    if interrupted:
        print("Interrupted: rerun the same command to resume.", flush=True)
        sys.exit(130)


if __name__ == "__main__":
    cli.run(main)
