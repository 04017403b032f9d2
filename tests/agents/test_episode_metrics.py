"""Episode accounting through a TF-Agents StreamingMetric, on batched trajectories."""

import numpy as np
from tf_agents.trajectories import trajectory

from keras_cc_agents.metrics import EpisodeRecords

FIRST, MID, LAST = 0, 1, 2


def _traj(step_types, next_step_types, rewards):
    n = len(step_types)
    return trajectory.Trajectory(
        step_type=np.array(step_types, np.int32),
        observation=np.zeros(n, np.float32),
        action=np.zeros(n, np.int32),
        policy_info=(),
        next_step_type=np.array(next_step_types, np.int32),
        reward=np.array(rewards, np.float32),
        discount=np.ones(n, np.float32),
    )


def test_episodes_of_two_environments_with_auto_reset():
    records = EpisodeRecords(buffer_size=2)
    records(_traj([FIRST, FIRST], [MID, MID], [1.0, 2.0]))
    records(_traj([MID, MID], [LAST, MID], [1.0, 2.0]))
    assert [(e.env, e.score, e.length) for e in records.last_ended] == [(0, 2.0, 2)]
    records(_traj([LAST, MID], [FIRST, LAST], [0.0, 5.0]))  # env 0: boundary, not a step
    records(_traj([FIRST, LAST], [LAST, FIRST], [3.0, 0.0]))
    assert records.scores == [2.0, 9.0, 3.0] and records.lengths == [2, 3, 1]
    assert records.steps == 6
    assert records.result() == np.float32(6.0)  # mean of the last buffer_size=2 returns
    records(_traj([MID, FIRST], [MID, MID], [1.0, 4.0]))
    assert records.unfinished() == [(1.0, 1), (4.0, 1)]


def test_a_reset_in_the_middle_drops_the_unfinished_episode():
    records = EpisodeRecords(batch_size=1)
    records(_traj([FIRST], [MID], [1.0]))
    records(_traj([FIRST], [LAST], [5.0]))
    assert records.scores == [5.0] and records.lengths == [1]
    records.reset()
    assert records.episodes == [] and records.steps == 0 and records.result() == 0.0
