"""Figures of the label-smoothing experiments (matplotlib, written as PNG files)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from keras_cc_experiments import model as model_lib
from keras_cc_experiments.tables import EntryStats
from keras_cc_runs.run_directory import write_figure

__all__ = ["plot_ablation", "plot_curves", "plot_representations", "row_label"]

LOSS_COLORS = {
    "none": "tab:gray",
    "ls": "tab:blue",
    "cc_ls": "tab:red",
    "cc_ls_published": "tab:orange",
}
# Figure 1 of the CC paper colours its three classes blue, orange and pink.
CLASS_COLORS = ("tab:blue", "tab:orange", "tab:pink")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def row_label(row: model_lib.Regularizers) -> str:
    names = [
        n
        for n, on in (("dropout", row.dropout), ("WD", row.weight_decay), ("BN", row.batch_norm))
        if on
    ]
    return " + ".join(names) if names else "none"


def _save(fig, path: str) -> str:
    """Writes ``fig`` as a PNG to ``path`` atomically; returns ``path``."""
    write_figure(fig, path, dpi=130, bbox_inches="tight")
    return path


def plot_ablation(
    summary: Mapping[tuple[str, str], EntryStats],
    rows: Sequence[model_lib.Regularizers],
    losses: Sequence[str],
    path: str,
    title: str = "",
) -> str:
    """Table 1 as a dot plot: one line per row, mean ± std per loss, seeds as faint dots."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(rows) + 1.6))
    offsets = np.linspace(-0.22, 0.22, len(losses)) if len(losses) > 1 else [0.0]
    for offset, loss in zip(offsets, losses):
        for i, row in enumerate(rows):
            entry = summary[(row.key, loss)]
            if not entry.values:
                continue
            y = i + offset
            ax.scatter(
                entry.values,
                [y] * len(entry.values),
                s=10,
                alpha=0.35,
                color=LOSS_COLORS[loss],
                linewidths=0,
            )
            err = entry.std if not math.isnan(entry.std) else 0.0
            ax.errorbar(
                entry.mean, y, xerr=err, fmt="o", color=LOSS_COLORS[loss], capsize=3, markersize=5
            )
    handles = [
        plt.Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            color=LOSS_COLORS[loss],
            label=model_lib.LOSS_LABELS[loss],
        )
        for loss in losses
    ]
    ax.legend(handles=handles, loc="best", fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([row_label(r) for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel("test accuracy (%)  — mean ± std over seeds, dots: seeds")
    ax.grid(axis="x", alpha=0.3)
    if title:
        ax.set_title(title, fontsize=10)
    path = _save(fig, path)
    plt.close(fig)
    return path


def plot_curves(
    records: Mapping[str, dict],
    rows: Sequence[model_lib.Regularizers],
    losses: Sequence[str],
    seeds: Sequence[int],
    path: str,
    curve: str = "test_accuracy",
    label: str = "test accuracy (%)",
    scale: float = 100.0,
) -> str:
    """A per-epoch curve of the records (default: test accuracy in %), one panel per row:
    the mean over seeds as a line, and ± one sample standard deviation over seeds as a
    shaded band. ``scale`` multiplies the recorded values; ``label`` names the y-axis.

    Every panel has the whole range of its curves, the first epochs included, on one
    y-axis shared by all panels, each with its label. A legend above the panels names the
    losses and the shading, and says over which seeds. Losses without the curve are
    left out.
    """
    plt = _pyplot()
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    columns = min(4, len(rows))
    panels = math.ceil(len(rows) / columns)
    fig, axes = plt.subplots(
        panels,
        columns,
        figsize=(3.3 * columns, 2.7 * panels + 0.6),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
    low, high, seed_counts, shown = math.inf, -math.inf, set(), []
    for ax, row in zip(axes.flat, rows):
        for loss in losses:
            series = []
            for seed in seeds:
                record = records.get(f"{row.key}__{loss}__seed{seed}")
                if record and record.get("status") == "done" and curve in record["curves"]:
                    values = [math.nan if v is None else v for v in record["curves"][curve]]
                    series.append(scale * np.asarray(values, dtype=float))
            if not series:
                continue
            if loss not in shown:
                shown.append(loss)
            seed_counts.add(len(series))
            length = min(len(s) for s in series)
            stack = np.stack([s[:length] for s in series])
            epochs = np.arange(1, length + 1)
            mean = stack.mean(0)
            std = stack.std(0, ddof=1) if len(series) > 1 else np.zeros(length)
            ax.plot(epochs, mean, color=LOSS_COLORS[loss], linewidth=1.4)
            ax.fill_between(
                epochs, mean - std, mean + std, color=LOSS_COLORS[loss], alpha=0.18, linewidth=0
            )
            low = min(low, float(np.nanmin(mean - std)), float(np.nanmin(stack)))
            high = max(high, float(np.nanmax(mean + std)), float(np.nanmax(stack)))
        ax.set_title(row_label(row), fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel(label, fontsize=8)
        ax.tick_params(labelsize=8, labelleft=True)
    for ax in axes.flat[len(rows) :]:
        ax.axis("off")
    if high > low and scale == 100.0:  # percentages: all of every curve, from a multiple of 5
        axes[0, 0].set_ylim(max(0.0, 5.0 * math.floor(low / 5.0)), min(100.0, high) + 1.0)
    elif high > low:
        margin = 0.03 * (high - low)
        axes[0, 0].set_ylim(low - margin, high + margin)
    handles = [
        plt.Line2D([], [], color=LOSS_COLORS[loss], label=model_lib.LOSS_LABELS[loss])
        for loss in shown
    ]
    if seed_counts - {1}:  # a band needs two seeds
        counts = "/".join(str(n) for n in sorted(seed_counts))
        handles.append(Patch(color="0.5", alpha=0.3, label=f"shading: ± 1 std over {counts} seeds"))
    fig.legend(
        handles=handles,
        loc="outside upper center",
        ncol=len(handles),
        fontsize=8,
        frameon=False,
        title=f"lines: mean {label.split(' (')[0]} over seeds {list(seeds)}",
        title_fontsize=8,
    )
    path = _save(fig, path)
    plt.close(fig)
    return path


def plot_representations(
    projections: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]],
    losses: Sequence[str],
    class_names: Sequence[str],
    classes: Sequence[int],
    path: str,
    title: str = "",
) -> str:
    """CC paper Figure 1: rows train/test, one column per loss, points coloured by class.

    ``projections[loss][split]`` is ``(points [N, 2], labels [N])``.
    """
    plt = _pyplot()
    splits = [s for s in ("train", "test") if all(s in projections[x] for x in losses)]
    fig, axes = plt.subplots(
        len(splits), len(losses), figsize=(3.3 * len(losses), 3.1 * len(splits)), squeeze=False
    )
    for j, loss in enumerate(losses):
        for i, split in enumerate(splits):
            ax = axes[i, j]
            points, labels = projections[loss][split]
            for color, label in zip(CLASS_COLORS, classes):
                members = points[labels == label]
                ax.scatter(
                    members[:, 0],
                    members[:, 1],
                    s=5,
                    alpha=0.6,
                    color=color,
                    linewidths=0,
                    label=class_names[label],
                )
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(model_lib.LOSS_LABELS[loss], fontsize=10)
            if j == 0:
                ax.set_ylabel("training" if split == "train" else "test", fontsize=10)
    axes[0, -1].legend(fontsize=7, markerscale=2, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path = _save(fig, path)
    plt.close(fig)
    return path
