"""Distillation on CartPole: the student reaches >= 90% of its DQN expert's return.

The expert is the session's seeded CartPole DQN expert (``keras_cc_agents.dqn``, trained and
exported once by the ``cartpole_dqn_expert`` fixture), loaded through its export contract
and evaluated like the students (``keras_cc_agents.dqn.evaluation.evaluate_policy``, the
same epsilon).
The student (a 64-64 MLP over the action union) distils it with the AMN cross-entropy
(eq. 10) and with the CC-AMN likelihood (eq. 11).
"""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_cc_agents.actor_mimic import trainer as actor_mimic_training
from keras_cc_agents.dqn import expert as dqn_expert
from keras_cc_agents.environments import adapters as environments

# The slow lane (experts and students trained on CartPole): `pytest -m "not slow"` leaves it out.
pytestmark = pytest.mark.slow

EVAL_EPSILON = 0.0
EVAL_FRAMES = 4_000  # eight 500-step episodes over eight evaluation environments


@pytest.fixture(scope="module")
def cartpole_expert(cartpole_dqn_expert):
    """experts_dir holding the trained CartPole DQN expert, and the expert's average return."""
    run_dir, _ = cartpole_dqn_expert
    policy = dqn_expert.load_expert(run_dir).policy
    eval_env = environments.make_environment("CartPole", 8, seed=123)
    result = dqn_expert.evaluate_policy(eval_env, policy, frames_per_step=1, max_frames=EVAL_FRAMES)
    eval_env.close()
    expert_return = float(np.mean(result.scores))
    assert expert_return >= 195, f"the CartPole expert is too weak: {expert_return}"
    return os.path.dirname(run_dir), expert_return


@pytest.mark.parametrize("loss", ["ce", "cc"])
def test_student_reaches_90_percent_of_expert(cartpole_expert, loss, tmp_path):
    experts_dir, expert_return = cartpole_expert
    tf.keras.utils.set_random_seed(1)
    config = actor_mimic_training.ActorMimicConfig(
        games=("CartPole",),
        experts_dir=experts_dir,
        output_dir=str(tmp_path / loss),
        loss=loss,
        temperature=1.0,
        epochs=1,
        epoch_frames=4_000,
        eval_frames=EVAL_FRAMES,
        epsilon=0.1,
        eval_epsilon=EVAL_EPSILON,
        learning_rate=1e-3,
        batch_size_per_game=64,
        train_every=4,
        learning_starts=500,
        replay_capacity=10_000,
        num_envs=8,
        seed=1,
        log_every_seconds=1e9,
    )
    summary = actor_mimic_training.train_actor_mimic(config, log=lambda line: None)
    student_return = summary.eval_mean_scores["CartPole"]
    assert summary.nonfinite_steps == 0
    assert summary.updates > 500
    assert student_return >= 0.9 * expert_return, (loss, student_return, expert_return)
