"""Gymnasium environments as TF-Agents `PyEnvironment`s (single and batched), Atari preprocessing.

TF-Agents 0.19 predates gymnasium and its Atari suite breaks on current ale-py, so the
adapter is ours. Conventions (TF-Agents'):

* The first time step of an episode is FIRST with reward 0; the step that ends it is LAST.
  A *termination* (the game is over) ends with discount 0; a *truncation* (time limit) ends
  with discount 1, so that a learner still bootstraps from the final observation.
* After a LAST step, the next `step()` starts a new episode and returns its FIRST time step;
  the action given to that call is ignored (gymnasium's "next-step" autoreset).
* With `terminal_on_life_loss`, a step that loses a life is a termination for the learner:
  discount 0, also when the same step is truncated (`step_type_and_discount` is the one rule
  both adapters follow). If the game goes on, the step stays MID: the episode, its score and the
  frame stack continue. Use it for training environments only.
* Rewards are the game's raw rewards: clipping for training belongs to the learner, so
  scores are always the true game scores.

Atari preprocessing is Nature-DQN's (Mnih et al. 2015): 84x84 grayscale, frame skip 4 with a
max over the last two frames, stacks of the last 4 frames (zeros before the first frame),
up to 30 no-op actions at reset, episodes truncated at 108,000 frames, and sticky actions
off by default (`sticky_action_probability`; Machado et al. 2018 recommend 0.25). Stacked
observations are uint8 `[84, 84, 4]` (channels last), the oldest frame first.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import gymnasium
import numpy as np
from tf_agents.environments import py_environment
from tf_agents.specs import array_spec
from tf_agents.trajectories import time_step as ts

from keras_cc_agents import settings
from keras_cc_agents.environments import games

FIRST, MID, LAST = (int(ts.StepType.FIRST), int(ts.StepType.MID), int(ts.StepType.LAST))


# --------------------------------------------------------------------------- specs


def space_to_spec(space: gymnasium.Space, name: str, channels_last: bool = False):
    """The TF-Agents `ArraySpec` of a gymnasium `Discrete` or `Box` space.

    `Discrete(n)` becomes an int64 scalar in [0, n - 1]. With `channels_last`, a 3-D `Box`
    of shape [stack, H, W] becomes [H, W, stack].
    """
    if isinstance(space, gymnasium.spaces.Discrete):
        start = int(space.start)
        if start != 0:
            raise ValueError(f"{name}: Discrete spaces must start at 0, got start={start}.")
        return array_spec.BoundedArraySpec((), np.int64, 0, int(space.n) - 1, name=name)
    if isinstance(space, gymnasium.spaces.Box):
        low, high = np.asarray(space.low), np.asarray(space.high)
        if channels_last:
            low, high = _to_channels_last(low), _to_channels_last(high)
        shape = low.shape
        if np.all(low == low.flat[0]) and np.all(high == high.flat[0]):
            low, high = low.flat[0], high.flat[0]
        return array_spec.BoundedArraySpec(shape, space.dtype, low, high, name=name)
    raise TypeError(f"{name}: unsupported gymnasium space {space!r} (Discrete or Box only).")


def _to_channels_last(x: np.ndarray, batched: bool = False) -> np.ndarray:
    """[..., stack, H, W] -> [..., H, W, stack] (a view)."""
    if x.ndim != 3 + int(batched):
        raise ValueError(f"channels_last needs [stack, H, W] observations, got shape {x.shape}.")
    return np.moveaxis(x, -3, -1)


# --------------------------------------------------------------------------- adapters


def step_type_and_discount(terminated, truncated, life_lost, terminal_on_life_loss: bool):
    """The TF-Agents step type and discount of a step that does not start an episode.

    The rule both adapters follow:

    * step type: LAST if the episode ends (`terminated` or `truncated`), else MID;
    * discount: 0 for a termination, else 1. A termination is the end of the game
      (`terminated`) or, with `terminal_on_life_loss`, a lost life, whether or not the step
      is also truncated. A truncation alone (a time limit) keeps discount 1, so the learner
      bootstraps from the final observation.

    Works elementwise on NumPy arrays (the vector adapter) as on booleans. Returns
    `(step_type, discount)` as int32 and float32 arrays.
    """
    ended = np.logical_or(terminated, truncated)
    termination = np.logical_or(terminated, np.logical_and(life_lost, terminal_on_life_loss))
    step_type = np.where(ended, LAST, MID).astype(np.int32)
    return step_type, np.where(termination, 0.0, 1.0).astype(np.float32)


def _life_lost(lives, previous_lives):
    """Whether `info["lives"]` went down (elementwise; False where either is unknown)."""
    if lives is None or previous_lives is None:
        return False
    return np.asarray(lives) < np.asarray(previous_lives)


class _GymnasiumAdapter(py_environment.PyEnvironment):
    """What the single and the vector adapters share: specs, options and observations."""

    def __init__(
        self,
        env,
        observation_space: gymnasium.Space,
        action_space: gymnasium.Space,
        seed: int | None,
        terminal_on_life_loss: bool,
        channels_last: bool,
        handle_auto_reset: bool,
    ):
        super().__init__(handle_auto_reset=handle_auto_reset)
        self._env = env
        self._seed = seed
        self._terminal_on_life_loss = terminal_on_life_loss
        self._channels_last = channels_last
        self._observation_spec = space_to_spec(observation_space, "observation", channels_last)
        self._action_spec = space_to_spec(action_space, "action")
        self._lives = None
        self._info: dict[str, Any] = {}

    @property
    def gym(self):
        """The wrapped gymnasium environment."""
        return self._env

    def observation_spec(self):
        return self._observation_spec

    def action_spec(self):
        return self._action_spec

    def reward_spec(self):
        return array_spec.ArraySpec((), np.float32, name="reward")

    def get_info(self) -> dict[str, Any]:
        return self._info

    def _observation(self, obs) -> np.ndarray:
        obs = np.asarray(obs, dtype=self._observation_spec.dtype)
        if self._channels_last:
            return np.ascontiguousarray(_to_channels_last(obs, batched=self.batched))
        return obs

    def _take_seed(self) -> int | None:
        """The seed for the first reset; later resets continue the environment's RNG."""
        seed, self._seed = self._seed, None
        return seed

    def close(self):
        self._env.close()


class GymnasiumPyEnvironment(_GymnasiumAdapter):
    """One gymnasium `Env` as an unbatched TF-Agents `PyEnvironment`.

    Args:
      env: the gymnasium environment.
      seed: seeds the first reset (and the action space); later resets continue its RNG.
      terminal_on_life_loss: a step that loses a life (info["lives"] decreases) gets
        discount 0, even if it is truncated; it stays MID unless the episode ends there
        (training only; see `step_type_and_discount`).
      channels_last: move a [stack, H, W] observation to [H, W, stack].
    """

    def __init__(
        self,
        env: gymnasium.Env,
        seed: int | None = None,
        terminal_on_life_loss: bool = False,
        channels_last: bool = False,
    ):
        super().__init__(
            env,
            env.observation_space,
            env.action_space,
            seed,
            terminal_on_life_loss,
            channels_last,
            handle_auto_reset=True,
        )
        if seed is not None:
            env.action_space.seed(seed)

    def _reset(self) -> ts.TimeStep:
        obs, self._info = self._env.reset(seed=self._take_seed())
        self._lives = self._info.get("lives")
        return ts.restart(self._observation(obs), reward_spec=self.reward_spec())

    def _step(self, action) -> ts.TimeStep:
        obs, reward, terminated, truncated, self._info = self._env.step(np.asarray(action).item())
        lives = self._info.get("lives")
        lost = bool(_life_lost(lives, self._lives))
        self._lives = lives
        step_type, discount = step_type_and_discount(
            bool(terminated), bool(truncated), lost, self._terminal_on_life_loss
        )
        return ts.TimeStep(
            step_type=step_type,
            reward=np.asarray(reward, dtype=np.float32),
            discount=discount,
            observation=self._observation(obs),
        )

    def render(self, mode: str = "rgb_array"):
        return self._env.render()


class GymnasiumVectorPyEnvironment(_GymnasiumAdapter):
    """A gymnasium `VectorEnv` (next-step autoreset) as a batched TF-Agents `PyEnvironment`.

    Works with `ale_py.vector_env.AtariVectorEnv` and with `gymnasium.vector.SyncVectorEnv`
    / `AsyncVectorEnv`. Each sub-environment follows the TF-Agents convention of the module
    docstring independently: the call after its LAST step returns its FIRST step.

    Args:
      env: the vector environment; its autoreset mode must be NEXT_STEP.
      seed: the first reset seeds the sub-environments with seed, seed + 1, ...
      terminal_on_life_loss: see `GymnasiumPyEnvironment`.
      channels_last: move [stack, H, W] observations to [H, W, stack].
    """

    def __init__(
        self,
        env: gymnasium.vector.VectorEnv,
        seed: int | None = None,
        terminal_on_life_loss: bool = False,
        channels_last: bool = False,
    ):
        mode = env.metadata.get("autoreset_mode", gymnasium.vector.AutoresetMode.NEXT_STEP)
        if gymnasium.vector.AutoresetMode(mode) != gymnasium.vector.AutoresetMode.NEXT_STEP:
            raise ValueError(
                f"env: the vector environment's autoreset_mode must be NEXT_STEP, got {mode}."
            )
        super().__init__(
            env,
            env.single_observation_space,
            env.single_action_space,
            seed,
            terminal_on_life_loss,
            channels_last,
            handle_auto_reset=False,
        )
        self._num_envs = int(env.num_envs)
        self._ended = np.zeros(self._num_envs, dtype=bool)

    @property
    def batched(self) -> bool:
        return True

    @property
    def batch_size(self) -> int:
        return self._num_envs

    def _reset(self) -> ts.TimeStep:
        obs, self._info = self._env.reset(seed=self._take_seed())
        self._ended[:] = False
        self._lives = _lives(self._info)
        n = self._num_envs
        return ts.TimeStep(
            step_type=np.full(n, FIRST, dtype=np.int32),
            reward=np.zeros(n, dtype=np.float32),
            discount=np.ones(n, dtype=np.float32),
            observation=self._observation(obs),
        )

    def _step(self, action) -> ts.TimeStep:
        action = np.asarray(action, dtype=np.int64).reshape(self._num_envs)
        obs, reward, terminated, truncated, self._info = self._env.step(action)
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        lives = _lives(self._info)
        lost = _life_lost(lives, self._lives)
        self._lives = lives
        step_type, discount = step_type_and_discount(
            terminated, truncated, lost, self._terminal_on_life_loss
        )
        # Sub-environments whose previous step was LAST were reset by this call: FIRST steps.
        restarted = self._ended
        step_type[restarted] = FIRST
        discount[restarted] = 1.0
        reward = np.asarray(reward, dtype=np.float32).copy()
        reward[restarted] = 0.0
        self._ended = (terminated | truncated) & ~restarted
        return ts.TimeStep(
            step_type=step_type,
            reward=reward,
            discount=discount,
            observation=self._observation(obs),
        )


def _lives(info: dict[str, Any]) -> np.ndarray | None:
    lives = info.get("lives")
    return None if lives is None else np.asarray(lives).copy()


# --------------------------------------------------------------------------- factories


@dataclasses.dataclass(frozen=True)
class AtariOptions:
    """Nature-DQN Atari preprocessing (defaults as in Mnih et al. 2015).

    Attributes:
      frame_skip: emulator frames per agent step (action repeated; max over the last two).
      frame_stack: frames per observation.
      screen_size: side of the square grayscale frame.
      noop_max: up to this many no-op actions at reset (uniformly drawn).
      sticky_action_probability: probability that the emulator repeats the previous action
        (0.0 as in Nature-DQN and the CC paper; 0.25 in Machado et al. 2018).
      full_action_space: all 18 ALE actions instead of the game's minimal set.
      max_episode_frames: episodes are truncated after this many emulator frames.
    """

    frame_skip: int = 4
    frame_stack: int = 4
    screen_size: int = 84
    noop_max: int = 30
    sticky_action_probability: float = 0.0
    full_action_space: bool = False
    max_episode_frames: int = 108_000

    def __post_init__(self):
        settings.require_at_least(self, ("frame_skip", "frame_stack", "screen_size"), 1)
        settings.require_at_least(self, ("noop_max",), 0)
        settings.require_probability(self, ("sticky_action_probability",))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def make_atari_vector_env(
    game: str,
    num_envs: int,
    options: AtariOptions = AtariOptions(),
    seed: int | None = None,
    terminal_on_life_loss: bool = False,
    num_threads: int = 0,
) -> GymnasiumVectorPyEnvironment:
    """`num_envs` Atari games in ale-py's native C++ `AtariVectorEnv`, batched, channels last."""
    from ale_py.vector_env import AtariVectorEnv

    spec = games.get_game(game)
    if not spec.is_atari:
        raise ValueError(f"game {spec.name!r} is not an Atari game.")
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
    env = AtariVectorEnv(
        spec.rom,
        num_envs,
        num_threads=num_threads,
        max_num_frames_per_episode=options.max_episode_frames,
        repeat_action_probability=options.sticky_action_probability,
        full_action_space=options.full_action_space,
        img_height=options.screen_size,
        img_width=options.screen_size,
        grayscale=True,
        stack_num=options.frame_stack,
        frameskip=options.frame_skip,
        maxpool=True,
        noop_max=options.noop_max,
        episodic_life=False,
        reward_clipping=False,
        use_fire_reset=False,
    )
    return GymnasiumVectorPyEnvironment(
        env, seed=seed, terminal_on_life_loss=terminal_on_life_loss, channels_last=True
    )


def make_atari_gym_env(game: str, options: AtariOptions = AtariOptions()) -> gymnasium.Env:
    """One Atari game through gymnasium's `AtariPreprocessing` and `FrameStackObservation`.

    Observations are [stack, H, W] uint8 (wrap with `channels_last=True`).
    """
    import ale_py

    gymnasium.register_envs(ale_py)
    spec = games.get_game(game)
    if not spec.is_atari:
        raise ValueError(f"game {spec.name!r} is not an Atari game.")
    env = gymnasium.make(
        spec.env_id,
        frameskip=1,
        repeat_action_probability=options.sticky_action_probability,
        full_action_space=options.full_action_space,
        max_num_frames_per_episode=options.max_episode_frames,
    )
    env = gymnasium.wrappers.AtariPreprocessing(
        env,
        noop_max=options.noop_max,
        frame_skip=options.frame_skip,
        screen_size=options.screen_size,
        terminal_on_life_loss=False,
        grayscale_obs=True,
    )
    return gymnasium.wrappers.FrameStackObservation(env, options.frame_stack, padding_type="zero")


def make_atari_env(
    game: str,
    options: AtariOptions = AtariOptions(),
    seed: int | None = None,
    terminal_on_life_loss: bool = False,
) -> GymnasiumPyEnvironment:
    """One Atari game (gymnasium preprocessing) as an unbatched `PyEnvironment`, channels last."""
    return GymnasiumPyEnvironment(
        make_atari_gym_env(game, options),
        seed=seed,
        terminal_on_life_loss=terminal_on_life_loss,
        channels_last=True,
    )


def _register_minatar() -> None:
    """Registers MinAtar's gymnasium ids (``MinAtar/<Game>-v0/v1``) once per process."""
    if "MinAtar/Breakout-v1" not in gymnasium.registry:
        from minatar import gym as minatar_gym

        minatar_gym.register_envs()


def make_minatar_gym_env(
    game: str,
    sticky_action_probability: float = games.MINATAR_STICKY_ACTION_PROBABILITY,
    full_action_space: bool = False,
    max_episode_frames: int | None = None,
) -> gymnasium.Env:
    """One MinAtar game (Young & Tian 2019) as a gymnasium environment.

    Observations are MinAtar's 10x10 grids with one channel per kind of object, as uint8
    ``[10, 10, channels]`` in {0, 1} (MinAtar gives booleans); there is no frame skip and no
    frame stack (one frame is one agent step). Actions are the game's minimal action set
    (``v1`` ids), or all six with `full_action_space`. Sticky actions repeat the previous
    action with `sticky_action_probability` (MinAtar's default 0.1). Episodes end when
    the game does, or are truncated after `max_episode_frames` steps if given.
    """
    _register_minatar()
    spec = games.get_game(game)
    if not spec.is_minatar:
        raise ValueError(f"game {spec.name!r} is not a MinAtar game.")
    env_id = spec.env_id if not full_action_space else spec.env_id.replace("-v1", "-v0")
    env = gymnasium.make(
        env_id,
        sticky_action_prob=float(sticky_action_probability),
        max_episode_steps=max_episode_frames,
    )
    grid = env.observation_space.shape
    return gymnasium.wrappers.TransformObservation(
        env,
        lambda observation: np.asarray(observation, dtype=np.uint8),
        gymnasium.spaces.Box(0, 1, shape=grid, dtype=np.uint8),
    )


def minatar_preprocessing(options: AtariOptions) -> dict[str, Any]:
    """What a MinAtar expert's export records of its environment (`make_minatar_gym_env`)."""
    return {
        "sticky_action_probability": options.sticky_action_probability,
        "full_action_space": options.full_action_space,
        "max_episode_frames": options.max_episode_frames,
        "channels_last": True,
    }


def make_minatar_vector_env(
    game: str, num_envs: int, options: AtariOptions, seed: int | None = None
) -> GymnasiumVectorPyEnvironment:
    """`num_envs` copies of a MinAtar game (`make_minatar_gym_env`) as a batched environment.

    From `options` it takes `sticky_action_probability`, `full_action_space` and
    `max_episode_frames`; frame skip, frame stack, screen size and no-ops do not apply.
    """
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}.")
    env = gymnasium.vector.SyncVectorEnv(
        [
            lambda: make_minatar_gym_env(
                game,
                options.sticky_action_probability,
                options.full_action_space,
                options.max_episode_frames,
            )
            for _ in range(num_envs)
        ],
        autoreset_mode=gymnasium.vector.AutoresetMode.NEXT_STEP,
    )
    return GymnasiumVectorPyEnvironment(env, seed=seed)


def make_classic_vector_env(game: str, num_envs: int, seed: int | None = None):
    """`num_envs` copies of a classic-control game (e.g. CartPole) as a batched `PyEnvironment`."""
    spec = games.get_game(game)
    if spec.kind != "classic":
        raise ValueError(f"game {spec.name!r} is not a classic-control game.")
    env = gymnasium.vector.SyncVectorEnv(
        [lambda: gymnasium.make(spec.env_id) for _ in range(num_envs)],
        autoreset_mode=gymnasium.vector.AutoresetMode.NEXT_STEP,
    )
    return GymnasiumVectorPyEnvironment(env, seed=seed)


def make_environment(
    game: str,
    num_envs: int = 1,
    *,
    seed: int | None = None,
    options: AtariOptions = AtariOptions(),
    terminal_on_life_loss: bool = False,
) -> GymnasiumVectorPyEnvironment:
    """A batched `PyEnvironment` of `num_envs` copies of any registered game.

    Atari games run in `AtariVectorEnv` with `options`; MinAtar and classic games in a
    `SyncVectorEnv` (MinAtar with `options`' sticky actions, action set and episode
    limit). Raises `games.UnknownGameError` (listing the available games) for an unknown
    name.
    """
    spec = games.get_game(game)
    if spec.is_atari:
        return make_atari_vector_env(
            spec.name, num_envs, options, seed=seed, terminal_on_life_loss=terminal_on_life_loss
        )
    if spec.is_minatar:
        return make_minatar_vector_env(spec.name, num_envs, options, seed=seed)
    return make_classic_vector_env(spec.name, num_envs, seed=seed)
