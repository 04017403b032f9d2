r"""Trains DQN experts on several games at once: independent Ray tasks or local processes.

Each game gets its own run directory <output_dir>/<game> (see train_dqn_expert.py) and the
same settings (every DQN flag applies to all games). Runs resume and refuse to overwrite
finished runs exactly like train_dqn_expert.py. A summary (one line per game) is printed and
written to <output_dir>/summary.json.

    # the CC paper's four experts as local processes, two at a time:
    python examples/train_dqn_experts.py --games Breakout,Atlantis,Pong,SpaceInvaders \
        --max_parallel 2 --output_dir runs/dqn
    # the same as Ray tasks on a local Ray instance, or on a cluster:
    python examples/train_dqn_experts.py --ray_address local --output_dir runs/dqn
    python examples/train_dqn_experts.py --ray_address ray://head:10001 --num_gpus_per_run 1
"""

import concurrent.futures
import json
import multiprocessing
import os
import sys

from absl import app, flags

import agents  # noqa: F401  (routes tf.keras to Keras 2 before TensorFlow is imported)
from agents import dqn_expert, dqn_flags, games
from keras_cc._environment import quiet_script_logging

FLAGS = flags.FLAGS
flags.DEFINE_list("games", list(games.PAPER_GAMES), "Games to train, comma-separated.")
flags.DEFINE_string("output_dir", "runs/dqn", "Parent directory of the runs (one per game).")
flags.DEFINE_bool("overwrite", False, "Delete and restart run directories holding a run.")
flags.DEFINE_string(
    "ray_address",
    "",
    "Ray cluster address; 'local' starts a local Ray instance; empty: local processes.",
)
flags.DEFINE_integer("max_parallel", 2, "Concurrent local processes (without Ray).")
flags.DEFINE_float("num_cpus_per_run", 1.0, "CPUs Ray reserves per run.")
flags.DEFINE_float("num_gpus_per_run", 0.0, "GPUs Ray reserves per run.")
dqn_flags.define_dqn_flags()
flags.adopt_module_key_flags(dqn_flags)  # lists them in --help


def run_in_processes(jobs, max_parallel: int) -> dict:
    """Runs `train_expert_task` jobs (game -> (config, run_dir)) in spawned processes."""
    results = {}
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_parallel, mp_context=context) as pool:
        futures = {
            pool.submit(dqn_expert.train_expert_task, config, run_dir, FLAGS.overwrite): game
            for game, (config, run_dir) in jobs.items()
        }
        for future in concurrent.futures.as_completed(futures):
            game = futures[future]
            try:
                results[game] = future.result()
            except Exception as error:  # one failed game must not stop the others
                results[game] = {"error": f"{type(error).__name__}: {error}"}
            print(f"[{game}] done", flush=True)
    return results


def run_on_ray(jobs, address: str) -> dict:
    """Runs `train_expert_task` jobs as Ray tasks (`local`: a local Ray instance)."""
    import ray

    ray.init(
        address=None if address == "local" else address,
        runtime_env={"env_vars": {"TF_USE_LEGACY_KERAS": "1"}},
        include_dashboard=False,
        log_to_driver=True,
    )
    task = ray.remote(
        num_cpus=FLAGS.num_cpus_per_run, num_gpus=FLAGS.num_gpus_per_run, max_retries=0
    )(dqn_expert.train_expert_task)
    pending = {
        task.remote(config, run_dir, FLAGS.overwrite): game
        for game, (config, run_dir) in jobs.items()
    }
    results = {}
    try:
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            game = pending.pop(done[0])
            try:
                results[game] = ray.get(done[0])
            except Exception as error:  # one failed game must not stop the others
                results[game] = {"error": f"{type(error).__name__}: {error}"}
            print(f"[{game}] done", flush=True)
    finally:
        ray.shutdown()
    return results


def main(argv):
    quiet_script_logging()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    jobs = {}
    try:
        for name in FLAGS.games:
            config = dqn_flags.config_from_flags(name)
            jobs[config.game] = (config.to_dict(), os.path.join(FLAGS.output_dir, config.game))
    except (ValueError, games.UnknownGameError) as error:
        raise app.UsageError(str(error)) from error
    if not jobs:
        raise app.UsageError("--games is empty.")
    print(f"training {', '.join(jobs)} in {os.path.abspath(FLAGS.output_dir)}", flush=True)
    if FLAGS.ray_address:
        results = run_on_ray(jobs, FLAGS.ray_address)
    else:
        results = run_in_processes(jobs, FLAGS.max_parallel)
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    summary_path = os.path.join(FLAGS.output_dir, "summary.json")
    with open(summary_path + ".tmp", "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)
    os.replace(summary_path + ".tmp", summary_path)
    print(f"{'game':<16}{'frames':>12}{'final score':>14}{'best score':>12}")
    for game in jobs:
        r = results[game]
        if "error" in r:
            print(f"{game:<16}  failed: {r['error']}")
            continue
        final = "n/a" if r["final_mean_score"] is None else f"{r['final_mean_score']:.2f}"
        best = "n/a" if r["best_mean_score"] is None else f"{r['best_mean_score']:.2f}"
        print(f"{game:<16}{r['frames']:>12,}{final:>14}{best:>12}")
    if any("error" in r for r in results.values()):
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
