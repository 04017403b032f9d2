"""The main job's figures: what curves.png shows and says."""

import numpy as np
import pytest

from keras_cc_experiments import figures
from keras_cc_experiments.model import Regularizers

pytest.importorskip("matplotlib")


def _records(rows, losses, seeds):
    records = {}
    for r, row in enumerate(rows):
        for k, loss in enumerate(losses):
            for seed in seeds:
                # Epoch 1 far below the rest, as on the digits.
                curve = [0.12 + 0.01 * seed, 0.80, 0.90 + 0.01 * k, 0.95 + 0.005 * (seed + r)]
                records[f"{row.key}__{loss}__seed{seed}"] = {
                    "status": "done",
                    "final_test_accuracy": curve[-1],
                    "curves": {"test_accuracy": curve},
                }
    return records


def test_curves_show_every_epoch_label_every_panel_and_explain_the_shading(tmp_path, monkeypatch):
    saved = {}
    save = figures._save

    def keep(fig, path):
        saved["figure"] = fig
        return save(fig, path)

    monkeypatch.setattr(figures, "_save", keep)
    rows = [Regularizers(d, w, True) for d in (True, False) for w in (True, False)]
    rows.append(Regularizers(False, False, False))
    losses, seeds = ["none", "ls", "cc_ls"], [0, 1, 2]
    path = figures.plot_curves(
        _records(rows, losses, seeds), rows, losses, seeds, str(tmp_path / "curves.png")
    )
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    figure = saved["figure"]
    panels = [ax for ax in figure.axes if ax.get_visible() and ax.axison]
    assert len(panels) == len(rows)
    lowest_point = 100 * min(0.12 + 0.01 * s for s in seeds)
    for ax in panels:
        assert ax.get_ylabel() == "test accuracy (%)"
        low, high = ax.get_ylim()
        # Nothing cut off: the first epoch (and the band around it) is inside the axes.
        band = ax.collections[0].get_paths()[0].vertices[:, 1]
        assert low <= min(lowest_point, band.min()) and high >= 96.5
    texts = [t.get_text() for legend in figure.legends for t in legend.get_texts()]
    assert texts[:3] == ["w/o LS", "with LS", "CC-LS"]
    assert "shading: ± 1 std over 3 seeds" in texts
    title = figure.legends[0].get_title().get_text()
    assert title == "lines: mean test accuracy over seeds [0, 1, 2]"
    # The band is ± one (sample) standard deviation of the seeds around their mean.
    first = 100 * np.array([0.12, 0.13, 0.14])
    band = panels[0].collections[0].get_paths()[0].vertices[:, 1]
    assert np.isclose(band.min(), first.mean() - first.std(ddof=1))
