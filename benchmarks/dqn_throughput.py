"""End-to-end DQN training throughput on an Atari game: ours against a plain TF-Agents loop.

Both sides run the same Nature-DQN agent (same Q-network, RMSProp, batch 32, Huber loss) and
take one gradient step per 4 agent steps (an agent step is one environment transition):

* ours: `keras_cc_agents.dqn.trainer.DqnExpertTrainer.step` -- `--num_envs` games in ale-py's native
  `AtariVectorEnv`, one batched `PyTFEagerPolicy` call per step of all of them, the
  frame-deduplicating `FrameStackReplay`, a traced train step (one target-network pass);
* plain TF-Agents: the loop of the TF-Agents DQN tutorial -- a `DynamicStepDriver` over one
  gymnasium game (`AtariPreprocessing` + `FrameStackObservation`, through our adapter and
  `TFPyEnvironment`) writing stacked observations into a `TFUniformReplayBuffer`, sampled as
  a `tf.data` pipeline, and the stock `DqnAgent.train` wrapped in `common.function`.

After a warm-up (replay filled with random play, functions traced), the two loops run
`--steps` agent steps each, in alternating order, `--repeats` times. The table reports the
median agent steps per second, the ratio, the replay's bytes per transition and where each
loop's wall time goes: environment, acting (policy), replay (writing and sampling) and
gradient steps. A second, side-by-side measurement times one gradient step of each loop
on a fixed batch (`--train_step_repeats`); since both loops take one gradient step per
`--train_every` agent steps, `train_every / (our train step)` bounds our agent steps per
second even if acting, environment and replay cost nothing, and that bound divided by the
plain loop's rate bounds the speedup. `--json` also writes the figures to a file.

    python benchmarks/dqn_throughput.py                 # Pong, about 3 minutes on 2 CPU cores
    python benchmarks/dqn_throughput.py --steps 2000 --repeats 5 --game Breakout

The same script runs on a GPU (TensorFlow places the networks there).
"""

from __future__ import annotations

import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

from absl import flags

import keras_cc_agents  # routes tf.keras to Keras 2 before TensorFlow is imported
from keras_cc_runs import cli, run_directory

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _timing  # noqa: E402

FLAGS = flags.FLAGS
PARTS = ("env", "act", "replay", "train")  # where a loop's wall time goes
flags.DEFINE_string("game", "Pong", "Atari game (short name, e.g. Pong, Breakout).")
flags.DEFINE_integer("steps", 400, "Agent steps timed per repeat and per loop.")
flags.DEFINE_integer("repeats", 3, "Alternating repeats; the table shows medians.")
flags.DEFINE_integer("warmup_steps", 400, "Random agent steps that fill each replay first.")
flags.DEFINE_integer("num_envs", 4, "Parallel games of our loop (AtariVectorEnv).")
flags.DEFINE_integer("replay_capacity", 20_000, "Replay capacity (transitions) of both loops.")
flags.DEFINE_integer("train_every", 4, "Agent steps per gradient step (both loops).")
flags.DEFINE_integer("batch_size", 32, "Transitions per gradient step (both loops).")
flags.DEFINE_integer("seed", 0, "Seed of both loops.")
flags.DEFINE_integer(
    "train_step_repeats", 7, "Side-by-side rounds timing one gradient step of each loop."
)
flags.DEFINE_integer("train_step_calls", 10, "Gradient steps per round of that timing.")
flags.DEFINE_string("json", None, "Optional path of a JSON file with the results.")


def _ours(config, run_dir):
    """Our loop; returns a function that runs n agent steps and reports (seconds, env secs)."""
    from keras_cc_agents.dqn.expert import DqnExpertTrainer

    trainer = DqnExpertTrainer(config, run_dir, overwrite=True, progress=None)
    while trainer.replay.num_transitions < config.learning_starts:
        trainer.step()
    trainer.step()  # traces the policy and the train step

    def run(num_steps):
        env_before, start, done = trainer.env.seconds, time.perf_counter(), 0
        timers_before = dict(trainer.timers)
        while done < num_steps:
            done += trainer.step()
        seconds = time.perf_counter() - start
        env_seconds = trainer.env.seconds - env_before
        spent = {name: trainer.timers[name] - timers_before[name] for name in PARTS[1:]}
        spent["act"] -= env_seconds  # the trainer's "act" timer includes the environment step
        return done, seconds, env_seconds, spent

    batch = trainer.replay.sample(config.batch_size)

    def train_step():
        return trainer.train_step(batch)

    return run, train_step, trainer


def _plain_tf_agents(config):
    """The TF-Agents tutorial loop over one gymnasium game; same runner interface."""
    import tensorflow as tf
    from tf_agents.agents.dqn import dqn_agent
    from tf_agents.drivers import dynamic_step_driver
    from tf_agents.environments import tf_py_environment
    from tf_agents.policies import random_tf_policy
    from tf_agents.replay_buffers import tf_uniform_replay_buffer
    from tf_agents.utils import common

    from keras_cc_agents.dqn import expert as dqn_expert
    from keras_cc_agents.environments import adapters as environments
    from keras_cc_agents.networks import q_networks as networks

    py_env = dqn_expert.TimedPyEnvironment(
        environments.make_atari_env(config.game, config.atari_options, seed=config.seed)
    )
    env = tf_py_environment.TFPyEnvironment(py_env)
    q_network = networks.make_q_network(env.observation_spec(), env.action_spec())
    agent = dqn_agent.DqnAgent(
        env.time_step_spec(),
        env.action_spec(),
        q_network=q_network,
        optimizer=dqn_expert.make_optimizer(config),
        epsilon_greedy=0.1,
        target_update_period=config.target_update_period,
        td_errors_loss_fn=common.element_wise_huber_loss,
        gamma=config.gamma,
        train_step_counter=tf.Variable(0, dtype=tf.int64),
    )
    agent.initialize()
    buffer = tf_uniform_replay_buffer.TFUniformReplayBuffer(
        agent.collect_data_spec, batch_size=env.batch_size, max_length=config.replay_capacity
    )
    random_policy = random_tf_policy.RandomTFPolicy(env.time_step_spec(), env.action_spec())
    dynamic_step_driver.DynamicStepDriver(
        env, random_policy, observers=[buffer.add_batch], num_steps=config.learning_starts
    ).run()
    dataset = buffer.as_dataset(
        num_parallel_calls=3, sample_batch_size=config.batch_size, num_steps=2
    ).prefetch(3)
    iterator = iter(dataset)
    driver = dynamic_step_driver.DynamicStepDriver(
        env, agent.collect_policy, observers=[buffer.add_batch], num_steps=config.train_every
    )
    driver_run = common.function(driver.run)
    train = common.function(agent.train)
    state = {"time_step": env.reset(), "policy_state": agent.collect_policy.get_initial_state(1)}
    spent = dict.fromkeys(PARTS[1:], 0.0)

    def iteration():
        tick = time.perf_counter()
        state["time_step"], state["policy_state"] = driver_run(
            state["time_step"], state["policy_state"]
        )
        tock = time.perf_counter()
        experience, _ = next(iterator)
        tack = time.perf_counter()
        train(experience)
        spent["act"] += tock - tick  # the driver: policy, environment and replay writes
        spent["replay"] += tack - tock
        spent["train"] += time.perf_counter() - tack

    iteration()  # traces

    def run(num_steps):
        env_before, start, done = py_env.seconds, time.perf_counter(), 0
        before = dict(spent)
        while done < num_steps:
            iteration()
            done += config.train_every
        env_seconds = py_env.seconds - env_before
        parts = {name: spent[name] - before[name] for name in spent}
        parts["act"] -= env_seconds
        return done, time.perf_counter() - start, env_seconds, parts

    fixed_experience, _ = next(iterator)

    def train_step():
        return train(fixed_experience).loss

    return run, train_step, buffer


def main(argv):
    del argv
    from keras_cc_agents.dqn.config import DqnExpertConfig

    with cli.checks():
        config = DqnExpertConfig(
            game=FLAGS.game,
            seed=FLAGS.seed,
            num_envs=FLAGS.num_envs,
            replay_capacity=FLAGS.replay_capacity,
            learning_starts=FLAGS.warmup_steps,
            train_every=FLAGS.train_every,
            batch_size=FLAGS.batch_size,
            checkpoint_replay=False,
        )
        if not config.game_spec.is_atari:
            raise ValueError(f"--game must be an Atari game, got {config.game}.")
    if not cli.verbose():
        keras_cc_agents.import_gym_quietly()
    import tensorflow as tf  # after the flags are checked

    from keras_cc_agents.replay_buffers.frame_stack_replay import FrameStackReplay

    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"DQN throughput on {config.game} ({device}, {os.cpu_count()} CPU cores visible)")
    with tempfile.TemporaryDirectory() as run_dir:
        setup = time.perf_counter()
        ours, ours_train_step, trainer = _ours(config, run_dir)
        plain, plain_train_step, _ = _plain_tf_agents(config)
        print(f"setup, warm-up and tracing: {time.perf_counter() - setup:.1f} s")
        loops = {"ours": ours, "plain_tf_agents": plain}
        rows = {name: [] for name in loops}
        for repeat, name in _timing.rounds(loops, FLAGS.repeats):
            steps, seconds, env_seconds, spent = loops[name](FLAGS.steps)
            spent["env"] = env_seconds
            rows[name].append(
                {
                    "agent_steps_per_second": steps / seconds,
                    "seconds": seconds,
                    **{f"{part}_time_fraction": spent[part] / seconds for part in PARTS},
                }
            )
            if len(rows["ours"]) == len(rows["plain_tf_agents"]):
                ratio = (
                    rows["ours"][-1]["agent_steps_per_second"]
                    / rows["plain_tf_agents"][-1]["agent_steps_per_second"]
                )
                print(f"repeat {repeat + 1}/{FLAGS.repeats}: ratio {ratio:.2f}")
        train_seconds = _timing.medians(
            _timing.side_by_side(
                {"ours": ours_train_step, "plain_tf_agents": plain_train_step},
                FLAGS.train_step_repeats,
                inner=FLAGS.train_step_calls,
                finish=lambda loss: float(loss),
                warmup=1,
            )
        )
        trainer.env.close()

    def median(name, key):
        return statistics.median(row[key] for row in rows[name])

    ours_rate = median("ours", "agent_steps_per_second")
    plain_rate = median("plain_tf_agents", "agent_steps_per_second")
    ours_bytes = FrameStackReplay.bytes_per_transition(
        trainer.replay.observation_shape, mean_episode_length=800
    )
    naive_bytes = 2 * 84 * 84 * 4
    # Gradient steps alone cap our rate: train_every agent steps per gradient step.
    ours_rate_bound = config.train_every / train_seconds["ours"]
    results = {
        "game": config.game,
        "device": device,
        "steps_per_repeat": FLAGS.steps,
        "repeats": FLAGS.repeats,
        "num_envs_ours": config.num_envs,
        "train_every": config.train_every,
        "batch_size": config.batch_size,
        "speedup": ours_rate / plain_rate,
        "train_step_ms": {name: 1e3 * value for name, value in train_seconds.items()},
        "train_step_speedup": train_seconds["plain_tf_agents"] / train_seconds["ours"],
        "ours_rate_bound_from_train_step": ours_rate_bound,
        "speedup_bound_from_train_step": ours_rate_bound / plain_rate,
    }
    for name, replay_bytes in (("ours", ours_bytes), ("plain_tf_agents", naive_bytes)):
        results[name] = {
            "agent_steps_per_second": median(name, "agent_steps_per_second"),
            **{f"{part}_time_fraction": median(name, f"{part}_time_fraction") for part in PARTS},
            "replay_bytes_per_transition": replay_bytes,
            "repeats": rows[name],
        }
    header = (
        f"{'loop':<18}{'agent steps/s':>15}{'env':>7}{'act':>7}{'replay':>8}{'train':>7}"
        f"{'train step':>12}{'replay B/transition':>21}"
    )
    print(header)
    print("-" * len(header))
    for name in ("ours", "plain_tf_agents"):
        r = results[name]
        shares = "".join(
            f"{100 * r[f'{part}_time_fraction']:>{width - 1}.0f}%"
            for part, width in zip(PARTS, (7, 7, 8, 7), strict=True)
        )
        print(
            f"{name:<18}{r['agent_steps_per_second']:>15.1f}{shares}"
            f"{results['train_step_ms'][name]:>9.1f} ms"
            f"{r['replay_bytes_per_transition']:>21,.0f}"
        )
    print(f"speedup (ours / plain TF-Agents): {results['speedup']:.2f}x")
    print(
        f"one gradient step: ours {results['train_step_ms']['ours']:.1f} ms, plain "
        f"{results['train_step_ms']['plain_tf_agents']:.1f} ms "
        f"({results['train_step_speedup']:.2f}x); with acting, environment and replay free, "
        f"ours would reach at most {ours_rate_bound:.0f} agent steps/s = "
        f"{results['speedup_bound_from_train_step']:.2f}x the plain loop"
    )
    print(
        "(act: the policy, and for the plain loop the driver's replay writes; replay: "
        "writing and sampling ours, sampling the plain tf.data pipeline)"
    )
    summary = {
        key: value for key, value in results.items() if key not in ("ours", "plain_tf_agents")
    }
    for name in ("ours", "plain_tf_agents"):
        summary[name] = {k: v for k, v in results[name].items() if k != "repeats"}
    print(json.dumps(summary))
    if FLAGS.json:
        run_directory.write_json(FLAGS.json, results)


if __name__ == "__main__":
    cli.run(main)
