"""Environments of a DQN expert run and the evaluation of a policy in them (episodes through
`keras_cc_agents.metrics.EpisodeRecords`)."""

from __future__ import annotations

import dataclasses
import time

import numpy as np
from tf_agents.environments import py_environment, wrappers
from tf_agents.trajectories import trajectory

from keras_cc_agents.dqn.config import (
    DqnExpertConfig,
)
from keras_cc_agents.environments import adapters as environments
from keras_cc_agents.metrics import EpisodeRecords


class TimedPyEnvironment(wrappers.PyEnvironmentBaseWrapper):
    """Accumulates the wall-clock seconds spent in the wrapped environment."""

    def __init__(self, env: py_environment.PyEnvironment):
        super().__init__(env)
        self.seconds = 0.0

    def _reset(self):
        start = time.perf_counter()
        try:
            return self.wrapped_env().reset()
        finally:
            self.seconds += time.perf_counter() - start

    def _step(self, action):
        start = time.perf_counter()
        try:
            return self.wrapped_env().step(action)
        finally:
            self.seconds += time.perf_counter() - start


def make_game_environment(
    config: DqnExpertConfig, num_envs: int, seed: int, training: bool
) -> py_environment.PyEnvironment:
    """Batched environment of the run's game; life loss is terminal only when `training`."""
    return environments.make_environment(
        config.game,
        num_envs,
        seed=seed,
        options=config.atari_options,
        terminal_on_life_loss=training and config.terminal_on_life_loss,
    )


@dataclasses.dataclass
class EvaluationResult:
    """Complete episodes of one evaluation: game scores (raw rewards) and lengths (steps)."""

    scores: list[float]
    lengths: list[int]
    frames: int

    @property
    def mean_score(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std_score(self) -> float:
        return float(np.std(self.scores))


def evaluate_policy(
    env: py_environment.PyEnvironment,
    policy,
    frames_per_step: int = 4,
    max_frames: int = 0,
    num_episodes: int = 0,
) -> EvaluationResult:
    """Plays `policy` (a PyPolicy over batched time steps) in the batched `env`.

    With `num_episodes > 0`, the first episode of each of `env.batch_size` environments
    (which must equal `num_episodes`) is played to its end. Otherwise the environments play
    until `max_frames` frames have been used in total; episodes that ended within that budget
    count, and if none did, play continues until the first one ends. Scores are raw game
    scores (sum of unclipped rewards).
    """
    num_envs = env.batch_size or 1
    if num_episodes > 0 and num_envs != num_episodes:
        raise ValueError(
            f"num_episodes={num_episodes} needs an environment with as many copies, "
            f"got batch_size={num_envs}."
        )
    if num_episodes <= 0 and max_frames <= 0:
        raise ValueError("one of max_frames and num_episodes must be > 0.")
    scores, lengths = [], []
    episodes = EpisodeRecords(batch_size=num_envs)
    finished = np.zeros(num_envs, dtype=bool)
    frames = 0
    time_step = env.reset()
    policy_state = policy.get_initial_state(num_envs)
    while True:
        action_step = policy.action(time_step, policy_state)
        policy_state = action_step.state
        next_time_step = env.step(action_step.action)
        steps_before = episodes.steps
        episodes(trajectory.from_transition(time_step, action_step, next_time_step))
        time_step = next_time_step
        frames += (episodes.steps - steps_before) * frames_per_step
        for episode in episodes.last_ended:
            if num_episodes > 0 and finished[episode.env]:
                continue
            if num_episodes > 0 or frames <= max_frames or not scores:
                scores.append(episode.score)
                lengths.append(episode.length)
            finished[episode.env] = True
        if num_episodes > 0:
            if finished.all():
                break
        elif frames >= max_frames and scores:
            break
    return EvaluationResult(scores=scores, lengths=lengths, frames=frames)
