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

import os
import sys

import numpy as np
from absl import app, flags

from keras_cc._environment import quiet_script_logging
from keras_cc.experiments import cli, figures, grid, tables
from keras_cc.experiments import representations as rep
from keras_cc.experiments.data import DatasetNotFoundError
from keras_cc.experiments.records import atomic_write_json, atomic_write_text, read_json
from keras_cc.experiments.training import TrainingConfig, cell_paths, get_dataset

FLAGS = flags.FLAGS
cli.define_training_flags()
flags.adopt_module_key_flags(cli)  # list the shared flags in --help too
flags.DEFINE_string(
    "row",
    "dropout+weight_decay+batch_norm",
    "The regularizers of the models ('+'-joined; 'none' for none). The paper uses the "
    "top row of Table 1.",
)
flags.DEFINE_list("losses", ["none", "ls", "cc_ls"], "Losses to compare (panels of Figure 1).")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (Table 2 averages over them).")
flags.DEFINE_list("classes", ["0", "1", "2"], "The three classes to project.")
flags.DEFINE_integer(
    "samples_per_class",
    200,
    "Random examples per class and split for the figure and the sums of squares.",
)
flags.DEFINE_integer("sample_seed", 0, "Seed of the random choice of examples.")
flags.DEFINE_string(
    "ablation_dir",
    None,
    "Load the models from this label_smoothing_ablation output directory (its "
    "models/<cell>.keras) instead of training them. Its data settings are used.",
)


def _fail(message: str) -> None:
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def _config_from_ablation(ablation_dir: str) -> TrainingConfig:
    record = read_json(os.path.join(ablation_dir, "config.json"))
    if record is None:
        _fail(
            f"--ablation_dir={ablation_dir} has no config.json; is it the --output_dir of "
            "examples/label_smoothing_ablation.py?"
        )
    fields = set(TrainingConfig.__dataclass_fields__)
    settings = {k: v for k, v in record["config"].items() if k in fields}
    settings["dropout_rates"] = tuple(settings.get("dropout_rates", ()))
    if FLAGS.data_dir:
        settings["data_dir"] = FLAGS.data_dir
    return TrainingConfig(**settings)


def _models(cells, config, output_dir):
    """Paths of the trained models, training the missing ones (unless --ablation_dir)."""
    if FLAGS.ablation_dir:
        paths = {c.cell_id: cell_paths(FLAGS.ablation_dir, c)["model"] for c in cells}
        missing = [cid for cid, path in paths.items() if not os.path.isfile(path)]
        if missing:
            _fail(
                f"--ablation_dir={FLAGS.ablation_dir} lacks the models {missing}; run the "
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


def analyze(model_path, classes, samples):
    """Projections and W/B ratios of the model saved at ``model_path``."""
    import keras

    model = keras.saving.load_model(model_path, compile=False)
    result = rep.analyze_model(model, samples, classes)
    del model
    keras.backend.clear_session()
    return result


def main(argv):
    quiet_script_logging()
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    try:
        row = cli.parse_rows([FLAGS.row])[0]
        losses = cli.parse_losses(FLAGS.losses)
        seeds = cli.parse_int_list(FLAGS.seeds, "seeds")
        classes = cli.parse_int_list(FLAGS.classes, "classes")
        if FLAGS.ablation_dir:
            config = _config_from_ablation(FLAGS.ablation_dir)
        else:
            config = cli.training_config_from_flags(FLAGS, save_models=True)
        cells = grid.enumerate_cells([row], losses, seeds)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    if len(classes) != 3:
        raise app.UsageError(f"--classes needs three classes; received {list(classes)}.")
    output_dir = FLAGS.output_dir or cli.default_output_dir(
        "label_smoothing_representations", config.dataset, config.protocol
    )
    try:
        dataset = get_dataset(config)
    except DatasetNotFoundError as error:
        _fail(str(error))
    if max(classes) >= dataset.num_classes or min(classes) < 0:
        raise app.UsageError(f"--classes {list(classes)} out of range for {dataset.num_classes}.")

    models = _models(cells, config, output_dir)
    samples = {}
    for split in ("train", "test"):
        x, y = getattr(dataset, f"x_{split}"), getattr(dataset, f"y_{split}")
        chosen = rep.sample_class_indices(y, classes, FLAGS.samples_per_class, FLAGS.sample_seed)
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
        f"mean (± standard error) over seeds {list(seeds)}, up to {FLAGS.samples_per_class} "
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
    app.run(main)
