r"""Distils DQN experts into one actor-mimic student: AMN (--loss ce) or CC-AMN (--loss cc).

The CC paper's section 4. With one game this is the single-game setting of its Figure 2;
with several, the multi-task setting of its Table 3 (one network, an output per action in
the union of the games' actions). The experts come from examples/train_dqn_expert.py:
--experts_dir holds one expert run directory per game (any names; each game is read from
its export/expert.json).

Every epoch trains --epoch_frames frames per game (the student acts epsilon-greedily, every
state enters the game's replay, the student learns the experts' guidance vectors
softmax(Q/T)), then evaluates every game for --eval_frames frames. The run directory gets
eval_episodes.csv and eval_epochs.csv (the experts' format), train_epochs.csv (loss, the
share of guidance vectors where the CC paper's closed-form normalizer would fail, and the
count of non-finite loss/gradient steps, which must stay 0), TensorBoard scalars and a
checkpoint per epoch. Running the same command again resumes after the last finished
epoch; a finished run is kept unless --overwrite (or continued with a larger --epochs).

    # the paper's games, multi-task, CC-AMN:
    python examples/train_actor_mimic.py --games Breakout,Atlantis,Pong,SpaceInvaders \
        --experts_dir runs/dqn --loss cc --output_dir runs/actor_mimic/cc_multitask
    # single-game AMN on Pong, a short budget:
    python examples/train_actor_mimic.py --games Pong --experts_dir runs/dqn --loss ce \
        --epochs 5 --epoch_frames 20000 --eval_frames 10000 --output_dir runs/actor_mimic/ce_Pong
"""

import os
import signal
import sys

from absl import app, flags

import agents  # noqa: F401  (routes tf.keras to Keras 2 before TensorFlow is imported)
from agents import actor_mimic_training, games
from keras_cc._environment import quiet_script_logging

FLAGS = flags.FLAGS
_DEFAULTS = actor_mimic_training.ActorMimicConfig(games=("Pong",), experts_dir="", output_dir="")

flags.DEFINE_list(
    "games",
    ["Pong"],
    "Games to distil, comma separated: one game (single-game, Figure 2) or several "
    f"(multi-task, Table 3), e.g. {','.join(games.PAPER_GAMES)}.",
)
flags.DEFINE_string(
    "experts_dir",
    "runs/dqn",
    "Directory with one exported DQN expert run per game (<dir>/<run>/export/expert.json).",
)
flags.DEFINE_enum(
    "loss", _DEFAULTS.loss, ["ce", "cc"], "'ce': AMN (eq. 10); 'cc': CC-AMN (eq. 11)."
)
flags.DEFINE_float(
    "temperature",
    _DEFAULTS.temperature,
    "Boltzmann temperature T of the guidance softmax(Q/T); > 0.",
)
flags.DEFINE_integer("epochs", _DEFAULTS.epochs, "Training + evaluation epochs.")
flags.DEFINE_integer(
    "epoch_frames",
    _DEFAULTS.epoch_frames,
    "Training frames per game per epoch (agent steps x 4 on Atari).",
)
flags.DEFINE_integer("eval_frames", _DEFAULTS.eval_frames, "Evaluation frames per game per epoch.")
flags.DEFINE_string(
    "output_dir", "", "Run directory; default runs/actor_mimic/<loss>_<games>_seed<seed>."
)
flags.DEFINE_integer(
    "seed", _DEFAULTS.seed, "Seed of environments, network, exploration and replay."
)
flags.DEFINE_float(
    "epsilon", _DEFAULTS.epsilon, "Exploration of the acting student (epsilon-greedy)."
)
flags.DEFINE_float("eval_epsilon", _DEFAULTS.eval_epsilon, "Exploration during evaluation.")
flags.DEFINE_float("learning_rate", _DEFAULTS.learning_rate, "Student learning rate.")
flags.DEFINE_enum("optimizer", _DEFAULTS.optimizer, ["adam", "rmsprop"], "Student optimizer.")
flags.DEFINE_integer(
    "batch_size_per_game",
    _DEFAULTS.batch_size_per_game,
    "States of each game per update (even mixing).",
)
flags.DEFINE_integer("train_every", _DEFAULTS.train_every, "Agent steps per game per update.")
flags.DEFINE_integer(
    "learning_starts", _DEFAULTS.learning_starts, "States per game in replay before updates start."
)
flags.DEFINE_integer(
    "replay_capacity", _DEFAULTS.replay_capacity, "States kept per game (about 7 KB each on Atari)."
)
flags.DEFINE_integer(
    "num_envs", _DEFAULTS.num_envs, "Parallel environments per game (acting and evaluation)."
)
flags.DEFINE_float(
    "feature_regression_weight",
    _DEFAULTS.feature_regression_weight,
    "Weight of the feature-regression term of Parisotto et al. (0: off).",
)
flags.DEFINE_float("gradient_clipping", _DEFAULTS.gradient_clipping, "Global-norm clip (0: off).")
flags.DEFINE_bool(
    "jit_compile", _DEFAULTS.jit_compile, "Compile the per-state loss (CC series) with XLA."
)
flags.DEFINE_float(
    "log_every_seconds", _DEFAULTS.log_every_seconds, "Seconds between progress lines."
)
flags.DEFINE_integer(
    "summary_every_updates",
    _DEFAULTS.summary_every_updates,
    "Updates between TensorBoard loss points.",
)
flags.DEFINE_bool("overwrite", False, "Delete and restart a run directory holding a finished run.")
flags.register_validator(
    "temperature", lambda t: t > 0, message="--temperature must be > 0 (guidance is softmax(Q/T))."
)


def config_from_flags() -> actor_mimic_training.ActorMimicConfig:
    names = tuple(FLAGS.games)
    output_dir = FLAGS.output_dir or os.path.join(
        "runs", "actor_mimic", f"{FLAGS.loss}_{'-'.join(names)}_seed{FLAGS.seed}"
    )
    return actor_mimic_training.ActorMimicConfig(
        games=names,
        experts_dir=FLAGS.experts_dir,
        output_dir=output_dir,
        loss=FLAGS.loss,
        temperature=FLAGS.temperature,
        epochs=FLAGS.epochs,
        epoch_frames=FLAGS.epoch_frames,
        eval_frames=FLAGS.eval_frames,
        epsilon=FLAGS.epsilon,
        eval_epsilon=FLAGS.eval_epsilon,
        learning_rate=FLAGS.learning_rate,
        optimizer=FLAGS.optimizer,
        batch_size_per_game=FLAGS.batch_size_per_game,
        train_every=FLAGS.train_every,
        learning_starts=FLAGS.learning_starts,
        replay_capacity=FLAGS.replay_capacity,
        num_envs=FLAGS.num_envs,
        feature_regression_weight=FLAGS.feature_regression_weight,
        gradient_clipping=FLAGS.gradient_clipping,
        jit_compile=FLAGS.jit_compile,
        seed=FLAGS.seed,
        log_every_seconds=FLAGS.log_every_seconds,
        summary_every_updates=FLAGS.summary_every_updates,
        overwrite=FLAGS.overwrite,
    )


def _raise_keyboard_interrupt(signum, frame):
    del signum, frame
    raise KeyboardInterrupt


def main(argv):
    quiet_script_logging()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = config_from_flags()
    log = lambda line: print(line, flush=True)
    try:
        trainer = actor_mimic_training.ActorMimicTrainer(config, log)
    except (ValueError, FileNotFoundError, games.UnknownGameError) as error:
        sys.exit(f"train_actor_mimic: {error}")
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        summary = trainer.run()
    except KeyboardInterrupt:
        log(
            f"interrupted; {trainer.out} holds {trainer.epoch} finished epochs. Run the same "
            "command again to resume after the last one."
        )
        sys.exit(130)
    if summary.nonfinite_steps:
        sys.exit(f"{summary.nonfinite_steps} updates had a non-finite loss or gradient.")


if __name__ == "__main__":
    app.run(main)
