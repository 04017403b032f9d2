"""Training loop of the actor-mimic student: acting, state replay, updates, evaluation epochs.

One run distils the DQN experts of ``games`` (one per game, exported by
``keras_cc_agents.dqn``) into one :class:`keras_cc_agents.actor_mimic.agent.ActorMimicAgent`:
a single game is the CC paper's Figure 2 setting, several games its Table 3 setting. Per game, a
batched environment is driven by the student's epsilon-greedy collect policy (TF-Agents
``PyDriver``) and every visited state enters the game's :class:`FrameStackReplay` (built
for states); every ``train_every`` agent steps per game, one update draws
``batch_size_per_game`` states from every game's replay (even mixing) and distils the
experts' guidance vectors.

An epoch is ``epoch_frames`` training frames per game, then ``eval_frames`` evaluation
frames per game with the greedy policy (epsilon ``eval_epsilon``). A run directory holds:

    config.json            the run's settings (checked on resume)
    eval_episodes.csv      game,epoch,frames,episode,score,length   (like the experts')
    eval_epochs.csv        game,epoch,frames,mean_score,std_score,num_episodes
    train_epochs.csv       per game and epoch: updates, loss, share of guidance vectors
                           (and student distributions) where the closed form (eq. 4)
                           fails, share of student rows where the published CC-AMN falls
                           back to the cross-entropy, mean distance of the guidance
                           vectors from the simplex's centroid (0) towards a vertex (1),
                           and non-finite steps in the epoch and so far
    run_state.json         epochs done, non-finite steps, finished flag (derived from the
                           checkpoint: a damaged one is rebuilt from it on resume)
    checkpoints/           student, optimizer and counters after every epoch, and each
                           game's state replay (replay/<game>/, with checkpoint_replay)
    tensorboard/           scalars

Results files are rewritten atomically; a resumed run continues after its last finished
epoch with the replays it had then (the environments start new episodes), so it takes
the updates of an uninterrupted run. Without ``checkpoint_replay``, or when a replay's
checkpoint is stale or damaged, that replay refills, and learning restarts after
``learning_starts`` states.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from tf_agents.drivers import py_driver
from tf_agents.policies import py_tf_eager_policy

from keras_cc_agents.actor_mimic import agent as actor_mimic
from keras_cc_agents.actor_mimic.action_union import ActionUnion
from keras_cc_agents.actor_mimic.config import (  # part of this module's API
    MODEL_NAMES,
    RESUMABLE_FIELDS,
    ActorMimicConfig,
)
from keras_cc_agents.actor_mimic.experts import (  # part of this module's API
    GameInUnionEnvironment,
    ReplayObserver,
    expert_feature_function,
    frames_per_step,
    load_experts,
    make_game_environment,
    own_channels,
    student_observation_spec,
    union_observation_shape,
)
from keras_cc_agents.dqn import expert as dqn_expert
from keras_cc_agents.environments import games as game_registry
from keras_cc_agents.metrics import EpisodeRecords
from keras_cc_agents.networks import q_networks
from keras_cc_agents.replay_buffers.frame_stack_replay import FrameStackReplay, StaleReplayError
from keras_cc_agents.training import (  # the evaluation tables: part of this module's API
    EVAL_TABLES,
    EpochRun,
)
from keras_cc_runs.run_directory import (
    DamagedFileError,
    DirectoryLock,
    differing_settings,
    prepare_run_directory,
    read_csv,
    read_json,
    write_json,
)

RUN_STATE = "run_state.json"

TRAIN_EPOCH_COLUMNS = (
    "game",
    "epoch",
    "frames",
    "updates",
    "states",
    "mean_loss",
    "guidance_closed_form_failure_share",
    "student_closed_form_failure_share",
    "student_published_fallback_share",
    "guidance_centroid_distance",
    "epoch_nonfinite_steps",
    "nonfinite_steps",
)


# --------------------------------------------------------------------------- results files


def _prepare_output_dir(config: ActorMimicConfig) -> bool:
    """Creates or checks the run directory; True when an earlier run is resumed."""
    out = config.output_dir
    current = config.to_dict()

    def finished():
        try:
            state = read_json(os.path.join(out, RUN_STATE), default={})
        except DamagedFileError:  # the checkpoint decides; the trainer rebuilds the file
            state = {}
        epochs_done = state.get("epochs_done", 0)
        if epochs_done >= config.epochs:
            return f"{epochs_done} epochs; raise --epochs to continue it"
        return None

    return prepare_run_directory(
        out,
        current,
        overwrite=config.overwrite,
        finished=finished,
        differences=lambda previous: _setting_differences(previous, current),
    )


def _setting_differences(previous: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The settings (other than ``RESUMABLE_FIELDS``) in which two runs differ."""
    keys = sorted(k for k in set(previous) | set(current) if k not in RESUMABLE_FIELDS)
    return differing_settings(previous, current, keys)


# --------------------------------------------------------------------------- the run


@dataclasses.dataclass
class _GameRuntime:
    game: str
    expert: dqn_expert.Expert
    frames_per_step: int
    env: GameInUnionEnvironment
    driver: py_driver.PyDriver
    replay: FrameStackReplay
    recorder: EpisodeRecords
    time_step: Any = None


@dataclasses.dataclass
class _EpochStats:
    updates: int = 0
    states: np.ndarray = None
    loss_sum: np.ndarray = None
    guidance_failures: np.ndarray = None
    student_failures: np.ndarray = None
    student_fallbacks: np.ndarray = None
    guidance_distance_sum: np.ndarray = None
    nonfinite_before: int = 0  # the agent's non-finite step counter when the epoch began

    @classmethod
    def empty(cls, num_games: int) -> _EpochStats:
        zeros = lambda dtype: np.zeros(num_games, dtype)
        return cls(
            0,
            zeros(np.int64),
            zeros(np.float64),
            zeros(np.int64),
            zeros(np.int64),
            zeros(np.int64),
            zeros(np.float64),
        )

    def add(self, extra) -> None:
        counts = np.asarray(extra.per_game_count, np.int64)
        self.updates += 1
        self.states += counts
        self.loss_sum += np.asarray(extra.per_game_loss, np.float64) * counts
        self.guidance_failures += np.asarray(extra.guidance_closed_form_failures, np.int64)
        self.student_failures += np.asarray(extra.student_closed_form_failures, np.int64)
        self.student_fallbacks += np.asarray(extra.student_published_fallbacks, np.int64)
        self.guidance_distance_sum += np.asarray(extra.guidance_centroid_distance, np.float64)

    def share(self, failures: np.ndarray) -> np.ndarray:
        return np.where(self.states > 0, failures / np.maximum(self.states, 1), np.nan)


@dataclasses.dataclass
class RunSummary:
    """What a finished call of :func:`train_actor_mimic` reports."""

    output_dir: str
    epochs_done: int
    updates: int
    nonfinite_steps: int
    eval_mean_scores: dict[str, float]
    guidance_closed_form_failure_share: float


def _format_number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def student_network(experts: Sequence[dqn_expert.Expert]) -> str | None:
    """The experts' network name when they share one of ``q_networks.NETWORKS`` (the
    student's trunk, as in the CC paper, appendix A.2); otherwise None (the default network
    of the observations)."""
    names = {expert.network for expert in experts}
    name = names.pop() if len(names) == 1 else None
    return name if name in q_networks.NETWORKS else None


def build_agent(
    config: ActorMimicConfig, experts: Sequence[dqn_expert.Expert], union: ActionUnion
) -> actor_mimic.ActorMimicAgent:
    """The student agent for ``experts`` (in ``union.games`` order)."""
    observation_spec = student_observation_spec(experts)
    shape = observation_spec.shape
    feature_fns = feature_sizes = None
    if config.feature_regression_weight > 0:
        feature_fns, feature_sizes = zip(
            *(expert_feature_function(e) for e in experts), strict=True
        )
        feature_fns = [own_channels(f, e, shape) for f, e in zip(feature_fns, experts, strict=True)]
    network = actor_mimic.ActorMimicNetwork(
        observation_spec, union.num_actions, network=student_network(experts)
    )
    agent = actor_mimic.ActorMimicAgent(
        actor_mimic.actor_mimic_time_step_spec(observation_spec, union),
        actor_mimic.union_action_spec(union),
        network,
        actor_mimic.build_optimizer(config.learning_rate, config.optimizer),
        union,
        [own_channels(e.q_value_function, e, shape) for e in experts],
        loss=config.loss,
        temperature=config.temperature,
        epsilon_greedy=config.epsilon,
        feature_regression_weight=config.feature_regression_weight,
        expert_feature_fns=feature_fns,
        expert_feature_sizes=feature_sizes,
        gradient_clipping=config.gradient_clipping or None,
        jit_compile=config.jit_compile,
        train_step_counter=tf.Variable(0, dtype=tf.int64, name="train_step"),
    )
    agent.initialize()
    return agent


def _evaluate(
    eval_policy,
    game: str,
    expert: dqn_expert.Expert,
    union: ActionUnion,
    config: ActorMimicConfig,
    seed: int,
    observation_shape: Sequence[int] | None = None,
):
    """One evaluation epoch of one game, as the experts are evaluated.

    ``keras_cc_agents.dqn.evaluation.evaluate_policy``: episodes that end within
    ``eval_frames`` count; if none does, play goes on until the first one ends. Scores are raw
    game scores.
    """
    from keras_cc_agents.dqn import expert as dqn_expert

    env = GameInUnionEnvironment(
        make_game_environment(game, expert, config.num_envs, seed), union, game, observation_shape
    )
    try:
        return dqn_expert.evaluate_policy(
            env, eval_policy, frames_per_step(game, expert), max_frames=config.eval_frames
        )
    finally:
        env.close()


class ActorMimicTrainer:
    """One actor-mimic run in ``config.output_dir``: prepared (or resumed) on construction.

    ``run()`` trains the remaining epochs; ``train_epoch``, ``evaluate_epoch`` and
    ``end_epoch`` are its steps.
    """

    def __init__(self, config: ActorMimicConfig, log: Callable[[str], None] = print):
        config = config.validated()
        self.config = config
        self.log = log
        self.experts = load_experts(config.experts_dir, config.games)
        self.observation_shape = union_observation_shape(self.experts)
        self.union = ActionUnion.from_action_meanings(
            {e.game: e.action_meanings for e in self.experts}
        )
        resumed = _prepare_output_dir(config)
        self.out = config.output_dir
        write_json(
            os.path.join(self.out, "action_union.json"),
            {**self.union.to_config(), "experts": {e.game: e.run_dir for e in self.experts}},
        )
        tf.random.set_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        self.agent = build_agent(config, self.experts, self.union)
        self.epochs_done = tf.Variable(0, dtype=tf.int64, name="epochs_done")
        self.game_frames = tf.Variable(np.zeros(len(self.experts), np.int64), name="game_frames")
        self.run_files = EpochRun(
            self.out,
            {**EVAL_TABLES, "train_epochs.csv": TRAIN_EPOCH_COLUMNS},
            dict(agent=self.agent, epochs_done=self.epochs_done, game_frames=self.game_frames),
            max_to_keep=2,
        )
        self.writer = self.run_files.writer
        if self.run_files.restore():
            log(
                f"resumed {self.out} after epoch {self.epoch} "
                f"({int(self.agent.train_step_counter.numpy()):,} updates)"
            )
        elif resumed:
            log(f"{self.out}: no checkpoint yet, starting from epoch 1")
        self._check_run_state()
        self.run_files.load_rows(self.epoch)
        self.rows = self.run_files.rows
        self.collect_policy = py_tf_eager_policy.PyTFEagerPolicy(
            self.agent.collect_policy, use_tf_function=True, batch_time_steps=False
        )
        self.eval_policy = py_tf_eager_policy.PyTFEagerPolicy(
            self.agent.evaluation_policy(config.eval_epsilon),
            use_tf_function=True,
            batch_time_steps=False,
        )
        self.games = [self._game_runtime(i, e) for i, e in enumerate(self.experts)]
        if self.epoch and config.checkpoint_replay:
            self._restore_replays()
        self.batch_game_ids = np.repeat(
            np.arange(len(self.games), dtype=np.int32), config.batch_size_per_game
        )

    @property
    def epoch(self) -> int:
        """Epochs finished (and checkpointed)."""
        return int(self.epochs_done.numpy())

    def _game_runtime(self, index: int, expert: dqn_expert.Expert) -> _GameRuntime:
        config = self.config
        env = GameInUnionEnvironment(
            make_game_environment(
                expert.game, expert, config.num_envs, config.seed + 7919 * (index + 1)
            ),
            self.union,
            expert.game,
            self.observation_shape,
        )
        shape = self.observation_shape
        # Atari states are frame stacks (the last axis is time: one frame stored per step);
        # other states (MinAtar's object channels, vectors) are stored whole.
        is_atari = game_registry.get_game(expert.game).is_atari
        replay = FrameStackReplay.for_states(
            shape,
            np.dtype(expert.observation_dtype),
            config.replay_capacity,
            num_streams=env.batch_size,
            stack_size=shape[-1] if is_atari else 1,
            seed=int(self.rng.integers(2**31)),
        )
        recorder = EpisodeRecords(batch_size=env.batch_size)
        driver = py_driver.PyDriver(
            env, self.collect_policy, [ReplayObserver(replay), recorder], max_steps=1
        )
        return _GameRuntime(
            expert.game, expert, frames_per_step(expert.game, expert), env, driver, replay, recorder
        )

    # ------------------------------------------------------------------ one epoch

    def _update(self, stats: _EpochStats) -> float:
        """One student update on ``batch_size_per_game`` states of every game."""
        batch = np.concatenate(
            [g.replay.sample_states(self.config.batch_size_per_game) for g in self.games]
        )
        step = int(self.agent.train_step_counter.numpy())
        record = step % max(1, self.config.summary_every_updates) == 0
        with self.writer.as_default(step=step), tf.summary.record_if(record):
            loss_info = self.agent.train(actor_mimic.StateBatch(batch, self.batch_game_ids))
        stats.add(loss_info.extra)
        return float(loss_info.loss.numpy())

    def train_epoch(self, epoch: int) -> tuple[_EpochStats, np.ndarray]:
        """Acts and learns for ``epoch_frames`` frames per game; returns stats and frames."""
        config = self.config
        stats = _EpochStats.empty(len(self.games))
        stats.nonfinite_before = int(self.agent.nonfinite_steps.numpy())
        frames = self.game_frames.numpy().copy()
        start, target = frames.copy(), frames + config.epoch_frames
        pending = 0  # agent steps per game not yet matched by an update
        window = _ProgressWindow()
        for game in self.games:
            if game.time_step is None:
                game.time_step = game.env.reset()
        while np.any(frames < target):
            round_steps = 0
            for index, game in enumerate(self.games):
                if frames[index] >= target[index]:
                    continue
                before = game.recorder.steps
                game.time_step, _ = game.driver.run(game.time_step)
                taken = game.recorder.steps - before
                frames[index] += taken * game.frames_per_step
                round_steps = max(round_steps, taken)
                window.steps += taken
            ready = all(
                g.replay.num_states > 0 and g.replay.num_added >= config.learning_starts
                for g in self.games
            )
            pending = pending + round_steps if ready else 0
            while pending >= config.train_every:
                pending -= config.train_every
                window.losses.append(self._update(stats))
                window.updates += 1
            if window.elapsed() >= config.log_every_seconds:
                self.log(self._progress_line(epoch, frames, start, stats, window))
                window = _ProgressWindow()
        return stats, frames

    def evaluate_epoch(self, epoch: int, frames: np.ndarray) -> list[str]:
        """Evaluates every game; appends CSV rows and TensorBoard scalars."""
        summary = []
        for index, game in enumerate(self.games):
            result = _evaluate(
                self.eval_policy,
                game.game,
                game.expert,
                self.union,
                self.config,
                seed=self.config.seed + 104729 * epoch + 31 * index,
                observation_shape=self.observation_shape,
            )
            frame_count = int(frames[index])
            mean, _ = self.run_files.add_evaluation(
                game.game, epoch, frame_count, result.scores, result.lengths
            )
            self.run_files.scalars(epoch, {f"eval/mean_score/{game.game}": mean})
            summary.append(f"{game.game} {mean:.1f} ({len(result.scores)} ep)")
        return summary

    def end_epoch(self, epoch: int, stats: _EpochStats, frames: np.ndarray) -> None:
        """Records the epoch's training statistics, writes the results, checkpoints."""
        nonfinite = int(self.agent.nonfinite_steps.numpy())
        guidance_share = stats.share(stats.guidance_failures)
        student_share = stats.share(stats.student_failures)
        fallback_share = stats.share(stats.student_fallbacks)
        distance = stats.share(stats.guidance_distance_sum)
        mean_loss = stats.share(stats.loss_sum)
        for index, game in enumerate(self.games):
            self.rows["train_epochs.csv"].append(
                dict(
                    game=game.game,
                    epoch=epoch,
                    frames=int(frames[index]),
                    updates=stats.updates,
                    states=int(stats.states[index]),
                    mean_loss=float(mean_loss[index]),
                    guidance_closed_form_failure_share=float(guidance_share[index]),
                    student_closed_form_failure_share=float(student_share[index]),
                    student_published_fallback_share=float(fallback_share[index]),
                    guidance_centroid_distance=float(distance[index]),
                    epoch_nonfinite_steps=nonfinite - stats.nonfinite_before,
                    nonfinite_steps=nonfinite,
                )
            )
            with self.writer.as_default(step=epoch):
                tf.summary.scalar(f"train/mean_loss/{game.game}", float(mean_loss[index]))
                tf.summary.scalar(
                    f"train/guidance_closed_form_failure_share/{game.game}",
                    float(guidance_share[index]),
                )
                tf.summary.scalar(
                    f"train/student_closed_form_failure_share/{game.game}",
                    float(student_share[index]),
                )
                tf.summary.scalar(
                    f"train/student_published_fallback_share/{game.game}",
                    float(fallback_share[index]),
                )
                tf.summary.scalar(
                    f"train/guidance_centroid_distance/{game.game}", float(distance[index])
                )
        with self.writer.as_default(step=epoch):
            tf.summary.scalar("train/nonfinite_steps", nonfinite)
        self.game_frames.assign(frames)
        self.epochs_done.assign(epoch)
        if self.config.checkpoint_replay:  # first: the checkpoint below commits the epoch
            self._save_replays(epoch)
        self.run_files.end_epoch(checkpoint_number=epoch)
        self._write_run_state()

    def _replay_dir(self, game: _GameRuntime) -> str:
        path_name = game_registry.get_game(game.game).path_name
        return os.path.join(self.run_files.checkpoint_dir, "replay", path_name)

    def _save_replays(self, epoch: int) -> None:
        """Saves every game's state replay, stamped with ``epoch``."""
        for game in self.games:
            game.replay.save(self._replay_dir(game), epoch=epoch)

    def _restore_replays(self) -> None:
        """Restores the replays saved with the restored epoch; a stale, damaged or missing
        one refills, saying so."""
        for game in self.games:
            directory = self._replay_dir(game)
            try:
                game.replay.restore(directory, epoch=self.epoch)
                continue
            except FileNotFoundError:
                reason = "missing"
            except StaleReplayError as error:
                reason = f"stale ({error})"
            except (DamagedFileError, OSError, ValueError) as error:  # ValueError: bad .npy
                reason = f"damaged ({error})"  # restore changed nothing: the replay is empty
            self.log(f"{self.out}: the {game.game} replay checkpoint is {reason}; it refills.")

    def _write_run_state(self) -> None:
        """Writes run_state.json from the counters the checkpoint holds."""
        frames = self.game_frames.numpy()
        write_json(
            os.path.join(self.out, RUN_STATE),
            {
                "epochs_done": self.epoch,
                "finished": self.epoch >= self.config.epochs,
                "updates": int(self.agent.train_step_counter.numpy()),
                "nonfinite_steps": int(self.agent.nonfinite_steps.numpy()),
                "game_frames": {e.game: int(f) for e, f in zip(self.experts, frames, strict=True)},
            },
        )

    def _check_run_state(self) -> None:
        """Rebuilds a damaged run_state.json from the restored counters, saying so."""
        try:
            read_json(os.path.join(self.out, RUN_STATE), default=None)
        except DamagedFileError as error:
            self.log(
                f"{error.path} could not be read; rebuilt from the counters of epoch {self.epoch}."
            )
            self._write_run_state()

    def run(self) -> RunSummary:
        """Trains and evaluates the remaining epochs."""
        config = self.config
        self.log(
            f"actor-mimic ({MODEL_NAMES[config.loss]}, "
            f"T={config.temperature}) on {', '.join(config.games)}: "
            f"{self.union.num_actions} union actions ({', '.join(self.union.meanings)}); "
            f"epochs {self.epoch + 1}..{config.epochs} of {config.epoch_frames:,} training + "
            f"{config.eval_frames:,} evaluation frames per game -> {self.out}"
        )
        try:
            for epoch in range(self.epoch + 1, config.epochs + 1):
                stats, frames = self.train_epoch(epoch)
                evaluation = self.evaluate_epoch(epoch, frames)
                self.end_epoch(epoch, stats, frames)
                states = max(int(stats.states.sum()), 1)
                self.log(
                    f"epoch {epoch}/{config.epochs} done: eval {'; '.join(evaluation)} | "
                    f"{stats.updates:,} updates, loss {stats.loss_sum.sum() / states:.4g} | "
                    f"closed form (eq. 4) would fail on "
                    f"{stats.guidance_failures.sum() / states:.1%} of guidance vectors and "
                    f"{stats.student_failures.sum() / states:.1%} of student distributions | "
                    f"non-finite loss/gradient steps: {int(self.agent.nonfinite_steps.numpy())}"
                )
        finally:
            for game in self.games:
                game.env.close()
        return self._summary()

    # ------------------------------------------------------------------ reporting

    def _summary(self) -> RunSummary:
        last_scores = {
            row["game"]: float(row["mean_score"]) for row in self.rows["eval_epochs.csv"]
        }
        shares = [
            float(row["guidance_closed_form_failure_share"])
            for row in self.rows["train_epochs.csv"]
        ]
        shares = [x for x in shares if not math.isnan(x)]
        nonfinite = int(self.agent.nonfinite_steps.numpy())
        updates = int(self.agent.train_step_counter.numpy())
        self.log(
            f"finished {self.out}: {self.epoch} epochs, {updates:,} updates, non-finite "
            f"loss/gradient steps: {nonfinite}"
            + ("" if nonfinite == 0 else "  <-- WARNING: those updates were skipped")
        )
        return RunSummary(
            output_dir=self.out,
            epochs_done=self.epoch,
            updates=updates,
            nonfinite_steps=nonfinite,
            eval_mean_scores=last_scores,
            guidance_closed_form_failure_share=float(np.mean(shares)) if shares else math.nan,
        )

    def _progress_line(self, epoch, frames, start, stats, window) -> str:
        config = self.config
        done = float(np.min((frames - start) / config.epoch_frames))
        returns = []
        for game in self.games:
            recent = game.recorder.scores[-10:]
            returns.append(f"{game.game} {np.mean(recent):.1f}" if recent else f"{game.game} -")
        states = max(int(stats.states.sum()), 1)
        elapsed = max(window.elapsed(), 1e-9)
        loss = f"{np.mean(window.losses):.4g}" if window.losses else "-"
        return (
            f"[epoch {epoch}/{config.epochs} {done:4.0%}] frames/game "
            f"{_format_number(float(np.min(frames)))} | {window.steps / elapsed:,.0f} agent "
            f"steps/s | {window.updates / elapsed:,.1f} updates/s | loss {loss} | closed form "
            f"fails on {stats.guidance_failures.sum() / states:.0%} of guidance | non-finite "
            f"{int(self.agent.nonfinite_steps.numpy())} | returns {', '.join(returns)}"
        )


@dataclasses.dataclass
class _ProgressWindow:
    start: float = dataclasses.field(default_factory=time.monotonic)
    steps: int = 0
    updates: int = 0
    losses: list = dataclasses.field(default_factory=list)

    def elapsed(self) -> float:
        return time.monotonic() - self.start


def train_actor_mimic(config: ActorMimicConfig, log: Callable[[str], None] = print) -> RunSummary:
    """Runs (or resumes) an actor-mimic distillation; see the module docstring.

    Raises:
      keras_cc_runs.run_directory.RunDirectoryError: another process trains in
        ``config.output_dir`` (locked while a run trains), or it holds a finished run or
        one with other settings.
    """
    with DirectoryLock(config.output_dir):
        return ActorMimicTrainer(config, log).run()


def _finished_summary(config: ActorMimicConfig) -> dict[str, Any] | None:
    """The summary of a finished run of ``config``'s settings in its run directory, read
    back from its files, or None (no such run: absent, unfinished or other settings)."""
    out = config.output_dir
    try:
        state = read_json(os.path.join(out, RUN_STATE), default={})
        previous = read_json(os.path.join(out, "config.json"), default=None)
    except DamagedFileError:
        return None
    if previous is None or state.get("epochs_done", 0) < config.epochs:
        return None
    if _setting_differences(previous, config.to_dict()):
        return None
    rows = read_csv(os.path.join(out, "eval_epochs.csv"))
    return {
        "output_dir": out,
        "epochs_done": int(state["epochs_done"]),
        "updates": int(state.get("updates", 0)),
        "nonfinite_steps": int(state.get("nonfinite_steps", 0)),
        "eval_mean_scores": {row["game"]: float(row["mean_score"]) for row in rows},
        "skipped": True,
    }


def train_actor_mimic_task(config: ActorMimicConfig, name: str | None = None) -> dict[str, Any]:
    """:func:`train_actor_mimic` for worker processes and Ray tasks: returns the
    :class:`RunSummary` as a dict; progress lines go to stdout prefixed with ``name`` (by
    default the run directory). A run directory that holds a finished run of the same settings is
    skipped (its summary is read back, with ``"skipped": True``), so that rerunning a grid
    continues it; with other settings it is refused as in :func:`train_actor_mimic`."""
    config = config.validated()
    name = name or config.output_dir
    if not config.overwrite:
        summary = _finished_summary(config)
        if summary is not None:
            print(f"[{name}] finished; skipped.", flush=True)
            return summary
    result = train_actor_mimic(config, log=lambda line: print(f"[{name}] {line}", flush=True))
    return dataclasses.asdict(result)
