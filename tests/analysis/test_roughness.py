"""keras_cc_analysis.roughness: the measure of roughness against temperature."""

import numpy as np
import pytest
import scipy.special

import keras_cc_analysis as analysis


def test_temperature_for_roughness_reaches_the_target(rng):
    logits = rng.normal(scale=4.0, size=(50, 30))
    for target in (1e-2, 1e-6):
        t = analysis.temperature_for_roughness(logits, target)
        assert analysis.mean_roughness(logits, t) == pytest.approx(target, rel=1e-4)
    curve = analysis.roughness_curve(logits, [0.5, 1, 10, 100])
    assert np.all(np.diff(curve) < 0)
    expected = np.mean(((scipy.special.softmax(logits / 10, axis=-1) - 1 / 30) ** 2).sum(-1))
    assert curve[2] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("target", [0.0, -1.0, 0.99])
def test_temperature_for_roughness_rejects_unreachable_targets(rng, target):
    with pytest.raises(ValueError, match="target roughness"):
        analysis.temperature_for_roughness(rng.normal(size=(5, 10)), target)
