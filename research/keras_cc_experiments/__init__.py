"""The label-smoothing experiments of the CC paper (section 3): data, CNN, grid, analysis.

* :mod:`~keras_cc_experiments.data`: scikit-learn's bundled digits; CIFAR-10 from disk.
* :mod:`~keras_cc_experiments.model`: the ablation CNN, the three losses, input pipelines.
* :mod:`~keras_cc_experiments.cells`: a grid cell, its settings and where its files live.
* :mod:`~keras_cc_experiments.training`: one cell trained and recorded, with the callbacks
  of :mod:`~keras_cc_experiments.callbacks` and the checkpoints of
  :mod:`~keras_cc_experiments.checkpoints`.
* :mod:`~keras_cc_experiments.grid`: the grid in-process, in worker processes or on Ray.
* :mod:`~keras_cc_experiments.tables` and :mod:`~keras_cc_experiments.figures`: Tables 1
  and 2, and the figures.
* :mod:`~keras_cc_experiments.representations`: template-plane projections and cluster
  sums of squares (Table 2, Figure 1).

The scripts ``examples/label_smoothing_ablation.py`` and
``examples/label_smoothing_representations.py`` drive them. Needs the ``experiments`` extra:
``pip install -e . -e "./research[experiments]"`` in a clone of keras-cc.
"""

from keras_cc_runs.extras import require_extra

require_extra(__name__, "experiments", ("absl", "sklearn", "matplotlib", "tensorboard"))

from keras_cc_experiments.cells import Cell, TrainingConfig
from keras_cc_experiments.data import (
    DatasetNotFoundError,
    ImageDataset,
    load_cifar10,
    load_dataset,
    load_digits,
)
from keras_cc_experiments.grid import ConfigMismatchError, enumerate_cells, run_grid
from keras_cc_experiments.model import (
    LOSS_LABELS,
    LOSSES,
    Regularizers,
    build_ablation_cnn,
    make_loss,
    paper_rows,
)
from keras_cc_experiments.tables import format_table1, format_table2, summarize_grid
from keras_cc_experiments.training import run_cell

__all__ = [
    "LOSSES",
    "LOSS_LABELS",
    "Cell",
    "ConfigMismatchError",
    "DatasetNotFoundError",
    "ImageDataset",
    "Regularizers",
    "TrainingConfig",
    "build_ablation_cnn",
    "enumerate_cells",
    "format_table1",
    "format_table2",
    "load_cifar10",
    "load_dataset",
    "load_digits",
    "make_loss",
    "paper_rows",
    "run_cell",
    "run_grid",
    "summarize_grid",
]
