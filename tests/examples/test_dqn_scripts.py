"""The DQN expert scripts as a user runs them: one game, several games on Ray, bad input."""

import json
import os
import re

import pytest
from interpreters import python

# The slow lane (the DQN scripts end to end): `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = [
    "--total_frames=200",
    "--num_envs=2",
    "--replay_capacity=2000",
    "--learning_starts=100",
    "--batch_size=16",
    "--fc_layer_params=32",
    "--optimizer=adam",
    "--learning_rate=1e-3",
    "--eval_every_frames=200",
    "--eval_episodes=2",
    "--eval_epsilon=0",
    "--noclip_rewards",
]


def _noise(stderr):
    """Log and warning lines a quiet script must not print.

    TensorFlow's native libraries print a few lines while they load (``I0000 00:00...``,
    before absl is initialized and before any setting can apply); those are not counted.
    """
    return [
        line
        for line in stderr.splitlines()
        if re.match(r"[IW](?!0000 )\d{4} ", line)
        or "Warning" in line
        or "Gym has been unmaintained" in line
    ]


def _run(script, *args, cwd, timeout=300):
    """The script's completed process, whatever its exit status (the tests check it)."""
    return python(
        os.path.join(ROOT, "examples", script), *args, expect=None, cwd=cwd, timeout=timeout
    )


def test_train_dqn_expert_script_trains_exports_and_keeps_finished_runs(tmp_path):
    run_dir = str(tmp_path / "cartpole")
    done = _run(
        "train_dqn_expert.py", "--game=CartPole", f"--output_dir={run_dir}", *TINY, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert re.search(r"\[CartPole\] finished: 20[01] frames", done.stdout), done.stdout
    assert "eval score" in done.stdout
    assert not _noise(done.stderr), done.stderr[-3000:]
    expert = json.load(open(os.path.join(run_dir, "export", "expert.json")))
    assert expert["game"] == "CartPole" and expert["action_meanings"] == ["LEFT", "RIGHT"]

    again = _run(
        "train_dqn_expert.py", "--game=CartPole", f"--output_dir={run_dir}", *TINY, cwd=tmp_path
    )
    assert again.returncode == 2
    assert "already holds a finished run" in again.stderr and "--overwrite" in again.stderr

    unknown = _run("train_dqn_expert.py", "--game=Pongg", cwd=tmp_path)
    assert unknown.returncode != 0
    assert "Did you mean Pong" in unknown.stderr and "Available games: Breakout" in unknown.stderr


@pytest.mark.slow
def test_train_dqn_experts_launches_two_runs_as_ray_tasks(tmp_path):
    out = str(tmp_path / "runs")
    done = _run(
        "train_dqn_experts.py",
        "--ray_address=local",
        "--games=CartPole,MountainCar",
        f"--output_dir={out}",
        *TINY,
        cwd=tmp_path,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert set(summary) == {"CartPole", "MountainCar"}
    for game in summary:
        assert summary[game]["frames"] in (200, 201) and summary[game]["finished"]
        assert os.path.exists(os.path.join(out, game, "export", "q_values", "saved_model.pb"))
    assert "MountainCar" in done.stdout and "final score" in done.stdout


@pytest.mark.slow
def test_train_dqn_experts_runs_a_grid_of_seeds_and_a_rerun_skips_it(tmp_path):
    out = str(tmp_path / "runs")
    args = [
        "train_dqn_experts.py",
        "--games=MinAtar/Breakout",
        "--seeds=0,1",
        "--max_parallel=2",
        f"--output_dir={out}",
        *[flag for flag in TINY if not flag.startswith("--fc_layer_params")],
    ]
    done = _run(*args, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert set(summary) == {"MinAtar/Breakout seed0", "MinAtar/Breakout seed1"}
    weights = {}
    for seed in (0, 1):
        run_dir = os.path.join(out, f"seed{seed}", "MinAtar_Breakout")
        config = json.load(open(os.path.join(run_dir, "config.json")))
        assert config["seed"] == seed and config["game"] == "MinAtar/Breakout"
        expert = json.load(open(os.path.join(run_dir, "export", "expert.json")))
        assert expert["network"] == "minatar"
        weights[seed] = open(os.path.join(run_dir, "eval_episodes.csv")).read()
    assert weights[0] != weights[1]  # two seeds, two runs
    again = _run(*args, cwd=tmp_path, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("is finished; skipped.") == 2
    rerun = json.load(open(os.path.join(out, "summary.json")))
    for key, result in summary.items():
        assert rerun[key] == {**result, "skipped": True}
