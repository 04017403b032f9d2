"""ActorMimicAgent on a hand-built two-game case: per-game gathers, losses, policies, safety."""

import numpy as np
import pytest
import scipy.linalg
import tensorflow as tf
from tf_agents.trajectories import time_step as ts

from keras_cc_agents.actor_mimic import agent as am
from keras_cc_agents.actor_mimic.action_union import ActionUnion

# The slow lane (research code: the student's loss, compiled per game): `-m "not slow"` skips it.
pytestmark = pytest.mark.slow

BREAKOUT = ["NOOP", "FIRE", "RIGHT", "LEFT"]  # union slots 0, 1, 2, 3
ATLANTIS = ["NOOP", "FIRE", "RIGHTFIRE", "LEFTFIRE"]  # union slots 0, 1, 4, 5
OBSERVATION_SPEC = tf.TensorSpec([3], tf.float32, "observation")
RNG = np.random.default_rng(0)
EXPERT_WEIGHTS = [RNG.normal(size=(3, 4)).astype(np.float32) for _ in range(2)]
OBSERVATIONS = RNG.normal(size=(7, 3)).astype(np.float32)
GAME_IDS = np.array([0, 1, 1, 0, 1, 0, 0], np.int32)  # any mix, not blocks


def _expert(weights):
    return lambda observation: tf.matmul(observation, weights)


def _agent(loss="ce", temperature=1.0, epsilon=0.1, experts=None, jit_compile=False, **kwargs):
    union = ActionUnion.from_action_meanings({"Breakout": BREAKOUT, "Atlantis": ATLANTIS})
    tf.keras.utils.set_random_seed(3)
    network = am.ActorMimicNetwork(OBSERVATION_SPEC, union.num_actions, fc_layer_params=(8,))
    agent = am.ActorMimicAgent(
        am.actor_mimic_time_step_spec(OBSERVATION_SPEC, union),
        am.union_action_spec(union),
        network,
        am.build_optimizer(1e-2),
        union,
        experts or [_expert(w) for w in EXPERT_WEIGHTS],
        loss=loss,
        temperature=temperature,
        epsilon_greedy=epsilon,
        jit_compile=jit_compile,
        train_step_counter=tf.Variable(0, dtype=tf.int64),
        **kwargs,
    )
    agent.initialize()
    return agent, union


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _cc_log_normalizer(eta):
    k = len(eta)
    shift = eta.max()
    matrix = np.diag(eta - shift) + np.diag(np.ones(k - 1), 1)
    return shift + np.log(scipy.linalg.expm(matrix)[0, k - 1])


def _expected_losses(agent, union, loss, temperature):
    logits, _ = agent.student_network(tf.constant(OBSERVATIONS))
    logits = logits.numpy().astype(np.float64)
    per_state = []
    for row, game in enumerate(GAME_IDS):
        z = logits[row, union.game_to_union[game]]  # the game's own actions
        q = OBSERVATIONS[row].astype(np.float64) @ EXPERT_WEIGHTS[game]
        y = np.exp(_log_softmax(q / temperature))
        log_pi = _log_softmax(z)
        value = -(y * log_pi).sum()
        if loss == "cc":
            value += _cc_log_normalizer(log_pi)
        per_state.append(value)
    return np.array(per_state)


@pytest.mark.parametrize(
    "loss, temperature, jit_compile",
    [("ce", 1.0, False), ("cc", 1.0, False), ("ce", 0.5, False), ("cc", 0.5, True)],
)
def test_loss_gathers_each_games_actions(loss, temperature, jit_compile):
    agent, union = _agent(loss, temperature, jit_compile=jit_compile)
    info = agent.loss(am.StateBatch(OBSERVATIONS, GAME_IDS))
    expected = _expected_losses(agent, union, loss, temperature)
    np.testing.assert_allclose(info.loss.numpy(), expected.mean(), rtol=2e-5, atol=2e-5)
    np.testing.assert_array_equal(info.extra.per_game_count.numpy(), [4, 3])
    np.testing.assert_allclose(
        info.extra.per_game_loss.numpy(),
        [expected[GAME_IDS == 0].mean(), expected[GAME_IDS == 1].mean()],
        rtol=2e-5,
        atol=2e-5,
    )


def test_train_step_lowers_the_loss_and_counts_nothing_non_finite():
    agent, _ = _agent("cc")
    batch = am.StateBatch(OBSERVATIONS, GAME_IDS)
    first = agent.loss(batch).loss.numpy()
    for _ in range(30):
        info = agent.train(batch)
    assert bool(info.extra.finite)
    assert agent.loss(batch).loss.numpy() < first
    assert int(agent.nonfinite_steps.numpy()) == 0
    assert int(agent.train_step_counter.numpy()) == 30


def test_non_finite_step_is_counted_and_not_applied():
    nan_expert = lambda observation: tf.fill([tf.shape(observation)[0], 4], np.float32(np.nan))
    agent, _ = _agent("cc", experts=[_expert(EXPERT_WEIGHTS[0]), nan_expert])
    before = [v.numpy().copy() for v in agent.trainable_variables]
    info = agent.train(am.StateBatch(OBSERVATIONS, GAME_IDS))
    assert not bool(info.extra.finite)
    assert int(agent.nonfinite_steps.numpy()) == 1
    for old, new in zip(before, agent.trainable_variables, strict=True):
        np.testing.assert_array_equal(old, new.numpy())


def _time_step(agent, game, observations):
    observation = tf.nest.map_structure(
        tf.convert_to_tensor, agent.observation_for_game(game, observations)
    )
    return ts.restart(observation, batch_size=len(observations))


def test_policies_only_take_the_games_legal_actions():
    agent, union = _agent(epsilon=1.0)  # collect policy: uniformly random legal actions
    observations = RNG.normal(size=(400, 3)).astype(np.float32)
    for game, legal in (("Breakout", {0, 1, 2, 3}), ("Atlantis", {0, 1, 4, 5})):
        step = _time_step(agent, game, observations)
        greedy = agent.policy.action(step).action.numpy()
        assert set(greedy) <= legal
        logits, _ = agent.student_network(observations)
        gathered = logits.numpy()[:, union.game_to_union[union.game_index(game)]]
        np.testing.assert_array_equal(
            greedy, union.game_to_union[union.game_index(game)][gathered.argmax(-1)]
        )
        explored = agent.collect_policy.action(step).action.numpy()
        assert set(explored) == legal
        assert set(agent.evaluation_policy(0.5).action(step).action.numpy()) <= legal


def test_feature_regression_term():
    feature_weights = [RNG.normal(size=(3, 5)).astype(np.float32) for _ in range(2)]
    agent, _ = _agent(
        "ce",
        feature_regression_weight=0.5,
        expert_feature_fns=[_expert(w) for w in feature_weights],
        expert_feature_sizes=[5, 5],
    )
    without, _ = _agent("ce")
    batch = am.StateBatch(OBSERVATIONS, GAME_IDS)
    info = agent.loss(batch)
    features = agent.student_network.features(OBSERVATIONS).numpy()
    expected = []
    for row, game in enumerate(GAME_IDS):
        head = agent._feature_heads[game]
        predicted = features[row] @ head.kernel.numpy() + head.bias.numpy()
        expected.append(((predicted - OBSERVATIONS[row] @ feature_weights[game]) ** 2).sum())
    np.testing.assert_allclose(info.extra.feature_loss.numpy(), np.mean(expected), rtol=1e-5)
    np.testing.assert_allclose(
        info.loss.numpy(), info.extra.policy_loss.numpy() + 0.5 * np.mean(expected), rtol=1e-5
    )
    assert len(agent.trainable_variables) == len(without.trainable_variables) + 4


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="temperature"):
        _agent(temperature=0.0)
    with pytest.raises(ValueError, match="loss must be one of"):
        _agent(loss="kl")
    with pytest.raises(ValueError, match="expert_q_fns has 1 experts for 2 games"):
        _agent(experts=[_expert(EXPERT_WEIGHTS[0])])
    with pytest.raises(ValueError, match="needs expert_feature_fns"):
        _agent(feature_regression_weight=1.0)
