"""Replay memory that stores each frame once and rebuilds frame stacks when sampling.

A naive DQN replay stores both stacked observations of every transition: 2 x 84 x 84 x 4
bytes = 56 KB, i.e. 56 GB for Nature-DQN's one million transitions. Consecutive stacks share
all but one frame, so `FrameStackReplay` keeps one ring of frames per environment stream and
stores, per agent step, only the newest frame plus action, reward, discount and step type
(about 7 KB; `bytes_per_transition`). At the first step of an episode it also stores the
`stack_size - 1` older frames of that first observation (zeros after an ALE reset), so the
stack of any step is simply the `stack_size` frames that end at it, and a sampled stack never
mixes two episodes.

Entries follow TF-Agents' `Trajectory` of one step (`trajectory.from_transition`): step
type, observation, action, and the reward and discount of the *next* time step. The entry at
position p of a stream is a valid transition start when it is not LAST, its successor p + 1
has been written, and none of the frames p - stack_size + 1 ... p + 1 has been overwritten.
Sampling is uniform over valid transitions of all streams.

Observations are either frame stacks `[H, W, stack]` (stack axis last, oldest first) with
`stack_size > 1`, or plain vectors (CartPole) with `stack_size = 1`.

The same memory serves *states* (the actor-mimic students replay visited states, not
transitions): built with `state_capacity`, the replay also keeps the positions of the
most recent `state_capacity // num_streams` states of each stream, and `sample_states`
draws uniformly among those whose frames are all still stored. `for_states` sizes the
frame rings for that use, and `add_states` feeds observations alone.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import NamedTuple

import numpy as np

from keras_cc_runs.run_directory import read_json, replace_directory


class StaleReplayError(ValueError):
    """A replay checkpoint saved at another point of its run than the one restored."""


FIRST, MID, LAST = 0, 1, 2
PADDING = 3  # an older frame of an episode's first stack: not a step of its own
# The arrays of a replay built for states (`for_states`): where each stream's states are.
_STATE_ARRAYS = ("state_positions", "states_written")


class SampledTransitions(NamedTuple):
    """A batch of transitions; `frames[:, :-1]` stack to s and `frames[:, 1:]` to s'.

    frames: [B, stack_size + 1, *frame_shape] (for stack_size = 1: [B, 2, *obs_shape]).
    actions, rewards, discounts: [B]; reward and discount of the step after s.
    step_types, next_step_types: [B] (FIRST/MID for s; MID/LAST/FIRST-free for s').
    streams, positions: [B] where each transition lives (for tests and debugging).
    """

    frames: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    discounts: np.ndarray
    step_types: np.ndarray
    next_step_types: np.ndarray
    streams: np.ndarray
    positions: np.ndarray


class FrameStackReplay:
    """Uniform replay over `num_streams` environment streams, one stored frame per step.

    Args:
      capacity: total number of stored steps (frames) over all streams; each stream keeps
        `capacity // num_streams`. An episode start costs `stack_size - 1` extra slots.
      num_streams: number of parallel environments feeding `add_batch`.
      observation_shape: `[H, W, stack_size]` for frame stacks, any shape for vectors.
      observation_dtype: dtype of observations (uint8 pixels, float32 vectors).
      stack_size: frames per observation (last axis); 1 stores whole observations.
      action_dtype: dtype of stored actions.
      seed: seed of the sampling RNG.
      state_capacity: also serve states (`sample_states`): the most recent
        `state_capacity // num_streams` states of each stream. None: transitions only.
    """

    def __init__(
        self,
        capacity: int,
        num_streams: int,
        observation_shape,
        observation_dtype=np.uint8,
        stack_size: int = 4,
        action_dtype=np.int32,
        seed: int | None = None,
        state_capacity: int | None = None,
    ):
        observation_shape = tuple(int(d) for d in observation_shape)
        if stack_size < 1:
            raise ValueError(f"stack_size must be >= 1, got {stack_size}.")
        if stack_size > 1 and observation_shape[-1] != stack_size:
            raise ValueError(
                f"observation_shape {observation_shape} must end with the stack axis of "
                f"size stack_size={stack_size}."
            )
        if num_streams < 1:
            raise ValueError(f"num_streams must be >= 1, got {num_streams}.")
        stream_capacity = int(capacity) // int(num_streams)
        if stream_capacity < stack_size + 2:
            raise ValueError(
                f"capacity={capacity} is too small for {num_streams} streams: each stream "
                f"needs at least stack_size + 2 = {stack_size + 2} slots."
            )
        self._observation_shape = observation_shape
        self._observation_dtype = np.dtype(observation_dtype)
        self._stack_size = int(stack_size)
        self._frame_shape = observation_shape[:-1] if stack_size > 1 else observation_shape
        self._num_streams = int(num_streams)
        self._stream_capacity = stream_capacity
        shape = (self._num_streams, stream_capacity)
        # np.zeros maps pages lazily: memory is committed as the replay fills.
        self._frames = np.zeros(shape + self._frame_shape, dtype=self._observation_dtype)
        self._actions = np.zeros(shape, dtype=action_dtype)
        self._rewards = np.zeros(shape, dtype=np.float32)
        self._discounts = np.zeros(shape, dtype=np.float32)
        self._step_types = np.full(shape, PADDING, dtype=np.uint8)
        self._valid = np.zeros(shape, dtype=bool)
        self._write_positions = np.zeros(self._num_streams, dtype=np.int64)
        self._needs_start = np.ones(self._num_streams, dtype=bool)
        self._num_valid = 0
        self._rng = np.random.default_rng(seed)
        self._state_positions = None  # [num_streams, states per stream]: ring of positions
        if state_capacity is not None:
            per_stream = int(state_capacity) // self._num_streams
            if per_stream < 1:
                raise ValueError(
                    f"state_capacity must be >= num_streams ({num_streams}), got {state_capacity}."
                )
            self._state_positions = np.zeros((self._num_streams, per_stream), dtype=np.int64)
            self._states_written = np.zeros(self._num_streams, dtype=np.int64)

    @classmethod
    def for_states(
        cls,
        observation_shape,
        observation_dtype,
        capacity: int,
        num_streams: int = 1,
        stack_size: int = 1,
        seed: int | None = None,
    ) -> FrameStackReplay:
        """A replay of the most recent `capacity` states (over all streams) for `add_states`.

        Each stream's frame ring gets a quarter more slots than its states (at least
        `4 * stack_size`), for the extra frames of episode starts: with episodes longer
        than that, exactly the most recent `capacity // num_streams` states of each stream
        can be sampled.

        Raises:
          ValueError: `capacity` < `num_streams`, or the shape does not end with the stack.
        """
        if num_streams < 1:
            raise ValueError(f"num_streams must be >= 1, got {num_streams}.")
        if capacity < num_streams:
            raise ValueError(
                f"capacity must be >= num_streams ({num_streams}) states, got {capacity}."
            )
        per_stream = int(capacity) // int(num_streams)
        slots = per_stream + max(per_stream // 4, 4 * stack_size) + stack_size + 1
        return cls(
            slots * num_streams,
            num_streams,
            observation_shape,
            observation_dtype,
            stack_size=stack_size,
            seed=seed,
            state_capacity=capacity,
        )

    # ------------------------------------------------------------------ properties

    @property
    def capacity(self) -> int:
        return self._num_streams * self._stream_capacity

    @property
    def num_streams(self) -> int:
        return self._num_streams

    @property
    def stack_size(self) -> int:
        return self._stack_size

    @property
    def observation_shape(self) -> tuple[int, ...]:
        return self._observation_shape

    @property
    def num_transitions(self) -> int:
        """Number of transitions that can be sampled now."""
        return self._num_valid

    @property
    def num_states(self) -> int:
        """Number of states that `sample_states` can draw now (0 without `state_capacity`)."""
        if self._state_positions is None:
            return 0
        return int(sum(self._state_range(stream)[1] for stream in range(self._num_streams)))

    @property
    def num_added(self) -> int:
        """Steps added so far over all streams (padding frames not counted)."""
        if self._state_positions is not None:
            return int(self._states_written.sum())
        return int(np.sum(self._write_positions))

    @property
    def nbytes(self) -> int:
        """Bytes held by the replay's arrays."""
        arrays = (self._frames, self._actions, self._rewards, self._discounts)
        arrays += (self._step_types, self._valid, self._write_positions, self._needs_start)
        if self._state_positions is not None:
            arrays += (self._state_positions, self._states_written)
        return int(sum(a.nbytes for a in arrays))

    @staticmethod
    def bytes_per_slot(
        observation_shape, observation_dtype=np.uint8, stack_size=4, action_dtype=np.int32
    ) -> int:
        """Bytes per stored step: one frame, action, reward, discount, step type, flag."""
        shape = tuple(observation_shape)
        frame_shape = shape[:-1] if stack_size > 1 else shape
        frame = int(np.prod(frame_shape)) * np.dtype(observation_dtype).itemsize
        return frame + np.dtype(action_dtype).itemsize + 4 + 4 + 1 + 1

    @staticmethod
    def bytes_per_transition(
        observation_shape,
        observation_dtype=np.uint8,
        stack_size=4,
        action_dtype=np.int32,
        mean_episode_length: float = float("inf"),
    ) -> float:
        """Bytes per stored transition, counting the padding frames of episode starts."""
        slot = FrameStackReplay.bytes_per_slot(
            observation_shape, observation_dtype, stack_size, action_dtype
        )
        return slot * (1.0 + (stack_size - 1) / mean_episode_length)

    # ------------------------------------------------------------------ writing

    def add_batch(self, trajectory) -> None:
        """Adds one step per stream from a batched TF-Agents `Trajectory` (numpy arrays).

        Usable directly as a `PyDriver` observer. Fields used: step_type, observation,
        action, reward, discount (the last two belong to the next time step).
        """
        self.add(
            trajectory.step_type,
            trajectory.observation,
            trajectory.action,
            trajectory.reward,
            trajectory.discount,
        )

    __call__ = add_batch

    def add_states(self, observations, is_first) -> None:
        """Adds one state per stream: `observations [num_streams, ...]`, `is_first [num_streams]`.

        `is_first` marks the first state of an episode (`TimeStep.is_first()`); no action,
        reward or discount is kept.
        """
        is_first = np.asarray(is_first, dtype=bool).reshape(-1)
        if is_first.shape != (self._num_streams,):
            raise ValueError(
                f"is_first must have shape ({self._num_streams},), got {is_first.shape}."
            )
        zeros = np.zeros(self._num_streams, np.float32)
        self.add(np.where(is_first, FIRST, MID), observations, zeros, zeros, zeros)

    def add(self, step_types, observations, actions, rewards, discounts) -> None:
        """Adds one step per stream; arrays have a leading axis of size `num_streams`."""
        observations = np.asarray(observations)
        expected = (self._num_streams, *self._observation_shape)
        if observations.shape != expected:
            raise ValueError(
                f"observations must have shape {expected} (num_streams, *observation_shape), "
                f"got {observations.shape}."
            )
        step_types = np.asarray(step_types).reshape(self._num_streams)
        actions = np.asarray(actions).reshape(self._num_streams)
        rewards = np.asarray(rewards, dtype=np.float32).reshape(self._num_streams)
        discounts = np.asarray(discounts, dtype=np.float32).reshape(self._num_streams)
        for stream in range(self._num_streams):
            step_type = int(step_types[stream])
            observation = observations[stream]
            starts = step_type == FIRST or self._needs_start[stream]
            if starts and self._stack_size > 1:
                for k in range(self._stack_size - 1):
                    self._write(stream, observation[..., k], PADDING, 0, 0.0, 0.0)
            newest = observation[..., -1] if self._stack_size > 1 else observation
            self._write(
                stream,
                newest,
                step_type,
                actions[stream],
                rewards[stream],
                discounts[stream],
                link_previous=not starts,
            )
            self._needs_start[stream] = False

    def _write(self, stream, frame, step_type, action, reward, discount, link_previous=False):
        capacity = self._stream_capacity
        position = int(self._write_positions[stream])
        slot = position % capacity
        # The entries whose stacks (or successor) used the overwritten frame lose validity.
        for offset in range(0, self._stack_size):
            self._invalidate(stream, (slot + offset) % capacity)
        self._frames[stream, slot] = frame
        self._actions[stream, slot] = action
        self._rewards[stream, slot] = reward
        self._discounts[stream, slot] = discount
        self._step_types[stream, slot] = step_type
        if link_previous and position > 0:
            # The previous step gets its successor. Its stack (stack_size frames) and this
            # frame fit in memory because stream_capacity >= stack_size + 2.
            previous = (slot - 1) % capacity
            if self._step_types[stream, previous] in (FIRST, MID):
                self._valid[stream, previous] = True
                self._num_valid += 1
        if self._state_positions is not None and step_type != PADDING:
            ring = self._state_positions[stream]
            ring[self._states_written[stream] % len(ring)] = position
            self._states_written[stream] += 1
        self._write_positions[stream] = position + 1

    def _invalidate(self, stream, slot):
        if self._valid[stream, slot]:
            self._valid[stream, slot] = False
            self._num_valid -= 1

    def start_new_episodes(self) -> None:
        """Marks every stream as broken: its next step starts a new stack (used on resume)."""
        self._needs_start[:] = True

    # ------------------------------------------------------------------ sampling

    def sample(self, batch_size: int) -> SampledTransitions:
        """Draws `batch_size` transitions uniformly (with replacement)."""
        if self._num_valid == 0:
            raise ValueError(
                "the replay holds no complete transition yet; add more steps before sampling."
            )
        streams, slots = self._sample_valid_slots(int(batch_size))
        capacity = self._stream_capacity
        offsets = np.arange(-(self._stack_size - 1), 2)
        frame_slots = (slots[:, None] + offsets[None, :]) % capacity
        frames = self._frames[streams[:, None], frame_slots]
        next_slots = (slots + 1) % capacity
        positions = self._positions_of(streams, slots)
        return SampledTransitions(
            frames=frames,
            actions=self._actions[streams, slots],
            rewards=self._rewards[streams, slots],
            discounts=self._discounts[streams, slots],
            step_types=self._step_types[streams, slots],
            next_step_types=self._step_types[streams, next_slots],
            streams=streams,
            positions=positions,
        )

    def _state_range(self, stream: int) -> tuple[int, int]:
        """(first, count): the sampleable states of `stream` as indices into its state ring.

        The ring's most recent `min(written, ring size)` states are candidates; the oldest
        of them may have lost a frame to newer writes, and positions increase, so the
        sampleable ones are the newest `count`.
        """
        ring = self._state_positions[stream]
        written = int(self._states_written[stream])
        kept = min(written, len(ring))
        oldest_frame = int(self._write_positions[stream]) - self._stream_capacity
        first = written - kept
        while first < written and ring[first % len(ring)] - (self._stack_size - 1) < oldest_frame:
            first += 1
        return first, written - first

    def sample_states(self, batch_size: int) -> np.ndarray:
        """`batch_size` states drawn uniformly (with replacement), `[B, *observation_shape]`.

        Raises:
          ValueError: the replay was built without `state_capacity`, or holds no state.
        """
        if self._state_positions is None:
            raise ValueError("this replay keeps no states; build it with state_capacity.")
        ranges = [self._state_range(stream) for stream in range(self._num_streams)]
        counts = np.array([count for _, count in ranges])
        total = int(counts.sum())
        if total == 0:
            raise ValueError("cannot sample states from an empty replay.")
        draws = self._rng.integers(0, total, size=int(batch_size))
        bounds = np.cumsum(counts)
        streams = np.searchsorted(bounds, draws, side="right")
        firsts = np.array([first for first, _ in ranges])
        ring_indices = firsts[streams] + draws - (bounds[streams] - counts[streams])
        ring_size = self._state_positions.shape[1]
        positions = self._state_positions[streams, ring_indices % ring_size]
        offsets = np.arange(-(self._stack_size - 1), 1)
        frame_slots = (positions[:, None] + offsets[None, :]) % self._stream_capacity
        frames = self._frames[streams[:, None], frame_slots]  # [B, stack, *frame_shape]
        if self._stack_size == 1:
            return frames[:, 0]
        return np.moveaxis(frames, 1, -1)

    def _positions_of(self, streams, slots) -> np.ndarray:
        """Global write position of the entries at `slots` (the latest write to each slot)."""
        capacity = self._stream_capacity
        write = self._write_positions[streams]
        last_slot = (write - 1) % capacity
        return write - 1 - ((last_slot - slots) % capacity)

    def _sample_valid_slots(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        filled = np.minimum(self._write_positions, self._stream_capacity)
        total = int(filled.sum())
        if self._num_valid < 0.5 * total:
            flat = np.flatnonzero(self._valid)
            chosen = flat[self._rng.integers(0, flat.size, size=batch_size)]
            return np.divmod(chosen, self._stream_capacity)
        streams_out, slots_out, have = [], [], 0
        cumulative = np.cumsum(filled)
        while have < batch_size:
            draws = self._rng.integers(0, total, size=2 * (batch_size - have) + 8)
            streams = np.searchsorted(cumulative, draws, side="right")
            slots = draws - (cumulative[streams] - filled[streams])
            keep = self._valid[streams, slots]
            streams_out.append(streams[keep])
            slots_out.append(slots[keep])
            have += int(keep.sum())
        return (
            np.concatenate(streams_out)[:batch_size],
            np.concatenate(slots_out)[:batch_size],
        )

    # ------------------------------------------------------------------ helpers

    def stacks(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(s, s') observations `[B, *observation_shape]` from sampled `frames`."""
        if self._stack_size == 1:
            return frames[:, 0], frames[:, 1]
        stacked = np.moveaxis(frames, 1, -1)  # [B, *frame_shape, stack + 1]
        return stacked[..., :-1], stacked[..., 1:]

    # ------------------------------------------------------------------ checkpoints

    def state(self) -> dict:
        """Metadata (JSON-serializable) of the replay, without the arrays."""
        return {
            "capacity": self.capacity,
            "num_streams": self._num_streams,
            "observation_shape": list(self._observation_shape),
            "observation_dtype": self._observation_dtype.name,
            "stack_size": self._stack_size,
            "write_positions": self._write_positions.tolist(),
            "num_valid": self._num_valid,
            "rng": self._rng.bit_generator.state,
            "state_capacity": self._state_capacity(),
        }

    def _state_capacity(self) -> int | None:
        """States kept over all streams (``for_states``), or None."""
        if self._state_positions is None:
            return None
        return int(self._state_positions.size)

    def _arrays(self) -> tuple[str, ...]:
        """The names of the arrays a checkpoint holds."""
        names = ("frames", "actions", "rewards", "discounts", "step_types", "valid")
        return names + (_STATE_ARRAYS if self._state_positions is not None else ())

    def save(self, directory: str, **stamp) -> None:
        """Writes the replay to `directory` atomically (arrays as .npy, metadata as JSON).

        `stamp` (JSON values, e.g. `frames=` or `epoch=`: where its run stands) is stored
        with the metadata, for `restore` to check.
        """
        directory = os.path.abspath(directory)
        temporary = directory + ".tmp"
        shutil.rmtree(temporary, ignore_errors=True)
        os.makedirs(temporary)
        filled = int(min(self._write_positions.max(), self._stream_capacity))
        for name in self._arrays():
            values = getattr(self, f"_{name}")
            if name not in _STATE_ARRAYS:  # a frame ring: the part written
                values = values[:, :filled]
            np.save(os.path.join(temporary, f"{name}.npy"), values)
        with open(os.path.join(temporary, "replay.json"), "w") as f:
            json.dump({**self.state(), **stamp}, f)
        replace_directory(temporary, directory)

    def restore(self, directory: str, **stamp) -> None:
        """Loads a replay written by `save` into this (identically configured) replay.

        Every stream then starts a new episode at its next step: the environments restart
        after a resume, so the interrupted episodes get no further transitions.

        Raises:
          StaleReplayError: the checkpoint's stamp differs from `stamp` (saved at another
            point of its run); nothing is loaded.
          keras_cc_runs.run_directory.DamagedFileError, OSError, ValueError: a missing or
            damaged checkpoint, or one of another configuration; nothing is loaded.
        """
        state = read_json(os.path.join(directory, "replay.json"))
        saved = {key: state.get(key) for key in stamp}
        if saved != stamp:
            raise StaleReplayError(
                f"replay checkpoint {directory} was saved at {saved}, not at {stamp}"
            )
        mine = self.state()
        for key in (
            "capacity",
            "num_streams",
            "observation_shape",
            "observation_dtype",
            "state_capacity",
        ):
            if state.get(key) != mine[key]:
                raise ValueError(
                    f"replay checkpoint {directory} has {key}={state.get(key)!r} but this replay "
                    f"has {key}={mine[key]!r}."
                )
        if state["stack_size"] != self._stack_size:
            raise ValueError(
                f"replay checkpoint {directory} has stack_size={state['stack_size']} but "
                f"this replay has {self._stack_size}."
            )
        # Every file is read before anything changes: a damaged checkpoint leaves the
        # replay as it was.
        loaded = {name: np.load(os.path.join(directory, f"{name}.npy")) for name in self._arrays()}
        for name, values in loaded.items():
            target = getattr(self, f"_{name}")
            whole = name in _STATE_ARRAYS
            fits = (
                values.shape == target.shape
                if whole
                else (
                    values.ndim == target.ndim
                    and values.shape[0] == target.shape[0]
                    and values.shape[1] <= target.shape[1]
                    and values.shape[2:] == target.shape[2:]
                )
            )
            if not fits:
                raise ValueError(
                    f"replay checkpoint {directory}: {name}.npy has shape {values.shape}, "
                    f"which does not fit this replay's {target.shape}."
                )
        for name, values in loaded.items():
            target = getattr(self, f"_{name}")
            if name in _STATE_ARRAYS:
                target[...] = values
            else:  # a frame ring: the part written
                target[:, : values.shape[1]] = values
        self._write_positions[:] = state["write_positions"]
        self._num_valid = int(state["num_valid"])
        self._rng.bit_generator.state = state["rng"]
        self.start_new_episodes()
