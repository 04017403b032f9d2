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
    checkpoints/           TensorFlow checkpoints (ckpt-<frames>), expert_checkpoint.json,
                           replay/
    tensorboard/           scalars
    export/policy/         PolicySaver SavedModel of the greedy policy
    export/q_values/       SavedModel with `q_values(observation) -> float32 [B, num_actions]`
    export/expert.json     game, env_id, action meanings, shapes, frames trained, network
    result.json            written when the run finished (final evaluation, timings)

This module gathers the public API of the package's modules: ``keras_cc_agents.dqn.config``
(settings, no TensorFlow), ``agent`` (agents, optimizer, train step), ``evaluation``
(environments, evaluation), ``export`` (export and loading) and ``trainer`` (the run,
on the epoch skeleton of ``keras_cc_agents.training``).
"""

from keras_cc_agents.dqn.agent import (
    ExpertDdqnAgent,
    ExpertDqnAgent,
    epsilon_at,
    make_agent,
    make_optimizer,
    make_train_step,
)
from keras_cc_agents.dqn.config import IDENTITY_FIELDS, DqnExpertConfig, checkpoint_identity
from keras_cc_agents.dqn.evaluation import (
    EvaluationResult,
    TimedPyEnvironment,
    evaluate_policy,
    make_game_environment,
)
from keras_cc_agents.dqn.export import Expert, export_expert, load_expert
from keras_cc_agents.dqn.trainer import (
    EPISODE_COLUMNS,
    EPOCH_COLUMNS,
    CheckpointMismatchError,
    DqnExpertTrainer,
    TrainingResult,
    check_checkpoint_identity,
    export_run,
    train_dqn_expert,
    train_expert_task,
)
from keras_cc_runs.run_directory import RunDirectoryError

__all__ = [
    "EPISODE_COLUMNS",
    "EPOCH_COLUMNS",
    "IDENTITY_FIELDS",
    "CheckpointMismatchError",
    "DqnExpertConfig",
    "DqnExpertTrainer",
    "EvaluationResult",
    "Expert",
    "ExpertDdqnAgent",
    "ExpertDqnAgent",
    "RunDirectoryError",
    "TimedPyEnvironment",
    "TrainingResult",
    "check_checkpoint_identity",
    "checkpoint_identity",
    "epsilon_at",
    "evaluate_policy",
    "export_expert",
    "export_run",
    "load_expert",
    "make_agent",
    "make_game_environment",
    "make_optimizer",
    "make_train_step",
    "train_dqn_expert",
    "train_expert_task",
]
