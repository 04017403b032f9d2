"""Learned representations of label-smoothed classifiers (CC paper, Table 2 and Figure 1).

Following Müller et al. (2019), the template ``w_k`` of class ``k`` is the column of the
last layer's kernel such that ``f(x)_k ∝ exp(w_kᵀ z)`` (CC paper eq. 8), ``z`` the
penultimate activations. For three chosen classes the plane through their three
templates gets an orthonormal basis from the templates' differences; penultimate
activations of examples of those classes are projected onto it. Table 2 measures how
tight the projected clusters are: within-cluster over between-cluster sum of squares.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "analyze_model",
    "cluster_sum_of_squares",
    "penultimate_activations",
    "project_onto_plane",
    "sample_class_indices",
    "template_plane_basis",
    "templates",
    "within_between_ratio",
]


def template_plane_basis(
    kernel: np.ndarray, classes: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal basis ``[2, d]`` and origin ``[d]`` of the plane through 3 templates.

    Args:
        kernel: the last layer's kernel ``[d, K]``; column ``k`` is the template ``w_k``.
        classes: three distinct class indices ``(a, b, c)``.

    The basis is Gram–Schmidt on ``w_b - w_a`` and ``w_c - w_a``; the origin is the
    templates' centroid.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2:
        raise ValueError(f"kernel must be [d, K]; received shape {kernel.shape}.")
    classes = [int(c) for c in classes]
    if len(classes) != 3 or len(set(classes)) != 3:
        raise ValueError(f"classes must be three distinct class indices; received {classes}.")
    if min(classes) < 0 or max(classes) >= kernel.shape[1]:
        raise ValueError(f"classes {classes} out of range for {kernel.shape[1]} classes.")
    w_a, w_b, w_c = (kernel[:, c] for c in classes)
    first = w_b - w_a
    scale = max(np.linalg.norm(w_a), np.linalg.norm(w_b), np.linalg.norm(w_c), 1e-300)
    if np.linalg.norm(first) <= 1e-12 * scale:
        raise ValueError(f"Templates of classes {classes[:2]} coincide; no plane through them.")
    first = first / np.linalg.norm(first)
    second = (w_c - w_a) - np.dot(w_c - w_a, first) * first
    if np.linalg.norm(second) <= 1e-12 * scale:
        raise ValueError(f"The templates of classes {classes} are collinear; no unique plane.")
    second = second / np.linalg.norm(second)
    return np.stack([first, second]), (w_a + w_b + w_c) / 3.0


def project_onto_plane(
    activations: np.ndarray, basis: np.ndarray, origin: np.ndarray | None = None
) -> np.ndarray:
    """Coordinates ``[N, 2]`` of the orthogonal projection of ``activations`` ``[N, d]``."""
    activations = np.asarray(activations, dtype=np.float64)
    if activations.ndim != 2 or activations.shape[1] != basis.shape[1]:
        raise ValueError(
            f"activations must be [N, {basis.shape[1]}]; received shape {activations.shape}."
        )
    if origin is not None:
        activations = activations - origin
    return activations @ basis.T


def cluster_sum_of_squares(points: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Within-cluster and between-cluster sums of squares of ``points`` grouped by label.

    ``W = Σ_k Σ_{i∈k} |x_i − μ_k|²`` and ``B = Σ_k n_k |μ_k − μ|²``, so ``W + B`` is the
    total sum of squares about the overall mean ``μ``.
    """
    points = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels)
    if points.ndim != 2 or labels.shape != (points.shape[0],):
        raise ValueError(
            f"points must be [N, m] with one label each; received points {points.shape}, "
            f"labels {labels.shape}."
        )
    overall = points.mean(axis=0)
    within = between = 0.0
    for label in np.unique(labels):
        members = points[labels == label]
        centroid = members.mean(axis=0)
        within += float(((members - centroid) ** 2).sum())
        between += float(len(members) * ((centroid - overall) ** 2).sum())
    return within, between


def within_between_ratio(points: np.ndarray, labels: np.ndarray) -> float:
    """``W / B`` of :func:`cluster_sum_of_squares` (CC paper Table 2)."""
    if len(np.unique(labels)) < 2:
        raise ValueError("The ratio needs at least two clusters.")
    within, between = cluster_sum_of_squares(points, labels)
    if between <= 0:
        raise ValueError("All cluster centroids coincide; the between-cluster sum is 0.")
    return within / between


def sample_class_indices(
    labels: np.ndarray, classes: Sequence[int], per_class: int | None, seed: int = 0
) -> np.ndarray:
    """Sorted indices of up to ``per_class`` random examples of each class in ``classes``."""
    rng = np.random.default_rng(seed)
    chosen = []
    for label in classes:
        members = np.flatnonzero(np.asarray(labels) == label)
        if members.size == 0:
            raise ValueError(f"No examples of class {label} in the data.")
        if per_class is not None and members.size > per_class:
            members = rng.choice(members, size=per_class, replace=False)
        chosen.append(members)
    return np.sort(np.concatenate(chosen))


def templates(model) -> np.ndarray:
    """The kernel ``[d, K]`` of the model's ``"logits"`` layer (columns are templates)."""
    return np.asarray(model.get_layer("logits").kernel)


def penultimate_activations(model, images: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """Activations ``z`` of the model's ``"penultimate"`` layer (inference mode)."""
    import keras

    extractor = keras.Model(model.inputs[0], model.get_layer("penultimate").output)
    # Eager calls: one model per seed and loss would each trace a predict function.
    batches = [
        np.asarray(extractor(np.asarray(images[i : i + batch_size], np.float32), training=False))
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(batches) if batches else np.zeros((0,) + extractor.output.shape[1:])


def analyze_model(
    model, samples: dict[str, tuple[np.ndarray, np.ndarray]], classes: Sequence[int]
) -> dict[str, dict]:
    """Template-plane projections and W/B ratios of one model, per split.

    Args:
        model: a trained ablation CNN (layers ``"penultimate"`` and ``"logits"``).
        samples: ``{split: (images, labels)}`` holding examples of ``classes`` only.
        classes: the three classes whose templates span the plane.

    Returns ``{split: {"points", "labels", "ratio", "ratio_full_space"}}``; ``ratio`` is
    W/B of the 2-D projections (CC paper Table 2), ``ratio_full_space`` of the
    penultimate activations themselves.
    """
    basis, origin = template_plane_basis(templates(model), classes)
    out = {}
    for split, (images, labels) in samples.items():
        activations = penultimate_activations(model, images)
        points = project_onto_plane(activations, basis, origin)
        out[split] = {
            "points": points,
            "labels": np.asarray(labels),
            "ratio": within_between_ratio(points, labels),
            "ratio_full_space": within_between_ratio(activations, labels),
        }
    return out
