"""Results tables in Markdown documents, copied from the report files that render them.

A report command renders its tables from a study's records into a Markdown file (Table 1
of the label-smoothing ablation in ``table1.md``, the actor-mimic report's ``table3.md``).
A document (the README, a page of ``docs/``) shows such a table between two markers:

    <!-- rendered from examples/results/label_smoothing_study/digits-paper/table1.md, table 2 -->

    | ... the second Markdown table of that file, verbatim ... |

    <!-- end rendered -->

The path is relative to the repository root; ``, table N`` (1-based) picks one table of
the file, and without it the block holds the file's first table, between blank lines (so
that Markdown renders it as a table, not as part of the comment). A Markdown table is a
run of consecutive lines that start with ``|``. :func:`refresh` rewrites every block from its
file, :func:`stale` names the blocks that differ from it (``examples/render_docs.py``
runs both), so a results table is never pasted by hand.
"""

from __future__ import annotations

import dataclasses
import os
import re

from keras_cc_runs.run_directory import write_text

__all__ = ["Block", "blocks", "markdown_tables", "refresh", "render", "stale"]

_BLOCK = re.compile(
    r"<!-- rendered from (?P<source>[^\s,]+)(?:, table (?P<table>\d+))? -->\n"
    r"(?P<body>.*?)"
    r"<!-- end rendered -->",
    re.S,
)


@dataclasses.dataclass(frozen=True)
class Block:
    """One rendered block of a document: its source file, table number and body."""

    source: str
    table: int
    body: str

    @property
    def label(self) -> str:
        return f"{self.source}, table {self.table}"


def markdown_tables(text: str) -> list[str]:
    """The Markdown tables of ``text``, in order: each a run of lines starting with ``|``,
    newline-terminated."""
    tables, current = [], []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append("\n".join(current) + "\n")
            current = []
    if current:
        tables.append("\n".join(current) + "\n")
    return tables


def _block(match: re.Match) -> Block:
    return Block(match["source"], int(match["table"] or 1), match["body"])


def blocks(text: str) -> list[Block]:
    """The rendered blocks of a document's ``text``."""
    return [_block(match) for match in _BLOCK.finditer(text)]


def _body(root: str, block: Block) -> str:
    """The body a block shows: its table, read from its source under ``root``, between
    blank lines.

    Raises:
      FileNotFoundError: the source file does not exist.
      ValueError: the file has fewer tables than the block's number.
    """
    with open(os.path.join(root, block.source), encoding="utf-8") as file:
        tables = markdown_tables(file.read())
    if not 1 <= block.table <= len(tables):
        raise ValueError(f"{block.label}: the file has {len(tables)} Markdown table(s).")
    return f"\n{tables[block.table - 1]}\n"


def render(text: str, root: str) -> str:
    """``text`` with every rendered block's body replaced by the table it names."""

    def body(match: re.Match) -> str:
        block = _block(match)
        header = match.group(0)[: match.start("body") - match.start()]
        return f"{header}{_body(root, block)}<!-- end rendered -->"

    return _BLOCK.sub(body, text)


def stale(path: str, root: str) -> list[str]:
    """The blocks of the document at ``path`` whose body differs from their table."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    return [block.label for block in blocks(text) if block.body != _body(root, block)]


def refresh(path: str, root: str) -> bool:
    """Rewrites the rendered blocks of the document at ``path`` (atomically); True when it
    changed."""
    with open(path, encoding="utf-8") as file:
        text = file.read()
    rendered = render(text, root)
    if rendered != text:
        write_text(path, rendered)
    return rendered != text
