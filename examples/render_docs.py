r"""Copies every results table that the README and docs/ show from the report file that
renders it (``keras_cc_runs.rendered``), or, with --check, lists the stale ones.

A table in a document sits between ``<!-- rendered from <file>, table <n> -->`` and
``<!-- end rendered -->``; the report commands (``label_smoothing_ablation.py
--report_only``, ``atari_report.py``, ``guidance_health.py``) write those files from the
committed records. Run this after a report command:

    python examples/render_docs.py            # rewrite the blocks
    python examples/render_docs.py --check    # exit 1 naming every stale block
"""

import glob
import os
import sys

from absl import flags

from keras_cc_runs import cli, rendered

FLAGS = flags.FLAGS
flags.DEFINE_bool("check", False, "Change nothing; exit 1 if a block differs from its file.")
flags.DEFINE_string(
    "root",
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "The repository root: the documents are README.md and docs/**/*.md under it, and the "
    "blocks' files are relative to it.",
)


def documents(root: str) -> list[str]:
    """The documents that may show rendered tables."""
    pages = glob.glob(os.path.join(root, "docs", "**", "*.md"), recursive=True)
    return [os.path.join(root, "README.md"), *sorted(pages)]


def main(argv):
    del argv
    with cli.checks():
        paths = documents(FLAGS.root)
        if FLAGS.check:
            found = {path: rendered.stale(path, FLAGS.root) for path in paths}
        else:
            found = {path: rendered.refresh(path, FLAGS.root) for path in paths}
    for path, result in found.items():
        name = os.path.relpath(path, FLAGS.root)
        if FLAGS.check:
            for label in result:
                print(f"{name}: stale block from {label}")
        elif result:
            print(f"{name}: refreshed")
    if FLAGS.check and any(found.values()):
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main)
