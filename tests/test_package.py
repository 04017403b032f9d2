"""The package as released: a wheel and an sdist that ``twine check`` accepts, the wheel's
top-level import names, and the README's quick start run from the wheel installed in a
fresh virtual environment (no network: the dependencies come from this environment)."""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Every top-level name the wheel installs; each is the project's own.
TOP_LEVEL_NAMES = {"keras_cc", "keras_cc_agents", "keras_cc_runs"}

pytestmark = pytest.mark.slow


def _source_files():
    """The files a clean clone holds: tracked and untracked, not ignored."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """``python -m build`` of a copy of the source tree: the sdist, then a wheel from it."""
    source = tmp_path_factory.mktemp("source")
    for name in _source_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    out = tmp_path_factory.mktemp("dist")
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def _one(dist, pattern):
    found = sorted(dist.glob(pattern))
    assert len(found) == 1, found
    return found[0]


def test_twine_accepts_the_wheel_and_the_sdist(dist):
    files = [_one(dist, "*.whl"), _one(dist, "*.tar.gz")]
    done = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("PASSED") == 2, done.stdout


def test_the_wheel_installs_only_its_own_top_level_names(dist):
    with zipfile.ZipFile(_one(dist, "*.whl")) as wheel:
        names = wheel.namelist()
    top_level = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert top_level == TOP_LEVEL_NAMES
    # The repository's agents/ folder installs as keras_cc_agents, never as `agents`.
    assert "keras_cc_agents/dqn/trainer.py" in names
    assert not any(name.startswith(("agents/", "tests/", "examples/")) for name in names)


def test_the_wheel_holds_every_package_of_the_tree(dist):
    with zipfile.ZipFile(_one(dist, "*.whl")) as wheel:
        installed = {name for name in wheel.namelist() if name.endswith("__init__.py")}
    folders = {
        "keras_cc": "keras_cc",
        "keras_cc_runs": "keras_cc_runs",
        "agents": "keras_cc_agents",
    }
    expected = {
        str(pathlib.Path(folders[init.parts[0]], *init.parts[1:]))
        for folder in folders
        for init in (p.relative_to(ROOT) for p in (ROOT / folder).rglob("__init__.py"))
        if "__pycache__" not in init.parts
    }
    assert installed == expected


def _readme_snippet(heading):
    """The first ```python block after ``heading`` in the README."""
    text = (ROOT / "README.md").read_text()
    after = text[text.index(heading) :]
    return re.search(r"```python\n(.*?)```", after, re.S).group(1)


def test_the_quick_start_runs_from_the_installed_wheel(dist, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    # The wheel alone goes into the new environment; its dependencies are this one's (a
    # path line, so this environment's own .pth files, the editable install among them,
    # are not processed there).
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", purelib, str(_one(dist, "*.whl"))],
        check=True,
        timeout=300,
    )  # fmt: skip
    pathlib.Path(purelib, "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "work"
    work.mkdir()
    script = _readme_snippet("### The Keras loss") + (
        "\nimport keras_cc, numpy\n"
        "print('FROM', keras_cc.__file__)\n"
        "print('VERSION', keras_cc.__version__)\n"
        "print('LOSS', numpy.isfinite(history.history['loss']).all())\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run(
        [str(python), "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"FROM {purelib}/keras_cc/__init__.py" in done.stdout, done.stdout
    assert "LOSS True" in done.stdout
    assert (work / "m.keras").exists()
