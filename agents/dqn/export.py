"""Export of a DQN expert (greedy policy, Q-values SavedModel, expert.json) and its loader."""

from __future__ import annotations

import os
import shutil
from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.policies import (
    policy_saver,
    py_tf_eager_policy,
)

from keras_cc_runs.run_directory import (
    read_json,
    replace_directory,
    write_json,
)


class _QValuesModule(tf.Module):
    """SavedModel wrapper: `q_values(observation) -> float32 [B, num_actions]`."""

    def __init__(self, q_network, observation_spec):
        super().__init__(name="expert_q_values")
        self.q_network = q_network
        signature = tf.TensorSpec([None, *observation_spec.shape], observation_spec.dtype)
        self.q_values = tf.function(self._q_values, input_signature=[signature])

    def _q_values(self, observation):
        q_values, _ = self.q_network(observation, training=False)
        return tf.cast(q_values, tf.float32)


def export_expert(
    agent: dqn_agent.DqnAgent,
    q_network,
    directory: str,
    metadata: dict[str, Any],
) -> None:
    """Writes policy/, q_values/ and expert.json into `directory` (replaced atomically).

    `q_network` is the agent's Q-network (the one given to `DqnAgent`, which has no public
    accessor for it).
    """
    directory = os.path.abspath(directory)
    temporary = directory + ".tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    os.makedirs(temporary)
    saver = policy_saver.PolicySaver(
        agent.policy, batch_size=None, train_step=agent.train_step_counter
    )
    saver.save(os.path.join(temporary, "policy"))
    module = _QValuesModule(q_network, agent.time_step_spec.observation)
    tf.saved_model.save(
        module,
        os.path.join(temporary, "q_values"),
        signatures={"serving_default": module.q_values},
    )
    write_json(os.path.join(temporary, "expert.json"), metadata)
    replace_directory(temporary, directory)


class Expert:
    """A trained expert loaded from a run directory (see `load_expert`).

    Attributes: game, env_id, action_meanings (a tuple), num_actions, observation_shape,
    observation_dtype, frames_trained, network, preprocessing, metadata, run_dir.
    `q_values` takes NumPy batches; `q_value_function` is the exported graph function
    (Tensor -> Tensor) that a student's `tf.function` train step calls directly.
    """

    def __init__(self, run_dir: str):
        export_dir = os.path.join(run_dir, "export")
        path = os.path.join(export_dir, "expert.json")
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"no exported expert in {run_dir!r}: {path} is missing (train the run to its "
                "end, or call keras_cc_agents.dqn.trainer.export_run on an interrupted run)."
            )
        self.run_dir = run_dir
        self.metadata = read_json(path)
        self.game: str = self.metadata["game"]
        self.env_id: str = self.metadata["env_id"]
        self.action_meanings: tuple[str, ...] = tuple(self.metadata["action_meanings"])
        self.num_actions: int = int(self.metadata["num_actions"])
        if len(self.action_meanings) != self.num_actions:
            raise ValueError(
                f"{path} lists {len(self.action_meanings)} action meanings for "
                f"{self.num_actions} actions."
            )
        self.observation_shape = tuple(int(d) for d in self.metadata["observation_shape"])
        self.observation_dtype = np.dtype(self.metadata["observation_dtype"])
        self.frames_trained: int = int(self.metadata["frames_trained"])
        self.network: str = self.metadata["network"]
        self.preprocessing: dict[str, Any] = dict(self.metadata.get("preprocessing") or {})
        self._module = tf.saved_model.load(os.path.join(export_dir, "q_values"))
        self._policy_dir = os.path.join(export_dir, "policy")
        self._policy = None

    def q_value_function(self, observation: tf.Tensor) -> tf.Tensor:
        """float32 [B, num_actions] Q-values of a batch tensor (graph-callable)."""
        return self._module.q_values(observation)

    def q_values(self, observations) -> np.ndarray:
        """float32 [B, num_actions] for a batch of observations [B, *observation_shape]."""
        observations = np.asarray(observations)
        if observations.shape[1:] != self.observation_shape:
            raise ValueError(
                f"observations must have shape (batch, *{self.observation_shape}) for the "
                f"{self.game} expert, got {observations.shape}."
            )
        if observations.dtype != self.observation_dtype:
            raise ValueError(
                f"observations must be {self.observation_dtype} for the {self.game} expert, "
                f"got {observations.dtype}."
            )
        return self.q_value_function(tf.constant(observations)).numpy()

    def greedy_actions(self, observations) -> np.ndarray:
        return np.argmax(self.q_values(observations), axis=-1)

    @property
    def policy(self):
        """The exported greedy policy as a `SavedModelPyTFEagerPolicy` on batched time steps."""
        if self._policy is None:
            self._policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
                self._policy_dir, load_specs_from_pbtxt=True, batch_time_steps=False
            )
        return self._policy


def load_expert(run_dir: str) -> Expert:
    """Loads the exported expert of a DQN run directory."""
    return Expert(run_dir)
