"""keras_cc_analysis.io: logits in, the default digits logits."""

import numpy as np
import pytest

import keras_cc_analysis as analysis


def test_load_logits_formats(tmp_path, rng):
    logits = rng.normal(size=(6, 4))
    np.save(tmp_path / "a.npy", logits)
    np.savez(tmp_path / "b.npz", logits=logits, labels=np.arange(6))
    np.savez(tmp_path / "c.npz", features=logits)
    np.savez(tmp_path / "d.npz", x=logits, y=logits)
    for name, key in (("a.npy", None), ("b.npz", None), ("c.npz", None), ("d.npz", "y")):
        np.testing.assert_array_equal(analysis.load_logits(tmp_path / name, key), logits)
    with pytest.raises(ValueError, match="several arrays"):
        analysis.load_logits(tmp_path / "d.npz")
    with pytest.raises(ValueError, match="no array 'z'"):
        analysis.load_logits(tmp_path / "d.npz", "z")
    np.save(tmp_path / "bad.npy", np.array([[1.0, np.nan], [0, 0], [1, 1]]))
    with pytest.raises(ValueError, match="NaN"):
        analysis.load_logits(tmp_path / "bad.npy")
    np.save(tmp_path / "flat.npy", np.ones(5))
    with pytest.raises(ValueError, match="matrix"):
        analysis.load_logits(tmp_path / "flat.npy")


def test_digits_logits_come_from_a_working_classifier():
    logits, accuracy = analysis.digits_logits(seed=0)
    assert logits.shape[1] == 10 and logits.shape[0] > 800
    assert accuracy > 0.9
