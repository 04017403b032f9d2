"""The DQN experts' agents: TF-Agents `DqnAgent`/`DdqnAgent`, optimizer, exploration, train step."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import policy_step, trajectory
from tf_agents.trajectories import time_step as ts
from tf_agents.utils import common

from keras_cc_agents.dqn.config import (
    DqnExpertConfig,
)
from keras_cc_agents.networks import q_networks as networks
from keras_cc_agents.replay_buffers.frame_stack_replay import FrameStackReplay


def epsilon_at(frames: int, config: DqnExpertConfig) -> float:
    """Linear exploration schedule: epsilon_start -> epsilon_end over epsilon_decay_frames."""
    if config.epsilon_decay_frames == 0:
        return config.epsilon_end
    fraction = min(1.0, frames / config.epsilon_decay_frames)
    return config.epsilon_start + fraction * (config.epsilon_end - config.epsilon_start)


class _SingleTargetPass:
    """Max over the target network's Q-values, computed once.

    `DqnAgent` evaluates the target network twice per train step (for its Q-values and
    again inside its greedy target policy); without action constraints both give the
    same `max_a Q_target(s', a)`.
    """

    # Overrides DqnAgent's protected hook for the targets: the one place DqnAgent lets a
    # subclass change how max_a Q_target(s', a) is computed.
    def _compute_next_q_values(self, next_time_steps, info):
        del info
        # DqnAgent keeps its target network in a protected attribute, with no public accessor.
        next_q_values, _ = self._target_q_network(
            next_time_steps.observation, step_type=next_time_steps.step_type
        )
        return tf.reduce_max(next_q_values, axis=-1)


class _QNetworkProperty:
    """A public `q_network` for the online Q-network, which `DqnAgent` keeps protected."""

    @property
    def q_network(self):
        return self._q_network  # set by DqnAgent.__init__; it has no public accessor


class ExpertDqnAgent(_QNetworkProperty, _SingleTargetPass, dqn_agent.DqnAgent):
    """TF-Agents `DqnAgent` (Mnih et al. 2015) with a single target-network pass."""


class ExpertDdqnAgent(_QNetworkProperty, dqn_agent.DdqnAgent):
    """TF-Agents `DdqnAgent` (double DQN, van Hasselt et al. 2016)."""


def make_optimizer(config: DqnExpertConfig):
    """Keras 2 (tf_keras) optimizer of the run.

    Keras 2 compiles optimizer updates with XLA only when a GPU is present; with
    `config.jit_optimizer` the update is XLA-fused on CPU as well (one pass over the
    weights and slots instead of one per elementwise op: 2-3x faster for Nature-DQN).
    """
    if config.optimizer == "rmsprop":
        epsilon = 0.01 if config.optimizer_epsilon is None else config.optimizer_epsilon
        optimizer = tf.keras.optimizers.RMSprop(
            learning_rate=config.learning_rate,
            rho=config.rmsprop_rho,
            momentum=0.0,
            epsilon=epsilon,
            centered=config.rmsprop_centered,
        )
    else:
        epsilon = 1.5e-4 if config.optimizer_epsilon is None else config.optimizer_epsilon
        optimizer = tf.keras.optimizers.Adam(learning_rate=config.learning_rate, epsilon=epsilon)
    if config.jit_optimizer:
        optimizer.jit_compile = True
    return optimizer


def make_agent(
    config: DqnExpertConfig, time_step_spec, action_spec, epsilon: Callable | float = 0.1
) -> dqn_agent.DqnAgent:
    """The run's `DqnAgent` (or `DdqnAgent`) with its Q-network, optimizer and int64 counter."""
    time_step_spec = tensor_spec.from_spec(time_step_spec)
    action_spec = tensor_spec.from_spec(action_spec)
    optimizer = make_optimizer(config)
    q_network = networks.make_q_network(
        time_step_spec.observation,
        action_spec,
        conv_layer_params=config.conv_layer_params,
        fc_layer_params=config.fc_layer_params,
        network=config.network,
    )
    agent_class = ExpertDdqnAgent if config.double_dqn else ExpertDqnAgent
    agent = agent_class(
        time_step_spec,
        action_spec,
        q_network=q_network,
        optimizer=optimizer,
        epsilon_greedy=epsilon,
        target_update_period=config.target_update_period,
        target_update_tau=config.target_update_tau,
        td_errors_loss_fn=common.element_wise_huber_loss,
        gamma=config.gamma,
        gradient_clipping=config.gradient_clipping,
        train_step_counter=tf.Variable(0, dtype=tf.int64, name="train_step"),
    )
    agent.initialize()
    # The optimizer's slots exist before the first train step, so that step traces once.
    optimizer.build(q_network.trainable_variables)
    return agent


def make_train_step(
    agent: dqn_agent.DqnAgent,
    replay: FrameStackReplay,
    clip_rewards: bool,
    jit_compile: bool = False,
):
    """A `tf.function` that trains `agent` on one `FrameStackReplay.sample` batch.

    The stacks s and s' are rebuilt in-graph from the sampled frames and handed to
    `agent.train` as a TF-Agents `Transition` (s, a, then r, discount and s' of the next time
    step), which `DqnAgent` takes as it is. `make_agent` built the
    optimizer's slots, so the step is traced once (without autograph: the agent's Python
    control flow does not depend on tensors). `jit_compile` compiles it with XLA.
    """
    stack = replay.stack_size
    observation_spec = agent.time_step_spec.observation
    frame_shape = tuple(observation_spec.shape[:-1]) if stack > 1 else tuple(observation_spec.shape)
    frames_spec = tf.TensorSpec([None, stack + 1, *frame_shape], observation_spec.dtype)
    vector = tf.TensorSpec([None], tf.float32)
    int_vector = tf.TensorSpec([None], tf.int32)
    action_dtype = agent.action_spec.dtype

    @tf.function(
        input_signature=[frames_spec, int_vector, vector, vector, int_vector, int_vector],
        autograph=False,
        jit_compile=jit_compile,
    )
    def train_step(frames, actions, rewards, discounts, step_types, next_step_types):
        if stack > 1:
            stacked = tf.transpose(frames, [0, *range(2, 2 + len(frame_shape)), 1])
            observation, next_observation = stacked[..., :-1], stacked[..., 1:]
        else:
            observation, next_observation = frames[:, 0], frames[:, 1]
        if clip_rewards:
            rewards = tf.clip_by_value(rewards, -1.0, 1.0)
        experience = trajectory.Transition(
            time_step=ts.TimeStep(
                step_type=step_types,
                reward=tf.zeros_like(rewards),
                discount=tf.ones_like(discounts),
                observation=observation,
            ),
            action_step=policy_step.PolicyStep(tf.cast(actions, action_dtype), (), ()),
            next_time_step=ts.TimeStep(
                step_type=next_step_types,
                reward=rewards,
                discount=discounts,
                observation=next_observation,
            ),
        )
        return agent.train(experience).loss

    def run(batch) -> tf.Tensor:
        return train_step(
            batch.frames,
            batch.actions.astype(np.int32),
            batch.rewards,
            batch.discounts,
            batch.step_types.astype(np.int32),
            batch.next_step_types.astype(np.int32),
        )

    return run
