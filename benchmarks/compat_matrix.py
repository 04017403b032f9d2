"""Compatibility matrix: the core tests in one fresh virtual environment per version set.

For each TensorFlow x TensorFlow Probability pair (and each extra set given), it creates a
virtual environment, installs that TensorFlow, the matching tf-keras, that TFP, and the
rest of keras-cc's declared dependencies and ``test-core`` extra (a requirement that a set
pins replaces the declared one of the same name), installs keras-cc itself without
dependencies, runs ``pip check`` (does the set lie inside the declared ranges?) and the
core tests: those of ``keras_cc.ops``, ``.distributions``, ``.losses`` and ``.metrics``,
plus ``tests/test_environment.py`` (the import behaviour, which depends on the TFP version).
It prints one line per set as it goes, then the matrix as a Markdown table and a JSON record.

Usage (stdlib only; any Python 3.10-3.12 with ``venv``; needs the package index):

    python benchmarks/compat_matrix.py
    python benchmarks/compat_matrix.py --tensorflow 2.20 2.21 --tfp 0.23 0.24 0.25 \\
        --extra_set "2.21:0.25:numpy==2.4.*" --json_out compat.json
    python benchmarks/compat_matrix.py --render compat.json   # the tables again

With ``--json_out`` the record is rewritten after every set, and a rerun with the same
``--ref`` commit, tests and file skips the sets it already holds: an interrupted matrix
resumes.

The tests run on a snapshot of the working tree, copied once at the start (``--ref HEAD``:
of a commit instead). Each virtual
environment lives in a temporary folder (``--workdir``) and is deleted after its set
unless ``--keep`` is given. Wheels come from pip's cache after the first download.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import time

from keras_cc_runs import run_directory

REPO = pathlib.Path(__file__).resolve().parents[1]
CORE_TESTS = (
    "tests/test_cc_ops.py",
    "tests/test_continuous_categorical.py",
    "tests/test_divergences.py",
    "tests/test_losses.py",
    "tests/test_metrics.py",
    "tests/test_environment.py",
)
# Not copied into the snapshot.
IGNORED = (".git", ".venv", "venv", "runs", "outputs", "build", "dist", "__pycache__")
IGNORED_SUFFIXES = (".egg-info", "_cache", ".hypothesis")
REPORTED = ("tensorflow", "tensorflow-probability", "tf-keras", "keras", "numpy")


def _name(requirement: str) -> str:
    """Normalized distribution name of a requirement string (PEP 503)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else requirement


def declared_requirements(pyproject: pathlib.Path, extra: str) -> list[str]:
    """The base dependencies and those of `extra` (self-references resolved) from pyproject."""
    import tomllib

    project = tomllib.loads(pyproject.read_text())["project"]
    extras = project.get("optional-dependencies", {})
    requirements, pending, seen = list(project["dependencies"]), [extra], set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for requirement in extras[name]:
            nested = re.fullmatch(r"keras-cc\[(.+)\]", requirement.replace(" ", ""))
            if nested:
                pending.extend(nested.group(1).split(","))
            else:
                requirements.append(requirement)
    return requirements


def version_set(tensorflow: str, tfp: str, pins: list[str]) -> list[str]:
    return [
        f"tensorflow=={tensorflow}.*",
        f"tf-keras=={tensorflow}.*",
        f"tensorflow-probability=={tfp}.*",
        *pins,
    ]


def _commit(ref: str | None) -> str | None:
    """The commit `ref` names (None for the working tree, which has none)."""
    if not ref:
        return None
    return subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--verify", f"{ref}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _finished_sets(path: str | None, commit: str | None, tests) -> dict[tuple, dict]:
    """The sets a previous run of the same commit and tests recorded in `path`, by their
    requirements (none for the working tree: it may have changed since)."""
    if not path or commit is None or not os.path.exists(path):
        return {}
    previous = run_directory.read_json(path)
    if previous.get("commit") != commit or previous.get("tests") != tests:
        return {}
    return {tuple(r["requirements"]): r for r in previous.get("sets", []) if "requirements" in r}


def snapshot(destination: pathlib.Path, ref: str | None = None) -> pathlib.Path:
    """Copies the working tree (no caches or environments), or commit `ref` of it."""
    if ref:
        destination.mkdir(parents=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", ref],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(destination)], input=archive, check=True)
        return destination

    def ignore(_directory, names):
        return [n for n in names if n in IGNORED or n.endswith(IGNORED_SUFFIXES)]

    shutil.copytree(REPO, destination, ignore=ignore)
    return destination


def _run(command, log, **kwargs):
    """Runs `command`, appending its output to `log`; returns (returncode, output)."""
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    output = result.stdout + result.stderr
    with open(log, "a") as handle:
        handle.write(f"$ {' '.join(map(str, command))}  ({time.monotonic() - started:.0f} s)\n")
        handle.write(output + "\n")
    return result.returncode, output


def _pip_error(output: str) -> str:
    """The line of pip's output that says why it failed."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if "ResolutionImpossible" in line or "No matching distribution" in line:
            return line
    for line in lines:
        if line.startswith("ERROR:"):
            return line
    return lines[-1] if lines else "pip failed"


def _pytest_summary(output: str) -> dict[str, int]:
    """Counts from pytest's last summary line, e.g. ``3 failed, 97 passed, 2 skipped``."""
    lines = [line for line in output.splitlines() if re.search(r"\d+ (passed|failed|error)", line)]
    counts = {}
    for count, kind in re.findall(
        r"(\d+) (passed|failed|errors?|skipped)", lines[-1] if lines else ""
    ):
        counts[kind.rstrip("s") if kind.startswith("error") else kind] = int(count)
    return counts


def measure(
    python: str,
    source: pathlib.Path,
    workdir: pathlib.Path,
    requirements: list[str],
    declared: list[str],
    tests: list[str],
    keep: bool,
    timeout_s: int,
) -> dict:
    """Builds one virtual environment for `requirements` and runs `tests` in it."""
    label = re.sub(r"[^A-Za-z0-9.]+", "-", "_".join(requirements))[:80]
    venv = workdir / f"venv-{label}"
    log = workdir / f"{label}.log"
    record = {"requirements": requirements, "log": str(log)}
    started = time.monotonic()
    try:
        code, output = _run([python, "-m", "venv", str(venv)], log)
        if code:
            return {**record, "status": "no venv", "detail": output.strip()[-300:]}
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
        pinned = {_name(r) for r in requirements}
        wanted = requirements + [r for r in declared if _name(r) not in pinned]
        code, output = _run([*pip, "install", "-q", *wanted], log)
        if code:
            return {**record, "status": "does not resolve", "detail": _pip_error(output)}
        code, output = _run([*pip, "install", "-q", "--no-deps", str(source)], log, cwd=workdir)
        if code:
            return {**record, "status": "keras-cc did not install", "detail": _pip_error(output)}
        code, output = _run([*pip, "check"], log)
        record["declared"] = code == 0
        record["pip_check"] = [] if code == 0 else output.strip().splitlines()
        code, output = _run([*pip, "list", "--format=json"], log)
        installed = {_name(p["name"]): p["version"] for p in json.loads(output or "[]")}
        record["versions"] = {name: installed.get(name) for name in REPORTED}
        environment = {
            k: v
            for k, v in os.environ.items()
            if k not in ("TF_USE_LEGACY_KERAS", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
        }
        environment.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        test_started = time.monotonic()
        try:
            code, output = _run(
                [
                    str(venv / "bin" / "python"),
                    "-m",
                    "pytest",
                    "-q",
                    "-p",
                    "no:cacheprovider",
                    *tests,
                ],
                log,
                cwd=source,
                env=environment,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            return {**record, "status": f"tests timed out after {timeout_s} s"}
        record["test_seconds"] = round(time.monotonic() - test_started)
        record["tests"] = _pytest_summary(output)
        failed = record["tests"].get("failed", 0) + record["tests"].get("error", 0)
        record["status"] = "pass" if code == 0 and not failed else "FAIL"
        if record["status"] == "FAIL":
            record["failures"] = [
                line for line in output.splitlines() if line.startswith(("FAILED", "ERROR"))
            ][:20]
        return record
    finally:
        record["seconds"] = round(time.monotonic() - started)
        if not keep:
            shutil.rmtree(venv, ignore_errors=True)


def _cell(record: dict) -> str:
    if record["status"] not in ("pass", "FAIL"):
        return record["status"]
    tests = record["tests"]
    failed = tests.get("failed", 0) + tests.get("error", 0)
    text = f"{record['status']}: {tests.get('passed', 0)} passed"
    text += f", {failed} failed" if failed else ""
    text += f", {tests['skipped']} skipped" if tests.get("skipped") else ""
    return text + ("" if record.get("declared", True) else "; outside declared ranges")


def markdown(records: list[dict]) -> str:
    """One row per set: pinned and resolved versions, and the outcome."""
    lines = [
        "| TensorFlow | TFP | tf-keras | Keras | NumPy | core tests |",
        "|---|---|---|---|---|---|",
    ]
    for record in records:
        versions = record.get("versions", {})
        pins = {_name(r): r.split("==", 1)[-1] for r in record["requirements"]}
        lines.append(
            "| "
            + " | ".join(
                [
                    versions.get("tensorflow") or pins.get("tensorflow", "?"),
                    versions.get("tensorflow-probability")
                    or pins.get("tensorflow-probability", "?"),
                    versions.get("tf-keras") or "-",
                    versions.get("keras") or "-",
                    versions.get("numpy") or pins.get("numpy", "-"),
                    _cell(record),
                ]
            )
            + " |"
        )
    return "\n".join(lines)


def grid(records: list[dict]) -> str:
    """TensorFlow rows x TFP columns, for the sets that pin nothing else."""
    cells = {}
    for record in records:
        pins = {_name(r): r.split("==", 1)[-1].rstrip(".*") for r in record["requirements"]}
        if len(pins) == 3:
            cells[pins["tensorflow"], pins["tensorflow-probability"]] = _cell(record)
    tensorflows = sorted({tf for tf, _ in cells}, key=_release)
    tfps = sorted({tfp for _, tfp in cells}, key=_release)
    lines = [
        "| TensorFlow \\ TFP | " + " | ".join(tfps) + " |",
        "|---" * (len(tfps) + 1) + "|",
    ]
    for tf in tensorflows:
        row = [cells.get((tf, tfp), "not run") for tfp in tfps]
        lines.append(f"| {tf} | " + " | ".join(row) + " |")
    return "\n".join(lines)


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def render(result: dict) -> None:
    """Prints the grid and the per-set table of a result record."""
    print(grid(result["sets"]))
    print()
    print(markdown(result["sets"]))


def _extra_set(text: str) -> tuple[str, str, list[str]]:
    """``"TF:TFP[:REQ,...]"`` -> (TF, TFP, [REQ, ...]) (argparse's type for --extra_set)."""
    tf, _, rest = text.partition(":")
    tfp, _, pins = rest.partition(":")
    if not re.fullmatch(r"\d+\.\d+", tf) or not re.fullmatch(r"\d+\.\d+", tfp):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not TF:TFP[:REQ,...] with minor versions, e.g. '2.21:0.25'"
        )
    return tf, tfp, [p for p in pins.split(",") if p]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tensorflow", nargs="+", default=["2.20", "2.21"], metavar="X.Y")
    parser.add_argument("--tfp", nargs="+", default=["0.23", "0.24", "0.25"], metavar="0.Y")
    parser.add_argument(
        "--extra_set",
        action="append",
        type=_extra_set,
        default=[],
        metavar="TF:TFP[:REQ,...]",
        help='one more set, e.g. "2.21:0.25:numpy==2.4.*" (repeatable)',
    )
    parser.add_argument("--tests", nargs="+", default=list(CORE_TESTS))
    parser.add_argument("--ref", default=None, help="test this commit, not the working tree")
    parser.add_argument("--python", default=sys.executable, help="interpreter for the venvs")
    parser.add_argument("--workdir", default=None, help="default: a new folder under TMPDIR")
    parser.add_argument("--keep", action="store_true", help="keep the venvs and the snapshot")
    parser.add_argument("--timeout_s", type=int, default=3600, help="per set, for the tests")
    parser.add_argument("--json_out", default=None)
    parser.add_argument("--render", default=None, help="print the tables of a --json_out file")
    args = parser.parse_args(argv)
    if args.render:
        try:
            record = run_directory.read_json(args.render)
            record["sets"]  # noqa: B018 (a matrix record has its sets)
        except (OSError, ValueError, KeyError, TypeError) as error:  # missing, damaged, other
            parser.error(f"--render {args.render}: cannot be read ({error!r})")
        render(record)
        return 0

    sets = [(tf, tfp, []) for tf in args.tensorflow for tfp in args.tfp]
    sets.extend(args.extra_set)

    workdir = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="keras-cc-compat-"))
    workdir.mkdir(parents=True, exist_ok=True)
    source = snapshot(workdir / "source", args.ref)
    declared = declared_requirements(source / "pyproject.toml", "test-core")
    print(
        f"snapshot of {REPO} ({args.ref or 'working tree'}) in {source}; logs in {workdir}",
        flush=True,
    )

    commit = _commit(args.ref)
    done = _finished_sets(args.json_out, commit, args.tests)
    python_version = subprocess.run(
        [args.python, "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    records = []  # the sets so far: written with the record after each one
    result = {"commit": commit, "python": python_version, "tests": args.tests, "sets": records}
    try:
        for tf, tfp, pins in sets:
            requirements = version_set(tf, tfp, pins)
            print(f"{' '.join(requirements)} ...", end=" ", flush=True)
            if tuple(requirements) in done:
                records.append(done[tuple(requirements)])
                print(f"{_cell(records[-1])} (measured before, in {args.json_out})", flush=True)
                continue
            record = measure(
                args.python,
                source,
                workdir,
                requirements,
                declared,
                args.tests,
                args.keep,
                args.timeout_s,
            )
            records.append(record)
            if args.json_out:
                run_directory.write_json(args.json_out, result)
            print(f"{_cell(record)} ({record['seconds']} s)", flush=True)
            for line in record.get("failures", []) + [record.get("detail", "")]:
                if line:
                    print(f"    {line}", flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(source, ignore_errors=True)

    print()
    render(result)
    print("\nJSON:")
    print(json.dumps(result, indent=2))
    if args.json_out:
        run_directory.write_json(args.json_out, result)
    return 0 if all(r["status"] == "pass" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
