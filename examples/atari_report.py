r"""The CC paper's Table 3 (markdown) and Figure 2 (PNG) from experts' and students' runs.

Reads eval_epochs.csv of the DQN experts (--experts_dir: one run per game and seed) and
of the AMN, CC-AMN and published-normalizer CC-AMN students (--amn_dirs, --cc_amn_dirs,
--published_dirs: run directories, or directories above them, e.g. one single-game run
per game or one multi-task run, per seed), and writes to --output_dir:

    table3.md     mean (± std) evaluation score over the last --last_epochs epochs,
                  rows DQN / AMN / CC-AMN / CC-AMN (published), a column per game
                  (over seeds: the mean of the seeds' means ± their sample std); then
                  the students' numerical health: share of guidance vectors where the
                  closed-form CC normalizer (eq. 4) would fail, share of student rows
                  where the published CC-AMN falls back to cross-entropy, the guidance
                  vectors' distance from the centroid, non-finite loss/gradient steps;
                  then Table 3 seed by seed (each model's run of that seed)
    figure2.png   per game, score per epoch (mean over seeds): raw faded, moving
                  average solid
    report.json   the numbers of both tables

    python examples/atari_report.py --experts_dir runs/dqn \
        --amn_dirs runs/actor_mimic/ce_multitask --cc_amn_dirs runs/actor_mimic/cc_multitask \
        --output_dir runs/report
"""

import os

from absl import flags

from keras_cc_agents.actor_mimic import report
from keras_cc_runs import cli, run_directory

FLAGS = flags.FLAGS
flags.DEFINE_string("experts_dir", "runs/dqn", "DQN expert runs (one per game); '' to omit.")
flags.DEFINE_list("amn_dirs", [], "AMN (--loss ce) student runs or directories of runs.")
flags.DEFINE_list("cc_amn_dirs", [], "CC-AMN (--loss cc) student runs or directories of runs.")
flags.DEFINE_list(
    "published_dirs",
    [],
    "CC-AMN with the published normalizer (--loss cc_published): runs or directories of runs.",
)
flags.DEFINE_list("games", [], "Games (columns) in order; default: every game found.")
flags.DEFINE_integer(
    "last_epochs", 20, "Evaluation epochs averaged in Table 3 (the paper: 20).", lower_bound=1
)
flags.DEFINE_integer("window", 5, "Moving-average window of Figure 2, in epochs.", lower_bound=1)
flags.DEFINE_string("output_dir", "runs/report", "Where table3.md, figure2.png, report.json go.")


def main(argv):
    del argv
    with cli.checks():
        run_directory.check_output_dir(FLAGS.output_dir)
        for flag in ("experts_dir", "amn_dirs", "cc_amn_dirs", "published_dirs"):
            value = FLAGS[flag].value
            for path in [value] if isinstance(value, str) else value:
                if path and not os.path.isdir(path):
                    raise ValueError(f"--{flag}: {path!r} is not a directory.")
        markdown = report.build_report(
            FLAGS.experts_dir,
            FLAGS.amn_dirs,
            FLAGS.cc_amn_dirs,
            FLAGS.output_dir,
            FLAGS.last_epochs,
            FLAGS.window,
            FLAGS.games,
            FLAGS.published_dirs,
        )
    print(markdown)
    print(f"wrote {FLAGS.output_dir}/table3.md, figure2.png, report.json")


if __name__ == "__main__":
    cli.run(main)
