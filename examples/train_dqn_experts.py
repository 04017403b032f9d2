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
flags.DEFINE_string(
    "ray_address",
    "",
    "Ray cluster address; 'local' starts a local Ray instance; empty: local processes.",
)
flags.DEFINE_integer("max_parallel", 2, "Concurrent local processes (without Ray).", lower_bound=1)
flags.DEFINE_float("num_cpus_per_run", 1.0, "CPUs Ray reserves per run.", lower_bound=0.0)
flags.DEFINE_float("num_gpus_per_run", 0.0, "GPUs Ray reserves per run.", lower_bound=0.0)
cli.define_flags(DqnExpertConfig, exclude=("game",))


def _seeds() -> list[int | None]:
    """The --seeds as ints ([None]: the --seed flag alone); ValueError naming the flag."""
    try:
        seeds = [int(seed) for seed in FLAGS.seeds]
    except ValueError:
        raise ValueError(f"--seeds must be integers, got {','.join(FLAGS.seeds)!r}.") from None
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds repeats a seed: {','.join(FLAGS.seeds)}.")
    return seeds or [None]


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


def _quiet_worker() -> None:
    """Runs first in each worker process or Ray task of a quiet launch."""
    cli.quiet_process()
    keras_cc_agents.import_gym_quietly()


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
    results = {}
    for outcome in launcher.launch(
        tasks,
        max_parallel=FLAGS.max_parallel,
        processes=True,  # TensorFlow stays out of this process
        ray_address=FLAGS.ray_address or None,
        num_cpus=FLAGS.num_cpus_per_run,
        num_gpus=FLAGS.num_gpus_per_run,
        env_vars={"TF_USE_LEGACY_KERAS": "1"},
        ray_log_to_driver=True,
        initializer=None if cli.verbose() else _quiet_worker,
    ):
        results[outcome.key] = outcome.result if outcome.ok else {"error": outcome.error}
        print(f"[{outcome.key}] done", flush=True)
    run_directory.write_json(os.path.join(FLAGS.output_dir, "summary.json"), results)
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
