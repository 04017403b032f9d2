"""Each research package's extra installs what the research packages it imports need: a
package that imports another's modules declares that package's extra among its own
(research/pyproject.toml), so ``pip install "./research[<extra>]"`` runs its scripts."""

import pathlib
import re

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11 and later

ROOT = pathlib.Path(__file__).resolve().parents[2]
# Each research package, its folder and the extra that installs what it needs.
PACKAGES = {
    "keras_cc_experiments": (ROOT / "research" / "keras_cc_experiments", "experiments"),
    "keras_cc_analysis": (ROOT / "research" / "keras_cc_analysis", "analysis"),
    "keras_cc_agents": (ROOT / "agents", "rl"),
}
IMPORT = re.compile(r"^\s*(?:from|import) (keras_cc_(?:experiments|analysis|agents))\b", re.M)


def _extras():
    project = tomllib.loads((ROOT / "research" / "pyproject.toml").read_text())["project"]
    return project["name"], project["optional-dependencies"]


def _requirements(extra, name, extras, seen=()):
    """The requirements of ``extra``, its references to other extras of the project
    (``name[a,b]``) expanded."""
    found = set()
    for requirement in extras[extra]:
        match = re.fullmatch(rf"{re.escape(name)}\[(.*)\]", requirement)
        if match is None:
            found.add(requirement)
            continue
        for other in match.group(1).split(","):
            if other not in seen:
                found |= _requirements(other.strip(), name, extras, (*seen, extra))
    return found


def _imported_packages(folder, own):
    return {
        package
        for path in folder.rglob("*.py")
        for package in IMPORT.findall(path.read_text())
        if package != own
    }


def test_every_imported_research_package_has_its_extra_installed():
    name, extras = _extras()
    for package, (folder, extra) in PACKAGES.items():
        installed = _requirements(extra, name, extras)
        for imported in _imported_packages(folder, package):
            needed = _requirements(PACKAGES[imported][1], name, extras)
            assert needed <= installed, (
                f"{package} imports {imported}, but the {extra!r} extra lacks "
                f"{sorted(needed - installed)} of the {PACKAGES[imported][1]!r} extra"
            )


def test_the_agents_import_the_experiments_package():
    """The case this guards: the published CC-AMN arm (keras_cc_experiments.published)."""
    folder, _ = PACKAGES["keras_cc_agents"]
    assert "keras_cc_experiments" in _imported_packages(folder, "keras_cc_agents")
