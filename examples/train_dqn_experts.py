r"""Trains DQN experts on several games at once: independent Ray tasks or local processes.

Each game gets its own run directory <output_dir>/<game> (see train_dqn_expert.py; with
--seeds, one per game and seed: <output_dir>/seed<k>/<game>) and the same settings (every
DQN flag applies to all games). Unfinished runs resume like train_dqn_expert.py's, and
finished runs of the same settings are skipped, so rerunning the same command continues a
grid (--overwrite restarts them). A summary (one line per run) is printed and written to
<output_dir>/summary.json.

    # the CC paper's four experts as local processes, two at a time:
    python examples/train_dqn_experts.py --games Breakout,Atlantis,Pong,SpaceInvaders \
        --max_parallel 2 --output_dir runs/dqn
    # three MinAtar games, three seeds each (runs/minatar/seed<k>/<game>):
    python examples/train_dqn_experts.py --games MinAtar/Breakout,MinAtar/SpaceInvaders,\
MinAtar/Freeway --seeds 0,1,2 --max_parallel 2 --output_dir runs/minatar
    # the same as Ray tasks on a local Ray instance, or on a cluster:
    python examples/train_dqn_experts.py --ray_address local --output_dir runs/dqn
    python examples/train_dqn_experts.py --ray_address ray://head:10001 --num_gpus_per_run 1
"""

import os
import sys

from absl import flags

import keras_cc_agents
from keras_cc_agents import grid
from keras_cc_agents.dqn.config import DqnExpertConfig
from keras_cc_agents.environments import games
from keras_cc_runs import cli, launcher, run_directory

FLAGS = flags.FLAGS
flags.DEFINE_list("games", list(games.PAPER_GAMES), "Games to train, comma-separated.")
flags.DEFINE_list(
    "seeds",
    [],
    "Seeds to train each game with, comma-separated: run directories "
    "<output_dir>/seed<k>/<game>; empty: --seed alone, in <output_dir>/<game>.",
)
flags.DEFINE_string("output_dir", "runs/dqn", "Parent directory of the runs (one per game).")
flags.DEFINE_bool("overwrite", False, "Delete and restart run directories holding a run.")
grid.define_launch_flags()
cli.define_flags(DqnExpertConfig, exclude=("game",))


def _seeds() -> list[int | None]:
    """The --seeds as ints ([None]: the --seed flag alone); ValueError naming the flag."""
    return grid.seeds(FLAGS.seeds) or [None]


def _jobs() -> dict[str, tuple[dict, str]]:
    """``{run name: (config values, run directory)}`` of the flags; ValueError naming a flag.

    A run is named by its game, followed by `` seed<k>`` when --seeds is given.
    """
    jobs = {}
    for name in FLAGS.games:
        try:
            game = games.get_game(name.strip()).name
        except games.UnknownGameError as error:
            raise ValueError(f"--games: {error}") from None
        for seed in _seeds():
            changes = {"game": game} if seed is None else {"game": game, "seed": seed}
            config = cli.config_from_flags(DqnExpertConfig, **changes)
            parent = (
                FLAGS.output_dir if seed is None else os.path.join(FLAGS.output_dir, f"seed{seed}")
            )
            key = config.game if seed is None else f"{config.game} seed{seed}"
            jobs[key] = (config.to_dict(), os.path.join(parent, config.game_spec.path_name))
    if not jobs:
        raise ValueError("--games is empty.")
    return jobs


def main(argv):
    del argv
    with cli.checks():
        jobs = _jobs()
        run_directory.check_output_dir(FLAGS.output_dir)
    if not cli.verbose():
        keras_cc_agents.import_gym_quietly()
    from keras_cc_agents.dqn import expert as dqn_expert  # TensorFlow: after the flags are checked

    print(f"training {', '.join(jobs)} in {os.path.abspath(FLAGS.output_dir)}", flush=True)
    tasks = [
        launcher.Task(key, dqn_expert.train_expert_task, (config, run_dir, FLAGS.overwrite))
        for key, (config, run_dir) in jobs.items()
    ]
    results = grid.launch(tasks, FLAGS.output_dir)
    print(f"{'run':<30}{'frames':>12}{'final score':>14}{'best score':>12}")
    for key in jobs:
        r = results[key]
        if "error" in r:
            print(f"{key:<30}  failed: {r['error']}")
            continue
        final = "n/a" if r["final_mean_score"] is None else f"{r['final_mean_score']:.2f}"
        best = "n/a" if r["best_mean_score"] is None else f"{r['best_mean_score']:.2f}"
        print(f"{key:<30}{r['frames']:>12,}{final:>14}{best:>12}")
    if any("error" in r for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    cli.run(main)
