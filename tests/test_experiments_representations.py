"""Template-plane projections, cluster sums of squares, Tables 1-2 and the scripts' outputs."""

import json
import math
import os

import numpy as np
import pytest
from interpreters import python

from keras_cc_experiments import grid, tables, training
from keras_cc_experiments import representations as rep
from keras_cc_experiments.model import Regularizers

# The slow lane (trained models' representations): `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ------------------------------------------------------------------ template plane


def test_template_plane_basis_is_orthonormal_and_contains_the_templates():
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(7, 5))
    basis, origin = rep.template_plane_basis(kernel, (4, 1, 2))
    np.testing.assert_allclose(basis @ basis.T, np.eye(2), atol=1e-12)
    templates = kernel[:, [4, 1, 2]].T
    np.testing.assert_allclose(origin, templates.mean(0))
    # Each template lies in the affine plane: projecting and lifting back is exact.
    coordinates = rep.project_onto_plane(templates, basis, origin)
    np.testing.assert_allclose(coordinates @ basis + origin, templates, atol=1e-12)
    # Distances between the templates are kept by the projection.
    for i in range(3):
        for j in range(3):
            assert np.linalg.norm(coordinates[i] - coordinates[j]) == pytest.approx(
                np.linalg.norm(templates[i] - templates[j])
            )
    # A point off the plane moves by its orthogonal component only.
    normal = rng.normal(size=7)
    normal -= basis.T @ (basis @ normal)
    np.testing.assert_allclose(
        rep.project_onto_plane((templates[0] + normal)[None], basis, origin)[0], coordinates[0]
    )


def test_template_plane_rejects_degenerate_input():
    kernel = np.zeros((4, 3))
    kernel[:, 0] = 1.0
    kernel[:, 1] = 2.0
    kernel[:, 2] = 3.0  # collinear templates
    with pytest.raises(ValueError, match="collinear"):
        rep.template_plane_basis(kernel, (0, 1, 2))
    with pytest.raises(ValueError, match="three distinct"):
        rep.template_plane_basis(kernel, (0, 0, 1))
    with pytest.raises(ValueError, match="out of range"):
        rep.template_plane_basis(kernel, (0, 1, 3))


def test_within_and_between_sums_of_squares():
    points = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 0.0], [10.0, 4.0]])
    labels = np.array([0, 0, 1, 1])
    within, between = rep.cluster_sum_of_squares(points, labels)
    # Cluster 0: centroid (1, 0), W = 2; cluster 1: centroid (10, 2), W = 8.
    assert within == pytest.approx(10.0)
    # Overall mean (5.5, 1): B = 2 * (4.5² + 1²) + 2 * (4.5² + 1²) = 85.
    assert between == pytest.approx(85.0)
    total = ((points - points.mean(0)) ** 2).sum()
    assert within + between == pytest.approx(total)
    ratio = rep.within_between_ratio(points, labels)
    # Invariant to rotation, translation and scale.
    angle = 0.7
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = 3.0 * points @ rotation.T + np.array([5.0, -2.0])
    assert rep.within_between_ratio(moved, labels) == pytest.approx(ratio)
    with pytest.raises(ValueError, match="two clusters"):
        rep.within_between_ratio(points, np.zeros(4))


def test_sample_class_indices():
    labels = np.array([0, 1, 2, 0, 1, 2, 0, 3, 3, 0])
    chosen = rep.sample_class_indices(labels, (0, 2), per_class=2, seed=0)
    assert np.bincount(labels[chosen], minlength=4).tolist() == [2, 0, 2, 0]
    assert chosen.tolist() == sorted(chosen.tolist())
    everything = rep.sample_class_indices(labels, (0, 3), per_class=None)
    assert everything.tolist() == [0, 3, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="No examples of class 5"):
        rep.sample_class_indices(labels, (5,), 1)


# ------------------------------------------------------------------------- tables


def _record(row, loss, seed, accuracy=None, reason=None):
    record = {"cell_id": f"{row.key}__{loss}__seed{seed}"}
    if reason:
        record.update(status="failed", reason=reason)
    else:
        record.update(
            status="done", final_test_accuracy=accuracy, best_test_accuracy=accuracy + 0.01
        )
    return record


def test_table_1_marks_the_best_of_each_row_and_reports_failures():
    top, bottom = Regularizers(True, True, True), Regularizers(False, False, False)
    records = {}
    for seed, (a, b, c) in enumerate([(0.90, 0.88, 0.85), (0.92, 0.90, 0.87)]):
        for loss, acc in zip(("none", "ls", "cc_ls"), (a, b, c)):
            r = _record(top, loss, seed, acc)
            records[r["cell_id"]] = r
    for seed in (0, 1):
        r = _record(bottom, "none", seed, 0.80)
        records[r["cell_id"]] = r
    r = _record(bottom, "cc_ls", 0, 0.84)
    records[r["cell_id"]] = r
    r = _record(bottom, "cc_ls", 1, reason="diverged: nan")
    records[r["cell_id"]] = r
    rows, losses, seeds = [top, bottom], ["none", "ls", "cc_ls"], [0, 1]
    summary = tables.summarize_grid(records, rows, losses, seeds)
    entry = summary[(top.key, "none")]
    assert entry.mean == pytest.approx(91.0) and entry.std == pytest.approx(math.sqrt(2))
    text = tables.format_table1(summary, rows, losses).splitlines()
    assert text[0].split() == [
        "Dropout",
        "Weight",
        "decay",
        "BatchNorm",
        "w/o",
        "LS",
        "with",
        "LS",
        "CC-LS",
    ]
    assert "91.0 (±1.4) *" in text[2] and "89.0 (±1.4) " in text[2]
    assert "84.0 [1 failed] *" in text[3] and "– " in text[3] + " "
    markdown = tables.format_table1(summary, rows, losses, markdown=True)
    assert "| Yes | Yes | Yes | **91.0 (±1.4)** | 89.0 (±1.4) | 86.0 (±1.4) |" in markdown
    assert "| No | No | No | 80.0 (±0.0) | – | **84.0 [1 failed]** |" in markdown
    # The maximum over epochs; records of version 2 called it best_test_accuracy.
    best = tables.summarize_grid(records, rows, losses, seeds, metric="max_test_accuracy")
    assert best[(top.key, "none")].mean == pytest.approx(92.0)
    population = tables.summarize_grid(records, rows, losses, seeds, ddof=0)
    assert population[(top.key, "none")].std == pytest.approx(1.0)
    # Records without a validation split have no selected accuracy: counted as missing.
    selected = tables.summarize_grid(records, rows, losses, seeds, "selected_test_accuracy")
    assert selected[(top.key, "none")].missing == 2 and not selected[(top.key, "none")].values
    caption = tables.table_caption("max_test_accuracy", 0, seeds, "digits", "paper", 300)
    assert caption.startswith("maximum test accuracy over epochs (the CC paper's number) (%)")
    assert "population std" in caption and "--protocol=paper, 300 epochs" in caption
    # Ties at the displayed precision are all marked.
    tie = {"none": tables.EntryStats((90.04,), 0, 0), "ls": tables.EntryStats((89.96,), 0, 0)}
    assert tables.best_losses(tie, decimals=1) == {"none", "ls"}
    assert tables.best_losses({"none": tie["none"]}) == set()


def test_table_2_gives_percent_mean_and_standard_error():
    ratios = {
        "train": {"none": [0.18, 0.20, 0.16], "ls": [0.09, 0.09, 0.09], "cc_ls": [0.12]},
        "test": {"none": [0.25, 0.25], "ls": [0.2, 0.2], "cc_ls": [0.23, 0.23]},
    }
    markdown = tables.format_table2(ratios, ["none", "ls", "cc_ls"])
    lines = markdown.splitlines()
    assert lines[0] == "| Samples | w/o LS | with LS | CC-LS |"
    # Standard error of (18, 20, 16) is 2 / sqrt(3) = 1.15.
    assert lines[2] == "| Training | 18.0% (±1.2) | 9.0% (±0.0) | 12.0% |"
    assert lines[3].startswith("| Test | 25.0% (±0.0) | 20.0% (±0.0) | 23.0% (±0.0) |")


# ----------------------------------------------------------- models and the script


def test_analyze_models_from_an_ablation_run(tmp_path):
    """Projections of trained models: the plane of the templates, the three classes."""
    config = training.TrainingConfig(
        train_examples=150,
        test_examples=60,
        epochs=2,
        batch_size=30,
        width=0.25,
        tensorboard=False,
    )
    cells = grid.enumerate_cells([Regularizers(True, True, True)], ["ls"], [0])
    grid.run_grid(cells, config, str(tmp_path), printer=lambda line: None)
    import keras

    model = keras.saving.load_model(
        training.cell_paths(str(tmp_path), cells[0])["model"], compile=False
    )
    dataset = training.get_dataset(config)
    chosen = rep.sample_class_indices(dataset.y_test, (3, 5, 7), per_class=4)
    samples = {"test": (dataset.x_test[chosen], dataset.y_test[chosen])}
    result = rep.analyze_model(model, samples, (3, 5, 7))["test"]
    assert result["points"].shape == (12, 2)
    assert sorted(set(result["labels"].tolist())) == [3, 5, 7]
    z = rep.penultimate_activations(model, samples["test"][0])
    basis, origin = rep.template_plane_basis(rep.templates(model), (3, 5, 7))
    np.testing.assert_allclose(result["points"], (z - origin) @ basis.T, rtol=1e-5, atol=1e-5)
    assert result["ratio"] == pytest.approx(
        rep.within_between_ratio(result["points"], result["labels"])
    )
    assert result["ratio"] > 0 and result["ratio_full_space"] > 0


def test_representation_script_trains_tiny_models_and_writes_figure_and_table(tmp_path):
    output_dir = tmp_path / "representations"
    result = python(
        os.path.join(REPO, "examples", "label_smoothing_representations.py"),
        "--epochs=2",
        "--train_examples=150",
        "--test_examples=90",
        "--batch_size=30",
        "--width=0.25",
        "--seeds=0,1",
        "--samples_per_class=10",
        f"--output_dir={output_dir}",
        timeout=400,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
    )
    with open(output_dir / "figure1.png", "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    markdown = (output_dir / "table2.md").read_text()
    assert "| Samples | w/o LS | with LS | CC-LS |" in markdown
    assert "| Training |" in markdown and "| Test |" in markdown
    summary = json.loads((output_dir / "table2.json").read_text())
    assert summary["classes"] == [0, 1, 2]
    for split in ("train", "test"):
        for loss in ("none", "ls", "cc_ls"):
            values = summary["ratio_plane"][split][loss]
            assert len(values) == 2 and all(v > 0 for v in values)
    assert "Table 2" in result.stdout
    assert len(list((output_dir / "models").glob("*.keras"))) == 6
