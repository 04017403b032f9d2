"""The scripts' command lines: --help (status 0) without TensorFlow, one-line errors naming
the flag."""

import os

import pytest
from interpreters import python

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPTS = (
    "train_dqn_expert.py",
    "train_dqn_experts.py",
    "train_actor_mimic.py",
    "train_actor_mimic_grid.py",
    "atari_report.py",
    "cc_demo.py",
    "cc_distillation.py",
    "divergence_correlations.py",
    "label_smoothing_ablation.py",
    "label_smoothing_representations.py",
)
BENCHMARKS = tuple(
    name
    for name in sorted(os.listdir(os.path.join(ROOT, "benchmarks")))
    if name.endswith(".py") and not name.startswith("_")
)
# Runs a script's --help in this interpreter, then says with which status it exited and
# whether TensorFlow was imported.
# The script's folder goes first on sys.path, as `python script.py` puts it.
HELP_PROBE = (
    "import os, runpy, sys\n"
    "sys.argv = [sys.argv[1], '--help']\n"
    "sys.path.insert(0, os.path.dirname(sys.argv[0]))\n"
    "status = None\n"
    "try:\n"
    "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
    "except SystemExit as done:\n"
    "    status = done.code\n"
    "print('STATUS', status, 'TENSORFLOW', 'tensorflow' in sys.modules)\n"
)


def _path(script):
    """``examples/<script>``, or ``benchmarks/<name>`` for a script named so."""
    folder, _, name = script.rpartition("/")
    return os.path.join(ROOT, folder or "examples", name)


def _run(script, *args, cwd):
    """The script's completed process, whatever its exit status (the tests check it)."""
    return python(_path(script), *args, expect=None, cwd=cwd, timeout=300)


@pytest.mark.parametrize("script", SCRIPTS + tuple(f"benchmarks/{b}" for b in BENCHMARKS))
def test_help_imports_no_tensorflow(script, tmp_path):
    done = python("-c", HELP_PROBE, _path(script), expect=None, cwd=tmp_path, timeout=120)
    assert "--" in done.stdout and "error" not in done.stderr, done.stderr[-2000:]
    assert done.stdout.count("\n") > 3, done.stdout  # the usage, not one line
    assert done.stdout.rstrip().endswith("STATUS 0 TENSORFLOW False"), done.stdout[-500:]


@pytest.mark.parametrize(
    "script, args, message",
    [
        (
            "train_dqn_expert.py",
            ["--game=Pongg"],
            "--game: Unknown game 'Pongg'. Did you mean Pong?",
        ),
        ("train_dqn_expert.py", ["--total_frames=0"], "--total_frames must be >= 1, got 0."),
        ("train_dqn_expert.py", ["--output_dir=a_file"], "--output_dir='a_file' is a file"),
        (
            "train_dqn_expert.py",
            ["--output_dir=none", "--export_only"],
            "--export_only: none holds no run",
        ),
        (
            "train_dqn_experts.py",
            ["--max_parallel=0"],
            "flag --max_parallel=0: 0 is not a positive",
        ),
        ("train_dqn_experts.py", ["--output_dir=a_file"], "--output_dir='a_file' is a file"),
        ("train_actor_mimic.py", ["--temperature=0"], "--temperature must be finite and > 0"),
        ("train_actor_mimic.py", ["--experts_dir=."], "no expert for Pong"),
        (
            "train_actor_mimic_grid.py",
            ["--losses=ce,mse"],
            "--losses must name some of ce, cc, cc_published; got ['ce', 'mse'].",
        ),
        ("train_actor_mimic_grid.py", ["--seeds=0,0"], "--seeds repeats a seed: 0,0."),
        ("atari_report.py", ["--window=0"], "flag --window=0: 0 is not a positive integer"),
        ("cc_distillation.py", ["--epochs=0"], "flag --epochs=0: 0 is not a positive integer"),
        ("cc_distillation.py", ["--temperature=0"], "--temperature must be > 0"),
        ("cc_demo.py", ["--epochs=-1"], "flag --epochs=-1: --epochs must be >= 1, got -1."),
        ("divergence_correlations.py", ["--temperatures=0,1"], "--temperatures must be finite"),
        ("divergence_correlations.py", ["--logits=no.npy"], "--logits: 'no.npy' is not a file."),
        (
            "label_smoothing_ablation.py",
            ["--seeds=0,x"],
            "--seeds: 'x' is not an integer or range a-b.",
        ),
        ("label_smoothing_ablation.py", ["--losses=ls,lss"], "--losses: unknown ['lss']"),
        ("label_smoothing_ablation.py", ["--workers=0"], "--workers must be >= 1, got 0."),
        (
            "label_smoothing_ablation.py",
            ["--rows=none,bogus"],
            "--rows: unknown regularizer(s) ['bogus'] in row 'bogus'",
        ),
        (
            "label_smoothing_representations.py",
            ["--row=dropout+bogus"],
            "--row: unknown regularizer(s) ['bogus']",
        ),
        (
            "benchmarks/actor_mimic_throughput.py",
            ["--games=Pong,Pongg"],
            "--games: Unknown game 'Pongg'. Did you mean Pong?",
        ),
        (
            "benchmarks/divergence_cost.py",
            ["--dtype=float16"],
            "flag --dtype=float16",
        ),
        ("label_smoothing_ablation.py", ["--output_dir=a_file"], "--output_dir='a_file' is a file"),
        (
            "label_smoothing_representations.py",
            ["--classes=0,1"],
            "--classes needs three classes; received [0, 1].",
        ),
        (
            "label_smoothing_representations.py",
            ["--ablation_dir=."],
            "--ablation_dir=. has no config.json",
        ),
    ],
)
def test_a_bad_flag_is_one_line_naming_it(script, args, message, tmp_path):
    (tmp_path / "a_file").write_text("")
    done = _run(script, *args, cwd=tmp_path)
    assert done.returncode == 2
    name = os.path.basename(script)
    assert done.stderr.startswith(f"{name}: error: ") and message in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr[-2000:]


@pytest.mark.parametrize(
    "script", ["label_smoothing_ablation.py", "label_smoothing_representations.py"]
)
def test_a_second_runner_on_a_results_directory_refuses_in_one_line(script, tmp_path):
    from keras_cc_runs import run_directory

    output_dir = tmp_path / "run"
    with run_directory.DirectoryLock(str(output_dir)):
        done = _run(script, f"--output_dir={output_dir}", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"{script}: error: {output_dir} is in use by process ")
    assert done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert not (output_dir / "cells").exists()
