"""examples/divergence_correlations.py as a user runs it."""

import importlib.util
import json
import os
import pathlib

import numpy as np
import pytest
import scipy.special
import scipy.stats
from interpreters import python

from keras_cc.ops import divergences as dv

# The slow lane (the correlation study script): `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "divergence_correlations.py"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def rng():
    return np.random.default_rng(3)


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
    completed = python(SCRIPT, f"--output_dir={out}", env=env, cwd=tmp_path)
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
