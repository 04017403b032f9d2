"""keras_cc_analysis.sweep: divergences over temperatures and their rank correlations."""

import json

import numpy as np
import pytest
import scipy.special
import scipy.stats

import keras_cc_analysis as analysis


def test_sweep_values_and_correlations(rng):
    logits = rng.normal(scale=3.0, size=(120, 50))
    results = analysis.correlation_sweep(logits, (1.0, 100.0), (0, 7), num_pairs=300, seed=1)
    assert [r.temperature for r in results] == [1.0, 100.0]
    low, high = results
    # Not a finding but an identity: against one fixed query q, KLD(q : p) = CED(q : p) - H(q),
    # a shift of CED, so their rank correlation is 1 by construction.
    for result in results:
        q = scipy.special.softmax(logits[0] / result.temperature)
        entropy = -(q * np.log(q)).sum()
        samples = result.one_against_many
        np.testing.assert_allclose(samples["KLD"], samples["CED"] - entropy, atol=1e-12)
        assert result.rho_one_against_many["KLD"] == [1.0, 1.0]
    # the stored samples are the divergences of query 0 against every other row
    p = scipy.special.softmax(logits / 100.0, axis=-1)
    np.testing.assert_allclose(
        high.one_against_many["TRI"],
        0.5 * ((p[0] - p[1:]) ** 2 / (p[0] + p[1:])).sum(-1),
        rtol=1e-10,
    )
    np.testing.assert_allclose(
        high.one_against_many["EUC"], ((logits[0] - logits[1:]) ** 2).sum(-1), rtol=1e-10
    )
    np.testing.assert_allclose(
        high.one_against_many["CED"], -(p[0] * np.log(p[1:])).sum(-1), rtol=1e-12
    )
    for name in analysis.COMPARED:
        assert high.rho_random_pairs[name] == pytest.approx(
            scipy.stats.spearmanr(high.pairs["CED"], high.pairs[name]).statistic, abs=1e-12
        )
    # the paper's finding: near-perfect CED/TRI and CED/JSD correlation at high temperature
    assert min(high.rho_one_against_many["TRI"]) > 0.999
    assert min(high.rho_one_against_many["JSD"]) > 0.999
    assert high.mean_roughness < low.mean_roughness
    table = analysis.rho_table_markdown(results)
    assert "| t | MR | KLD | JSD | TRI | EUC(z) | COS(z) |" in table
    assert table.count("\n| 100 |") == 2 and "300 random pairs" in table
    json.dumps([r.summary() for r in results])  # JSON-ready


def test_sweep_rejects_bad_input(rng):
    with pytest.raises(ValueError, match="matrix"):
        analysis.correlation_sweep(rng.normal(size=(10,)))
    with pytest.raises(ValueError, match="temperature"):
        analysis.correlation_sweep(rng.normal(size=(10, 3)), temperatures=(1.0, 0.0))
    with pytest.raises(ValueError, match="query_index"):
        analysis.one_against_many_divergences(rng.normal(size=(10, 3)), 1.0, 10)
    pairs = analysis.random_pairs(5, 1000, rng)
    assert np.all(pairs[:, 0] != pairs[:, 1]) and pairs.max() == 4 and pairs.min() == 0
