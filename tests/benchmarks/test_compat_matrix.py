"""benchmarks/compat_matrix.py: it resumes from its --json_out record of the same commit."""

import importlib.util
import json
import pathlib
import subprocess

import pytest

from keras_cc_runs.run_directory import DamagedFileError

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compat_matrix():
    spec = importlib.util.spec_from_file_location(
        "compat_matrix", REPO / "benchmarks" / "compat_matrix.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sets_of_the_same_commit_and_tests_are_reused(compat_matrix, tmp_path):
    record = {"requirements": ["tensorflow==2.21.*", "tensorflow-probability==0.25.*"]}
    path = tmp_path / "matrix.json"
    tests = ["tests/test_losses.py"]
    path.write_text(json.dumps({"commit": "abc", "tests": tests, "sets": [record]}))
    done = compat_matrix._finished_sets(str(path), "abc", tests)
    assert done == {tuple(record["requirements"]): record}
    assert compat_matrix._finished_sets(str(path), "def", tests) == {}  # another commit
    assert compat_matrix._finished_sets(str(path), "abc", ["tests/test_metrics.py"]) == {}
    assert compat_matrix._finished_sets(str(path), None, tests) == {}  # the working tree
    assert compat_matrix._finished_sets(str(tmp_path / "none.json"), "abc", tests) == {}
    path.write_text('{"commit": "ab')
    with pytest.raises(DamagedFileError, match="matrix.json"):
        compat_matrix._finished_sets(str(path), "abc", tests)


def test_the_commit_of_a_ref(compat_matrix):
    head = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    if not head:
        pytest.skip("not a git checkout")
    assert compat_matrix._commit("HEAD") == head
    assert compat_matrix._commit(None) is None
