"""Run directories written before the trainers shared `keras_cc_agents.training.EpochRun`
still resume.

Until then the DQN experts checkpointed through TF-Agents' `common.Checkpointer` (agent,
epsilon and the loop counters, numbered by frames) and wrote their evaluation tables
themselves; this writes a run directory that way and resumes it with today's trainer.
"""

import os

import pytest
from tf_agents.utils import common

from keras_cc_agents.dqn.config import DqnExpertConfig
from keras_cc_agents.dqn.trainer import DqnExpertTrainer
from keras_cc_runs import run_directory

OLD_EPOCH_COLUMNS = ("game", "epoch", "frames", "mean_score", "std_score", "num_episodes")
OLD_EPISODE_COLUMNS = ("game", "epoch", "frames", "episode", "score", "length")


def _config(recipe, **changes):
    values = {**recipe, "total_frames": 400, "learning_starts": 100, "fc_layer_params": (32,)}
    return DqnExpertConfig(**{**values, **changes})


def test_a_run_checkpointed_the_old_way_resumes(cartpole_recipe, tmp_path):
    run_dir = str(tmp_path / "CartPole")
    config = _config(cartpole_recipe)
    old = DqnExpertTrainer(config, run_dir, progress=None)  # config.json, checkpoint identity
    for _ in range(40):
        old.step()
    old.count["epoch"] = 1
    for name, variable in old.counters.items():
        variable.assign(old.count[name])
    checkpointer = common.Checkpointer(
        ckpt_dir=os.path.join(run_dir, "checkpoints"),
        max_to_keep=2,
        agent=old.agent,
        epsilon=old.epsilon,
        **old.counters,
    )
    checkpointer.save(global_step=old.counters["frames"])
    frames, gradient_steps = old.frames, old.gradient_steps
    row = dict(game="CartPole", epoch=1, frames=frames)
    run_directory.write_csv(
        os.path.join(run_dir, "eval_epochs.csv"),
        OLD_EPOCH_COLUMNS,
        [dict(row, mean_score=9.5, std_score=0.5, num_episodes=2)],
    )
    run_directory.write_csv(
        os.path.join(run_dir, "eval_episodes.csv"),
        OLD_EPISODE_COLUMNS,
        [dict(row, episode=i, score=9.0 + i, length=9 + i) for i in range(2)],
    )
    old.env.close()

    new = DqnExpertTrainer(config, run_dir, progress=None)
    try:
        assert new.resumed_from_frames == frames > 0 and new.epoch == 1
        assert new.gradient_steps == gradient_steps > 0
        assert [r["mean_score"] for r in new.run.rows["eval_epochs.csv"]] == ["9.5"]
        assert len(new.run.rows["eval_episodes.csv"]) == 2
        new.save_checkpoint()  # the same tables, rewritten in the same format
        rows = run_directory.read_csv(os.path.join(run_dir, "eval_epochs.csv"))
        assert list(rows[0]) == list(OLD_EPOCH_COLUMNS) and rows[0]["mean_score"] == "9.5"
    finally:
        new.env.close()


def test_a_second_runner_is_refused(cartpole_recipe, tmp_path):
    from keras_cc_agents.dqn.trainer import train_dqn_expert

    run_dir = str(tmp_path / "CartPole")
    with run_directory.DirectoryLock(run_dir):
        with pytest.raises(run_directory.RunDirectoryError, match="is in use by process"):
            train_dqn_expert(_config(cartpole_recipe), run_dir, progress=None)
    assert not os.path.exists(run_dir)


def test_a_damaged_replay_checkpoint_is_named_and_refilled(cartpole_recipe, tmp_path):
    run_dir = str(tmp_path / "CartPole")
    config = _config(cartpole_recipe, checkpoint_replay=True)
    trainer = DqnExpertTrainer(config, run_dir, progress=None)
    for _ in range(40):
        trainer.step()
    trainer.save_checkpoint()
    trainer.env.close()
    meta = os.path.join(run_dir, "checkpoints", "replay", "replay.json")
    with open(meta, "w") as f:
        f.write('{"capacity": 5')  # truncated
    lines = []
    resumed = DqnExpertTrainer(config, run_dir, progress=lines.append)
    try:
        assert resumed.frames == trainer.frames and resumed.replay.num_transitions == 0
        assert any("replay.json is damaged" in line and "refills" in line for line in lines)
    finally:
        resumed.env.close()


def test_a_damaged_checkpoint_identity_is_named(cartpole_recipe, tmp_path):
    from keras_cc_agents.dqn.config import CheckpointMismatchError

    run_dir = str(tmp_path / "CartPole")
    config = _config(cartpole_recipe)
    trainer = DqnExpertTrainer(config, run_dir, progress=None)
    trainer.step()
    trainer.save_checkpoint()
    trainer.env.close()
    with open(os.path.join(run_dir, "checkpoints", "expert_checkpoint.json"), "w") as f:
        f.write("{")
    with pytest.raises(
        CheckpointMismatchError, match="expert_checkpoint.json is damaged.*overwrite"
    ):
        DqnExpertTrainer(config, run_dir, progress=None)
