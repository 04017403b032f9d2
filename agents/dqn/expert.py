"""DQN experts: TF-Agents `DqnAgent` on batched gymnasium games, evaluated, checkpointed, exported.

The CC paper (section 4) distils one DQN expert per Atari game into an actor-mimic network.
`train_dqn_expert` trains such an expert with Nature-DQN's recipe (Mnih et al. 2015):

* acting: `num_envs` games in ale-py's `AtariVectorEnv`, epsilon-greedy with epsilon
  annealed linearly from 1 to 0.1 over the first million frames after a uniform-random
  warm-up of `learning_starts` agent steps;
* learning: one gradient step on 32 uniformly sampled transitions every 4 agent steps from
  a one-million-transition `FrameStackReplay`, Huber TD loss, rewards clipped to [-1, 1]
  (training only), terminal on life loss (training only, optional), target network copied
  every 10,000 gradient steps, RMSProp (centered, rho 0.95, epsilon 0.01) or Adam; optional
  double DQN (van Hasselt et al. 2016);
* evaluation epochs: every `eval_every_frames` training frames, `eval_frames` frames of play
  with epsilon 0.05 (the CC paper's 100,000 + 100,000 frames); scores per episode and per
  epoch go to CSV files and TensorBoard;
* checkpoints of the agent (networks, optimizer, counters), the counters of the loop and the
  replay after every evaluation and on interruption; a run resumes where its last
  checkpoint left off;
* export of the greedy policy (`PolicySaver`) and of what an actor-mimic student needs: a
  `q_values(observation)` SavedModel, the action meanings and the preprocessing.

A *frame* is an emulator frame: one agent step is `frame_skip` frames (4 on Atari, 1 on
classic-control games). An *agent step* is one transition of one environment.

Run directory layout (the contract `load_expert` and the actor-mimic code rely on)::

    config.json            all settings of the run
    eval_episodes.csv      game,epoch,frames,episode,score,length
    eval_epochs.csv        game,epoch,frames,mean_score,std_score,num_episodes
    checkpoints/           TF-Agents Checkpointer files, expert_checkpoint.json, replay/
    tensorboard/           scalars
    export/policy/         PolicySaver SavedModel of the greedy policy
    export/q_values/       SavedModel with `q_values(observation) -> float32 [B, num_actions]`
    export/expert.json     game, env_id, action meanings, shapes, frames trained, network
    result.json            written when the run finished (final evaluation, timings)
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.agents.dqn import dqn_agent
from tf_agents.environments import py_environment, wrappers
from tf_agents.policies import (
    epsilon_greedy_policy,
    policy_saver,
    py_tf_eager_policy,
    random_py_policy,
)
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import policy_step, trajectory
from tf_agents.trajectories import time_step as ts
from tf_agents.utils import common

from agents.dqn.config import (  # DqnExpertConfig, IDENTITY_FIELDS: part of this API
    IDENTITY_FIELDS,  # noqa: F401
    DqnExpertConfig,
    checkpoint_identity,
)
from agents.environments import adapters as environments
from agents.environments import games
from agents.metrics import EpisodeRecords
from agents.networks import q_networks as networks
from agents.replay_buffers.frame_stack_replay import FrameStackReplay
from keras_cc_runs.run_directory import (  # RunDirectoryError: part of this module's API
    RunDirectoryError,  # noqa: F401
    differing_settings,
    prepare_run_directory,
    read_csv,
    read_json,
    replace_directory,
    write_csv,
    write_json,
)

EPISODE_COLUMNS = ("game", "epoch", "frames", "episode", "score", "length")
EPOCH_COLUMNS = ("game", "epoch", "frames", "mean_score", "std_score", "num_episodes")


class CheckpointMismatchError(RuntimeError):
    """A checkpoint was written for another game, action set or network."""


def epsilon_at(frames: int, config: DqnExpertConfig) -> float:
    """Linear exploration schedule: epsilon_start -> epsilon_end over epsilon_decay_frames."""
    if config.epsilon_decay_frames == 0:
        return config.epsilon_end
    fraction = min(1.0, frames / config.epsilon_decay_frames)
    return config.epsilon_start + fraction * (config.epsilon_end - config.epsilon_start)


# ============================================================================ agent


class _SingleTargetPass:
    """Max over the target network's Q-values, computed once.

    `DqnAgent` evaluates the target network twice per train step (for its Q-values and
    again inside its greedy target policy); without action constraints both give the
    same `max_a Q_target(s', a)`.
    """

    def _compute_next_q_values(self, next_time_steps, info):
        del info
        next_q_values, _ = self._target_q_network(
            next_time_steps.observation, step_type=next_time_steps.step_type
        )
        return tf.reduce_max(next_q_values, axis=-1)


class ExpertDqnAgent(_SingleTargetPass, dqn_agent.DqnAgent):
    """TF-Agents `DqnAgent` (Mnih et al. 2015) with a single target-network pass."""


class ExpertDdqnAgent(dqn_agent.DdqnAgent):
    """TF-Agents `DdqnAgent` (double DQN, van Hasselt et al. 2016)."""


def make_optimizer(config: DqnExpertConfig):
    """Keras 2 (tf_keras) optimizer of the run.

    Keras 2 compiles optimizer updates with XLA only when a GPU is present; with
    `config.jit_optimizer` the update is XLA-fused on CPU as well (one pass over the
    weights and slots instead of one per elementwise op: 2-3x faster for Nature-DQN).
    """
    if config.optimizer == "rmsprop":
        epsilon = 0.01 if config.optimizer_epsilon is None else config.optimizer_epsilon
        optimizer = tf.keras.optimizers.RMSprop(
            learning_rate=config.learning_rate,
            rho=config.rmsprop_rho,
            momentum=0.0,
            epsilon=epsilon,
            centered=config.rmsprop_centered,
        )
    else:
        epsilon = 1.5e-4 if config.optimizer_epsilon is None else config.optimizer_epsilon
        optimizer = tf.keras.optimizers.Adam(learning_rate=config.learning_rate, epsilon=epsilon)
    if config.jit_optimizer:
        optimizer.jit_compile = True
    return optimizer


def make_agent(
    config: DqnExpertConfig, time_step_spec, action_spec, epsilon: Callable | float = 0.1
) -> dqn_agent.DqnAgent:
    """The run's `DqnAgent` (or `DdqnAgent`) with its Q-network, optimizer and int64 counter."""
    time_step_spec = tensor_spec.from_spec(time_step_spec)
    action_spec = tensor_spec.from_spec(action_spec)
    q_network = networks.make_q_network(
        time_step_spec.observation,
        action_spec,
        conv_layer_params=config.conv_layer_params,
        fc_layer_params=config.fc_layer_params,
    )
    agent_class = ExpertDdqnAgent if config.double_dqn else ExpertDqnAgent
    agent = agent_class(
        time_step_spec,
        action_spec,
        q_network=q_network,
        optimizer=make_optimizer(config),
        epsilon_greedy=epsilon,
        target_update_period=config.target_update_period,
        target_update_tau=config.target_update_tau,
        td_errors_loss_fn=common.element_wise_huber_loss,
        gamma=config.gamma,
        gradient_clipping=config.gradient_clipping,
        train_step_counter=tf.Variable(0, dtype=tf.int64, name="train_step"),
    )
    agent.initialize()
    return agent


def make_train_step(
    agent: dqn_agent.DqnAgent,
    replay: FrameStackReplay,
    clip_rewards: bool,
    jit_compile: bool = False,
):
    """A `tf.function` that trains `agent` on one `FrameStackReplay.sample` batch.

    The stacks s and s' are rebuilt in-graph from the sampled frames and handed to
    `agent.train` as a TF-Agents `Transition` (s, a, then r, discount and s' of the next time
    step), which `DqnAgent` takes as it is. The optimizer's slots are
    built first, so the step is traced once (without autograph: the agent's Python control
    flow does not depend on tensors). `jit_compile` compiles it with XLA.
    """
    stack = replay.stack_size
    observation_spec = agent.time_step_spec.observation
    frame_shape = tuple(observation_spec.shape[:-1]) if stack > 1 else tuple(observation_spec.shape)
    frames_spec = tf.TensorSpec([None, stack + 1, *frame_shape], observation_spec.dtype)
    vector = tf.TensorSpec([None], tf.float32)
    int_vector = tf.TensorSpec([None], tf.int32)
    action_dtype = agent.action_spec.dtype
    agent._optimizer.build(agent._q_network.trainable_variables)

    @tf.function(
        input_signature=[frames_spec, int_vector, vector, vector, int_vector, int_vector],
        autograph=False,
        jit_compile=jit_compile,
    )
    def train_step(frames, actions, rewards, discounts, step_types, next_step_types):
        if stack > 1:
            stacked = tf.transpose(frames, [0, *range(2, 2 + len(frame_shape)), 1])
            observation, next_observation = stacked[..., :-1], stacked[..., 1:]
        else:
            observation, next_observation = frames[:, 0], frames[:, 1]
        if clip_rewards:
            rewards = tf.clip_by_value(rewards, -1.0, 1.0)
        experience = trajectory.Transition(
            time_step=ts.TimeStep(
                step_type=step_types,
                reward=tf.zeros_like(rewards),
                discount=tf.ones_like(discounts),
                observation=observation,
            ),
            action_step=policy_step.PolicyStep(tf.cast(actions, action_dtype), (), ()),
            next_time_step=ts.TimeStep(
                step_type=next_step_types,
                reward=rewards,
                discount=discounts,
                observation=next_observation,
            ),
        )
        return agent.train(experience).loss

    def run(batch) -> tf.Tensor:
        return train_step(
            batch.frames,
            batch.actions.astype(np.int32),
            batch.rewards,
            batch.discounts,
            batch.step_types.astype(np.int32),
            batch.next_step_types.astype(np.int32),
        )

    return run


# ============================================================================ environments


class TimedPyEnvironment(wrappers.PyEnvironmentBaseWrapper):
    """Accumulates the wall-clock seconds spent in the wrapped environment."""

    def __init__(self, env: py_environment.PyEnvironment):
        super().__init__(env)
        self.seconds = 0.0

    def _reset(self):
        start = time.perf_counter()
        try:
            return self._env.reset()
        finally:
            self.seconds += time.perf_counter() - start

    def _step(self, action):
        start = time.perf_counter()
        try:
            return self._env.step(action)
        finally:
            self.seconds += time.perf_counter() - start


def make_game_environment(
    config: DqnExpertConfig, num_envs: int, seed: int, training: bool
) -> py_environment.PyEnvironment:
    """Batched environment of the run's game; life loss is terminal only when `training`."""
    return environments.make_environment(
        config.game,
        num_envs,
        seed=seed,
        options=config.atari_options,
        terminal_on_life_loss=training and config.terminal_on_life_loss,
    )


# ============================================================================ evaluation


@dataclasses.dataclass
class EvaluationResult:
    """Complete episodes of one evaluation: game scores (raw rewards) and lengths (steps)."""

    scores: list[float]
    lengths: list[int]
    frames: int

    @property
    def mean_score(self) -> float:
        return float(np.mean(self.scores))

    @property
    def std_score(self) -> float:
        return float(np.std(self.scores))


def evaluate_policy(
    env: py_environment.PyEnvironment,
    policy,
    frames_per_step: int = 4,
    max_frames: int = 0,
    num_episodes: int = 0,
) -> EvaluationResult:
    """Plays `policy` (a PyPolicy over batched time steps) in the batched `env`.

    With `num_episodes > 0`, the first episode of each of `env.batch_size` environments
    (which must equal `num_episodes`) is played to its end. Otherwise the environments play
    until `max_frames` frames have been used in total; episodes that ended within that budget
    count, and if none did, play continues until the first one ends. Scores are raw game
    scores (sum of unclipped rewards).
    """
    num_envs = env.batch_size or 1
    if num_episodes > 0 and num_envs != num_episodes:
        raise ValueError(
            f"num_episodes={num_episodes} needs an environment with as many copies, "
            f"got batch_size={num_envs}."
        )
    if num_episodes <= 0 and max_frames <= 0:
        raise ValueError("one of max_frames and num_episodes must be > 0.")
    scores, lengths = [], []
    episodes = EpisodeRecords(batch_size=num_envs)
    finished = np.zeros(num_envs, dtype=bool)
    frames = 0
    time_step = env.reset()
    policy_state = policy.get_initial_state(num_envs)
    while True:
        action_step = policy.action(time_step, policy_state)
        policy_state = action_step.state
        next_time_step = env.step(action_step.action)
        steps_before = episodes.steps
        episodes(trajectory.from_transition(time_step, action_step, next_time_step))
        time_step = next_time_step
        frames += (episodes.steps - steps_before) * frames_per_step
        for episode in episodes.last_ended:
            if num_episodes > 0 and finished[episode.env]:
                continue
            if num_episodes > 0 or frames <= max_frames or not scores:
                scores.append(episode.score)
                lengths.append(episode.length)
            finished[episode.env] = True
        if num_episodes > 0:
            if finished.all():
                break
        elif frames >= max_frames and scores:
            break
    return EvaluationResult(scores=scores, lengths=lengths, frames=frames)


# ============================================================================ files


# ============================================================================ export


class _QValuesModule(tf.Module):
    """SavedModel wrapper: `q_values(observation) -> float32 [B, num_actions]`."""

    def __init__(self, q_network, observation_spec):
        super().__init__(name="expert_q_values")
        self.q_network = q_network
        signature = tf.TensorSpec([None, *observation_spec.shape], observation_spec.dtype)
        self.q_values = tf.function(self._q_values, input_signature=[signature])

    def _q_values(self, observation):
        q_values, _ = self.q_network(observation, training=False)
        return tf.cast(q_values, tf.float32)


def export_expert(
    agent: dqn_agent.DqnAgent,
    directory: str,
    metadata: dict[str, Any],
) -> None:
    """Writes policy/, q_values/ and expert.json into `directory` (replaced atomically)."""
    directory = os.path.abspath(directory)
    temporary = directory + ".tmp"
    shutil.rmtree(temporary, ignore_errors=True)
    os.makedirs(temporary)
    saver = policy_saver.PolicySaver(
        agent.policy, batch_size=None, train_step=agent.train_step_counter
    )
    saver.save(os.path.join(temporary, "policy"))
    module = _QValuesModule(agent._q_network, agent.time_step_spec.observation)
    tf.saved_model.save(
        module,
        os.path.join(temporary, "q_values"),
        signatures={"serving_default": module.q_values},
    )
    write_json(os.path.join(temporary, "expert.json"), metadata)
    replace_directory(temporary, directory)


class Expert:
    """A trained expert loaded from a run directory (see `load_expert`).

    Attributes: game, env_id, action_meanings (a tuple), num_actions, observation_shape,
    observation_dtype, frames_trained, network, preprocessing, metadata, run_dir.
    `q_values` takes NumPy batches; `q_value_function` is the exported graph function
    (Tensor -> Tensor) that a student's `tf.function` train step calls directly.
    """

    def __init__(self, run_dir: str):
        export_dir = os.path.join(run_dir, "export")
        path = os.path.join(export_dir, "expert.json")
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"no exported expert in {run_dir!r}: {path} is missing (train the run to its "
                "end, or call agents.dqn_expert.export_run on an interrupted run)."
            )
        self.run_dir = run_dir
        self.metadata = read_json(path)
        self.game: str = self.metadata["game"]
        self.env_id: str = self.metadata["env_id"]
        self.action_meanings: tuple[str, ...] = tuple(self.metadata["action_meanings"])
        self.num_actions: int = int(self.metadata["num_actions"])
        if len(self.action_meanings) != self.num_actions:
            raise ValueError(
                f"{path} lists {len(self.action_meanings)} action meanings for "
                f"{self.num_actions} actions."
            )
        self.observation_shape = tuple(int(d) for d in self.metadata["observation_shape"])
        self.observation_dtype = np.dtype(self.metadata["observation_dtype"])
        self.frames_trained: int = int(self.metadata["frames_trained"])
        self.network: str = self.metadata["network"]
        self.preprocessing: dict[str, Any] = dict(self.metadata.get("preprocessing") or {})
        self._module = tf.saved_model.load(os.path.join(export_dir, "q_values"))
        self._policy_dir = os.path.join(export_dir, "policy")
        self._policy = None

    def q_value_function(self, observation: tf.Tensor) -> tf.Tensor:
        """float32 [B, num_actions] Q-values of a batch tensor (graph-callable)."""
        return self._module.q_values(observation)

    def q_values(self, observations) -> np.ndarray:
        """float32 [B, num_actions] for a batch of observations [B, *observation_shape]."""
        observations = np.asarray(observations)
        if observations.shape[1:] != self.observation_shape:
            raise ValueError(
                f"observations must have shape (batch, *{self.observation_shape}) for the "
                f"{self.game} expert, got {observations.shape}."
            )
        if observations.dtype != self.observation_dtype:
            raise ValueError(
                f"observations must be {self.observation_dtype} for the {self.game} expert, "
                f"got {observations.dtype}."
            )
        return self.q_value_function(tf.constant(observations)).numpy()

    def greedy_actions(self, observations) -> np.ndarray:
        return np.argmax(self.q_values(observations), axis=-1)

    @property
    def policy(self):
        """The exported greedy policy as a `SavedModelPyTFEagerPolicy` on batched time steps."""
        if self._policy is None:
            self._policy = py_tf_eager_policy.SavedModelPyTFEagerPolicy(
                self._policy_dir, load_specs_from_pbtxt=True, batch_time_steps=False
            )
        return self._policy


def load_expert(run_dir: str) -> Expert:
    """Loads the exported expert of a DQN run directory."""
    return Expert(run_dir)


# ============================================================================ trainer


@dataclasses.dataclass
class TrainingResult:
    """What `train_dqn_expert` returns (also written to result.json)."""

    run_dir: str
    frames: int
    agent_steps: int
    gradient_steps: int
    epochs: int
    final_mean_score: float | None
    final_std_score: float | None
    best_mean_score: float | None
    agent_steps_per_second: float
    environment_time_fraction: float
    resumed_from_frames: int
    finished: bool


class DqnExpertTrainer:
    """Trains, evaluates, checkpoints and exports one DQN expert in `run_dir`.

    Construction prepares or resumes the run (see `train_dqn_expert` for the rules about
    existing directories); `train()` runs it to `config.total_frames`.
    """

    def __init__(
        self,
        config: DqnExpertConfig,
        run_dir: str,
        overwrite: bool = False,
        progress: Callable[[str], None] | None = print,
    ):
        self.config = config
        self.run_dir = os.path.abspath(run_dir)
        self.progress = progress or (lambda line: None)
        self._prepare_run_directory(overwrite)
        tf.random.set_seed(config.seed)
        self._rng = np.random.default_rng(config.seed)
        game = config.game_spec

        self.env = TimedPyEnvironment(
            make_game_environment(config, config.num_envs, config.seed, training=True)
        )
        self.time_step_spec = self.env.time_step_spec()
        self.action_spec = self.env.action_spec()
        self.action_meanings = list(games.action_meanings(game.name, config.full_action_space))
        if len(self.action_meanings) != self.action_spec.maximum + 1:
            raise RuntimeError(
                f"{game.name}: {len(self.action_meanings)} action meanings but the "
                f"environment has {self.action_spec.maximum + 1} actions."
            )
        observation_spec = self.time_step_spec.observation
        self.stack_size = config.frame_stack if game.is_atari else 1

        # Loop counters: Python ints in the loop, mirrored into int64 variables (as TF 2.21
        # requires) for the checkpoint.
        names = ("agent_steps", "frames", "episodes", "epoch", "train_credit")
        self.count = dict.fromkeys(names, 0)
        self.counters = {name: tf.Variable(0, dtype=tf.int64, name=name) for name in names}
        self.epsilon = tf.Variable(config.epsilon_start, dtype=tf.float32, name="epsilon")
        self.agent = make_agent(config, self.time_step_spec, self.action_spec, self.epsilon.value)
        self.architecture = self.agent._q_network.architecture
        self.replay = FrameStackReplay(
            config.replay_capacity,
            config.num_envs,
            observation_spec.shape,
            observation_spec.dtype,
            stack_size=self.stack_size,
            seed=config.seed,
        )
        self._train_step = make_train_step(
            self.agent, self.replay, config.clip_rewards, jit_compile=config.jit_compile
        )
        self.collect_policy = py_tf_eager_policy.PyTFEagerPolicy(
            self.agent.collect_policy, use_tf_function=True, batch_time_steps=False
        )
        self.random_policy = random_py_policy.RandomPyPolicy(
            self.time_step_spec, self.action_spec, seed=config.seed, outer_dims=(config.num_envs,)
        )
        self.eval_policy = py_tf_eager_policy.PyTFEagerPolicy(
            epsilon_greedy_policy.EpsilonGreedyPolicy(
                self.agent.policy, epsilon=config.eval_epsilon
            ),
            use_tf_function=True,
            batch_time_steps=False,
        )
        self.timers = {"act": 0.0, "train": 0.0, "replay": 0.0, "eval": 0.0}
        # Training episodes; result() is the mean return of the last 20.
        self.train_episodes = EpisodeRecords("TrainEpisodes", buffer_size=20)
        self.loss = tf.constant(float("nan"))
        self._time_step = None
        self.checkpoint_dir = os.path.join(self.run_dir, "checkpoints")
        self.resumed_from_frames = self._restore_checkpoint()
        self.writer = tf.summary.create_file_writer(os.path.join(self.run_dir, "tensorboard"))
        self._episode_rows = [
            row
            for row in read_csv(os.path.join(self.run_dir, "eval_episodes.csv"))
            if int(row["epoch"]) <= self.epoch
        ]
        self._epoch_rows = [
            row
            for row in read_csv(os.path.join(self.run_dir, "eval_epochs.csv"))
            if int(row["epoch"]) <= self.epoch
        ]

    # ------------------------------------------------------------------ properties

    @property
    def frames(self) -> int:
        return self.count["frames"]

    @property
    def agent_steps(self) -> int:
        return self.count["agent_steps"]

    @property
    def epoch(self) -> int:
        return self.count["epoch"]

    @property
    def gradient_steps(self) -> int:
        return int(self.agent.train_step_counter.numpy())

    def identity(self) -> dict[str, Any]:
        """What a checkpoint of this run is for; a restore must match it exactly."""
        spec = self.time_step_spec.observation
        return {
            "game": self.config.game,
            "env_id": self.config.game_spec.env_id,
            "network": self.architecture,
            "num_actions": int(self.action_spec.maximum + 1),
            "observation_shape": list(spec.shape),
            "observation_dtype": np.dtype(spec.dtype).name,
            "double_dqn": bool(self.config.double_dqn),
        }

    # ------------------------------------------------------------------ directory

    def _prepare_run_directory(self, overwrite: bool) -> None:
        def finished():
            done = os.path.exists(os.path.join(self.run_dir, "result.json"))
            return "result.json" if done else None

        def differences(previous):
            return differing_settings(
                checkpoint_identity(previous),
                checkpoint_identity(self.config.to_dict()),
                IDENTITY_FIELDS,
            )

        prepare_run_directory(
            self.run_dir,
            self.config.to_dict(),
            overwrite=overwrite,
            finished=finished,
            differences=differences,
        )

    def _restore_checkpoint(self) -> int:
        os.makedirs(self.checkpoint_dir, exist_ok=True)
        meta_path = os.path.join(self.checkpoint_dir, "expert_checkpoint.json")
        manager_state = tf.train.latest_checkpoint(self.checkpoint_dir)
        if manager_state is not None:
            check_checkpoint_identity(self.checkpoint_dir, self.identity())
        self.checkpointer = common.Checkpointer(
            ckpt_dir=self.checkpoint_dir,
            max_to_keep=self.config.keep_checkpoints,
            agent=self.agent,
            epsilon=self.epsilon,
            **self.counters,
        )
        if manager_state is None:
            write_json(meta_path, self.identity())
            return 0
        status = self.checkpointer.initialize_or_restore()
        try:
            status.assert_existing_objects_matched()
        except AssertionError as error:
            raise CheckpointMismatchError(
                f"checkpoint {manager_state} does not match this run's agent: {error}"
            ) from error
        self.count = {name: int(variable.numpy()) for name, variable in self.counters.items()}
        replay_dir = os.path.join(self.checkpoint_dir, "replay")
        replay_meta = os.path.join(replay_dir, "replay.json")
        if self.config.checkpoint_replay and os.path.exists(replay_meta):
            if read_json(replay_meta).get("frames") == self.frames:
                self.replay.restore(replay_dir)
            else:
                self.progress(f"[{self.config.game}] replay checkpoint is stale; refilling.")
        self.progress(
            f"[{self.config.game}] resumed from {manager_state}: frames {self.frames:,}, "
            f"gradient steps {self.gradient_steps:,}, epoch {self.epoch}, "
            f"replay {self.replay.num_transitions:,} transitions"
        )
        return self.frames

    def save_checkpoint(self) -> None:
        """Replay (optional) then agent and counters; the TF checkpoint commits the state."""
        for name, variable in self.counters.items():
            variable.assign(self.count[name])
        if self.config.checkpoint_replay:
            replay_dir = os.path.join(self.checkpoint_dir, "replay")
            self.replay.save(replay_dir)
            meta = read_json(os.path.join(replay_dir, "replay.json"))
            meta["frames"] = self.frames
            write_json(os.path.join(replay_dir, "replay.json"), meta)
        self.checkpointer.save(global_step=self.counters["frames"])

    # ------------------------------------------------------------------ evaluation

    def evaluate(self) -> EvaluationResult:
        """One evaluation epoch; appends its rows to the CSV files and TensorBoard."""
        config = self.config
        epoch = self.epoch + 1
        eval_seed = config.seed * 7919 + 1_000_003 * epoch
        if config.eval_episodes > 0:
            env = make_game_environment(config, config.eval_episodes, eval_seed, training=False)
            result = evaluate_policy(
                env, self.eval_policy, config.frames_per_step, num_episodes=config.eval_episodes
            )
        else:
            env = make_game_environment(config, config.eval_num_envs, eval_seed, training=False)
            result = evaluate_policy(
                env, self.eval_policy, config.frames_per_step, max_frames=config.eval_frames
            )
        env.close()
        frames = self.frames
        for index, (score, length) in enumerate(zip(result.scores, result.lengths, strict=True)):
            self._episode_rows.append(
                {
                    "game": config.game,
                    "epoch": epoch,
                    "frames": frames,
                    "episode": index,
                    "score": score,
                    "length": length,
                }
            )
        self._epoch_rows.append(
            {
                "game": config.game,
                "epoch": epoch,
                "frames": frames,
                "mean_score": result.mean_score,
                "std_score": result.std_score,
                "num_episodes": len(result.scores),
            }
        )
        write_csv(
            os.path.join(self.run_dir, "eval_episodes.csv"), EPISODE_COLUMNS, self._episode_rows
        )
        write_csv(os.path.join(self.run_dir, "eval_epochs.csv"), EPOCH_COLUMNS, self._epoch_rows)
        with self.writer.as_default(step=frames):
            tf.summary.scalar("eval/mean_score", result.mean_score)
            tf.summary.scalar("eval/std_score", result.std_score)
            tf.summary.scalar("eval/num_episodes", len(result.scores))
        self.count["epoch"] = epoch
        return result

    # ------------------------------------------------------------------ training

    def train(self) -> TrainingResult:
        """Runs the run to `total_frames` (or `target_score`), then exports the expert.

        Ctrl-C (KeyboardInterrupt) saves a checkpoint before it propagates.
        """
        try:
            return self._train()
        except KeyboardInterrupt:
            self.save_checkpoint()
            self.progress(
                f"[{self.config.game}] interrupted; checkpoint at frames {self.frames:,}."
            )
            raise

    def reset_environments(self) -> None:
        """Starts new episodes in every training environment."""
        self._time_step = self.env.reset()  # train_episodes drops the unfinished episodes

    def step(self) -> int:
        """One batched environment step, its replay entries and the gradient steps now due.

        Acting is uniformly random until the replay holds `learning_starts` transitions,
        then epsilon-greedy; one gradient step is due per `train_every` agent steps once the
        replay is warm. Returns the number of new agent steps.
        """
        config, count, timers = self.config, self.count, self.timers
        if self._time_step is None:
            self.reset_environments()
        time_step = self._time_step
        tick = time.perf_counter()
        warm = self.replay.num_transitions >= max(config.learning_starts, config.batch_size)
        if warm:
            self.epsilon.assign(epsilon_at(self.frames, config))
            action_step = self.collect_policy.action(time_step)
        else:
            action_step = self.random_policy.action(time_step)
        next_time_step = self.env.step(action_step.action)
        tock = time.perf_counter()
        timers["act"] += tock - tick
        traj = trajectory.from_transition(time_step, action_step, next_time_step)
        self.replay.add_batch(traj)
        timers["replay"] += time.perf_counter() - tock

        steps_before = self.train_episodes.steps
        self.train_episodes(traj)
        new_steps = self.train_episodes.steps - steps_before
        for episode in self.train_episodes.last_ended:
            with self.writer.as_default(step=self.frames):
                tf.summary.scalar("train/episode_return", episode.score)
                tf.summary.scalar("train/episode_length", episode.length)
            count["episodes"] += 1
        count["agent_steps"] += new_steps
        count["frames"] += new_steps * config.frames_per_step
        self._time_step = next_time_step

        if self.replay.num_transitions >= max(config.learning_starts, config.batch_size):
            count["train_credit"] += new_steps
            tick = time.perf_counter()
            while count["train_credit"] >= config.train_every:
                self.loss = self._train_step(self.replay.sample(config.batch_size))
                count["train_credit"] -= config.train_every
            timers["train"] += time.perf_counter() - tick
        return new_steps

    def _train(self) -> TrainingResult:
        config = self.config
        next_eval = (self.epoch + 1) * config.eval_every_frames
        last_result = None
        if self._epoch_rows:
            last = self._epoch_rows[-1]
            last_result = (float(last["mean_score"]), float(last["std_score"]))
        best = max((float(r["mean_score"]) for r in self._epoch_rows), default=None)
        reached_target = False
        timers = self.timers
        start_time = last_log = time.perf_counter()
        start_steps = self.agent_steps
        env_seconds_start = self.env.seconds
        eval_seconds_start = timers["eval"]
        recent_returns = self.train_episodes.data
        self.reset_environments()

        while self.frames < config.total_frames and not reached_target:
            self.step()

            if self.frames >= next_eval or self.frames >= config.total_frames:
                tick = time.perf_counter()
                result = self.evaluate()
                timers["eval"] += time.perf_counter() - tick
                last_result = (result.mean_score, result.std_score)
                best = result.mean_score if best is None else max(best, result.mean_score)
                self.progress(
                    f"[{config.game}] epoch {self.epoch} at frames {self.frames:,}: eval score "
                    f"{result.mean_score:.2f} ± {result.std_score:.2f} over "
                    f"{len(result.scores)} episodes"
                )
                reached_target = (
                    config.target_score is not None and result.mean_score >= config.target_score
                )
                self.save_checkpoint()
                next_eval = (self.epoch + 1) * config.eval_every_frames

            now = time.perf_counter()
            if now - last_log >= config.log_every_seconds:
                last_log = now
                rate = (self.agent_steps - start_steps) / max(now - start_time, 1e-9)
                recent = f"{self.train_episodes.result():.2f}" if len(recent_returns) else "n/a"
                self.progress(
                    f"[{config.game}] frames {self.frames:,}/{config.total_frames:,} "
                    f"({100.0 * self.frames / config.total_frames:.1f}%) | "
                    f"{rate:.0f} agent steps/s | epsilon {float(self.epsilon.numpy()):.3f} | "
                    f"loss {float(self.loss):.4f} | recent returns {recent} "
                    f"(last {len(recent_returns)}) | replay {self.replay.num_transitions:,}"
                )
                with self.writer.as_default(step=self.frames):
                    tf.summary.scalar("train/agent_steps_per_second", rate)
                    tf.summary.scalar("train/epsilon", self.epsilon)
                    if math.isfinite(float(self.loss)):
                        tf.summary.scalar("train/loss", self.loss)
        self.writer.flush()

        elapsed = time.perf_counter() - start_time
        steps_done = self.agent_steps - start_steps
        env_seconds = self.env.seconds - env_seconds_start
        training_seconds = max(elapsed - (timers["eval"] - eval_seconds_start), 1e-9)
        self.export()
        result = TrainingResult(
            run_dir=self.run_dir,
            frames=self.frames,
            agent_steps=self.agent_steps,
            gradient_steps=self.gradient_steps,
            epochs=self.epoch,
            final_mean_score=None if last_result is None else last_result[0],
            final_std_score=None if last_result is None else last_result[1],
            best_mean_score=best,
            agent_steps_per_second=steps_done / training_seconds,
            environment_time_fraction=env_seconds / training_seconds,
            resumed_from_frames=self.resumed_from_frames,
            finished=True,
        )
        write_json(
            os.path.join(self.run_dir, "result.json"),
            {**dataclasses.asdict(result), "timers_seconds": timers},
        )
        return result

    # ------------------------------------------------------------------ export

    def export_metadata(self) -> dict[str, Any]:
        config = self.config
        spec = self.time_step_spec.observation
        preprocessing = {"clip_rewards_in_training": config.clip_rewards}
        if config.game_spec.is_atari:
            preprocessing.update(config.atari_options.to_dict())
            preprocessing.update(
                grayscale=True,
                max_pool_last_two_frames=True,
                channels_last=True,
                terminal_on_life_loss_in_training=config.terminal_on_life_loss,
                pixel_scaling="observation / 255 inside the network",
            )
        return {
            "game": config.game,
            "env_id": config.game_spec.env_id,
            "action_meanings": self.action_meanings,
            "num_actions": int(self.action_spec.maximum + 1),
            "observation_shape": list(spec.shape),
            "observation_dtype": np.dtype(spec.dtype).name,
            "frames_trained": self.frames,
            "gradient_steps": self.gradient_steps,
            "network": self.architecture,
            "double_dqn": config.double_dqn,
            "preprocessing": preprocessing,
        }

    def export(self) -> str:
        """Exports the current greedy policy and Q-values to run_dir/export."""
        directory = os.path.join(self.run_dir, "export")
        export_expert(self.agent, directory, self.export_metadata())
        return directory


def check_checkpoint_identity(checkpoint_dir: str, identity: dict[str, Any]) -> None:
    """Raises `CheckpointMismatchError` unless the checkpoint was written for `identity`."""
    meta_path = os.path.join(checkpoint_dir, "expert_checkpoint.json")
    if not os.path.exists(meta_path):
        raise CheckpointMismatchError(
            f"{checkpoint_dir} holds a checkpoint without expert_checkpoint.json; cannot tell "
            "which game and network it belongs to, so it is not loaded."
        )
    saved = read_json(meta_path)
    different = [key for key in identity if saved.get(key) != identity[key]]
    if different:
        details = "; ".join(
            f"{key}: checkpoint {saved.get(key)!r}, this run {identity[key]!r}" for key in different
        )
        raise CheckpointMismatchError(
            f"the checkpoint in {checkpoint_dir} was written for game {saved.get('game')!r} with "
            f"network {saved.get('network')!r} and cannot be loaded here ({details})."
        )


def train_dqn_expert(
    config: DqnExpertConfig,
    run_dir: str,
    overwrite: bool = False,
    progress: Callable[[str], None] | None = print,
) -> TrainingResult:
    """Trains (or resumes) a DQN expert in `run_dir` and exports it.

    * A new directory starts a run; config.json records every setting.
    * A directory with an unfinished run of the same game, network and replay layout
      resumes from its last checkpoint (other settings, e.g. total_frames, may change).
    * A directory with a finished run (result.json) raises `RunDirectoryError` unless
      `overwrite`, which deletes it first; so does an unfinished run with other settings.
    * A checkpoint written for another game or network raises `CheckpointMismatchError`.
    """
    trainer = DqnExpertTrainer(config, run_dir, overwrite=overwrite, progress=progress)
    with contextlib.closing(trainer.env):
        return trainer.train()


def export_run(run_dir: str) -> str:
    """Exports the expert of an (interrupted) run from its latest checkpoint."""
    config = DqnExpertConfig.from_dict(read_json(os.path.join(run_dir, "config.json")))
    trainer = DqnExpertTrainer(config, run_dir, progress=None)
    try:
        return trainer.export()
    finally:
        trainer.env.close()


def train_expert_task(config_values: dict[str, Any], run_dir: str, overwrite: bool = False):
    """`train_dqn_expert` on plain values, for worker processes and Ray tasks.

    Returns the `TrainingResult` as a dict. Progress lines go to stdout, prefixed with the
    game's name.
    """
    config = DqnExpertConfig.from_dict(config_values)
    result = train_dqn_expert(
        config, run_dir, overwrite=overwrite, progress=lambda line: print(line, flush=True)
    )
    return dataclasses.asdict(result)
