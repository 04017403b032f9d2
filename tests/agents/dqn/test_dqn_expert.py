"""DQN experts: CartPole learning, an Atari smoke run with interrupt/resume/export, bad input."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from keras_cc_agents.dqn import expert as dqn_expert
from keras_cc_agents.dqn.expert import DqnExpertConfig, DqnExpertTrainer
from keras_cc_agents.environments import games
from keras_cc_runs import run_directory

# The slow lane (DQN experts trained, interrupted, resumed): `pytest -m "not slow"` skips it.
pytestmark = pytest.mark.slow

PONG_SMOKE = dict(
    game="Pong",
    total_frames=2_000,
    num_envs=2,
    replay_capacity=4_000,
    learning_starts=200,
    target_update_period=50,
    epsilon_decay_frames=4_000,
    eval_every_frames=2_000,
    eval_frames=2_000,
)


def test_seeded_dqn_solves_cartpole_within_30000_steps(cartpole_dqn_expert):
    run_dir, result = cartpole_dqn_expert
    epochs = run_directory.read_csv(os.path.join(run_dir, "eval_epochs.csv"))
    assert result.frames <= 30_000
    assert int(epochs[-1]["num_episodes"]) == 10
    assert float(epochs[-1]["mean_score"]) == pytest.approx(result.final_mean_score)
    assert result.final_mean_score >= 195.0, [row["mean_score"] for row in epochs]


class _Interrupt:
    """Progress callback that raises KeyboardInterrupt (like Ctrl-C) once past `frames`."""

    def __init__(self, trainer_ref, frames):
        self.trainer_ref, self.frames, self.raised = trainer_ref, frames, False

    def __call__(self, line):
        if not self.raised and self.trainer_ref[0].frames >= self.frames:
            self.raised = True
            raise KeyboardInterrupt


def test_atari_smoke_run_interrupt_resume_evaluate_export(tmp_path):
    run_dir = str(tmp_path / "pong")
    config = DqnExpertConfig(log_every_seconds=0.0, **PONG_SMOKE)
    ref = [None]
    trainer = DqnExpertTrainer(config, run_dir, progress=_Interrupt(ref, 1_000))
    ref[0] = trainer
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    interrupted = {
        "frames": trainer.frames,
        "gradient_steps": trainer.gradient_steps,
        "replay": trainer.replay.num_transitions,
        "weights": [v.numpy() for v in trainer.agent._q_network.variables],
    }
    assert 1_000 <= interrupted["frames"] < 2_000 and interrupted["gradient_steps"] > 0
    assert not os.path.exists(os.path.join(run_dir, "result.json"))
    trainer.env.close()

    lines = []
    resumed = DqnExpertTrainer(config, run_dir, progress=lines.append)
    assert resumed.resumed_from_frames == interrupted["frames"]
    assert resumed.gradient_steps == interrupted["gradient_steps"]
    assert resumed.replay.num_transitions == interrupted["replay"]
    for restored, saved in zip(
        resumed.agent._q_network.variables, interrupted["weights"], strict=True
    ):
        np.testing.assert_array_equal(restored.numpy(), saved)
    assert any("resumed from" in line for line in lines)
    result = resumed.train()
    resumed.env.close()
    assert result.frames >= 2_000 and result.gradient_steps > interrupted["gradient_steps"]
    assert result.resumed_from_frames == interrupted["frames"]

    episodes = run_directory.read_csv(os.path.join(run_dir, "eval_episodes.csv"))
    epochs = run_directory.read_csv(os.path.join(run_dir, "eval_epochs.csv"))
    assert list(episodes[0]) == list(dqn_expert.EPISODE_COLUMNS)
    assert list(epochs[0]) == list(dqn_expert.EPOCH_COLUMNS)
    assert len(epochs) == 1 and int(epochs[0]["num_episodes"]) == len(episodes) >= 1
    assert all(-21 <= float(row["score"]) <= 21 for row in episodes)
    assert os.listdir(os.path.join(run_dir, "tensorboard"))

    expert = dqn_expert.load_expert(run_dir)
    assert expert.game == "Pong" and expert.env_id == "ALE/Pong-v5"
    assert expert.action_meanings == tuple(games.action_meanings("Pong"))
    assert expert.frames_trained == result.frames and expert.network == "nature_cnn"
    assert expert.preprocessing["frame_skip"] == 4 and expert.preprocessing["noop_max"] == 30
    env = dqn_expert.make_game_environment(config, 3, seed=5, training=False)
    time_step = env.reset()
    for _ in range(5):
        time_step = env.step(np.zeros(3, np.int64))
    q_values = expert.q_values(time_step.observation)
    assert q_values.shape == (3, 6) and q_values.dtype == np.float32
    expected, _ = resumed.agent._q_network(tf.constant(time_step.observation))
    np.testing.assert_allclose(q_values, expected.numpy(), rtol=1e-5, atol=1e-6)
    action = expert.policy.action(time_step).action
    np.testing.assert_array_equal(action, np.argmax(q_values, axis=-1))
    env.step(action)
    with pytest.raises(ValueError, match="uint8"):
        expert.q_values(time_step.observation.astype(np.float32))


def _cartpole_run(recipe, path, **changes):
    values = {**recipe, "total_frames": 400, "learning_starts": 100, **changes}
    return DqnExpertConfig(**values), str(path)


def test_finished_run_is_not_overwritten_without_overwrite(cartpole_recipe, tmp_path):
    config, run_dir = _cartpole_run(cartpole_recipe, tmp_path / "run", eval_episodes=2)
    dqn_expert.train_dqn_expert(config, run_dir, progress=None)
    with pytest.raises(dqn_expert.RunDirectoryError, match="finished run.*--overwrite"):
        DqnExpertTrainer(config, run_dir, progress=None)
    trainer = DqnExpertTrainer(config, run_dir, overwrite=True, progress=None)
    assert trainer.frames == 0 and not os.path.exists(os.path.join(run_dir, "result.json"))
    trainer.env.close()


def test_checkpoint_of_another_game_or_network_refuses_to_load(cartpole_recipe, tmp_path):
    config, run_dir = _cartpole_run(cartpole_recipe, tmp_path / "cartpole")
    trainer = DqnExpertTrainer(config, run_dir, progress=None)
    for _ in range(30):
        trainer.step()
    trainer.save_checkpoint()
    trainer.env.close()

    # An interrupted run exports from its checkpoint.
    dqn_expert.export_run(run_dir)
    expert = dqn_expert.load_expert(run_dir)
    assert expert.game == "CartPole" and expert.frames_trained == trainer.frames > 0
    assert expert.q_values(np.zeros((2, 4), np.float32)).shape == (2, 2)

    # The same directory with other settings: refused before anything is loaded.
    other_game, _ = _cartpole_run(cartpole_recipe, tmp_path, game="Acrobot")
    with pytest.raises(dqn_expert.RunDirectoryError, match="game: 'CartPole' there, 'Acrobot'"):
        DqnExpertTrainer(other_game, run_dir, progress=None)
    other_network, _ = _cartpole_run(cartpole_recipe, tmp_path, fc_layer_params=(32,))
    with pytest.raises(dqn_expert.RunDirectoryError, match="fc_layer_params"):
        DqnExpertTrainer(other_network, run_dir, progress=None)

    # A checkpoint copied into another game's run directory.
    copied = tmp_path / "acrobot"
    shutil.copytree(os.path.join(run_dir, "checkpoints"), copied / "checkpoints")
    with pytest.raises(dqn_expert.CheckpointMismatchError, match="written for game 'CartPole'"):
        DqnExpertTrainer(other_game, str(copied), progress=None)
    # And one for another network of the same game.
    copied = tmp_path / "cartpole_small"
    shutil.copytree(os.path.join(run_dir, "checkpoints"), copied / "checkpoints")
    with pytest.raises(dqn_expert.CheckpointMismatchError, match="network"):
        DqnExpertTrainer(other_network, str(copied), progress=None)


def test_bad_settings_are_clear_errors():
    with pytest.raises(games.UnknownGameError, match="Did you mean Breakout.*Available games"):
        DqnExpertConfig(game="Breakuot")
    with pytest.raises(ValueError, match="optimizer must be"):
        DqnExpertConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="eval_epsilon must be in"):
        DqnExpertConfig(eval_epsilon=1.5)
    with pytest.raises(ValueError, match="unknown DqnExpertConfig settings: colour"):
        DqnExpertConfig.from_dict({"colour": 1})
    with pytest.raises(FileNotFoundError, match="no exported expert"):
        dqn_expert.load_expert("/nonexistent/run")


def test_epsilon_schedule_is_linear_then_flat():
    config = DqnExpertConfig()
    assert dqn_expert.epsilon_at(0, config) == 1.0
    assert dqn_expert.epsilon_at(500_000, config) == pytest.approx(0.55)
    assert dqn_expert.epsilon_at(5_000_000, config) == pytest.approx(0.1)


def test_minatar_run_takes_minatars_network_sticky_actions_and_exports(tmp_path):
    config = DqnExpertConfig(
        game="MinAtar/Breakout",
        total_frames=600,
        num_envs=2,
        replay_capacity=2_000,
        learning_starts=200,
        train_every=2,
        batch_size=16,
        target_update_period=50,
        eval_every_frames=600,
        eval_episodes=2,
        log_every_seconds=0.0,
    )
    assert config.sticky_actions == 0.1 and config.frames_per_step == 1
    trainer = DqnExpertTrainer(config, str(tmp_path / "run"), progress=lambda line: None)
    assert trainer.architecture == "minatar" and trainer.stack_size == 1
    result = trainer.train()
    trainer.env.close()
    assert result.frames >= 600 and result.gradient_steps > 0
    expert = dqn_expert.load_expert(str(tmp_path / "run"))
    assert expert.game == "MinAtar/Breakout" and expert.network == "minatar"
    assert expert.action_meanings == ("NOOP", "LEFT", "RIGHT")
    assert expert.preprocessing["sticky_action_probability"] == 0.1
    observation = np.zeros((1, 10, 10, 4), np.uint8)
    assert expert.q_values(observation).shape == (1, 3)
    nature = DqnExpertConfig(game="MinAtar/Breakout", network="nature_cnn", total_frames=10)
    assert nature.network == "nature_cnn" and DqnExpertConfig(game="Pong").sticky_actions == 0.0
    with pytest.raises(ValueError, match="network must be one of"):
        DqnExpertConfig(game="MinAtar/Breakout", network="resnet")
