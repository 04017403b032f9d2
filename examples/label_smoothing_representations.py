r"""The CC paper's Figure 1 and Table 2: how label smoothing shapes learned representations.

For no-LS, LS and CC-LS models (trained here, or loaded from the ablation's output),
penultimate activations of three classes are projected onto the plane through the
three classes' template vectors (the logits layer's kernel columns, CC paper eq. 8),
for training and test images: Figure 1, one panel per loss. Table 2 gives the ratio of
within-cluster to between-cluster sum of squares of those projections, mean (±
standard error) over seeds.

Default: trains the paper's top-row CNN (dropout + weight decay + batch norm) with each
loss for 3 seeds on scikit-learn's bundled digits, classes 0, 1, 2:

    python examples/label_smoothing_representations.py

From the models of a finished ablation run (CIFAR-10 classes airplane, automobile,
bird are 0, 1, 2):

    python examples/label_smoothing_representations.py \
        --ablation_dir=runs/label_smoothing_ablation/cifar10-standard --seeds=0-9

Outputs in --output_dir: ``figure1.png``, ``table2.md``, ``table2.json``.
"""

import contextlib
import dataclasses
import os
import sys

import label_smoothing_settings as settings_lib  # beside this script; imports no TensorFlow

from keras_cc_runs import cli, run_directory


@dataclasses.dataclass
class RepresentationSettings(settings_lib.TrainingSettings):
    """The training settings plus the models, classes and samples to project."""

    row: str = cli.setting(
        "dropout+weight_decay+batch_norm",
        "The regularizers of the models ('+'-joined; 'none' for none). The paper uses the "
        "top row of Table 1.",
        parse=settings_lib.check_row,
    )
    losses: tuple[str, ...] = cli.setting(
        ("none", "ls", "cc_ls"),
        "Losses to compare (panels of Figure 1), a comma-separated list.",
        parse=settings_lib.parse_losses,
        format=settings_lib.comma_joined,
    )
    seeds: tuple[int, ...] = cli.setting(
        (0, 1, 2),
        "Seeds (Table 2 averages over them), e.g. '0,1,2' or '0-9'.",
        parse=settings_lib.parse_int_list,
        format=settings_lib.comma_joined,
    )
    classes: tuple[int, ...] = cli.setting(
        (0, 1, 2),
        "The three classes to project, a comma-separated list.",
        parse=settings_lib.parse_int_list,
        format=settings_lib.comma_joined,
    )
    samples_per_class: int = cli.setting(
        200,
        "Random examples per class and split for the figure and the sums of squares.",
        minimum=1,
    )
    sample_seed: int = cli.setting(0, "Seed of the random choice of examples.")
    ablation_dir: str | None = cli.setting(
        None,
        "Load the models from this label_smoothing_ablation output directory (its "
        "models/<cell>.keras) instead of training them. Its data settings are used.",
    )


cli.define_flags(RepresentationSettings)


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def _ablation_config(ablation_dir: str) -> dict:
    """The settings of the ablation run in `ablation_dir` (its config.json's "config").

    Raises:
      ValueError: naming ``--ablation_dir``: no config.json there; or
        ``DamagedFileError`` (a ValueError) naming the file: it cannot be read.
    """
    path = os.path.join(ablation_dir, "config.json")
    record = run_directory.read_json(path, default=None)
    if not isinstance(record, dict) or not isinstance(record.get("config"), dict):
        raise ValueError(
            f"--ablation_dir={ablation_dir} has no config.json; is it the --output_dir of "
            "examples/label_smoothing_ablation.py?"
        )
    return record["config"]


def _training_config_of_ablation(values: dict, data_dir: str | None):
    """The ablation's TrainingConfig, with this run's --data_dir when given."""
    from keras_cc_experiments.cells import TrainingConfig

    fields = set(TrainingConfig.__dataclass_fields__)
    values = {k: v for k, v in values.items() if k in fields}
    values["dropout_rates"] = tuple(values.get("dropout_rates", ()))
    if data_dir:
        values["data_dir"] = data_dir
    return TrainingConfig(**values)


def _models(cells, config, output_dir, ablation_dir):
    """Paths of the trained models, training the missing ones (unless `ablation_dir`)."""
    from keras_cc_experiments import grid
    from keras_cc_experiments.cells import cell_paths

    if ablation_dir:
        paths = {c.cell_id: cell_paths(ablation_dir, c)["model"] for c in cells}
        missing = [cid for cid, path in paths.items() if not os.path.isfile(path)]
        if missing:
            _fail(
                f"--ablation_dir={ablation_dir} lacks the models {missing}; run the "
                "ablation with --save_models, these rows, losses and seeds."
            )
        return paths
    records = grid.run_grid(cells, config, output_dir, printer=lambda line: print(line, flush=True))
    failed = [cid for cid, r in records.items() if r.get("status") != "done"]
    if failed:
        raise RuntimeError(
            f"Training failed for {failed}: "
            + "; ".join(str(records[c].get("reason")) for c in failed)
        )
    return {c.cell_id: cell_paths(output_dir, c)["model"] for c in cells}


def _checked_settings():
    """The parsed settings, the ablation's settings (or None) and the output directory,
    checked as far as that needs no TensorFlow."""
    settings = cli.config_from_flags(RepresentationSettings)
    if len(settings.classes) != 3:
        raise ValueError(f"--classes needs three classes; received {list(settings.classes)}.")
    ablation = _ablation_config(settings.ablation_dir) if settings.ablation_dir else None
    source = ablation or {"dataset": settings.dataset, "protocol": settings.protocol}
    output_dir = settings.output_dir or settings_lib.default_output_dir(
        "label_smoothing_representations",
        source.get("dataset", "digits"),
        source.get("protocol") or "standard",
    )
    run_directory.check_output_dir(output_dir)
    return settings, ablation, output_dir


def analyze(model_path, classes, samples):
    """Projections and W/B ratios of the model saved at ``model_path``."""
    import keras

    from keras_cc_experiments import representations as rep

    model = keras.saving.load_model(model_path, compile=False)
    result = rep.analyze_model(model, samples, classes)
    del model
    keras.backend.clear_session()
    return result


def main(argv):
    del argv  # cli.run refuses extra arguments
    with cli.checks():
        settings, ablation, output_dir = _checked_settings()
    with contextlib.ExitStack() as stack:
        with cli.checks():  # a second runner on the same directory refuses
            stack.enter_context(run_directory.DirectoryLock(output_dir))
        # TensorFlow: after the flags are checked.
        from keras_cc_experiments import cli as experiments_cli
        from keras_cc_experiments import grid

        with cli.checks():
            row = experiments_cli.parse_rows([settings.row])[0]
            if ablation is not None:
                config = _training_config_of_ablation(ablation, settings.data_dir)
            else:
                config = experiments_cli.training_config(settings, save_models=True)
            cells = grid.enumerate_cells([row], settings.losses, settings.seeds)
        run(settings, config, row, cells, output_dir)


def run(settings, config, row, cells, output_dir):
    """Trains or loads the models, then writes Figure 1 and Table 2; exits 2 when the
    data or the ablation's models are missing."""
    import numpy as np

    from keras_cc_experiments import figures, tables
    from keras_cc_experiments import representations as rep
    from keras_cc_experiments.cells import get_dataset
    from keras_cc_experiments.data import DatasetNotFoundError
    from keras_cc_experiments.records import atomic_write_json, atomic_write_text

    losses, seeds, classes = settings.losses, settings.seeds, settings.classes
    try:
        dataset = get_dataset(config)
    except DatasetNotFoundError as error:
        _fail(str(error))
    if max(classes) >= dataset.num_classes or min(classes) < 0:
        raise cli.ScriptError(f"--classes {list(classes)} out of range for {dataset.num_classes}.")

    models = _models(cells, config, output_dir, settings.ablation_dir)
    samples = {}
    for split in ("train", "test"):
        x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
        chosen = rep.sample_class_indices(
            y, classes, settings.samples_per_class, settings.sample_seed
        )
        samples[split] = (x[chosen], y[chosen])

    ratios = {split: {loss: [] for loss in losses} for split in samples}
    ratios_full = {split: {loss: [] for loss in losses} for split in samples}
    projections = {}
    for cell in cells:
        result = analyze(models[cell.cell_id], classes, samples)
        for split, values in result.items():
            ratios[split][cell.loss].append(values["ratio"])
            ratios_full[split][cell.loss].append(values["ratio_full_space"])
        if cell.seed == seeds[0]:
            projections[cell.loss] = {s: (v["points"], v["labels"]) for s, v in result.items()}
        print(
            f"{cell.cell_id}: W/B train {100 * result['train']['ratio']:.1f}%, "
            f"test {100 * result['test']['ratio']:.1f}%",
            flush=True,
        )

    class_text = ", ".join(dataset.class_names[c] for c in classes)
    figure_path = figures.plot_representations(
        projections,
        losses,
        dataset.class_names,
        classes,
        os.path.join(output_dir, "figure1.png"),
        title=f"{dataset.name}, {figures.row_label(row)}: classes {class_text} projected on "
        f"their templates' plane (seed {seeds[0]})",
    )
    caption = (
        f"Table 2 ({dataset.name}, classes {class_text}, {figures.row_label(row)}): "
        "within-cluster / between-cluster sum of squares of the template-plane projections, "
        f"mean (± standard error) over seeds {list(seeds)}, up to {settings.samples_per_class} "
        "examples per class."
    )
    markdown = tables.format_table2(ratios, losses)
    atomic_write_text(os.path.join(output_dir, "table2.md"), f"{caption}\n\n{markdown}\n")
    atomic_write_json(
        os.path.join(output_dir, "table2.json"),
        {
            "classes": list(classes),
            "class_names": [dataset.class_names[c] for c in classes],
            "row": row.as_dict(),
            "seeds": list(seeds),
            "ratio_plane": ratios,
            "ratio_full_space": ratios_full,
            "models": models,
            "config": config.as_dict(),
            "mean_ratio_plane": {
                s: {loss: float(np.mean(v)) for loss, v in d.items()} for s, d in ratios.items()
            },
        },
    )
    print(f"\n{caption}\n{markdown}\n\nWrote {figure_path} and table2.md", flush=True)


if __name__ == "__main__":
    cli.run(main)
