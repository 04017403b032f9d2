"""The documentation: the MkDocs site builds in strict mode, a broken link fails it, and the
README keeps the test command that CI reads from it.

The site is built by static analysis (mkdocstrings reads the source with griffe), so these
tests import neither keras_cc nor TensorFlow and take seconds.
"""

import pathlib
import re
import shutil
import subprocess
import sys

import pytest

# The slow lane (the documentation site built): `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

ROOT = pathlib.Path(__file__).resolve().parents[1]
TEST_COMMAND = (
    'pip install -e . -e "./research[test]" '
    '&& python -m pytest -q -m "not slow" && python -m pytest -q -m slow'
)

pytest.importorskip("mkdocs", reason="the docs extra is not installed")
pytest.importorskip("mkdocstrings", reason="the docs extra is not installed")


def _build(project_dir, site_dir):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--config-file",
            str(project_dir / "mkdocs.yml"),
            "--site-dir",
            str(site_dir),
        ],
        cwd=project_dir,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _copy_project(tmp_path):
    """mkdocs.yml, docs/ and the package sources the API reference reads."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy2(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", project / "docs")
    shutil.copytree(
        ROOT / "keras_cc", project / "keras_cc", ignore=shutil.ignore_patterns("__pycache__")
    )
    return project


def test_site_builds_in_strict_mode(tmp_path):
    site = tmp_path / "site"
    result = _build(ROOT, site)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (site / "index.html").is_file()
    for page in ("losses", "metrics", "distributions", "ops", "distillation", "keras_cc"):
        assert (site / "api" / f"{page}.html").is_file(), page
    # The API reference is generated from the docstrings.
    api = (site / "api" / "losses.html").read_text(encoding="utf-8")
    assert 'id="keras_cc.losses.CCLabelSmoothing"' in api
    # Offline: no page loads a script, stylesheet or font from the network.
    for html in site.rglob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert 'src="http' not in text, html
        assert 'rel="stylesheet" href="http' not in text, html
        assert "fonts.googleapis" not in text, html


@pytest.mark.parametrize(
    "target", ["no-such-page.md", "losses.md#no-such-anchor", "api/ops.md#no-such-function"]
)
def test_broken_link_fails_the_strict_build(tmp_path, target):
    project = _copy_project(tmp_path)
    page = project / "docs" / "distribution.md"
    text = page.read_text(encoding="utf-8")
    page.write_text(text + f"\nSee [this]({target}).\n", encoding="utf-8")
    result = _build(project, tmp_path / "site")
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Aborted" in output and target.split("#")[-1] in output, output


def test_copied_project_builds(tmp_path):
    # The failure above is the broken link's, not the copy's.
    project = _copy_project(tmp_path)
    result = _build(project, tmp_path / "site")
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_is_short_and_keeps_the_test_command():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) < 300, len(lines)
    assert "<!-- test-command -->" in lines
    after = lines[lines.index("<!-- test-command -->") + 1 :]
    # .ci/run takes the first non-blank line after the marker that does not start with `.
    command = next(line for line in after if line.strip() and not line.startswith("`"))
    assert command == TEST_COMMAND
    assert after[0].startswith("```")


def _project_version():
    """``keras_cc.__version__``, the one place the version lives (pyproject reads it)."""
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'dynamic = ["version"]' in pyproject
    assert 'version = { attr = "keras_cc.__version__" }' in pyproject
    text = (ROOT / "keras_cc" / "__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    assert match, "keras_cc/__init__.py declares no __version__"
    return match.group(1)


def test_citation_and_changelog_match_the_version():
    yaml = pytest.importorskip("yaml")
    version = _project_version()
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text(encoding="utf-8"))
    assert citation["cff-version"] == "1.2.0"
    assert str(citation["version"]) == version
    assert len(citation["references"]) >= 2
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert "## [Unreleased]" in changelog
    assert f"## [{version}]" in changelog
