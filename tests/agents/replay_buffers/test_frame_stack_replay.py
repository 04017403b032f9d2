"""Frame-deduplicating replay against a naive store of stacked transitions."""

import numpy as np
import pytest

from keras_cc_agents.replay_buffers.frame_stack_replay import FIRST, LAST, MID, FrameStackReplay

STACK = 4
FRAME = (5, 6)


class NaiveStream:
    """Plays random episodes of one environment stream, keeping full stacked observations."""

    def __init__(self, rng, stream):
        self.rng = rng
        self.stream = stream
        self.counter = 0
        self.step_type = None  # forces a FIRST at the first step

    def _frame(self):
        self.counter += 1
        frame = self.rng.integers(0, 256, size=FRAME, dtype=np.uint8)
        frame[0, 0] = self.stream  # makes frames of different streams distinct
        return frame

    def next_step(self):
        """Returns the (step_type, observation) of this stream's next time step."""
        if self.step_type is None or self.step_type == LAST:
            # A reset stack: zeros or real frames before the first one (noop starts).
            older = [
                np.zeros(FRAME, np.uint8) if self.rng.random() < 0.5 else self._frame()
                for _ in range(STACK - 1)
            ]
            self.stack = [*older, self._frame()]
            self.step_type = FIRST
            # Episodes as short as one transition, and long ones.
            self.remaining = int(self.rng.choice([1, 2, 3, 7, 20]))
        else:
            self.stack = [*self.stack[1:], self._frame()]
            self.remaining -= 1
            self.step_type = LAST if self.remaining == 0 else MID
        return self.step_type, np.stack(self.stack, axis=-1)


def drive(replay, num_steps, num_streams, seed):
    """Adds `num_steps` batched steps; returns the naive map (stream, position) -> transition."""
    rng = np.random.default_rng(seed)
    streams = [NaiveStream(rng, i) for i in range(num_streams)]
    positions = [0] * num_streams
    previous = [None] * num_streams
    reference = {}
    current = [s.next_step() for s in streams]
    for _ in range(num_steps):
        actions = rng.integers(0, 6, size=num_streams)
        nxt = [s.next_step() for s in streams]
        rewards = rng.normal(size=num_streams).astype(np.float32)
        discounts = np.where(rng.random(num_streams) < 0.2, 0.0, 1.0).astype(np.float32)
        replay.add(
            np.array([c[0] for c in current]),
            np.stack([c[1] for c in current]),
            actions,
            rewards,
            discounts,
        )
        for i in range(num_streams):
            step_type, observation = current[i]
            if step_type == FIRST:
                positions[i] += STACK - 1  # the padding frames of the episode's first stack
            if previous[i] is not None and step_type != FIRST:
                key, value = previous[i]
                reference[key] = (*value, observation, step_type)
            previous[i] = None
            if step_type != LAST:
                previous[i] = (
                    (i, positions[i]),
                    (observation, actions[i], rewards[i], discounts[i]),
                )
            positions[i] += 1
        current = nxt
    return reference, positions


@pytest.mark.parametrize("capacity", [3000, 90])  # without and with ring wrap-around
def test_sampled_transitions_equal_naive_stacked_transitions(capacity):
    num_streams = 3
    replay = FrameStackReplay(capacity, num_streams, (*FRAME, STACK), np.uint8, STACK, seed=1)
    reference, positions = drive(replay, 400, num_streams, seed=2)
    batch = replay.sample(256)
    s, s_next = replay.stacks(batch.frames)
    assert s.shape == (256, *FRAME, STACK) and s.dtype == np.uint8
    for b in range(256):
        key = (int(batch.streams[b]), int(batch.positions[b]))
        obs, action, reward, discount, next_obs, next_type = reference[key]
        np.testing.assert_array_equal(s[b], obs)
        np.testing.assert_array_equal(s_next[b], next_obs)
        assert batch.actions[b] == action
        assert batch.rewards[b] == reward
        assert batch.discounts[b] == discount
        assert batch.next_step_types[b] == next_type
        assert batch.step_types[b] in (FIRST, MID)

    # Exactly the transitions whose frames are all still in memory are sampleable.
    stream_capacity = capacity // num_streams
    expected = {
        key
        for key in reference
        if key[1] - (STACK - 1) >= positions[key[0]] - stream_capacity
        and key[1] + 1 < positions[key[0]]
    }
    assert replay.num_transitions == len(expected)
    valid = set()
    for stream in range(num_streams):
        slots = np.flatnonzero(replay._valid[stream])
        valid |= {
            (stream, int(p)) for p in replay._positions_of(np.full(slots.shape, stream), slots)
        }
    assert valid == expected


def test_vector_observations_without_stacking():
    replay = FrameStackReplay(50, 2, (4,), np.float32, stack_size=1, seed=0)
    obs = np.arange(8, dtype=np.float32).reshape(2, 4)
    replay.add([FIRST, FIRST], obs, [0, 1], [1.0, 2.0], [1.0, 1.0])
    replay.add([MID, LAST], obs + 10, [1, 0], [3.0, 4.0], [0.0, 1.0])
    replay.add([LAST, FIRST], obs + 20, [0, 0], [0.0, 0.0], [1.0, 1.0])
    assert replay.num_transitions == 3
    batch = replay.sample(64)
    s, s_next = replay.stacks(batch.frames)
    np.testing.assert_array_equal(s_next - s, np.full_like(s, 10.0))
    # (stream, first element of s) -> (reward, discount, next step type)
    expected = {(0, 0.0): (1.0, 1.0, MID), (0, 10.0): (3.0, 0.0, LAST), (1, 4.0): (2.0, 1.0, LAST)}
    for b in range(64):
        key = (int(batch.streams[b]), float(s[b, 0]))
        reward, discount, next_type = expected[key]
        assert (batch.rewards[b], batch.discounts[b], batch.next_step_types[b]) == (
            reward,
            discount,
            next_type,
        )
    assert {float(x) for x in s[:, 0]} == {0.0, 10.0, 4.0}


def test_sampling_an_empty_replay_is_a_clear_error():
    replay = FrameStackReplay(100, 1, (*FRAME, STACK))
    with pytest.raises(ValueError, match="no complete transition"):
        replay.sample(4)


def test_bad_shapes_are_rejected():
    with pytest.raises(ValueError, match="stack axis"):
        FrameStackReplay(100, 1, (84, 84, 3), stack_size=4)
    replay = FrameStackReplay(100, 2, (*FRAME, STACK))
    with pytest.raises(ValueError, match="observations must have shape"):
        replay.add([FIRST], np.zeros((1, *FRAME, STACK), np.uint8), [0], [0.0], [1.0])


def test_one_million_atari_transitions_fit_in_8_kb_each():
    per_slot = FrameStackReplay.bytes_per_slot((84, 84, 4))
    # The arrays of an actual (small) replay take exactly that per slot.
    replay = FrameStackReplay(1000, 4, (84, 84, 4))
    overhead = replay.nbytes - 1000 * per_slot
    assert 0 <= overhead <= 64
    # A Pong episode lasts about 800 agent steps at random play; 100 is a pessimistic bound.
    per_transition = FrameStackReplay.bytes_per_transition((84, 84, 4), mean_episode_length=100)
    assert per_transition <= 8 * 1024
    assert per_transition * 1_000_000 <= 8e9
    naive = 2 * 84 * 84 * 4
    assert naive / per_transition > 7.5


def test_save_and_restore_round_trip(tmp_path):
    replay = FrameStackReplay(90, 3, (*FRAME, STACK), seed=5)
    drive(replay, 120, 3, seed=7)
    replay.save(str(tmp_path / "replay"))
    expected = replay.sample(32)

    restored = FrameStackReplay(90, 3, (*FRAME, STACK), seed=0)
    restored.restore(str(tmp_path / "replay"))
    assert restored.num_transitions == replay.num_transitions
    replay._rng = np.random.default_rng(11)
    restored._rng = np.random.default_rng(11)
    a, b = replay.sample(32), restored.sample(32)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert expected.frames.shape == a.frames.shape

    # After a restore every stream starts a new episode: no transition links across.
    before = restored.num_transitions
    restored.add([MID] * 3, np.ones((3, *FRAME, STACK), np.uint8), [0] * 3, [0.0] * 3, [1.0] * 3)
    assert restored.num_transitions <= before

    other = FrameStackReplay(90, 2, (*FRAME, STACK))
    with pytest.raises(ValueError, match="num_streams"):
        other.restore(str(tmp_path / "replay"))
