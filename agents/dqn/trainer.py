"""`DqnExpertTrainer`: trains, evaluates, checkpoints, resumes and exports one DQN expert run
(the epoch skeleton is `keras_cc_agents.training.EpochRun`); `train_expert_task` for launchers."""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.policies import (
    epsilon_greedy_policy,
    py_tf_eager_policy,
    random_py_policy,
)
from tf_agents.trajectories import trajectory

from keras_cc_agents.dqn.agent import epsilon_at, make_agent, make_train_step
from keras_cc_agents.dqn.config import (
    IDENTITY_FIELDS,
    CheckpointMismatchError,
    DqnExpertConfig,
    check_checkpoint_identity,
    checkpoint_identity,
)
from keras_cc_agents.dqn.evaluation import (
    EvaluationResult,
    TimedPyEnvironment,
    evaluate_policy,
    make_game_environment,
)
from keras_cc_agents.dqn.export import export_expert
from keras_cc_agents.environments import adapters as environments
from keras_cc_agents.environments import games
from keras_cc_agents.metrics import EpisodeRecords
from keras_cc_agents.replay_buffers.frame_stack_replay import FrameStackReplay, StaleReplayError
from keras_cc_agents.training import EVAL_EPISODE_COLUMNS, EVAL_EPOCH_COLUMNS, EVAL_TABLES, EpochRun
from keras_cc_runs.run_directory import (
    DamagedFileError,
    DirectoryLock,
    differing_settings,
    prepare_run_directory,
    read_json,
    write_json,
)

EPISODE_COLUMNS = EVAL_EPISODE_COLUMNS
EPOCH_COLUMNS = EVAL_EPOCH_COLUMNS


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
        self.architecture = self.agent.q_network.architecture
        self._observation_spec = observation_spec
        self.replay = self._new_replay()
        self.train_step = make_train_step(
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
        self.run = EpochRun(
            self.run_dir,
            EVAL_TABLES,
            dict(agent=self.agent, epsilon=self.epsilon, **self.counters),
            max_to_keep=config.keep_checkpoints,
        )
        self.checkpoint_dir = self.run.checkpoint_dir
        self.writer = self.run.writer
        self.resumed_from_frames = self._restore_checkpoint()
        self.run.load_rows(self.epoch)

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
        manager_state = self.run.latest_checkpoint
        if manager_state is None:
            write_json(meta_path, self.identity())
            return 0
        check_checkpoint_identity(self.checkpoint_dir, self.identity())
        try:
            self.run.restore()
        except AssertionError as error:
            raise CheckpointMismatchError(
                f"checkpoint {manager_state} does not match this run's agent: {error}"
            ) from error
        self.count = {name: int(variable.numpy()) for name, variable in self.counters.items()}
        replay_dir = os.path.join(self.checkpoint_dir, "replay")
        replay_meta = os.path.join(replay_dir, "replay.json")
        if self.config.checkpoint_replay and os.path.exists(replay_meta):
            self._restore_replay(replay_dir)
        self.progress(
            f"[{self.config.game}] resumed from {manager_state}: frames {self.frames:,}, "
            f"gradient steps {self.gradient_steps:,}, epoch {self.epoch}, "
            f"replay {self.replay.num_transitions:,} transitions"
        )
        return self.frames

    def _new_replay(self) -> FrameStackReplay:
        config = self.config
        return FrameStackReplay(
            config.replay_capacity,
            config.num_envs,
            self._observation_spec.shape,
            self._observation_spec.dtype,
            stack_size=self.stack_size,
            seed=config.seed,
        )

    def _restore_replay(self, replay_dir: str) -> None:
        """Restores the replay saved with the checkpoint; a stale or damaged one refills."""
        try:
            self.replay.restore(replay_dir, frames=self.frames)
        except StaleReplayError:
            self.progress(f"[{self.config.game}] replay checkpoint is stale; refilling.")
        except (DamagedFileError, OSError, ValueError) as error:  # ValueError: a bad .npy
            self.replay = self._new_replay()
            self.progress(f"[{self.config.game}] {error}; the replay refills.")

    def save_checkpoint(self) -> None:
        """Replay (optional), results tables, then agent and counters (which commit the state)."""
        for name, variable in self.counters.items():
            variable.assign(self.count[name])
        if self.config.checkpoint_replay:
            self.replay.save(os.path.join(self.checkpoint_dir, "replay"), frames=self.frames)
        self.run.end_epoch(checkpoint_number=self.frames)

    # ------------------------------------------------------------------ evaluation

    def evaluate(self) -> EvaluationResult:
        """One evaluation epoch; appends its rows to the tables (written with the next
        checkpoint) and its scalars to TensorBoard."""
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
        self.run.add_evaluation(config.game, epoch, frames, result.scores, result.lengths)
        self.run.scalars(
            frames,
            {
                "eval/mean_score": result.mean_score,
                "eval/std_score": result.std_score,
                "eval/num_episodes": len(result.scores),
            },
        )
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
                self.loss = self.train_step(self.replay.sample(config.batch_size))
                count["train_credit"] -= config.train_every
            timers["train"] += time.perf_counter() - tick
        return new_steps

    def _train(self) -> TrainingResult:
        config = self.config
        next_eval = (self.epoch + 1) * config.eval_every_frames
        last_result = None
        epoch_rows = self.run.rows["eval_epochs.csv"]
        if epoch_rows:
            last = epoch_rows[-1]
            last_result = (float(last["mean_score"]), float(last["std_score"]))
        best = max((float(r["mean_score"]) for r in epoch_rows), default=None)
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
        if config.game_spec.is_minatar:
            preprocessing.update(
                environments.minatar_preprocessing(config.atari_options),
                pixel_scaling="MinAtar's {0, 1} channels as float inside the network",
            )
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
        export_expert(self.agent, self.agent.q_network, directory, self.export_metadata())
        return directory


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
    * Another process training in `run_dir` raises `RunDirectoryError` (the directory is
      locked while a run trains).
    """
    with DirectoryLock(run_dir):
        trainer = DqnExpertTrainer(config, run_dir, overwrite=overwrite, progress=progress)
        with contextlib.closing(trainer.env):
            return trainer.train()


def export_run(run_dir: str) -> str:
    """Exports the expert of an (interrupted) run from its latest checkpoint."""
    config = DqnExpertConfig.from_dict(read_json(os.path.join(run_dir, "config.json")))
    with DirectoryLock(run_dir):
        trainer = DqnExpertTrainer(config, run_dir, progress=None)
        try:
            return trainer.export()
        finally:
            trainer.env.close()


def train_expert_task(config_values: dict[str, Any], run_dir: str, overwrite: bool = False):
    """`train_dqn_expert` on plain values, for worker processes and Ray tasks.

    Returns the `TrainingResult` as a dict. Progress lines go to stdout, prefixed with the
    game's name. A run directory that already holds a finished run of the same settings is
    skipped (its stored result is returned, with ``"skipped": True``), so that rerunning a
    grid continues it; with other settings it is refused as in `train_dqn_expert`.
    """
    config = DqnExpertConfig.from_dict(config_values)
    result_path = os.path.join(run_dir, "result.json")
    if not overwrite and os.path.exists(result_path):
        stored = read_json(os.path.join(run_dir, "config.json"))
        if DqnExpertConfig.from_dict(stored).to_dict() == config.to_dict():
            print(f"[{config.game}] {run_dir} is finished; skipped.", flush=True)
            stored_result = read_json(result_path)
            fields = [field.name for field in dataclasses.fields(TrainingResult)]
            return {**{name: stored_result[name] for name in fields}, "skipped": True}
    result = train_dqn_expert(
        config, run_dir, overwrite=overwrite, progress=lambda line: print(line, flush=True)
    )
    return dataclasses.asdict(result)
