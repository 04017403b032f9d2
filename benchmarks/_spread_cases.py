"""The logit-spread sweep shared by the benchmarks (plain NumPy, no framework import).

Batches of unit-normal logits rescaled to a fixed spread (max - min) in every row, at the
shapes and spreads of the CC loss' cost-against-spread sweep (README, "Measured").
"""

import numpy as np

SWEEP_SHAPES = ((128, 10), (128, 100), (128, 1000), (4096, 10))
SWEEP_SPREADS = (1.0, 20.0, 150.0, 1e3, 1e4)


def spread_arrays(batch, num_classes, spread, seed=0):
    """Unit-normal logits rescaled to the given spread (max - min) in every row, and
    Dirichlet(2) targets: float32 NumPy arrays [batch, num_classes]."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((batch, num_classes))
    z = (z - z.min(-1, keepdims=True)) / np.ptp(z, axis=-1, keepdims=True) * spread
    targets = rng.dirichlet(np.full(num_classes, 2.0), size=batch)
    return z.astype(np.float32), targets.astype(np.float32)
