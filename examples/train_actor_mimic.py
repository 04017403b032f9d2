r"""Distils DQN experts into one actor-mimic student: AMN (--loss ce), CC-AMN (--loss cc) or
CC-AMN with the published float32 closed form and its cross-entropy fallback
(--loss cc_published).

The CC paper's section 4. With one game this is the single-game setting of its Figure 2;
with several, the multi-task setting of its Table 3 (one network, an output per action in
the union of the games' actions). The experts come from examples/train_dqn_expert.py:
--experts_dir holds one expert run directory per game (any names; each game is read from
its export/expert.json).

Every epoch trains --epoch_frames frames per game (the student acts epsilon-greedily, every
state enters the game's replay, the student learns the experts' guidance vectors
softmax(Q/T)), then evaluates every game for --eval_frames frames. The run directory gets
eval_episodes.csv and eval_epochs.csv (the experts' format), train_epochs.csv (loss, the
share of guidance vectors where the CC paper's closed-form normalizer would fail, the share
of student rows where the published CC-AMN falls back to cross-entropy, the guidance
vectors' distance from the simplex's centroid, and the count of non-finite loss/gradient
steps, which must stay 0), TensorBoard scalars and a
checkpoint per epoch. Running the same command again resumes after the last finished
epoch; a finished run is kept unless --overwrite (or continued with a larger --epochs).

    # the paper's games, multi-task, CC-AMN:
    python examples/train_actor_mimic.py --games Breakout,Atlantis,Pong,SpaceInvaders \
        --experts_dir runs/dqn --loss cc --output_dir runs/actor_mimic/cc_multitask
    # single-game AMN on Pong, a short budget:
    python examples/train_actor_mimic.py --games Pong --experts_dir runs/dqn --loss ce \
        --epochs 5 --epoch_frames 20000 --eval_frames 10000 --output_dir runs/actor_mimic/ce_Pong
    # MinAtar Breakout, from the experts of examples/results/minatar_experts (seed 0):
    python examples/train_actor_mimic.py --games MinAtar/Breakout \
        --experts_dir examples/results/minatar_experts/seed0 --loss cc --num_envs 1

Grids of losses, seeds and game sets: examples/train_actor_mimic_grid.py.
"""

import contextlib
import os
import signal
import sys

from absl import flags

import keras_cc_agents
from keras_cc_agents.actor_mimic.config import ActorMimicConfig, checked_for_flags
from keras_cc_runs import cli, run_directory

FLAGS = flags.FLAGS
cli.define_flags(ActorMimicConfig)


def config_from_flags() -> ActorMimicConfig:
    """The run's settings from the flags, checked (games known, experts present)."""
    names = tuple(FLAGS.games)
    output_dir = FLAGS.output_dir or os.path.join(
        "runs", "actor_mimic", f"{FLAGS.loss}_{'-'.join(names)}_seed{FLAGS.seed}"
    )
    config = cli.config_from_flags(ActorMimicConfig, games=names, output_dir=output_dir)
    config = checked_for_flags(config)
    run_directory.check_output_dir(config.output_dir)
    return config


def _raise_keyboard_interrupt(signum, frame):
    del signum, frame
    raise KeyboardInterrupt


def main(argv):
    del argv
    with cli.checks():
        config = config_from_flags()
    if not cli.verbose():
        keras_cc_agents.import_gym_quietly()
    from keras_cc_agents.actor_mimic import trainer as actor_mimic_training  # TensorFlow: from here

    log = lambda line: print(line, flush=True)
    with contextlib.ExitStack() as stack:
        with cli.checks():  # a second runner; what only loading the experts shows
            stack.enter_context(run_directory.DirectoryLock(config.output_dir))
            trainer = actor_mimic_training.ActorMimicTrainer(config, log)
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        try:
            summary = trainer.run()
        except KeyboardInterrupt:
            log(
                f"interrupted; {trainer.out} holds {trainer.epoch} finished epochs. Run the "
                "same command again to resume after the last one."
            )
            sys.exit(130)
    if summary.nonfinite_steps:
        sys.exit(f"{summary.nonfinite_steps} updates had a non-finite loss or gradient.")


if __name__ == "__main__":
    cli.run(main)
