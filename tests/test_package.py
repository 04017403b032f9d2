"""The packages as released: the library's wheel and sdist, which ``twine check`` accepts
and which hold ``keras_cc`` alone; the research wheel (``research/pyproject.toml``) with the
research packages under their own names; and the README's quick start run from the
library's wheel installed in a fresh virtual environment (no network: the dependencies
come from this environment)."""

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
# Every top-level name each wheel installs; each is the project's own. The library's
# packages, then the research distribution's, by the repository folder that holds them.
LIBRARY = {"keras_cc": "keras_cc"}
RESEARCH = {
    "research/keras_cc_experiments": "keras_cc_experiments",
    "research/keras_cc_analysis": "keras_cc_analysis",
    "research/keras_cc_runs": "keras_cc_runs",
    "agents": "keras_cc_agents",
}

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
def source(tmp_path_factory):
    """A copy of the source tree as a clean clone holds it."""
    source = tmp_path_factory.mktemp("source")
    for name in _source_files():
        target = source / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return source


def _build(source, out, *options):
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", *options, "--outdir", str(out),
         str(source)],
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def dist(source, tmp_path_factory):
    """``python -m build`` of the library: the sdist, then a wheel from it."""
    return _build(source, tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="module")
def research_wheel(source, tmp_path_factory):
    """The research distribution's wheel, built from ``research/`` of the source tree."""
    return _one(
        _build(source / "research", tmp_path_factory.mktemp("research"), "--wheel"), "*.whl"
    )


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


def _packages(wheel):
    """The top-level names and the ``__init__.py`` files of a wheel."""
    with zipfile.ZipFile(wheel) as archive:
        names = [name for name in archive.namelist() if ".dist-info/" not in name]
    return {name.split("/")[0] for name in names}, {n for n in names if n.endswith("__init__.py")}


def _expected_packages(folders):
    """The ``__init__.py`` files a wheel installs for repository ``folders``
    (folder -> import name)."""
    return {
        str(pathlib.Path(name, init.relative_to(ROOT / folder)))
        for folder, name in folders.items()
        for init in (ROOT / folder).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def test_the_library_wheel_installs_keras_cc_alone(dist):
    top_level, packages = _packages(_one(dist, "*.whl"))
    assert top_level == set(LIBRARY.values())
    assert packages == _expected_packages(LIBRARY)
    assert "keras_cc/ops/sampler.py" in _packages_files(_one(dist, "*.whl"))


def test_the_research_wheel_installs_its_packages_under_their_own_names(research_wheel):
    top_level, packages = _packages(research_wheel)
    assert top_level == set(RESEARCH.values())
    assert packages == _expected_packages(RESEARCH)
    # The repository's agents/ folder installs as keras_cc_agents, never as `agents`.
    assert "keras_cc_agents/dqn/trainer.py" in _packages_files(research_wheel)


def _packages_files(wheel):
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


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
