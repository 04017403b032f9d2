"""Gymnasium -> TF-Agents adapters: time step types, discounts, specs, seeding, Atari stacks."""

import gymnasium
import numpy as np
import pytest
from tf_agents.environments import utils as env_utils
from tf_agents.trajectories import time_step as ts

from keras_cc_agents.environments import adapters as environments
from keras_cc_agents.environments import games
from keras_cc_agents.environments.adapters import FIRST, LAST, MID


class ScriptedEnv(gymnasium.Env):
    """Episodes of `length` steps that end by `ending` ("terminated" or "truncated").

    The observation is [episode index, step index]; a life is lost at step 2.
    """

    def __init__(self, length=4, ending="terminated"):
        self.observation_space = gymnasium.spaces.Box(-1e3, 1e3, (2,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(3)
        self.length, self.ending = length, ending
        self.episode, self.seeds = -1, []

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.seeds.append(seed)
        self.episode += 1
        self.t = 0
        return np.array([self.episode, 0], np.float32), {"lives": 3}

    def step(self, action):
        self.t += 1
        obs = np.array([self.episode, self.t], np.float32)
        done = self.t == self.length
        lives = 3 if self.t < 2 else 2
        return (
            obs,
            float(action) + 1.0,
            done and self.ending == "terminated",
            done and self.ending == "truncated",
            {"lives": lives},
        )


@pytest.mark.parametrize("ending, final_discount", [("terminated", 0.0), ("truncated", 1.0)])
def test_single_adapter_episode_ends(ending, final_discount):
    env = environments.GymnasiumPyEnvironment(ScriptedEnv(3, ending), seed=7)
    assert env.action_spec().maximum == 2 and env.action_spec().dtype == np.int64
    assert env.observation_spec().shape == (2,)
    steps = [env.reset()] + [env.step(np.int64(1)) for _ in range(5)]
    types = [int(t.step_type) for t in steps]
    assert types == [FIRST, MID, MID, LAST, FIRST, MID]
    assert float(steps[3].discount) == final_discount
    assert [float(t.discount) for t in (steps[1], steps[2])] == [1.0, 1.0]
    assert float(steps[4].reward) == 0.0 and float(steps[1].reward) == 2.0
    assert steps[4].observation.tolist() == [1.0, 0.0]
    assert env.gym.seeds == [7, None]  # only the first reset is seeded


def test_life_loss_is_a_training_only_terminal():
    plain = environments.GymnasiumPyEnvironment(ScriptedEnv(5))
    lifeloss = environments.GymnasiumPyEnvironment(ScriptedEnv(5), terminal_on_life_loss=True)
    for env, expected in ((plain, 1.0), (lifeloss, 0.0)):
        env.reset()
        first, second = env.step(0), env.step(0)
        assert int(first.step_type) == MID and float(first.discount) == 1.0
        assert int(second.step_type) == MID and float(second.discount) == expected
        assert float(env.step(0).discount) == 1.0  # lives no longer decrease


def test_vector_adapter_follows_each_sub_environment():
    vec = gymnasium.vector.SyncVectorEnv(
        [lambda: ScriptedEnv(2, "terminated"), lambda: ScriptedEnv(3, "truncated")],
        autoreset_mode=gymnasium.vector.AutoresetMode.NEXT_STEP,
    )
    env = environments.GymnasiumVectorPyEnvironment(vec, seed=3, terminal_on_life_loss=True)
    assert env.batched and env.batch_size == 2
    steps = [env.reset()] + [env.step(np.array([0, 1])) for _ in range(6)]
    types = np.array([t.step_type for t in steps])
    np.testing.assert_array_equal(
        types.T,
        [[FIRST, MID, LAST, FIRST, MID, LAST, FIRST], [FIRST, MID, MID, LAST, FIRST, MID, MID]],
    )
    discounts = np.array([t.discount for t in steps])
    # env 0: terminated at t=2 (also loses a life there); env 1: loses a life at t=2,
    # truncated at t=3 (discount 1: the learner bootstraps from a time limit).
    np.testing.assert_array_equal(discounts[:, 0], [1, 1, 0, 1, 1, 0, 1])
    np.testing.assert_array_equal(discounts[:, 1], [1, 1, 0, 1, 1, 1, 0])
    rewards = np.array([t.reward for t in steps])
    np.testing.assert_array_equal(rewards[:, 0], [0, 1, 1, 0, 1, 1, 0])
    assert steps[3].observation[0].tolist() == [1.0, 0.0]


class OutcomeEnv(gymnasium.Env):
    """Its first step ends as scripted: terminated, truncated, a life lost (3 -> 2 lives).

    Later steps of an episode are plain MID steps that lose nothing.
    """

    def __init__(self, terminated=False, truncated=False, life_lost=False):
        self.observation_space = gymnasium.spaces.Box(-1e3, 1e3, (1,), np.float32)
        self.action_space = gymnasium.spaces.Discrete(2)
        self.outcome = (terminated, truncated, life_lost)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.lives = 0, 3
        return np.zeros(1, np.float32), {"lives": self.lives}

    def step(self, action):
        self.t += 1
        terminated, truncated, life_lost = self.outcome if self.t == 1 else (False, False, False)
        self.lives -= int(life_lost)
        return np.full(1, self.t, np.float32), 1.0, terminated, truncated, {"lives": self.lives}


# (terminated, truncated, life lost) -> step type, discount without and with
# terminal_on_life_loss. A lost life with terminal_on_life_loss is a termination: discount 0,
# also on a truncated step; a truncation alone keeps discount 1.
OUTCOMES = {
    (False, False, False): (MID, 1.0, 1.0),
    (False, False, True): (MID, 1.0, 0.0),
    (False, True, False): (LAST, 1.0, 1.0),
    (False, True, True): (LAST, 1.0, 0.0),
    (True, False, False): (LAST, 0.0, 0.0),
    (True, False, True): (LAST, 0.0, 0.0),
    (True, True, False): (LAST, 0.0, 0.0),
    (True, True, True): (LAST, 0.0, 0.0),
}


@pytest.mark.parametrize("terminal_on_life_loss", [False, True])
@pytest.mark.parametrize("outcome", sorted(OUTCOMES), ids=str)
def test_single_adapter_every_outcome(outcome, terminal_on_life_loss):
    step_type, *discounts = OUTCOMES[outcome]
    env = environments.GymnasiumPyEnvironment(
        OutcomeEnv(*outcome), terminal_on_life_loss=terminal_on_life_loss
    )
    env.reset()
    step = env.step(np.int64(0))
    assert int(step.step_type) == step_type
    assert float(step.discount) == discounts[terminal_on_life_loss]
    assert step.discount.dtype == np.float32 and step.step_type.dtype == np.int32
    following = env.step(np.int64(0))
    assert int(following.step_type) == (FIRST if step_type == LAST else MID)
    assert float(following.discount) == 1.0


@pytest.mark.parametrize("terminal_on_life_loss", [False, True])
def test_vector_adapter_every_outcome(terminal_on_life_loss):
    outcomes = sorted(OUTCOMES)
    vec = gymnasium.vector.SyncVectorEnv(
        [lambda outcome=outcome: OutcomeEnv(*outcome) for outcome in outcomes],
        autoreset_mode=gymnasium.vector.AutoresetMode.NEXT_STEP,
    )
    env = environments.GymnasiumVectorPyEnvironment(
        vec, terminal_on_life_loss=terminal_on_life_loss
    )
    env.reset()
    step = env.step(np.zeros(len(outcomes), np.int64))
    expected = [OUTCOMES[outcome] for outcome in outcomes]
    np.testing.assert_array_equal(step.step_type, [e[0] for e in expected])
    np.testing.assert_array_equal(step.discount, [e[1 + terminal_on_life_loss] for e in expected])
    following = env.step(np.zeros(len(outcomes), np.int64))
    np.testing.assert_array_equal(
        following.step_type, [FIRST if e[0] == LAST else MID for e in expected]
    )
    np.testing.assert_array_equal(following.discount, np.ones(len(outcomes)))


def test_both_adapters_share_one_rule():
    for outcome, (step_type, *discounts) in OUTCOMES.items():
        for terminal_on_life_loss in (False, True):
            got = environments.step_type_and_discount(*outcome, terminal_on_life_loss)
            assert (int(got[0]), float(got[1])) == (step_type, discounts[terminal_on_life_loss])


def test_vector_adapter_rejects_same_step_autoreset():
    vec = gymnasium.vector.SyncVectorEnv(
        [ScriptedEnv], autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP
    )
    with pytest.raises(ValueError, match="NEXT_STEP"):
        environments.GymnasiumVectorPyEnvironment(vec)


def test_atari_vector_env_specs_stacks_and_seeding():
    env = environments.make_environment("Pong", 2, seed=11)
    assert env.observation_spec().shape == (84, 84, 4)
    assert env.observation_spec().dtype == np.uint8
    assert env.action_spec().maximum == len(games.action_meanings("Pong")) - 1
    first = env.reset()
    assert first.observation.shape == (2, 84, 84, 4)
    # Nature-DQN stacks: zeros before the first frame of an episode.
    assert not first.observation[..., :3].any() and first.observation[..., 3].any()
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 6, size=(60, 2))
    previous, observations = first, []
    for action in actions:
        step = env.step(action)
        mid = step.step_type == MID
        np.testing.assert_array_equal(
            step.observation[mid][..., :-1], previous.observation[mid][..., 1:]
        )
        observations.append(step.observation)
        previous = step
    again = environments.make_environment("Pong", 2, seed=11)
    again.reset()
    for action, expected in zip(actions, observations, strict=True):
        np.testing.assert_array_equal(again.step(action).observation, expected)


def test_breakout_life_loss_ends_nothing_but_the_discount():
    env = environments.make_environment("Breakout", 1, seed=0, terminal_on_life_loss=True)
    env.reset()
    fire = games.action_meanings("Breakout").index("FIRE")
    for _ in range(3000):
        step = env.step(np.array([fire]))
        if step.discount[0] == 0.0:
            assert step.step_type[0] == MID
            assert env.get_info()["lives"][0] == 4
            return
    pytest.fail("Breakout lost no life in 3000 steps")


def test_single_atari_env_matches_the_vector_env_specs():
    single = environments.make_atari_env("Pong", seed=0)
    vector = environments.make_environment("Pong", 1)
    assert single.observation_spec() == vector.observation_spec()
    assert single.action_spec() == vector.action_spec()
    env_utils.validate_py_environment(single, episodes=1)
    assert isinstance(single.current_time_step(), ts.TimeStep)


def test_cartpole_through_the_same_adapter():
    env = environments.make_environment("CartPole", 3, seed=0)
    assert env.observation_spec().shape == (4,) and env.action_spec().maximum == 1
    step, ends = env.reset(), 0
    for _ in range(100):
        step = env.step(np.ones(3, np.int64))
        ends += int((step.step_type == LAST).sum())
        assert np.all(step.discount[step.step_type == LAST] == 0.0)
    assert ends > 3


def test_unknown_game_lists_the_available_ones():
    with pytest.raises(games.UnknownGameError) as error:
        environments.make_environment("Pongg")
    message = str(error.value)
    assert "Did you mean Pong" in message
    for name in (*games.PAPER_GAMES, "CartPole"):
        assert name in message
    assert games.get_game("space_invaders").name == "SpaceInvaders"
    assert games.get_game("pong").env_id == "ALE/Pong-v5"


@pytest.mark.parametrize(
    "game, channels, actions",
    [
        ("MinAtar/Breakout", 4, ("NOOP", "LEFT", "RIGHT")),
        ("MinAtar/SpaceInvaders", 6, ("NOOP", "LEFT", "RIGHT", "FIRE")),
        ("MinAtar/Freeway", 7, ("NOOP", "UP", "DOWN")),
        ("MinAtar/Asterix", 4, ("NOOP", "LEFT", "UP", "RIGHT", "DOWN")),
        ("MinAtar/Seaquest", 10, ("NOOP", "LEFT", "UP", "RIGHT", "DOWN", "FIRE")),
    ],
)
def test_minatar_games_specs_and_minimal_action_sets(game, channels, actions):
    spec = games.get_game(game)
    assert spec.is_minatar and not spec.is_atari and spec.env_id == f"{game}-v1"
    assert games.action_meanings(game) == actions
    assert len(games.action_meanings(game, full_action_space=True)) == 6
    env = environments.make_environment(game, 2, seed=0)
    observation_spec = env.observation_spec()
    assert observation_spec.shape == (10, 10, channels) and observation_spec.dtype == np.uint8
    assert observation_spec.maximum == 1 and env.action_spec().maximum == len(actions) - 1
    first = env.reset()
    assert first.observation.shape == (2, 10, 10, channels)
    assert set(np.unique(first.observation)) <= {0, 1}


def test_minatar_names_seeding_sticky_actions_and_episode_limit():
    assert games.get_game("minatar/breakout").name == "MinAtar/Breakout"
    assert games.get_game("MinAtar_SpaceInvaders").path_name == "MinAtar_SpaceInvaders"
    assert set(games.MINATAR_GAMES) <= set(games.available_games())

    def rollout(sticky, seed=3, steps=300):
        options = environments.AtariOptions(sticky_action_probability=sticky)
        env = environments.make_environment("MinAtar/Breakout", 2, seed=seed, options=options)
        env.reset()
        actions = np.random.default_rng(0).integers(0, 3, size=(steps, 2))
        return np.stack([env.step(action).observation for action in actions])

    np.testing.assert_array_equal(rollout(0.1), rollout(0.1))  # seeded: reproducible
    assert not np.array_equal(rollout(0.1), rollout(0.1, seed=4))
    assert not np.array_equal(rollout(0.0), rollout(0.9))  # sticky actions act

    limited = environments.AtariOptions(max_episode_frames=5)
    env = environments.make_environment("MinAtar/Freeway", 1, seed=0, options=limited)
    env.reset()
    steps = [env.step(np.array([1])) for _ in range(5)]
    assert [int(s.step_type[0]) for s in steps] == [MID] * 4 + [LAST]
    assert steps[-1].discount[0] == 1.0  # a truncation keeps the bootstrap
