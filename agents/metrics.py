"""Episode accounting of batched environments, as a TF-Agents metric.

`EpisodeRecords` is a `tf_agents.metrics.py_metrics.StreamingMetric`: a driver observer
(or a direct call) over batched `Trajectory`s that keeps, like TF-Agents'
`AverageReturnMetric` and `AverageEpisodeLengthMetric`, the return and length of each
episode as it ends, and also lists every finished episode with the environment that
played it. The DQN experts' training and evaluation loops and the actor-mimic students'
acting and evaluation all count episodes with it.

Counting follows TF-Agents: a FIRST step starts the count afresh (so an environment reset
in the middle of an episode drops that episode), a boundary trajectory (from a LAST step
to the next FIRST) is not a step of any episode, and the return is the sum of the rewards
of an episode's steps (raw game scores when the environment gives unclipped rewards).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from tf_agents.metrics import py_metrics
from tf_agents.utils import numpy_storage


@dataclasses.dataclass(frozen=True)
class Episode:
    """One finished episode: which environment of the batch, its return and its length."""

    env: int
    score: float
    length: int


class EpisodeRecords(py_metrics.StreamingMetric):
    """Returns and lengths of the episodes that end in a batch of environments.

    Args:
      name: the metric's name.
      buffer_size: how many recent returns `result()` averages.
      batch_size: environments in the batch; None: taken from the first trajectory.

    Attributes:
      episodes: every `Episode` finished since the last `reset()`, in order.
      last_ended: the episodes finished by the latest call.
      steps: episode steps counted (boundary trajectories excluded).
    """

    def __init__(
        self, name: str = "EpisodeRecords", buffer_size: int = 10, batch_size: int | None = None
    ):
        self._np_state = numpy_storage.NumpyState()
        self._np_state.episode_return = np.float64(0)  # included in checkpoints from the start
        self._np_state.episode_length = np.int64(0)
        self.episodes: list[Episode] = []
        self.last_ended: list[Episode] = []
        self.steps = 0
        super().__init__(name, buffer_size=buffer_size, batch_size=batch_size)

    def reset(self) -> None:
        self.episodes, self.last_ended, self.steps = [], [], 0
        super().reset()

    def _reset(self, batch_size: int) -> None:
        self._np_state.episode_return = np.zeros(batch_size, dtype=np.float64)
        self._np_state.episode_length = np.zeros(batch_size, dtype=np.int64)

    def _batched_call(self, trajectory) -> None:
        returns = self._np_state.episode_return
        lengths = self._np_state.episode_length
        first = np.asarray(trajectory.is_first()).reshape(-1)
        returns[first] = 0.0  # an environment reset mid-episode starts a new one
        lengths[first] = 0
        active = ~np.asarray(trajectory.is_boundary()).reshape(-1)
        self.steps += int(active.sum())
        returns[active] += np.asarray(trajectory.reward, dtype=np.float64).reshape(-1)[active]
        lengths[active] += 1
        ended = np.flatnonzero(active & np.asarray(trajectory.is_last()).reshape(-1))
        self.last_ended = [
            Episode(int(env), float(returns[env]), int(lengths[env])) for env in ended
        ]
        self.episodes.extend(self.last_ended)
        self.add_to_buffer(returns[ended])
        returns[ended] = 0.0
        lengths[ended] = 0

    @property
    def scores(self) -> list[float]:
        """Returns of the finished episodes, in order."""
        return [episode.score for episode in self.episodes]

    @property
    def lengths(self) -> list[int]:
        """Lengths (agent steps) of the finished episodes, in order."""
        return [episode.length for episode in self.episodes]

    def unfinished(self) -> list[tuple[float, int]]:
        """(return so far, steps so far) of each environment's episode in progress."""
        if not self._batch_size:  # StreamingMetric sets it on the first call; no accessor
            return []
        returns, lengths = self._np_state.episode_return, self._np_state.episode_length
        return [(float(r), int(n)) for r, n in zip(returns, lengths, strict=True) if n]
