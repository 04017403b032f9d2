"""Routes tf.keras to Keras 2 before any test module imports TensorFlow or TF-Agents.

Also trains, once per test session, the CartPole DQN expert that the DQN tests check and
the actor-mimic tests distil.
"""

import pytest

import keras_cc_agents  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TensorFlow is imported)

# Tuned for CartPole-v1: double DQN, wide MLP, Adam, one gradient step per two environment
# steps, target copied every 64 gradient steps, gradient norm clipped at 10, and gamma 0.95
# (a 20-step horizon keeps the bootstrapped values small; with 0.99 DQN often stalls
# around returns of 100-150 within this budget).
CARTPOLE_RECIPE = dict(
    game="CartPole",
    total_frames=30_000,
    num_envs=4,
    replay_capacity=50_000,
    learning_starts=1_000,
    train_every=2,
    batch_size=64,
    target_update_period=64,
    double_dqn=True,
    optimizer="adam",
    learning_rate=1e-3,
    optimizer_epsilon=1e-7,
    gamma=0.95,
    fc_layer_params=(256, 256),
    epsilon_end=0.04,
    epsilon_decay_frames=8_000,
    gradient_clipping=10.0,
    clip_rewards=False,
    eval_every_frames=2_000,
    eval_episodes=10,
    eval_epsilon=0.0,
    target_score=195.0,
    checkpoint_replay=False,
    log_every_seconds=3600,
)


@pytest.fixture
def cartpole_recipe():
    """The CartPole DQN settings above (a fresh copy per test)."""
    return dict(CARTPOLE_RECIPE)


@pytest.fixture(scope="session")
def cartpole_dqn_expert(tmp_path_factory):
    """(run_dir, TrainingResult) of a seeded DQN expert trained on CartPole and exported.

    The run directory sits alone under its parent, which is therefore an ``experts_dir``.
    """
    from keras_cc_agents.dqn import expert as dqn_expert

    run_dir = str(tmp_path_factory.mktemp("experts") / "CartPole")
    config = dqn_expert.DqnExpertConfig(seed=0, **CARTPOLE_RECIPE)
    return run_dir, dqn_expert.train_dqn_expert(config, run_dir, progress=None)
