"""Where an expert's guidance vectors sit: the measures against a direct computation on the
same played states, the table over seeds, and bad settings refused."""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_cc import ops
from keras_cc_agents.actor_mimic import guidance
from keras_cc_agents.dqn import expert as dqn_expert
from keras_cc_agents.dqn import random_experts

GAME = "MinAtar/Breakout"


@pytest.fixture(scope="module")
def expert(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("expert"))
    random_experts.export_untrained_expert(run_dir, GAME, seed=3)
    return dqn_expert.load_expert(run_dir)


def test_played_states_are_reproducible_and_exploration_changes_them(expert):
    first = guidance.played_q_values(expert, 60, epsilon=0.5, seed=1)
    assert first.shape == (60, expert.num_actions) and first.dtype == np.float32
    np.testing.assert_array_equal(first, guidance.played_q_values(expert, 60, 0.5, seed=1))
    assert not np.array_equal(first, guidance.played_q_values(expert, 60, 0.5, seed=2))


def test_measures_equal_a_direct_computation_on_the_played_states(expert):
    # A temperature small enough to spread the untrained Q-values over the simplex, so
    # that the measures are neither all 0 nor all 1.
    temperature = 0.002
    result = guidance.guidance_health(expert, 80, temperature, 0.5, seed=1, expert_seed=3)
    q = guidance.played_q_values(expert, 80, 0.5, seed=1).astype(np.float64) / temperature
    probs = np.exp(q - q.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    actions = probs.shape[-1]
    distance = np.linalg.norm(probs - 1.0 / actions, axis=-1) / np.sqrt(1.0 - 1.0 / actions)
    failures = ops.cc_closed_form_failure(tf.constant(np.log(probs), tf.float32)).numpy()
    assert (result.game, result.seed, result.states) == (GAME, 3, 80)
    np.testing.assert_allclose(result.centroid_distance_mean, distance.mean(), rtol=1e-4)
    np.testing.assert_allclose(result.centroid_distance_median, np.median(distance), rtol=1e-4)
    assert result.near_centroid_share == pytest.approx(np.mean(distance < 0.1), abs=0.02)
    assert result.closed_form_failure_share == pytest.approx(failures.mean())
    assert 0.0 < result.centroid_distance_mean < 1.0


def test_table_gives_the_mean_over_seeds_with_their_range():
    rows = [
        guidance.GuidanceHealth(GAME, seed, 100, share, 0.1 * (seed + 1), 0.0, 0.5)
        for seed, share in enumerate((0.1, 0.3))
    ]
    rows.append(guidance.GuidanceHealth("MinAtar/Freeway", 0, 100, 0.25, 0.008, 0.0, 1.0))
    table = guidance.health_markdown(rows).splitlines()
    assert len(table) == 4
    assert table[2] == (
        f"| {GAME} | 2 | 100 | 20.0% (10.0%–30.0%) | 0.150 (0.100–0.200) | 50.0% (50.0%–50.0%) |"
    )
    assert table[3] == "| MinAtar/Freeway | 1 | 100 | 25.0% | 0.008 | 100.0% |"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(steps=0), "steps must be >= 1"),
        (dict(steps=5, epsilon=1.5), "epsilon must be in"),
        (dict(steps=5, temperature=0.0), "temperature must be finite and > 0"),
    ],
)
def test_bad_settings_are_refused(expert, kwargs, message):
    with pytest.raises(ValueError, match=message):
        guidance.guidance_health(expert, **kwargs)


def test_the_committed_table_is_the_one_its_records_render():
    records = os.path.join(
        os.path.dirname(__file__), "..", "..", "..", "examples", "results", "minatar_guidance"
    )
    results = guidance.read_results(os.path.join(records, "guidance.csv"))
    assert {r.game for r in results} >= {"MinAtar/Breakout", "MinAtar/SpaceInvaders"}
    with open(os.path.join(records, "guidance.md")) as stream:
        assert stream.read() == guidance.health_markdown(results)
