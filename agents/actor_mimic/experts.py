"""The experts of an actor-mimic run and the games' environments in the student's action union.

`load_experts` loads the DQN experts exported by ``keras_cc_agents.dqn`` (``export/``) for the
run's games and checks that one student can serve them; `expert_feature_function` rebuilds
an expert's trunk for feature regression; `GameInUnionEnvironment` presents a game's
batched environment with the union's action spec and its game index in the observation;
`ReplayObserver` feeds every visited state to the game's state replay.

Games whose grids differ only in their number of channels (MinAtar's: 4 to 10 object
channels on 10x10) share one student through the union of their channels: each game's
observation is padded with zero channels to the largest count
(`union_observation_shape`), and each expert sees its own channels (`own_channels`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec, tensor_spec
from tf_agents.trajectories import time_step as ts

from keras_cc_agents.actor_mimic import agent as actor_mimic
from keras_cc_agents.actor_mimic.action_union import ActionUnion
from keras_cc_agents.actor_mimic.config import (  # part of this module's API
    find_experts,
)
from keras_cc_agents.dqn import expert as dqn_expert
from keras_cc_agents.environments import adapters as environments
from keras_cc_agents.environments import games as game_registry
from keras_cc_agents.networks import q_networks as networks
from keras_cc_agents.replay_buffers.frame_stack_replay import FrameStackReplay

# --------------------------------------------------------------------------- experts


def load_expert(run_dir: str, game: str) -> dqn_expert.Expert:
    """Loads the expert exported in ``run_dir`` (``keras_cc_agents.dqn.export``'s contract)
    and checks that it plays ``game``."""
    expert = dqn_expert.load_expert(run_dir)
    if expert.game != game:
        raise ValueError(f"the expert in {run_dir!r} plays {expert.game!r}, not {game!r}.")
    return expert


def expert_feature_function(
    expert: dqn_expert.Expert,
) -> tuple[Callable[[tf.Tensor], tf.Tensor], int]:
    """The expert's hidden features (its trunk's output) and their size.

    Rebuilds the expert's Q-network from ``keras_cc_agents.networks`` and reads its weights from
    the ``export/q_values`` SavedModel; checks that the rebuilt network reproduces the
    exported Q-values.
    """
    shape, dtype = expert.observation_shape, tf.as_dtype(expert.observation_dtype)
    if dtype == tf.uint8:
        observation_spec = tensor_spec.BoundedTensorSpec(shape, dtype, 0, 255)
    else:
        observation_spec = tf.TensorSpec(shape, dtype)
    action_spec = tensor_spec.BoundedTensorSpec((), tf.int64, 0, len(expert.action_meanings) - 1)
    q_network = networks.make_q_network(observation_spec, action_spec)
    if expert.network and q_network.architecture != expert.network:
        raise ValueError(
            f"feature regression rebuilds the {expert.game} expert's network, but its "
            f"architecture {expert.network!r} is not the default {q_network.architecture!r}."
        )
    path = os.path.join(expert.run_dir, "export", "q_values", "variables", "variables")
    tf.train.Checkpoint(q_network=q_network).read(path).assert_existing_objects_matched()
    probe = tf.cast(tf.random.stateless_uniform([2, *shape], seed=(1, 2), maxval=255), dtype)
    exported = expert.q_value_function(probe)
    rebuilt, _ = q_network(probe, training=False)
    if not np.allclose(exported.numpy(), rebuilt.numpy(), rtol=1e-4, atol=1e-4):
        raise ValueError(f"could not rebuild the {expert.game} expert's network for features.")

    @tf.function
    def features(observation):
        hidden, _ = q_network.encoder(observation, training=False)
        return tf.cast(hidden, tf.float32)

    features.q_network = q_network  # keeps the variables alive
    size = int(features(probe[:1]).shape[-1])
    return features, size


def union_observation_shape(experts: Sequence[dqn_expert.Expert]) -> tuple[int, ...]:
    """The student's observation shape: the experts' common shape, or, for uint8 grids that
    differ only in their channel count (the last axis, MinAtar's object channels), the grid
    with the largest count.

    Raises:
      ValueError: the observations differ otherwise (dtype, grid size, rank, or Atari frame
        stacks, whose last axis is time).
    """
    shapes = {e.observation_shape for e in experts}
    if len(shapes) == 1:
        return shapes.pop()
    grids = {(shape[:-1], len(shape)) for shape in shapes}
    dtypes = {np.dtype(e.observation_dtype) for e in experts}
    channels = all(game_registry.get_game(e.game).is_minatar for e in experts)
    if len(grids) == 1 and dtypes == {np.dtype(np.uint8)} and channels:
        grid, _ = grids.pop()
        return (*grid, max(e.observation_shape[-1] for e in experts))
    described = ", ".join(f"{e.game}: {e.observation_shape} {e.observation_dtype}" for e in experts)
    raise ValueError(
        f"the experts' observations differ ({described}); one student needs one "
        "observation space (only MinAtar grids of different channel counts are united)."
    )


def own_channels(function: Callable, expert: dqn_expert.Expert, union_shape) -> Callable:
    """``function`` of ``expert``'s observations as a function of the student's (padded)
    observations: their first channels, where the union has more."""
    channels = expert.observation_shape[-1]
    if tuple(union_shape) == tuple(expert.observation_shape):
        return function
    return lambda observation: function(observation[..., :channels])


def load_experts(experts_dir: str, games: Sequence[str]) -> list[dqn_expert.Expert]:
    """The experts of ``games`` (in order) from ``experts_dir``; clear errors on mismatch
    (:func:`union_observation_shape`)."""
    found = find_experts(experts_dir, games)
    experts = [load_expert(found[g], g) for g in games]
    union_observation_shape(experts)
    return experts


def _atari_options(expert: dqn_expert.Expert) -> environments.AtariOptions:
    fields = {f.name for f in dataclasses.fields(environments.AtariOptions)}
    return environments.AtariOptions(
        **{k: v for k, v in expert.preprocessing.items() if k in fields}
    )


def frames_per_step(game: str, expert: dqn_expert.Expert) -> int:
    """Emulator frames per agent step: the frame skip for Atari, 1 otherwise (MinAtar too)."""
    if game_registry.get_game(game).is_atari:
        return int(_atari_options(expert).frame_skip)
    return 1


def make_game_environment(game: str, expert: dqn_expert.Expert, num_envs: int, seed: int):
    """A batched environment of ``game`` preprocessed exactly as its expert's."""
    if game_registry.get_game(game).kind in ("atari", "minatar"):
        return environments.make_environment(
            game, num_envs, seed=seed, options=_atari_options(expert)
        )
    return environments.make_environment(game, num_envs, seed=seed)


def student_observation_spec(experts: Sequence[dqn_expert.Expert]) -> tf.TensorSpec:
    """The student's observation spec: the first expert's game as its expert saw it (one
    environment is made and closed; uint8 frames bounded by 255 on Atari, by 1 on MinAtar,
    whose networks scale by that bound) in the shape of :func:`union_observation_shape`."""
    expert = experts[0]
    env = make_game_environment(expert.game, expert, 1, seed=0)
    try:
        spec = env.observation_spec()
    finally:
        env.close()
    return tensor_spec.from_spec(_with_shape(spec, union_observation_shape(experts)))


def _with_shape(spec: array_spec.ArraySpec, shape: Sequence[int]) -> array_spec.ArraySpec:
    """``spec`` (bounded or not) with another shape, its dtype, bounds and name kept."""
    if isinstance(spec, array_spec.BoundedArraySpec):
        return array_spec.BoundedArraySpec(
            tuple(shape), spec.dtype, spec.minimum, spec.maximum, spec.name
        )
    return array_spec.ArraySpec(tuple(shape), spec.dtype, spec.name)


# --------------------------------------------------------------------------- environments


class GameInUnionEnvironment(py_environment.PyEnvironment):
    """A batched game environment seen through the action union.

    Observations gain the game's legal-action mask (``legal_actions``) and, given an
    ``observation_shape`` with more channels than the game's, zero channels up to it;
    actions are union indices, mapped to the game's own actions before stepping.
    """

    def __init__(
        self,
        env: py_environment.PyEnvironment,
        action_union: ActionUnion,
        game: str,
        observation_shape: Sequence[int] | None = None,
    ):
        super().__init__(handle_auto_reset=False)
        if not env.batched:
            raise ValueError("GameInUnionEnvironment needs a batched environment.")
        self._env = env
        self._union = action_union
        self._game = action_union.game_index(game)
        num_game_actions = int(env.action_spec().maximum) + 1
        if num_game_actions != action_union.num_game_actions(self._game):
            raise ValueError(
                f"the environment of {game!r} has {num_game_actions} actions, its expert "
                f"{action_union.num_game_actions(self._game)}."
            )
        self._mask = np.broadcast_to(
            action_union.legal_masks[self._game], (env.batch_size, action_union.num_actions)
        )
        spec = env.observation_spec()
        self._padding = 0
        if observation_shape is not None and tuple(observation_shape) != tuple(spec.shape):
            self._padding = int(observation_shape[-1]) - int(spec.shape[-1])
            spec = _with_shape(spec, observation_shape)
        self._observation_spec = {
            actor_mimic.OBSERVATION_KEY: spec,
            actor_mimic.LEGAL_ACTIONS_KEY: array_spec.ArraySpec(
                (action_union.num_actions,), np.bool_, actor_mimic.LEGAL_ACTIONS_KEY
            ),
        }
        self._action_spec = array_spec.BoundedArraySpec(
            (), np.int64, 0, action_union.num_actions - 1, name="union_action"
        )

    @property
    def batched(self) -> bool:
        return True

    @property
    def batch_size(self) -> int:
        return self._env.batch_size

    def observation_spec(self):
        return self._observation_spec

    def action_spec(self):
        return self._action_spec

    def reward_spec(self):
        return self._env.reward_spec()

    def _wrap(self, time_step: ts.TimeStep) -> ts.TimeStep:
        observation = time_step.observation
        if self._padding:  # zero channels up to the union's count
            widths = [(0, 0)] * (observation.ndim - 1) + [(0, self._padding)]
            observation = np.pad(observation, widths)
        return time_step._replace(
            observation={
                actor_mimic.OBSERVATION_KEY: observation,
                actor_mimic.LEGAL_ACTIONS_KEY: self._mask,
            }
        )

    def _reset(self):
        return self._wrap(self._env.reset())

    def _step(self, action):
        game_actions = self._union.to_game_actions(self._game, np.asarray(action))
        return self._wrap(self._env.step(game_actions))

    def close(self):
        self._env.close()


class ReplayObserver:
    """Driver observer: every visited state into the game's state replay."""

    def __init__(self, replay: FrameStackReplay):
        self._replay = replay

    def __call__(self, trajectory) -> None:
        self._replay.add_states(
            trajectory.observation[actor_mimic.OBSERVATION_KEY], np.asarray(trajectory.is_first())
        )
