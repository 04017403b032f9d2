r"""Where each expert's guidance vectors sit on the simplex, before a student is trained.

For every expert run under --experts_dir (``<game>`` or ``seed<k>/<game>`` directories
holding an export), plays --steps agent steps of its epsilon-greedy policy and measures,
on the guidance vectors softmax(Q / T) of those states, the share where the CC paper's
closed-form normalizer (eq. 4) fails and their distance from the simplex's centroid (0
uniform, 1 one-hot). Writes guidance.csv (one row per expert) and guidance.md (one row per
game) to --output_dir and prints the table:

    python examples/guidance_health.py --experts_dir examples/results/minatar_experts \
        --output_dir runs/guidance
"""

import os

from absl import flags

from keras_cc_agents.actor_mimic import guidance, report
from keras_cc_agents.dqn import expert as dqn_expert
from keras_cc_runs import cli, run_directory

FLAGS = flags.FLAGS
flags.DEFINE_string("experts_dir", "runs/dqn", "DQN expert runs (one per game and seed).")
flags.DEFINE_list("games", [], "Games to measure; default: every game found.")
flags.DEFINE_integer("steps", 2000, "Agent steps of play per expert.", lower_bound=1)
flags.DEFINE_float("temperature", 1.0, "Temperature T of softmax(Q / T) (eq. 9).")
flags.DEFINE_float("epsilon", 0.05, "Exploration of the play.", lower_bound=0.0, upper_bound=1.0)
flags.DEFINE_integer("seed", 0, "Seed of the play.")
flags.DEFINE_string("output_dir", "runs/guidance", "Where guidance.csv and guidance.md go.")


def main(argv):
    del argv
    with cli.checks():
        run_directory.check_output_dir(FLAGS.output_dir)
        results = []
        for run_dir in report.run_directories(FLAGS.experts_dir):
            expert = dqn_expert.load_expert(run_dir)
            if FLAGS.games and expert.game not in FLAGS.games:
                continue
            seed = run_directory.read_json(os.path.join(run_dir, "config.json"), {}).get("seed")
            result = guidance.guidance_health(
                expert, FLAGS.steps, FLAGS.temperature, FLAGS.epsilon, FLAGS.seed, seed
            )
            print(f"{run_dir}: {result}", flush=True)
            results.append(result)
        if not results:
            raise ValueError(f"no expert of --games {FLAGS.games} in {FLAGS.experts_dir!r}.")
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    run_directory.write_csv(
        os.path.join(FLAGS.output_dir, "guidance.csv"),
        guidance.FIELDS,
        [vars(r) for r in results],
    )
    markdown = guidance.health_markdown(results)
    run_directory.write_text(os.path.join(FLAGS.output_dir, "guidance.md"), markdown)
    print(markdown)
    print(f"wrote {FLAGS.output_dir}/guidance.csv, guidance.md")


if __name__ == "__main__":
    cli.run(main)
