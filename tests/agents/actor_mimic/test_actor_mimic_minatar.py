"""MinAtar study as a user runs it: untrained experts, the student grid of the three arms
(AMN, CC-AMN, CC-AMN with the published normalizer), continued after an interruption and
rerun, then the report.

MinAtar's environment steps cost microseconds, so the whole pipeline runs in about a
minute: the grid script, its resume and skip, the MinAtar student network, the per-epoch
health columns and the report's four rows.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf
from interpreters import python

from keras_cc_agents.actor_mimic import trainer as amt
from keras_cc_agents.actor_mimic.config import LOSS_NAMES
from keras_cc_agents.dqn import random_experts
from keras_cc_runs import run_directory

GAMES = ("MinAtar/Breakout", "MinAtar/Freeway")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
GRID = os.path.join(REPO, "examples", "train_actor_mimic_grid.py")
BUDGET = [
    "--epoch_frames=400",
    "--eval_frames=200",
    "--learning_starts=100",
    "--batch_size_per_game=8",
    "--num_envs=1",
    "--max_parallel=2",
]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def experts_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("minatar_experts")
    for seed, game in enumerate(GAMES):
        random_experts.export_untrained_expert(str(root / game.replace("/", "_")), game, seed=seed)
    return str(root)


def _grid(experts_dir, out, epochs, *extra):
    completed = python(
        GRID,
        f"--games={','.join(GAMES)}",
        f"--experts_dir={experts_dir}",
        f"--output_dir={out}",
        "--seeds=0",
        "--modes=multitask",
        f"--epochs={epochs}",
        *BUDGET,
        *extra,
        timeout=900,
    )
    return completed.stdout


def test_student_sees_the_union_of_the_games_channels_through_the_minatar_trunk(experts_dir):
    experts = amt.load_experts(experts_dir, GAMES)
    # Breakout has 4 object channels, Freeway 7: the student sees 7, each expert its own.
    assert [e.observation_shape for e in experts] == [(10, 10, 4), (10, 10, 7)]
    spec = amt.student_observation_spec(experts)
    assert spec.dtype == tf.uint8 and tuple(spec.shape) == (10, 10, 7)
    assert float(spec.maximum) == 1.0  # MinAtar's {0, 1} channels, scaled by 1
    assert amt.student_network(experts) == "minatar"
    union = amt.ActionUnion.from_action_meanings({e.game: e.action_meanings for e in experts})
    env = amt.GameInUnionEnvironment(
        amt.make_game_environment(GAMES[0], experts[0], 2, seed=0), union, GAMES[0], spec.shape
    )
    observation = env.reset().observation["observation"]
    env.close()
    assert observation.shape == (2, 10, 10, 7) and not observation[..., 4:].any()
    assert observation[..., :4].any()
    q_breakout = amt.own_channels(experts[0].q_value_function, experts[0], spec.shape)
    np.testing.assert_array_equal(
        q_breakout(tf.constant(observation)).numpy(),
        experts[0].q_value_function(tf.constant(observation[..., :4])).numpy(),
    )


def test_grid_of_three_arms_resumes_skips_and_reports(experts_dir, tmp_path):
    out = tmp_path / "grid"
    # One epoch first (an interrupted study), then two: each run continues after epoch 1.
    _grid(experts_dir, out, 1)
    runs = {loss: out / "multitask" / loss / "seed0" / "multitask" for loss in LOSS_NAMES}
    first = {
        loss: run_directory.read_csv(str(run / "eval_epochs.csv")) for loss, run in runs.items()
    }
    stdout = _grid(experts_dir, out, 2)
    assert "skipped" not in stdout
    for loss, run in runs.items():
        config = json.loads((run / "config.json").read_text())
        assert config["loss"] == loss and config["games"] == list(GAMES)
        evaluations = run_directory.read_csv(str(run / "eval_epochs.csv"))
        assert evaluations[: len(GAMES)] == first[loss]  # epoch 1 kept as it was
        assert [(r["game"], r["epoch"]) for r in evaluations] == [
            (g, str(e)) for e in (1, 2) for g in GAMES
        ]
        train = run_directory.read_csv(str(run / "train_epochs.csv"))
        assert len(train) == 2 * len(GAMES)
        # The replays came back with the checkpoint: the resumed epoch 2 takes every update
        # of an uninterrupted one (one update per train_every agent steps; MinAtar: one
        # frame per step), where a refilled replay would wait for learning_starts states.
        full_epoch = config["epoch_frames"] // config["train_every"]
        assert {int(r["updates"]) for r in train if r["epoch"] == "2"} == {full_epoch}
        assert max(int(r["updates"]) for r in train if r["epoch"] == "1") < full_epoch
        assert sorted(os.listdir(run / "checkpoints" / "replay")) == [
            g.replace("/", "_") for g in GAMES
        ]
        for row in train:
            assert row["epoch_nonfinite_steps"] == "0" and row["nonfinite_steps"] == "0"
            for column in (
                "guidance_closed_form_failure_share",
                "student_closed_form_failure_share",
                "student_published_fallback_share",
                "guidance_centroid_distance",
            ):
                assert 0.0 <= float(row[column]) <= 1.0, (column, row)
    # Untrained experts' Q-values barely differ: guidance vectors sit near the centroid.
    distances = [
        float(r["guidance_centroid_distance"])
        for r in run_directory.read_csv(str(runs["cc"] / "train_epochs.csv"))
    ]
    assert np.max(distances) < 0.5
    # A rerun of the finished grid skips every run.
    assert _grid(experts_dir, out, 2).count("finished; skipped.") == len(runs)

    report_dir = tmp_path / "report"
    python(
        os.path.join(REPO, "examples", "atari_report.py"),
        "--experts_dir=",  # untrained experts have no evaluation epochs
        f"--amn_dirs={out / 'multitask' / 'ce'}",
        f"--cc_amn_dirs={out / 'multitask' / 'cc'}",
        f"--published_dirs={out / 'multitask' / 'cc_published'}",
        f"--output_dir={report_dir}",
        "--last_epochs=2",
        timeout=300,
    )
    table = (report_dir / "table3.md").read_text()
    for model in ("AMN", "CC-AMN", "CC-AMN (published)"):
        assert f"| {model} | MinAtar/Breakout | 1 | 2 |" in table, table
    numbers = json.loads((report_dir / "report.json").read_text())
    assert set(numbers["table3"]) == {"AMN", "CC-AMN", "CC-AMN (published)"}
    assert numbers["table3"]["CC-AMN"]["MinAtar/Freeway"]["epochs"] == 2
