"""Atari smoke run: two games, untrained experts, tiny budgets.

Through the whole pipeline: expert loading and action union, the student acting and
learning (AMN and CC-AMN), evaluation epochs, checkpoint and resume, the results files,
the training script's bad-input checks and the report script's table and figure.
"""

import json
import os

import numpy as np
import pytest
from interpreters import python
from tf_agents.policies import py_tf_eager_policy

from keras_cc_agents.actor_mimic import trainer as amt
from keras_cc_agents.dqn import expert as dqn_expert
from keras_cc_agents.dqn import random_experts
from keras_cc_agents.environments import adapters as environments
from keras_cc_agents.training import EVAL_EPOCH_COLUMNS
from keras_cc_runs import run_directory

# The slow lane (the Atari pipeline end to end): `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

GAMES = ("Pong", "Breakout")
# Short episodes keep evaluation (which plays until an episode ends) short.
OPTIONS = environments.AtariOptions(max_episode_frames=800)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def _evaluate_expert(run_dir, game, epochs):
    """eval_epochs.csv of an exported expert, as the DQN trainer writes it."""
    policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        os.path.join(run_dir, "export", "policy"),
        load_specs_from_pbtxt=True,
        batch_time_steps=False,
    )
    rows = []
    for epoch in range(1, epochs + 1):
        env = environments.make_environment(game, 2, seed=epoch, options=OPTIONS)
        result = dqn_expert.evaluate_policy(env, policy, 4, max_frames=400)
        env.close()
        rows.append(
            dict(
                game=game,
                epoch=epoch,
                frames=epoch * 100_000,
                mean_score=float(np.mean(result.scores)),
                std_score=float(np.std(result.scores)),
                num_episodes=len(result.scores),
            )
        )
    run_directory.write_csv(os.path.join(run_dir, "eval_epochs.csv"), EVAL_EPOCH_COLUMNS, rows)


@pytest.fixture(scope="module")
def experts_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("atari_experts")
    for seed, game in enumerate(GAMES):
        run_dir = random_experts.export_untrained_expert(
            str(root / f"{game}_seed{seed}"), game, seed=seed, options=OPTIONS
        )
        _evaluate_expert(run_dir, game, epochs=3)
    return str(root)


def _config(experts_dir, output_dir, loss, epochs, **overrides):
    settings = dict(
        games=GAMES,
        experts_dir=experts_dir,
        output_dir=str(output_dir),
        loss=loss,
        epochs=epochs,
        epoch_frames=480,
        eval_frames=400,
        learning_starts=32,
        replay_capacity=2_000,
        batch_size_per_game=8,
        train_every=4,
        num_envs=2,
        seed=3,
        log_every_seconds=0.0,
    )
    settings.update(overrides)
    return amt.ActorMimicConfig(**settings)


def _rows(path):
    return run_directory.read_csv(path)


def test_smoke_train_resume_and_report(experts_dir, tmp_path):
    students = {}
    for loss in ("ce", "cc"):
        out = tmp_path / loss
        lines = []
        if loss == "cc":  # one epoch, then a resume that continues after it
            summary = amt.train_actor_mimic(_config(experts_dir, out, loss, 1), log=lines.append)
            assert summary.epochs_done == 1 and summary.updates > 0
            assert any(line.startswith("[epoch 1/1") for line in lines), "no progress line"
            first_updates, lines = summary.updates, []
        summary = amt.train_actor_mimic(_config(experts_dir, out, loss, 2), log=lines.append)
        if loss == "cc":
            assert any(line.startswith("resumed") and "after epoch 1" in line for line in lines)
            assert summary.updates > first_updates
        assert any(line.startswith("[epoch 2/2") for line in lines), "no progress line"
        assert summary.epochs_done == 2 and summary.nonfinite_steps == 0
        epochs = _rows(out / "eval_epochs.csv")
        assert [(r["game"], r["epoch"]) for r in epochs] == [
            (g, str(e)) for e in (1, 2) for g in GAMES
        ]
        assert all(int(r["num_episodes"]) >= 1 for r in epochs)
        episodes = _rows(out / "eval_episodes.csv")
        assert {(r["game"], r["epoch"]) for r in episodes} == {
            (g, str(e)) for e in (1, 2) for g in GAMES
        }
        train = _rows(out / "train_epochs.csv")
        assert len(train) == 4 and all(r["nonfinite_steps"] == "0" for r in train)
        shares = [float(r["guidance_closed_form_failure_share"]) for r in train]
        assert all(0.0 <= s <= 1.0 for s in shares)
        state = json.loads((out / "run_state.json").read_text())
        assert state["finished"] and state["epochs_done"] == 2
        union = json.loads((out / "action_union.json").read_text())
        assert union["union_action_meanings"] == [
            "NOOP",
            "FIRE",
            "RIGHT",
            "LEFT",
            "RIGHTFIRE",
            "LEFTFIRE",
        ]
        assert os.listdir(out / "tensorboard")
        # run_state.json is derived from the checkpoint: a damaged one is rebuilt from it.
        (out / "run_state.json").write_text('{"epochs_do')
        lines = []
        amt.ActorMimicTrainer(_config(experts_dir, out, loss, 2), log=lines.append)
        assert any("run_state.json could not be read; rebuilt" in line for line in lines), lines
        assert json.loads((out / "run_state.json").read_text()) == state
        # A finished run is not overwritten.
        with pytest.raises(ValueError, match="finished run"):
            amt.ActorMimicTrainer(_config(experts_dir, out, loss, 2), log=lambda line: None)
        students[loss] = str(out)

    report_dir = tmp_path / "report"
    python(
        os.path.join(REPO, "examples", "atari_report.py"),
        f"--experts_dir={experts_dir}",
        f"--amn_dirs={students['ce']}",
        f"--cc_amn_dirs={students['cc']}",
        f"--output_dir={report_dir}",
        "--last_epochs=20",
        timeout=300,
    )
    table = (report_dir / "table3.md").read_text()
    assert "| Model | Breakout | Pong |" in table  # the paper's column order
    for model in ("DQN", "AMN", "CC-AMN"):
        assert f"| {model} |" in table
    assert "[3 ep.]" in table and "[2 ep.]" in table
    assert "Non-finite steps" in table
    png = (report_dir / "figure2.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    numbers = json.loads((report_dir / "report.json").read_text())
    assert numbers["health"]["CC-AMN"]["Pong"]["nonfinite_steps"] == 0


def test_bad_input_stops_at_once(experts_dir, tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        amt.ActorMimicTrainer(_config(str(tmp_path / "nowhere"), tmp_path / "a", "ce", 1))
    with pytest.raises(ValueError, match="no expert for SpaceInvaders"):
        amt.ActorMimicTrainer(
            _config(experts_dir, tmp_path / "b", "ce", 1, games=("Pong", "SpaceInvaders"))
        )
    with pytest.raises(ValueError, match="temperature must be finite and > 0"):
        amt.ActorMimicTrainer(_config(experts_dir, tmp_path / "c", "cc", 1, temperature=0.0))
    assert not any(os.path.exists(tmp_path / name) for name in ("a", "b", "c"))
    # The script exits with the message, before creating anything.
    completed = python(
        os.path.join(REPO, "examples", "train_actor_mimic.py"),
        "--games=Pong,Breakout",
        f"--experts_dir={tmp_path / 'nowhere'}",
        f"--output_dir={tmp_path / 'd'}",
        expect=None,
        timeout=300,
    )
    assert completed.returncode != 0
    assert "does not exist" in completed.stderr
    assert not os.path.exists(tmp_path / "d")


def test_feature_regression_uses_the_experts_hidden_features(experts_dir, tmp_path):
    experts = amt.load_experts(experts_dir, GAMES)
    features, size = amt.expert_feature_function(experts[0])
    assert size == 512  # the Nature trunk's dense layer
    config = _config(
        experts_dir, tmp_path / "fr", "cc", 1, feature_regression_weight=0.01, jit_compile=False
    )
    union = amt.ActionUnion.from_action_meanings({e.game: e.action_meanings for e in experts})
    agent = amt.build_agent(config.validated(), experts, union)
    observations = np.random.default_rng(0).integers(0, 255, (4, 84, 84, 4), dtype=np.uint8)
    info = agent.train(amt.actor_mimic.StateBatch(observations, np.array([0, 0, 1, 1], np.int32)))
    assert float(info.extra.feature_loss) > 0 and bool(info.extra.finite)
