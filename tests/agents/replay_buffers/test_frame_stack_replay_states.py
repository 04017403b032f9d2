"""FrameStackReplay serving states (actor-mimic) against a naive store of whole observations."""

import numpy as np
import pytest

from keras_cc_agents.replay_buffers.frame_stack_replay import FrameStackReplay, StaleReplayError


def _stacked_stream(num_states, stack, rng, first_fill="repeat", lengths=(10, 40)):
    """Yields (observation [2, 2, stack], is_first) like an Atari frame stack."""
    next_id = 0
    produced = 0
    while produced < num_states:
        length = int(rng.integers(*lengths))
        frames = []
        for t in range(length):
            frame = np.array([[next_id % 251, next_id // 251], [7, t]], dtype=np.uint8)
            next_id += 1
            if t == 0:
                pad = frame if first_fill == "repeat" else np.zeros_like(frame)
                frames = [pad] * (stack - 1) + [frame]
            else:
                frames = frames[1:] + [frame]
            yield np.stack(frames, axis=-1), t == 0
            produced += 1
            if produced == num_states:
                return


@pytest.mark.parametrize("first_fill", ["repeat", "zeros"])
@pytest.mark.parametrize("num_streams", [1, 3])
def test_rebuilt_stacks_match_naive_reference(first_fill, num_streams):
    rng = np.random.default_rng(0)
    capacity = 60
    replay = FrameStackReplay.for_states((2, 2, 4), np.uint8, capacity, num_streams, 4, seed=1)
    streams = [list(_stacked_stream(400, 4, rng, first_fill)) for _ in range(num_streams)]
    naive = [[] for _ in range(num_streams)]
    for t in range(400):
        observations = np.stack([streams[s][t][0] for s in range(num_streams)])
        firsts = np.array([streams[s][t][1] for s in range(num_streams)])
        replay.add_states(observations, firsts)
        for s in range(num_streams):
            naive[s].append(observations[s])
    per_stream = capacity // num_streams
    # The replay holds exactly the most recent states of each stream (ample frame slack).
    assert replay.num_states == per_stream * num_streams
    recent = {obs.tobytes() for s in range(num_streams) for obs in naive[s][-per_stream:]}
    sample = replay.sample_states(4000)
    seen = {obs.tobytes() for obs in sample}
    assert seen <= recent, "a rebuilt stack is not one of the recent observations"
    assert seen == recent, "uniform sampling should reach every stored state"
    # One frame per state (4 bytes here) plus ~26 bytes of bookkeeping a slot, with the
    # slack of episode starts: no stacks of four frames.
    assert replay.nbytes < 40 * capacity + 40 * 16


def test_very_short_episodes_never_mix_episodes():
    rng = np.random.default_rng(3)
    replay = FrameStackReplay.for_states((2, 2, 4), np.uint8, 40, 1, 4, seed=2)
    naive = []
    for observation, first in _stacked_stream(300, 4, rng, "zeros", lengths=(1, 4)):
        replay.add_states(observation[None], [first])
        naive.append(observation)
    # Episode starts cost extra frames, so fewer states fit, but never a wrong stack.
    assert 0 < replay.num_states <= 40
    recent = {obs.tobytes() for obs in naive[-replay.num_states :]}
    assert {obs.tobytes() for obs in replay.sample_states(2000)} == recent


def test_vector_observations_and_bad_input():
    replay = FrameStackReplay.for_states((4,), np.float32, capacity=5, seed=0)
    for i in range(8):
        replay.add_states(np.full((1, 4), i, np.float32), [i == 0])
    assert replay.num_states == 5
    assert set(replay.sample_states(200)[:, 0].tolist()) == {3.0, 4.0, 5.0, 6.0, 7.0}
    with pytest.raises(ValueError, match="shape"):
        replay.add_states(np.zeros((2, 4), np.float32), [True, True])
    with pytest.raises(ValueError, match="empty"):
        FrameStackReplay.for_states((4,), np.float32, capacity=5).sample_states(1)
    with pytest.raises(ValueError, match="stack_size=4"):
        FrameStackReplay.for_states((84, 84, 3), np.uint8, capacity=5, stack_size=4)


def test_a_state_replay_saved_and_restored_samples_what_it_would_have_sampled(tmp_path):
    rng = np.random.default_rng(4)
    replay = FrameStackReplay.for_states((2, 2, 4), np.uint8, 60, 3, 4, seed=5)
    streams = [list(_stacked_stream(150, 4, rng)) for _ in range(3)]
    for t in range(150):
        replay.add_states(
            np.stack([s[t][0] for s in streams]), np.array([s[t][1] for s in streams])
        )
    replay.save(str(tmp_path / "replay"), epoch=3)
    # A checkpoint stamped at another point of the run is refused, and nothing is loaded.
    stale = FrameStackReplay.for_states((2, 2, 4), np.uint8, 60, 3, 4, seed=0)
    with pytest.raises(StaleReplayError, match="saved at {'epoch': 3}, not at {'epoch': 4}"):
        stale.restore(str(tmp_path / "replay"), epoch=4)
    assert (stale.num_states, stale.num_added) == (0, 0)
    restored = FrameStackReplay.for_states((2, 2, 4), np.uint8, 60, 3, 4, seed=0)
    restored.restore(str(tmp_path / "replay"), epoch=3)
    assert (restored.num_states, restored.num_added) == (replay.num_states, replay.num_added)
    # The sampling generator comes back too: the same draws as the replay that went on.
    np.testing.assert_array_equal(restored.sample_states(500), replay.sample_states(500))

    wider = FrameStackReplay.for_states((2, 2, 4), np.uint8, 90, 3, 4, seed=0)
    with pytest.raises(ValueError, match="capacity"):
        wider.restore(str(tmp_path / "replay"))
    # A damaged array file is named and leaves the replay empty, as it was.
    (tmp_path / "replay" / "states_written.npy").write_bytes(b"not an array")
    fresh = FrameStackReplay.for_states((2, 2, 4), np.uint8, 60, 3, 4, seed=0)
    with pytest.raises(ValueError):
        fresh.restore(str(tmp_path / "replay"))
    assert (fresh.num_states, fresh.num_added) == (0, 0)
