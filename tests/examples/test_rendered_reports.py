"""The committed report files are what the report commands render from the committed
records: Table 1 of both label-smoothing studies, the MinAtar students' Table 3 and the
guidance table. The README and docs/ copy their tables from these files
(tests/keras_cc_runs/test_rendered.py), so every results table there traces to records."""

import os
import pathlib
import shutil

import pytest
from interpreters import python

pytestmark = pytest.mark.slow  # the report commands, in fresh interpreters

ROOT = pathlib.Path(__file__).resolve().parents[2]
RESULTS = ROOT / "examples" / "results"
# Each study's directory and the flags of its report command (docs/experiments.md).
LABEL_SMOOTHING = {
    "digits-standard": [],
    "digits-paper": ["--protocol=paper", "--rows=all", "--seeds=0-4"],
}
# The MinAtar students' report commands (docs/atari.md): single-game and multi-task.
STUDENTS = RESULTS / "minatar_students"
ATARI_REPORTS = {
    "report": ("single", "MinAtar/Breakout,MinAtar/SpaceInvaders,MinAtar/Freeway"),
    "multitask_report": ("multitask", "MinAtar/Breakout,MinAtar/SpaceInvaders,MinAtar/Freeway"),
}


def _atari_report_flags(setting, games):
    return [
        f"--experts_dir={RESULTS / 'minatar_experts'}",
        f"--amn_dirs={STUDENTS / setting / 'ce'}",
        f"--cc_amn_dirs={STUDENTS / setting / 'cc'}",
        f"--published_dirs={STUDENTS / setting / 'cc_published'}",
        f"--games={games}",
        "--last_epochs=5",
    ]


def _run(script, *flags):
    python(ROOT / "examples" / script, *flags)


@pytest.mark.parametrize("study", sorted(LABEL_SMOOTHING))
def test_table1_is_the_report_of_the_committed_cells(study, tmp_path):
    committed = RESULTS / "label_smoothing_study" / study
    shutil.copytree(committed / "cells", tmp_path / "cells")
    _run(
        "label_smoothing_ablation.py",
        *LABEL_SMOOTHING[study],
        f"--output_dir={tmp_path}",
        "--report_only",
    )
    assert (tmp_path / "table1.md").read_text() == (committed / "table1.md").read_text()


@pytest.mark.parametrize("report", sorted(ATARI_REPORTS))
def test_table3_is_the_report_of_the_committed_student_runs(report, tmp_path):
    _run(
        "atari_report.py", *_atari_report_flags(*ATARI_REPORTS[report]), f"--output_dir={tmp_path}"
    )
    committed = STUDENTS / report / "table3.md"
    assert (tmp_path / "table3.md").read_text() == committed.read_text()


def test_the_guidance_table_is_rendered_from_its_records():
    probe = """
import csv, sys
from keras_cc_agents.actor_mimic import guidance
types = {"seed": int, "states": int, "game": str}
with open(sys.argv[1]) as file:
    rows = [
        guidance.GuidanceHealth(**{k: types.get(k, float)(v) for k, v in row.items()})
        for row in csv.DictReader(file)
    ]
sys.stdout.write(guidance.health_markdown(rows))
"""
    directory = RESULTS / "minatar_guidance"
    done = python(
        "-c",
        probe,
        directory / "guidance.csv",
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.stdout == (directory / "guidance.md").read_text()
