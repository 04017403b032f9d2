"""keras_cc.analysis and examples/divergence_correlations.py."""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import scipy.special
import scipy.stats

import keras_cc  # noqa: F401  (configures TensorFlow's Keras routing first)
from keras_cc import analysis
from keras_cc.ops import divergences as dv

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "examples" / "divergence_correlations.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def rng():
    return np.random.default_rng(3)


# ------------------------------------------------------------------- rank correlation


@pytest.mark.parametrize("ties", [False, True])
def test_spearman_equals_scipy(rng, ties):
    for _ in range(20):
        n = int(rng.integers(2, 60))
        if ties:
            x, y = rng.integers(0, 5, n).astype(float), rng.integers(0, 4, n).astype(float)
        else:
            x, y = rng.normal(size=n), rng.normal(size=n)
        np.testing.assert_allclose(
            analysis.average_ranks(x), scipy.stats.rankdata(x, method="average")
        )
        expected = scipy.stats.spearmanr(x, y).statistic
        got = analysis.spearman_rho(x, y)
        if np.isnan(expected):
            assert np.isnan(got)
        else:
            assert got == pytest.approx(expected, abs=1e-12)


def test_spearman_without_ties_is_eq8(rng):
    x, y = rng.normal(size=40), rng.normal(size=40)
    d = scipy.stats.rankdata(x) - scipy.stats.rankdata(y)
    eq8 = 1 - 6 * np.sum(d**2) / (40**3 - 40)
    assert analysis.spearman_rho(x, y) == pytest.approx(eq8, abs=1e-12)
    assert analysis.spearman_rho(x, x**3) == 1.0
    assert analysis.spearman_rho(x, -x) == -1.0


def test_spearman_rejects_bad_input():
    with pytest.raises(ValueError, match="shapes"):
        analysis.spearman_rho([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        analysis.spearman_rho([1, np.nan, 3], [1, 2, 3])
    assert np.isnan(analysis.spearman_rho([1, 1, 1], [1, 2, 3]))


# ------------------------------------------------------------------- roughness


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


# ------------------------------------------------------------------- sweep


def test_sweep_values_and_correlations(rng):
    logits = rng.normal(scale=3.0, size=(120, 50))
    results = analysis.correlation_sweep(logits, (1.0, 100.0), (0, 7), num_pairs=300, seed=1)
    assert [r.temperature for r in results] == [1.0, 100.0]
    low, high = results
    # CED and KLD against one fixed query differ by H(q): perfectly correlated (Section 5)
    assert low.rho_one_against_many["KLD"] == [1.0, 1.0]
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


def test_isotonic_fit_is_monotone(rng):
    x = rng.normal(size=200)
    y = x + rng.normal(scale=0.5, size=200)
    fx, fy = analysis.isotonic_fit(x, y)
    assert np.all(np.diff(fx) >= 0) and np.all(np.diff(fy) >= -1e-12)
    assert np.mean(fy) == pytest.approx(np.mean(y))  # isotonic regression preserves the mean


# ------------------------------------------------------------------- loading


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


# ------------------------------------------------------------------- the script


def _check_outputs(output_dir, temperatures):
    output_dir = pathlib.Path(output_dir)
    for name in (
        "shepard_one_against_many.png",
        "shepard_random_pairs.png",
        "roughness.png",
        "series.png",
    ):
        data = (output_dir / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 10_000, name
    table = (output_dir / "rho_table.md").read_text()
    for t in temperatures:
        assert table.count(f"\n| {t} |") == 2
    results = json.loads((output_dir / "results.json").read_text())
    assert [r["temperature"] for r in results["results"]] == [float(t) for t in temperatures]
    assert not [p for p in os.listdir(output_dir) if p.startswith(".tmp-")]
    return table, results


def test_script_runs_end_to_end_on_its_default(tmp_path):
    out = tmp_path / "default"
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    completed = subprocess.run(
        [sys.executable, str(SCRIPT), f"--output_dir={out}"],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    table, results = _check_outputs(out, ["1", "10", "100"])
    assert "Temperature reaching mean measure of roughness 1e-06" in table
    assert results["temperature_for_target_roughness"] > 1
    assert results["source"]["accuracy"] > 0.9
    assert "| 100 |" in completed.stdout


@pytest.fixture(scope="module")
def script_module():
    spec = importlib.util.spec_from_file_location("divergence_correlations", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_on_user_logits(tmp_path, rng, script_module):
    from absl import flags

    logits = rng.normal(scale=6.0, size=(300, 40))
    np.savez(tmp_path / "mine.npz", logits=logits)
    out = tmp_path / "mine"
    flags.FLAGS.unparse_flags()
    flags.FLAGS(
        [
            "prog",
            f"--logits={tmp_path / 'mine.npz'}",
            "--temperatures=2,50",
            "--num_queries=2",
            "--num_pairs=200",
            "--max_rows=250",
            f"--output_dir={out}",
        ]
    )
    try:
        script_module.run(str(out))
    finally:
        flags.FLAGS.unparse_flags()
    table, results = _check_outputs(out, ["2", "50"])
    assert results["num_vectors"] == 250 and len(results["rows_used"]) == 250
    rows = np.array(results["rows_used"])
    first = results["results"][0]
    query = first["query_indices"][0]
    # rho recomputed independently from the rows the script used
    p = scipy.special.softmax(logits[rows] / 2.0, axis=-1)
    others = np.delete(np.arange(250), query)
    ced = dv.cross_entropy_divergence(p[query], p[others]).numpy()
    tri = dv.triangular_divergence(p[query], p[others]).numpy()
    assert first["rho_one_against_many"]["TRI"][0] == pytest.approx(
        scipy.stats.spearmanr(ced, tri).statistic, abs=1e-12
    )


def test_script_reports_bad_flags(tmp_path, script_module):
    from absl import flags

    from keras_cc_runs import cli

    flags.FLAGS.unparse_flags()
    flags.FLAGS(["prog", "--temperatures=1,-3", f"--output_dir={tmp_path}"])
    try:
        with pytest.raises(cli.ScriptError, match="temperatures"):
            script_module.run(str(tmp_path))
    finally:
        flags.FLAGS.unparse_flags()
