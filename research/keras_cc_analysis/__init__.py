"""The correlations paper's study: temperature sweeps, rank correlations, Shepard diagrams.

``examples/divergence_correlations.py`` runs the whole study from the command line.
Needs the ``analysis`` extra: ``pip install -e . -e "./research[analysis]"`` in a clone of keras-cc.
"""

from keras_cc_runs.extras import require_extra

require_extra(__name__, "analysis", ("scipy", "sklearn", "matplotlib"))

from keras_cc_analysis.io import (
    digits_logits,
    load_logits,
    save_figure_atomic,
    write_json_atomic,
    write_text_atomic,
)
from keras_cc_analysis.plots import isotonic_fit, roughness_figure, series_figure, shepard_grid
from keras_cc_analysis.rank_correlation import average_ranks, spearman_rho
from keras_cc_analysis.roughness import (
    mean_roughness,
    roughness_curve,
    temperature_for_roughness,
)
from keras_cc_analysis.sweep import (
    COMPARED,
    LOGIT_SPACE,
    REFERENCE,
    TemperatureResult,
    correlation_sweep,
    one_against_many_divergences,
    random_pair_divergences,
    random_pairs,
    rho_table_markdown,
)

__all__ = [
    "COMPARED",
    "LOGIT_SPACE",
    "REFERENCE",
    "TemperatureResult",
    "average_ranks",
    "correlation_sweep",
    "digits_logits",
    "isotonic_fit",
    "load_logits",
    "mean_roughness",
    "one_against_many_divergences",
    "random_pair_divergences",
    "random_pairs",
    "rho_table_markdown",
    "roughness_curve",
    "roughness_figure",
    "save_figure_atomic",
    "series_figure",
    "shepard_grid",
    "spearman_rho",
    "temperature_for_roughness",
    "write_json_atomic",
    "write_text_atomic",
]
