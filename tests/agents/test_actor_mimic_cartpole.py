"""Distillation on CartPole: the student reaches >= 90% of its trained expert's return.

The expert is trained in the test session in seconds by the cross-entropy method on a
linear Q-network (the CC paper, section 4: any policy that plays well can be an expert),
exported through ``agents.dqn_expert.export_expert`` like a DQN expert, and evaluated
like the students (``agents.dqn_expert.evaluate_policy``, the same epsilon). The student
(a 64-64 MLP over the action union) distils it with the AMN cross-entropy (eq. 10) and
with the CC-AMN likelihood (eq. 11).
"""

import gymnasium
import numpy as np
import pytest
import tensorflow as tf
from tf_agents.policies import py_tf_eager_policy
from tf_agents.specs import tensor_spec

from agents import actor_mimic_training, dqn_expert, environments, networks, random_experts

EVAL_EPSILON = 0.0
EVAL_FRAMES = 4_000  # eight 500-step episodes over eight evaluation environments


def _episode_return(weights, bias, env, seed):
    observation, _ = env.reset(seed=seed)
    total = 0.0
    for _ in range(500):
        observation, reward, terminated, truncated, _ = env.step(
            int(observation @ weights + bias > 0)
        )
        total += reward
        if terminated or truncated:
            break
    return total


def _cross_entropy_method(seed=0, population=24, elite=5, iterations=30, episodes=2):
    """A linear CartPole controller ``push right iff w . s + b > 0``, by CEM."""
    rng = np.random.default_rng(seed)
    env = gymnasium.make("CartPole-v1")
    mean, std = np.zeros(5), np.ones(5)
    for _ in range(iterations):
        candidates = mean + std * rng.standard_normal((population, 5))
        scores = np.array(
            [
                np.mean(
                    [
                        _episode_return(c[:4], c[4], env, int(rng.integers(2**30)))
                        for _ in range(episodes)
                    ]
                )
                for c in candidates
            ]
        )
        best = candidates[np.argsort(scores)[-elite:]]
        mean, std = best.mean(0), best.std(0) + 0.02
        if np.sort(scores)[-elite:].mean() >= 500:
            break
    # Scale the scores so that guidance vectors softmax(Q) are soft, as a DQN expert's are:
    # within (0.08, 0.92) on 95% of the expert's states.
    observations = []
    observation, _ = env.reset(seed=seed)
    for _ in range(500):
        observations.append(observation)
        observation, _, terminated, truncated, _ = env.step(
            int(observation @ mean[:4] + mean[4] > 0)
        )
        if terminated or truncated:
            break
    margins = np.abs(np.asarray(observations) @ mean[:4] + mean[4])
    return mean * 2.5 / max(np.percentile(margins, 95), 1e-6)


@pytest.fixture(scope="module")
def cartpole_expert(tmp_path_factory):
    """experts_dir with a trained CartPole expert, and the expert's average return."""
    experts_dir = tmp_path_factory.mktemp("experts")
    params = _cross_entropy_method()
    env = environments.make_environment("CartPole", 1)
    observation_spec = tensor_spec.from_spec(env.observation_spec())
    action_spec = tensor_spec.from_spec(env.action_spec())
    env.close()
    q_network = networks.make_q_network(observation_spec, action_spec, fc_layer_params=())
    kernel, bias = q_network.q_value_layer.kernel, q_network.q_value_layer.bias
    # Q(s) = [-(w.s + b) / 2, (w.s + b) / 2]: greedy action 1 (RIGHT) iff w.s + b > 0.
    kernel.assign(np.stack([-params[:4] / 2, params[:4] / 2], axis=1).astype(np.float32))
    bias.assign(np.array([-params[4] / 2, params[4] / 2], np.float32))
    run_dir = random_experts.export_q_network_expert(
        str(experts_dir / "CartPole"), "CartPole", q_network, trained_by="cross-entropy method"
    )
    policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
        f"{run_dir}/export/policy", load_specs_from_pbtxt=True, batch_time_steps=False
    )

    eval_env = environments.make_environment("CartPole", 8, seed=123)
    result = dqn_expert.evaluate_policy(eval_env, policy, frames_per_step=1, max_frames=EVAL_FRAMES)
    eval_env.close()
    expert_return = float(np.mean(result.scores))
    assert expert_return >= 475, f"the CartPole expert is too weak: {expert_return}"
    return str(experts_dir), expert_return


@pytest.mark.parametrize("loss", ["ce", "cc"])
def test_student_reaches_90_percent_of_expert(cartpole_expert, loss, tmp_path):
    experts_dir, expert_return = cartpole_expert
    tf.keras.utils.set_random_seed(1)
    config = actor_mimic_training.ActorMimicConfig(
        games=("CartPole",),
        experts_dir=experts_dir,
        output_dir=str(tmp_path / loss),
        loss=loss,
        temperature=1.0,
        epochs=1,
        epoch_frames=4_000,
        eval_frames=EVAL_FRAMES,
        epsilon=0.1,
        eval_epsilon=EVAL_EPSILON,
        learning_rate=1e-3,
        batch_size_per_game=64,
        train_every=4,
        learning_starts=500,
        replay_capacity=10_000,
        num_envs=8,
        seed=1,
        log_every_seconds=1e9,
    )
    summary = actor_mimic_training.train_actor_mimic(config, log=lambda line: None)
    student_return = summary.eval_mean_scores["CartPole"]
    assert summary.nonfinite_steps == 0
    assert summary.updates > 500
    assert student_return >= 0.9 * expert_return, (loss, student_return, expert_return)
