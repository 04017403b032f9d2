r"""Trains one DQN expert (TF-Agents DqnAgent, Nature-DQN recipe) on Atari, MinAtar or CartPole.

The run directory receives config.json, eval_episodes.csv, eval_epochs.csv, TensorBoard
scalars, checkpoints and, at the end, export/ (greedy policy SavedModel, Q-values SavedModel,
expert.json). Running the same command again resumes an interrupted run from its last
checkpoint (Ctrl-C saves one); a finished run is kept unless --overwrite.

    # a short Pong run (about an hour of CPU per million frames with Nature-DQN):
    python examples/train_dqn_expert.py --game Pong --total_frames 200000 \
        --learning_starts 5000 --eval_every_frames 50000 --eval_frames 20000 \
        --output_dir runs/dqn/Pong
    # CartPole (solved, i.e. a mean of 195 over 10 evaluation episodes, in a few minutes):
    python examples/train_dqn_expert.py --game CartPole --total_frames 30000 \
        --num_envs 4 --replay_capacity 50000 --learning_starts 1000 --train_every 2 \
        --batch_size 64 --target_update_period 64 --double_dqn --optimizer adam \
        --learning_rate 1e-3 --optimizer_epsilon 1e-7 --gamma 0.95 --fc_layer_params 256,256 \
        --epsilon_end 0.04 --epsilon_decay_frames 8000 --gradient_clipping 10 \
        --eval_every_frames 2000 --eval_episodes 10 --eval_epsilon 0 --noclip_rewards \
        --target_score 195 --output_dir runs/dqn/CartPole
    # export an interrupted run without training further:
    python examples/train_dqn_expert.py --game Pong --output_dir runs/dqn/Pong --export_only
"""

import os
import signal
import sys

from absl import flags

import keras_cc_agents  # (routes tf.keras to Keras 2 before TensorFlow is imported)
from keras_cc_agents.dqn.config import DqnExpertConfig
from keras_cc_agents.environments import games
from keras_cc_runs import cli, run_directory

FLAGS = flags.FLAGS
flags.DEFINE_string(
    "game",
    "Pong",
    f"Game to learn: {', '.join(games.PAPER_GAMES)}, a MinAtar game "
    f"({', '.join(games.MINATAR_GAMES)}), CartPole or any ALE ROM.",
)
flags.DEFINE_string("output_dir", "", "Run directory; default runs/dqn/<game>_seed<seed>.")
flags.DEFINE_bool("overwrite", False, "Delete and restart a run directory holding a run.")
flags.DEFINE_bool(
    "export_only", False, "Export the latest checkpoint of --output_dir without training."
)
cli.define_flags(DqnExpertConfig, exclude=("game",))


def _raise_keyboard_interrupt(signum, frame):
    del signum, frame
    raise KeyboardInterrupt


def main(argv):
    del argv
    with cli.checks():
        try:
            games.get_game(FLAGS.game)
        except games.UnknownGameError as error:
            raise ValueError(f"--game: {error}") from None
        config = cli.config_from_flags(DqnExpertConfig, game=FLAGS.game)
        run_dir = FLAGS.output_dir or os.path.join(
            "runs", "dqn", f"{config.game_spec.path_name}_seed{config.seed}"
        )
        run_directory.check_output_dir(run_dir)
        if FLAGS.export_only and not os.path.isfile(os.path.join(run_dir, "config.json")):
            raise ValueError(f"--export_only: {run_dir} holds no run (no config.json).")

    if not cli.verbose():
        keras_cc_agents.import_gym_quietly()
    from keras_cc_agents.dqn import expert as dqn_expert  # TensorFlow: after the flags are checked

    if FLAGS.export_only:
        try:
            print(f"exported {dqn_expert.export_run(run_dir)}", flush=True)
        except (FileNotFoundError, dqn_expert.CheckpointMismatchError) as error:
            raise cli.ScriptError(f"--export_only: {error}") from error
        return
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    print(f"[{config.game}] run directory {os.path.abspath(run_dir)}", flush=True)
    try:
        result = dqn_expert.train_dqn_expert(
            config,
            run_dir,
            overwrite=FLAGS.overwrite,
            progress=lambda line: print(line, flush=True),
        )
    except (
        run_directory.RunDirectoryError,
        run_directory.DamagedFileError,
        dqn_expert.CheckpointMismatchError,
    ) as error:
        raise cli.ScriptError(str(error)) from error
    except KeyboardInterrupt:
        print(
            f"[{config.game}] interrupted; checkpoint saved. Run the same command to resume.",
            flush=True,
        )
        sys.exit(130)
    score = "n/a" if result.final_mean_score is None else f"{result.final_mean_score:.2f}"
    print(
        f"[{config.game}] finished: {result.frames:,} frames, {result.gradient_steps:,} "
        f"gradient steps, final eval score {score}, {result.agent_steps_per_second:.0f} agent "
        f"steps/s ({100 * result.environment_time_fraction:.0f}% in the environment); "
        f"expert exported to {os.path.join(result.run_dir, 'export')}",
        flush=True,
    )


if __name__ == "__main__":
    cli.run(main)
