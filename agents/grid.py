"""Grids of runs (DQN experts, actor-mimic students) as local processes or Ray tasks.

What ``examples/train_dqn_experts.py`` and ``examples/train_actor_mimic_grid.py`` share:
the launch flags (:func:`define_launch_flags`), the ``--seeds`` list (:func:`seeds`) and the
launch itself (:func:`launch`: every task through ``keras_cc_runs.launcher``, TensorFlow in
the workers only, the results written to ``<output_dir>/summary.json``). No TensorFlow here.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from absl import flags

import keras_cc_agents
from keras_cc_runs import cli, launcher, run_directory

FLAGS = flags.FLAGS


def define_launch_flags() -> None:
    """Defines --ray_address, --max_parallel, --num_cpus_per_run and --num_gpus_per_run."""
    flags.DEFINE_string(
        "ray_address",
        "",
        "Ray cluster address; 'local' starts a local Ray instance; empty: local processes.",
    )
    flags.DEFINE_integer(
        "max_parallel", 2, "Concurrent local processes (without Ray).", lower_bound=1
    )
    flags.DEFINE_float("num_cpus_per_run", 1.0, "CPUs Ray reserves per run.", lower_bound=0.0)
    flags.DEFINE_float("num_gpus_per_run", 0.0, "GPUs Ray reserves per run.", lower_bound=0.0)


def seeds(values: Sequence[str]) -> list[int]:
    """The values of a --seeds list flag as ints (maybe none); ValueError naming the flag
    when one is not an integer or a seed repeats."""
    try:
        parsed = [int(seed) for seed in values]
    except ValueError:
        raise ValueError(f"--seeds must be integers, got {','.join(values)!r}.") from None
    if len(set(parsed)) != len(parsed):
        raise ValueError(f"--seeds repeats a seed: {','.join(values)}.")
    return parsed


def _quiet_worker() -> None:
    """Runs first in each worker process or Ray task of a quiet launch."""
    cli.quiet_process()
    keras_cc_agents.import_gym_quietly()


def launch(tasks: Sequence[launcher.Task], output_dir: str) -> dict[str, Any]:
    """Runs ``tasks`` as the launch flags say, printing each as it ends; returns ``{task
    key: its result, or {"error": message}}``, also written to ``<output_dir>/summary.json``."""
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
        print(
            f"[{outcome.key}] " + ("done" if outcome.ok else f"failed: {outcome.error}"), flush=True
        )
    run_directory.write_json(os.path.join(output_dir, "summary.json"), results)
    return results
