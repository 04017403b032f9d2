"""Figures of the correlations study: Shepard diagrams, roughness, the TRI_v series.

Built on ``matplotlib.figure.Figure`` (no pyplot state, any backend) and written
atomically as PNG files. matplotlib and scikit-learn are imported when a figure is drawn,
so importing :mod:`keras_cc` stays light.
"""

import numpy as np

from keras_cc.ops import divergences as dv
from keras_cc.ops import softmax as softmax_ops
from keras_cc_analysis.io import save_figure_atomic
from keras_cc_analysis.rank_correlation import spearman_rho
from keras_cc_analysis.sweep import LOGIT_SPACE, REFERENCE

__all__ = ["isotonic_fit", "shepard_grid", "roughness_figure", "series_figure"]


def isotonic_fit(x, y, increasing=True):
    """The isotonic regression of ``y`` on ``x`` (Kruskal's Shepard-diagram fit).

    Returns ``(x_sorted, fitted)`` ready to draw as a step line.
    """
    from sklearn.isotonic import IsotonicRegression

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    model = IsotonicRegression(increasing=increasing, out_of_bounds="clip")
    fitted = model.fit_transform(x[order], y[order])
    return x[order], fitted


def _figure(**kwargs):
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _label(name):
    return f"{name} (logits)" if name in LOGIT_SPACE else name


def shepard_grid(path, results, attribute, compared, max_points=2000, seed=0, title=""):
    """A grid of Shepard diagrams: one row per compared divergence, one column per temperature.

    Each panel scatters CED (x) against the divergence (y) for the samples stored in
    ``getattr(result, attribute)`` (``"one_against_many"`` or ``"pairs"``), draws the
    isotonic regression of y on x, and prints Spearman's rho over all samples.
    """
    rng = np.random.default_rng(seed)
    rows, cols = len(compared), len(results)
    figure = _figure(figsize=(3.2 * cols, 2.6 * rows))
    # A fixed layout: constrained layout costs more than all the drawing.
    figure.subplots_adjust(
        left=0.6 / (3.2 * cols) + 0.04,
        right=0.98,
        bottom=0.45 / (2.6 * rows) + 0.02,
        top=1 - (0.6 + (0.35 if title else 0.0)) / (2.6 * rows),
        wspace=0.35,
        hspace=0.45,
    )
    axes = figure.subplots(rows, cols, squeeze=False)
    for c, result in enumerate(results):
        samples = getattr(result, attribute)
        x_all = samples[REFERENCE]
        shown = np.arange(x_all.size)
        if x_all.size > max_points:
            shown = rng.choice(x_all.size, size=max_points, replace=False)
        for r, name in enumerate(compared):
            ax = axes[r, c]
            y_all = samples[name]
            rho = spearman_rho(x_all, y_all)
            ax.scatter(x_all[shown], y_all[shown], s=2, alpha=0.35, color="tab:blue", lw=0)
            fit_x, fit_y = isotonic_fit(x_all, y_all, increasing=not rho < 0)
            ax.plot(fit_x, fit_y, color="tab:red", lw=1.2)
            if r == 0:
                ax.set_title(f"t = {result.temperature:g}", fontsize=9, pad=14)
            ax.text(
                0.97,
                0.04,
                f"ρ = {rho:.4f}",
                transform=ax.transAxes,
                ha="right",
                va="bottom",
                fontsize=8,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8},
            )
            ax.tick_params(labelsize=7)
            ax.locator_params(nbins=4)
            ax.ticklabel_format(style="sci", scilimits=(-3, 4), useOffset=False)
            if r == rows - 1:
                ax.set_xlabel(REFERENCE, fontsize=8)
            if c == 0:
                ax.set_ylabel(_label(name), fontsize=8)
    if title:
        figure.suptitle(title, fontsize=10)
    save_figure_atomic(figure, path)


def roughness_figure(path, temperatures, roughness, target=None, target_temperature=None):
    """Mean measure of roughness against temperature, log-log (the paper's Figure 6)."""
    figure = _figure(figsize=(5.0, 3.6))
    figure.subplots_adjust(left=0.15, right=0.97, bottom=0.14, top=0.96)
    ax = figure.subplots()
    ax.loglog(temperatures, roughness, marker=".", color="tab:blue", label="mean MR")
    if target is not None:
        ax.axhline(target, color="tab:gray", ls="--", lw=1, label=f"target MR = {target:g}")
    if target_temperature is not None:
        ax.axvline(
            target_temperature,
            color="tab:red",
            ls=":",
            lw=1,
            label=f"t = {target_temperature:.4g}",
        )
    ax.set_xlabel("softmax temperature t")
    ax.set_ylabel("measure of roughness (eq. 17)")
    ax.grid(True, which="both", lw=0.3)
    ax.legend(fontsize=8)
    save_figure_atomic(figure, path)


def series_figure(path, logits_q, logits_p, temperatures=(1.0, 2.0, 5.0, 10.0), num_terms=10):
    """The TRI_v series of eq. 28 between two logit vectors (the paper's Figure 7).

    Per temperature: ``TRI_v`` (eq. 27), the reduced terms ``TRI_v / (2v(2v-1))``, their
    running sum, and the JSD it converges to, all in the base-2 [0, 1] normalization
    (divided by ``2 ln 2``).
    """
    figure = _figure(figsize=(3.2 * len(temperatures), 3.0))
    figure.subplots_adjust(
        left=0.5 / (3.2 * len(temperatures)) + 0.02, right=0.98, bottom=0.15, top=0.9, wspace=0.3
    )
    axes = figure.subplots(1, len(temperatures), squeeze=False)[0]
    orders = np.arange(1, num_terms + 1)
    for ax, t in zip(axes, temperatures, strict=True):
        q = softmax_ops.tempered_softmax(np.asarray(logits_q, np.float64), t)
        p = softmax_ops.tempered_softmax(np.asarray(logits_p, np.float64), t)
        terms = dv.jensen_shannon_series_terms(q, p, num_terms).numpy()
        raw = terms * 2 * orders * (2 * orders - 1)
        jsd = float(dv.jensen_shannon_divergence(q, p).numpy())
        ax.semilogy(orders, raw, marker=".", label="TRI_v / (2 ln 2)")
        ax.semilogy(orders, terms, marker=".", label="reduced: / (2v(2v-1))")
        ax.semilogy(orders, np.cumsum(terms), marker=".", label="sum of reduced terms")
        ax.axhline(jsd, color="black", ls="--", lw=1, label="JSD (eq. 4)")
        ax.set_title(f"t = {t:g}", fontsize=9)
        ax.set_xlabel("v", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0].legend(fontsize=7)
    save_figure_atomic(figure, path)
