"""Results tables in the README and docs/ are the report files' tables, copied verbatim."""

import os
import pathlib

import pytest
from interpreters import python

from keras_cc_runs import rendered

ROOT = pathlib.Path(__file__).resolve().parents[2]
REPORT = "| a | b |\n|---|---|\n| 1 | 2 |\n"
SECOND = "| c |\n|---|\n| 3 |\n"


def _documents():
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def test_every_rendered_block_of_the_readme_and_docs_equals_its_report_table():
    stale = {str(p.relative_to(ROOT)): rendered.stale(str(p), str(ROOT)) for p in _documents()}
    assert {path: labels for path, labels in stale.items() if labels} == {}, (
        "run python examples/render_docs.py"
    )


def test_the_results_tables_of_the_docs_are_rendered():
    # The studies whose records are committed show their tables from the report files.
    sources = {b.source for p in _documents() for b in rendered.blocks(p.read_text())}
    assert {
        "examples/results/label_smoothing_study/digits-paper/table1.md",
        "examples/results/label_smoothing_study/digits-standard/table1.md",
        "examples/results/minatar_guidance/guidance.md",
        "examples/results/minatar_students/report/table3.md",
    } <= sources


def _document(tmp_path, body):
    (tmp_path / "report.md").write_text(f"Caption.\n\n{REPORT}\nMore.\n\n{SECOND}")
    document = tmp_path / "doc.md"
    document.write_text(
        "Intro.\n\n"
        f"<!-- rendered from report.md -->\n{body}<!-- end rendered -->\n\n"
        "Between.\n\n"
        "<!-- rendered from report.md, table 2 -->\n<!-- end rendered -->\n"
    )
    return document


def test_a_markdown_table_is_a_run_of_lines_that_start_with_a_pipe():
    text = "x\n| a |\n| b |\ny\n\n| c |"
    assert rendered.markdown_tables(text) == ["| a |\n| b |\n", "| c |\n"]


def test_a_stale_block_is_named_and_refresh_rewrites_it(tmp_path):
    document = _document(tmp_path, "\n| a | b |\n|---|---|\n| 1 | 9 |\n\n")
    root = str(tmp_path)
    assert rendered.stale(str(document), root) == ["report.md, table 1", "report.md, table 2"]
    assert rendered.refresh(str(document), root)
    assert document.read_text() == (
        "Intro.\n\n"
        f"<!-- rendered from report.md -->\n\n{REPORT}\n<!-- end rendered -->\n\n"
        "Between.\n\n"
        f"<!-- rendered from report.md, table 2 -->\n\n{SECOND}\n<!-- end rendered -->\n"
    )
    assert rendered.stale(str(document), root) == []
    assert not rendered.refresh(str(document), root)


def test_a_missing_report_or_table_is_an_error(tmp_path):
    document = _document(tmp_path, "")
    document.write_text(document.read_text().replace("table 2", "table 3"))
    with pytest.raises(ValueError, match="report.md, table 3: the file has 2 Markdown table"):
        rendered.stale(str(document), str(tmp_path))
    (tmp_path / "report.md").unlink()
    with pytest.raises(FileNotFoundError):
        rendered.refresh(str(document), str(tmp_path))


@pytest.mark.slow  # a fresh interpreter
def test_render_docs_check_exits_1_on_a_stale_block(tmp_path):
    (tmp_path / "docs").mkdir()
    document = _document(tmp_path, "")
    os.replace(document, tmp_path / "README.md")
    script = [ROOT / "examples" / "render_docs.py", f"--root={tmp_path}"]
    check = python(*script, "--check", expect=1, timeout=120)
    assert "README.md: stale block from report.md, table 2" in check.stdout
    python(*script, timeout=120)
    python(*script, "--check", timeout=120)
