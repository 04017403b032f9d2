r"""Actor-mimic distillation throughput: AMN against CC-AMN, measured side by side.

On two Atari games (default Pong and Breakout; MinAtar games too), one process builds an AMN student
(--loss ce) and a CC-AMN student (--loss cc) over the same experts (untrained Nature-DQN
experts exported on the fly unless --experts_dir names trained ones) and measures, in
alternating order, repeated --repeats times (medians reported):

* student updates/s: ``agent.train`` on minibatches of --batch_size_per_game states of
  every game, drawn from replays filled by the students' own play; AMN and CC-AMN
  updates alternate one by one and the median update time is reported;
* agent steps/s: the whole training loop (acting in every game with the epsilon-greedy
  student, filling the state replays, one update every --train_every agent steps per game).

It prints a table and a JSON record with the CC-AMN/AMN step-time ratios (target <= 1.10).
The same script runs on a GPU.

    python benchmarks/actor_mimic_throughput.py
    python benchmarks/actor_mimic_throughput.py --games Pong,Breakout --repeats 5 --json out.json
    python benchmarks/actor_mimic_throughput.py \
        --games MinAtar/Breakout,MinAtar/SpaceInvaders,MinAtar/Freeway --num_envs 1
"""

import json
import os
import pathlib
import platform
import sys
import tempfile
import time

import numpy as np
from absl import flags

import keras_cc_agents  # routes tf.keras to Keras 2 before TensorFlow is imported
from keras_cc_agents.environments import games
from keras_cc_runs import cli, run_directory

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import _timing  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_list("games", ["Pong", "Breakout"], "Atari games distilled together.")
flags.DEFINE_string(
    "experts_dir", "", "Exported experts (one run per game); default: untrained experts."
)
flags.DEFINE_integer("repeats", 5, "Repeats of each measurement (the median is reported).")
flags.DEFINE_integer("updates", 40, "Student updates per update-rate measurement.")
flags.DEFINE_integer("loop_frames", 400, "Frames per game per training-loop measurement.")
flags.DEFINE_integer(
    "loop_repeats", 16, "Training-loop measurements per loss, AMN and CC-AMN alternating."
)
flags.DEFINE_integer("batch_size_per_game", 32, "States of each game per update.")
flags.DEFINE_integer("train_every", 4, "Agent steps per game per update in the loop.")
flags.DEFINE_integer("num_envs", 4, "Environments per game.")
flags.DEFINE_bool("jit_compile", True, "Compile the per-state loss with XLA (as training does).")
flags.DEFINE_string("json", "", "Also write the JSON record to this file.")


def _trainer(loss, experts_dir, work_dir):
    from keras_cc_agents.actor_mimic import trainer as actor_mimic_training

    config = actor_mimic_training.ActorMimicConfig(
        games=tuple(FLAGS.games),
        experts_dir=experts_dir,
        output_dir=os.path.join(work_dir, loss),
        loss=loss,
        epochs=1,
        epoch_frames=FLAGS.loop_frames,
        eval_frames=1,
        learning_starts=FLAGS.batch_size_per_game,
        replay_capacity=20_000,
        batch_size_per_game=FLAGS.batch_size_per_game,
        train_every=FLAGS.train_every,
        num_envs=FLAGS.num_envs,
        jit_compile=FLAGS.jit_compile,
        log_every_seconds=1e9,
    )
    return actor_mimic_training.ActorMimicTrainer(config, log=lambda line: None)


def _batches(trainer, count):
    from keras_cc_agents.actor_mimic import agent as actor_mimic

    return [
        actor_mimic.StateBatch(
            np.concatenate(
                [g.replay.sample_states(FLAGS.batch_size_per_game) for g in trainer.games]
            ),
            trainer.batch_game_ids,
        )
        for _ in range(count)
    ]


def _time_updates(trainers, count, order):
    """Per-update seconds of every trainer, interleaved update by update (robust to load).

    The loss is fetched after each update, so the step has finished when it is timed.
    """
    batches = {loss: iter(_batches(trainer, count)) for loss, trainer in trainers.items()}
    updates = {
        loss: lambda loss=loss: trainers[loss].agent.train(next(batches[loss])) for loss in order
    }
    return _timing.side_by_side(updates, count, finish=lambda info: float(info.loss.numpy()))


def _time_loop(trainer, epoch):
    """Agent steps per second of one training-loop measurement (all games together)."""
    steps_before = sum(g.recorder.steps for g in trainer.games)
    start = time.perf_counter()
    _, frames = trainer.train_epoch(epoch)
    elapsed = time.perf_counter() - start
    trainer.game_frames.assign(frames)
    return (sum(g.recorder.steps for g in trainer.games) - steps_before) / elapsed


def _spread(ratios):
    """The range of ``ratios`` as text, e.g. ``"1.02-1.09"``."""
    return f"{min(ratios):.3g}-{max(ratios):.3g}"


def main(argv):
    del argv
    with cli.checks():  # before TensorFlow loads
        for game in FLAGS.games:
            try:
                games.get_game(game)
            except games.UnknownGameError as error:
                raise ValueError(f"--games: {error}") from None
    if not cli.verbose():
        keras_cc_agents.import_gym_quietly()
    import tensorflow as tf

    from keras_cc_agents.dqn import random_experts  # TensorFlow: after the flags are checked

    with tempfile.TemporaryDirectory() as work_dir:
        experts_dir = FLAGS.experts_dir
        if not experts_dir:
            experts_dir = os.path.join(work_dir, "experts")
            for seed, game in enumerate(FLAGS.games):
                random_experts.export_untrained_expert(
                    os.path.join(experts_dir, games.get_game(game).path_name), game, seed=seed
                )
        trainers = {loss: _trainer(loss, experts_dir, work_dir) for loss in ("ce", "cc")}
        # Warm-up: fill the replays, trace and compile everything once.
        for trainer in trainers.values():
            _time_loop(trainer, 1)
        _time_updates(trainers, 3, ("ce", "cc"))
        update_seconds = {loss: [] for loss in trainers}
        update_ratios = []  # CC-AMN / AMN median update time, one per repeat
        loop_rates = {loss: [] for loss in trainers}
        for repeat in range(FLAGS.repeats):
            order = ("ce", "cc") if repeat % 2 == 0 else ("cc", "ce")
            seconds = _time_updates(trainers, FLAGS.updates, order)
            for loss in trainers:
                update_seconds[loss].extend(seconds[loss])
            medians = _timing.medians(seconds)
            update_ratios.append(medians["cc"] / medians["ce"])
        for repeat, loss in _timing.rounds(("ce", "cc"), FLAGS.loop_repeats):
            loop_rates[loss].append(_time_loop(trainers[loss], repeat + 2))
        for trainer in trainers.values():
            for game in trainer.games:
                game.env.close()

    median_update = _timing.medians(update_seconds)
    median_loop = _timing.medians(loop_rates)
    # Time per loop step: the inverse of the rates, paired round by round.
    loop_ratios = [ce / cc for ce, cc in zip(loop_rates["ce"], loop_rates["cc"])]
    record = {
        "benchmark": "actor_mimic_throughput",
        "games": list(FLAGS.games),
        "experts": FLAGS.experts_dir or "untrained",
        "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "batch_states_per_update": FLAGS.batch_size_per_game * len(FLAGS.games),
        "num_envs_per_game": FLAGS.num_envs,
        "train_every": FLAGS.train_every,
        "jit_compile": FLAGS.jit_compile,
        "update_repeats": FLAGS.repeats,
        "updates_per_repeat": FLAGS.updates,
        "loop_repeats": FLAGS.loop_repeats,
        "loop_frames_per_game": FLAGS.loop_frames,
        "amn_updates_per_second": 1.0 / median_update["ce"],
        "cc_amn_updates_per_second": 1.0 / median_update["cc"],
        "amn_agent_steps_per_second": median_loop["ce"],
        "cc_amn_agent_steps_per_second": median_loop["cc"],
        "cc_amn_over_amn_update_time": median_update["cc"] / median_update["ce"],
        "cc_amn_over_amn_update_time_spread": _spread(update_ratios),
        "cc_amn_over_amn_loop_step_time": median_loop["ce"] / median_loop["cc"],
        "cc_amn_over_amn_loop_step_time_spread": _spread(loop_ratios),
        "target_ratio": 1.10,
    }
    rows = [
        (
            "student updates/s",
            record["amn_updates_per_second"],
            record["cc_amn_updates_per_second"],
        ),
        (
            "agent steps/s (loop)",
            record["amn_agent_steps_per_second"],
            record["cc_amn_agent_steps_per_second"],
        ),
    ]
    print(
        f"\nActor-mimic throughput on {', '.join(FLAGS.games)} ({record['device']}, "
        f"{record['cpu_count']} cores): medians of {FLAGS.repeats * FLAGS.updates} updates "
        f"and {FLAGS.loop_repeats} loop runs per loss"
    )
    print(f"{'':24s}{'AMN':>12s}{'CC-AMN':>12s}{'CC/AMN time':>14s}")
    for name, amn, cc in rows:
        print(f"{name:24s}{amn:12.1f}{cc:12.1f}{amn / cc:14.3f}")
    print(
        f"CC-AMN/AMN step-time ratio: update {record['cc_amn_over_amn_update_time']:.3f} "
        f"({record['cc_amn_over_amn_update_time_spread']} over the repeats), loop "
        f"{record['cc_amn_over_amn_loop_step_time']:.3f} "
        f"({record['cc_amn_over_amn_loop_step_time_spread']} over the rounds; target <= 1.10)"
    )
    text = json.dumps(record, indent=2)
    print(text)
    if FLAGS.json:
        run_directory.write_text(FLAGS.json, text + "\n")


if __name__ == "__main__":
    cli.run(main)
