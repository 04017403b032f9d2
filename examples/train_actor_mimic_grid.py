r"""Trains actor-mimic students over losses x seeds x game sets: Ray tasks or local processes.

The study of the CC paper's section 4 at any scale: every student of --losses (AMN 'ce',
CC-AMN 'cc', CC-AMN with the published normalizer 'cc_published') for every seed of
--seeds, in two settings (--modes):

* ``single``: one student per game of --games (Figure 2's form), run directories
  ``<output_dir>/single/<loss>/seed<k>/<game>``;
* ``multitask``: one student of all --games (Table 3's form),
  ``<output_dir>/multitask/<loss>/seed<k>/multitask``.

Every other flag of examples/train_actor_mimic.py applies to all runs. With
--experts_by_seed the students of seed k distil the experts of ``<experts_dir>/seed<k>``
(the layout of examples/train_dqn_experts.py --seeds); otherwise all distil
``<experts_dir>``. Unfinished runs resume after their last finished epoch and finished runs
of the same settings are skipped, so rerunning the same command continues the grid. A
summary (one line per run) is printed and written to <output_dir>/summary.json; the report:

    python examples/atari_report.py --experts_dir runs/minatar \
        --amn_dirs runs/actor_mimic_grid/multitask/ce \
        --cc_amn_dirs runs/actor_mimic_grid/multitask/cc \
        --published_dirs runs/actor_mimic_grid/multitask/cc_published \
        --output_dir runs/report/multitask

    # MinAtar, three games, three arms, three seeds, two processes at a time:
    python examples/train_actor_mimic_grid.py \
        --games MinAtar/Breakout,MinAtar/SpaceInvaders,MinAtar/Freeway \
        --experts_dir runs/minatar --experts_by_seed --seeds 0,1,2 --num_envs 1 \
        --max_parallel 2 --output_dir runs/actor_mimic_grid
"""

import os
import sys

from absl import flags

from keras_cc_agents import grid
from keras_cc_agents.actor_mimic.config import LOSS_NAMES, ActorMimicConfig, checked_for_flags
from keras_cc_agents.environments import games
from keras_cc_runs import cli, launcher, run_directory

MODES = ("single", "multitask")

FLAGS = flags.FLAGS
flags.DEFINE_list("losses", list(LOSS_NAMES), f"Students' losses, from {', '.join(LOSS_NAMES)}.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of every student, comma-separated.")
flags.DEFINE_list("modes", list(MODES), "single (one student per game), multitask, or both.")
flags.DEFINE_bool(
    "experts_by_seed",
    False,
    "Students of seed k distil the experts in <experts_dir>/seed<k> (else <experts_dir>).",
)
grid.define_launch_flags()
cli.define_flags(ActorMimicConfig, exclude=("loss", "seed"))
FLAGS.set_default("output_dir", "runs/actor_mimic_grid")


def _choices(flag: str, allowed) -> list[str]:
    """The values of a list flag, each one of ``allowed``, none twice; ValueError naming it."""
    values = [value.strip() for value in FLAGS[flag].value if value.strip()]
    unknown = [value for value in values if value not in allowed]
    if unknown or not values:
        raise ValueError(f"--{flag} must name some of {', '.join(allowed)}; got {values}.")
    if len(set(values)) != len(values):
        raise ValueError(f"--{flag} repeats a value: {','.join(values)}.")
    return values


def _seeds() -> list[int]:
    """The --seeds as ints, at least one; ValueError naming the flag."""
    seeds = grid.seeds(FLAGS.seeds)
    if not seeds:
        raise ValueError("--seeds is empty: name at least one seed.")
    return seeds


def jobs() -> dict[str, ActorMimicConfig]:
    """``{run name: checked config}`` of the grid the flags describe; ValueError naming a flag."""
    try:
        names = [games.get_game(name.strip()).name for name in FLAGS.games if name.strip()]
    except games.UnknownGameError as error:
        raise ValueError(f"--games: {error}") from None
    if not names:
        raise ValueError("--games is empty.")
    sets = {"single": [(name,) for name in names], "multitask": [tuple(names)]}
    planned = {}
    losses = _choices("losses", LOSS_NAMES)
    for mode in _choices("modes", MODES):  # seed by seed: a seed's arms finish together
        for seed in _seeds():
            for loss in losses:
                experts_dir = FLAGS.experts_dir
                if FLAGS.experts_by_seed:
                    experts_dir = os.path.join(experts_dir, f"seed{seed}")
                for game_set in sets[mode]:
                    leaf = mode if mode == "multitask" else games.get_game(game_set[0]).path_name
                    output_dir = os.path.join(FLAGS.output_dir, mode, loss, f"seed{seed}", leaf)
                    config = cli.config_from_flags(
                        ActorMimicConfig,
                        games=game_set,
                        loss=loss,
                        seed=seed,
                        experts_dir=experts_dir,
                        output_dir=output_dir,
                    )
                    key = os.path.relpath(output_dir, FLAGS.output_dir)
                    planned[key] = checked_for_flags(config)
    return planned


def main(argv):
    del argv
    with cli.checks():
        runs = jobs()
        run_directory.check_output_dir(FLAGS.output_dir)
    from keras_cc_agents.actor_mimic import trainer  # TensorFlow: after the flags are checked

    print(f"training {len(runs)} students in {os.path.abspath(FLAGS.output_dir)}", flush=True)
    tasks = [
        launcher.Task(key, trainer.train_actor_mimic_task, (config, key))
        for key, config in runs.items()
    ]
    results = grid.launch(tasks, FLAGS.output_dir)
    print(f"{'run':<48}{'epochs':>8}{'non-finite':>12}  final scores")
    for key in runs:
        result = results[key]
        if "error" in result:
            print(f"{key:<48}  failed: {result['error']}")
            continue
        scores = ", ".join(f"{g} {s:.2f}" for g, s in result["eval_mean_scores"].items())
        print(f"{key:<48}{result['epochs_done']:>8}{result['nonfinite_steps']:>12}  {scores}")
    if any("error" in result for result in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main)
