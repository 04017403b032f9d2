"""Replay of visited states for actor-mimic distillation (states only: no actions or rewards).

Stacked Atari observations share three of their four frames with the previous state, so
each environment stream stores every frame once: an episode's first state pushes its
whole stack, every later state pushes its newest frame only, and a sampled state is
rebuilt from its last ``frame_stack`` frames. Since a first state pushes a full stack,
a rebuilt stack never mixes two episodes, whatever the environment put in the first
stack. Vector observations (``frame_stack=None``) are stored whole.
"""

from __future__ import annotations

import numpy as np


class _Stream:
    """Ring buffers of frames and of states (the absolute index of each state's newest frame)."""

    def __init__(self, frame_shape, dtype, state_capacity: int, frame_capacity: int, stack: int):
        self.frames = np.zeros((frame_capacity, *frame_shape), dtype=dtype)
        self.newest_frame = np.zeros(state_capacity, dtype=np.int64)
        self.stack = stack
        self.frames_written = 0
        self.states_written = 0
        self.first_valid = 0  # absolute index of the oldest state whose frames are all stored

    @property
    def size(self) -> int:
        return self.states_written - self.first_valid

    def push_frame(self, frame) -> None:
        self.frames[self.frames_written % len(self.frames)] = frame
        self.frames_written += 1

    def add_state(self) -> None:
        state_capacity = len(self.newest_frame)
        self.newest_frame[self.states_written % state_capacity] = self.frames_written - 1
        self.states_written += 1
        oldest_kept_frame = self.frames_written - len(self.frames)
        self.first_valid = max(self.first_valid, self.states_written - state_capacity)
        while self.first_valid < self.states_written and (
            self.newest_frame[self.first_valid % state_capacity] - (self.stack - 1)
            < oldest_kept_frame
        ):
            self.first_valid += 1

    def frame_indices(self, states: np.ndarray) -> np.ndarray:
        """``[B, stack]`` ring indices of the frames of absolute state indices ``states``."""
        newest = self.newest_frame[states % len(self.newest_frame)]
        offsets = np.arange(-(self.stack - 1), 1, dtype=np.int64)
        return (newest[:, None] + offsets[None, :]) % len(self.frames)


class StateReplay:
    """Recent states of one game, from ``num_streams`` parallel environments.

    Args:
      observation_shape: one observation's shape, e.g. ``(84, 84, 4)`` or ``(4,)``.
      dtype: observation dtype.
      capacity: states kept (over all streams; each stream keeps ``capacity // num_streams``).
      num_streams: parallel environments feeding the replay (one row each in ``add_batch``).
      frame_stack: number of stacked frames along ``frame_axis``; None stores whole
        observations.
      frame_axis: axis of the stacked frames in an observation.
      seed: seed of the sampler.
    """

    def __init__(
        self,
        observation_shape,
        dtype,
        capacity: int,
        num_streams: int = 1,
        frame_stack: int | None = None,
        frame_axis: int = -1,
        seed: int | None = None,
    ):
        observation_shape = tuple(int(d) for d in observation_shape)
        if num_streams < 1:
            raise ValueError(f"num_streams must be >= 1, got {num_streams}.")
        if capacity < num_streams:
            raise ValueError(
                f"capacity must be >= num_streams ({num_streams}) states, got {capacity}."
            )
        self._observation_shape = observation_shape
        self._dtype = np.dtype(dtype)
        self._frame_axis = frame_axis % len(observation_shape) if frame_stack else None
        if frame_stack:
            if observation_shape[self._frame_axis] != frame_stack:
                raise ValueError(
                    f"observation_shape {observation_shape} has "
                    f"{observation_shape[self._frame_axis]} frames on axis {frame_axis}, "
                    f"frame_stack is {frame_stack}."
                )
            frame_shape = tuple(d for i, d in enumerate(observation_shape) if i != self._frame_axis)
            stack = int(frame_stack)
        else:
            frame_shape, stack = observation_shape, 1
        per_stream = capacity // num_streams
        # Slack for the extra frames pushed by first states of short episodes.
        frame_capacity = per_stream + max(per_stream // 4, 4 * stack)
        self._streams = [
            _Stream(frame_shape, self._dtype, per_stream, frame_capacity, stack)
            for _ in range(num_streams)
        ]
        self._stack = stack
        self._rng = np.random.default_rng(seed)

    @property
    def size(self) -> int:
        """States that can be sampled."""
        return sum(s.size for s in self._streams)

    @property
    def num_added(self) -> int:
        return sum(s.states_written for s in self._streams)

    @property
    def nbytes(self) -> int:
        return sum(s.frames.nbytes + s.newest_frame.nbytes for s in self._streams)

    def add_batch(self, observations: np.ndarray, is_first: np.ndarray) -> None:
        """Adds one state per stream: ``observations [N, ...]`` and ``is_first [N]``.

        ``is_first`` marks the first state of an episode (``TimeStep.is_first()``).
        """
        observations = np.asarray(observations)
        is_first = np.asarray(is_first, dtype=bool).reshape(-1)
        expected = (len(self._streams), *self._observation_shape)
        if observations.shape != expected:
            raise ValueError(
                f"expected observations of shape {expected}, got {observations.shape}."
            )
        for stream, observation, first in zip(self._streams, observations, is_first, strict=True):
            if self._frame_axis is None:
                stream.push_frame(observation)
            else:
                frames = np.moveaxis(observation, self._frame_axis, 0)
                if first or stream.states_written == 0:
                    for frame in frames:
                        stream.push_frame(frame)
                else:
                    stream.push_frame(frames[-1])
            stream.add_state()

    def sample(self, batch_size: int) -> np.ndarray:
        """``batch_size`` states drawn uniformly (with replacement), ``[B, *observation_shape]``."""
        sizes = np.array([s.size for s in self._streams])
        total = int(sizes.sum())
        if total == 0:
            raise ValueError("cannot sample from an empty StateReplay.")
        draws = self._rng.integers(0, total, size=batch_size)
        bounds = np.cumsum(sizes)
        stream_of_draw = np.searchsorted(bounds, draws, side="right")
        out = np.empty((batch_size, *self._observation_shape), dtype=self._dtype)
        for index, stream in enumerate(self._streams):
            chosen = np.nonzero(stream_of_draw == index)[0]
            if chosen.size == 0:
                continue
            offset = draws[chosen] - (bounds[index] - sizes[index])
            states = stream.first_valid + offset
            if self._frame_axis is None:
                out[chosen] = stream.frames[stream.frame_indices(states)[:, 0]]
            else:
                frames = stream.frames[stream.frame_indices(states)]  # [b, stack, ...]
                out[chosen] = np.moveaxis(frames, 1, self._frame_axis + 1)
        return out
