"""Experts from Q-networks not trained by DQN, in the DQN experts' export format.

``export_untrained_expert`` exports a randomly initialized expert Q-network (Nature-DQN
for Atari) exactly as ``keras_cc_agents.dqn.trainer`` exports a trained one, so the actor-mimic
pipeline (expert loading, guidance vectors, student training, evaluation, report) can be
exercised and timed without first training DQN experts for days. Its guidance vectors
are as near-uniform as a trained expert's often are (the CC paper, section 4.1).
``export_q_network_expert`` exports any Q-network of ``keras_cc_agents.networks.q_networks``.

    <run_dir>/config.json
    <run_dir>/export/policy/      PolicySaver SavedModel of the greedy policy
    <run_dir>/export/q_values/    tf.Module with q_values(observation)
    <run_dir>/export/expert.json
"""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

from keras_cc_agents.environments import adapters as environments
from keras_cc_agents.environments import games
from keras_cc_agents.networks import q_networks as networks
from keras_cc_runs import run_directory


def export_q_network_expert(
    run_dir: str,
    game: str,
    q_network: networks.ExpertQNetwork,
    options: environments.AtariOptions | None = None,
    frames_trained: int = 0,
    trained_by: str = "untrained",
) -> str:
    """Exports ``q_network`` as the expert of ``game`` (``keras_cc_agents.dqn.export``).

    The Q-network's greedy policy, its Q-values and ``expert.json`` land in
    ``run_dir/export`` exactly as a trained DQN expert's do.
    """
    from keras_cc_agents.dqn import expert as dqn_expert

    spec = games.get_game(game)
    options = options or environments.AtariOptions()
    observation_spec = q_network.input_tensor_spec
    num_actions = len(games.action_meanings(spec.name, options.full_action_space))
    action_spec = tensor_spec.BoundedTensorSpec((), tf.int64, 0, num_actions - 1, "action")
    agent = dqn_agent.DqnAgent(
        ts.time_step_spec(observation_spec),
        action_spec,
        q_network=q_network,
        optimizer=tf.keras.optimizers.Adam(),
        train_step_counter=tf.Variable(0, dtype=tf.int64),
    )
    preprocessing = {"clip_rewards_in_training": True}
    if spec.is_atari:
        preprocessing.update(options.to_dict(), grayscale=True, channels_last=True)
    if spec.is_minatar:
        preprocessing.update(environments.minatar_preprocessing(options))
    metadata = {
        "game": spec.name,
        "env_id": spec.env_id,
        "action_meanings": list(games.action_meanings(spec.name, options.full_action_space)),
        "num_actions": num_actions,
        "observation_shape": [int(d) for d in observation_spec.shape],
        "observation_dtype": np.dtype(observation_spec.dtype.as_numpy_dtype).name,
        "frames_trained": int(frames_trained),
        "gradient_steps": 0,
        "network": q_network.architecture,
        "double_dqn": False,
        "preprocessing": preprocessing,
        "trained_by": trained_by,
    }
    os.makedirs(run_dir, exist_ok=True)
    dqn_expert.export_expert(agent, q_network, os.path.join(run_dir, "export"), metadata)
    run_directory.write_json(
        os.path.join(run_dir, "config.json"), {"game": spec.name, "trained_by": trained_by}
    )
    return run_dir


def export_untrained_expert(
    run_dir: str,
    game: str,
    seed: int = 0,
    options: environments.AtariOptions | None = None,
) -> str:
    """Writes a randomly initialized expert of ``game`` to ``run_dir``; returns ``run_dir``."""
    options = options or environments.AtariOptions()
    env = environments.make_environment(game, 1, seed=seed, options=options)
    observation_spec = tensor_spec.from_spec(env.observation_spec())
    action_spec = tensor_spec.from_spec(env.action_spec())
    env.close()
    tf.random.set_seed(seed)
    q_network = networks.make_q_network(observation_spec, action_spec)
    return export_q_network_expert(run_dir, game, q_network, options)
