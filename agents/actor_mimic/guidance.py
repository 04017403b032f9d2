"""Where an expert's guidance vectors sit on the simplex, before any student is trained.

The CC paper explains CC-AMN's unstable Pong runs by guidance vectors ``softmax(Q_E / T)``
(eq. 9) near the simplex's centroid, where its closed-form normalizer (eq. 4) fails and its
code zeroed the gradients. :func:`guidance_health` measures that on the states of the
expert's own epsilon-greedy play: the share of guidance vectors on which eq. 4 fails
(:func:`keras_cc_agents.actor_mimic.losses.closed_form_failures`) and their distance from the
centroid relative to a vertex's (:func:`~keras_cc_agents.actor_mimic.losses.centroid_distance`:
0 uniform, 1 one-hot). A student visits other states, so its per-epoch records
(``train_epochs.csv``) remain the measure of its own run; this one ranks the games.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf

from keras_cc_agents.actor_mimic import config, losses
from keras_cc_agents.actor_mimic.experts import make_game_environment
from keras_cc_agents.dqn import expert as dqn_expert
from keras_cc_runs import run_directory

# Distance from the centroid (relative to a vertex's) below which a guidance vector counts
# as near it.
NEAR_CENTROID = 0.1
FIELDS = (
    "game",
    "seed",
    "states",
    "closed_form_failure_share",
    "centroid_distance_mean",
    "centroid_distance_median",
    "near_centroid_share",
)


@dataclasses.dataclass(frozen=True)
class GuidanceHealth:
    """One expert's guidance vectors on ``states`` states of its own play (shares in [0, 1])."""

    game: str
    seed: int | None
    states: int
    closed_form_failure_share: float
    centroid_distance_mean: float
    centroid_distance_median: float
    near_centroid_share: float


def played_q_values(
    expert: dqn_expert.Expert, steps: int, epsilon: float = 0.05, seed: int = 0
) -> np.ndarray:
    """float32 ``[steps, A]``: the expert's Q-values on the states of ``steps`` agent steps of
    its epsilon-greedy play (one environment, preprocessed as the expert's; episodes
    restart as the environment does).

    Raises:
      ValueError: ``steps`` < 1 or ``epsilon`` outside [0, 1].
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}.")
    if not 0.0 <= epsilon <= 1.0:
        raise ValueError(f"epsilon must be in [0, 1], got {epsilon}.")
    rng = np.random.default_rng(seed)
    env = make_game_environment(expert.game, expert, 1, seed=seed)
    try:
        action_dtype = env.action_spec().dtype
        time_step = env.reset()
        rows = []
        for _ in range(steps):
            q = expert.q_values(np.asarray(time_step.observation))
            rows.append(q[0])
            greedy = int(np.argmax(q[0]))
            action = int(rng.integers(expert.num_actions)) if rng.random() < epsilon else greedy
            time_step = env.step(np.array([action], dtype=action_dtype))
    finally:
        env.close()
    return np.stack(rows).astype(np.float32)


def guidance_health(
    expert: dqn_expert.Expert,
    steps: int = 2000,
    temperature: float = 1.0,
    epsilon: float = 0.05,
    seed: int = 0,
    expert_seed: int | None = None,
) -> GuidanceHealth:
    """Where the guidance vectors ``softmax(Q_E / temperature)`` of ``expert`` sit, on the
    states of :func:`played_q_values` (``expert_seed``: the expert's training seed, recorded
    in the result)."""
    temperature = config.check_temperature(temperature)
    q_values = tf.constant(played_q_values(expert, steps, epsilon, seed))
    log_guidance = losses.guidance_log_probs(q_values, temperature)
    failures = losses.closed_form_failures(log_guidance).numpy()
    distance = losses.centroid_distance(tf.exp(log_guidance)).numpy()
    return GuidanceHealth(
        game=expert.game,
        seed=expert_seed,
        states=int(steps),
        closed_form_failure_share=float(np.mean(failures)),
        centroid_distance_mean=float(np.mean(distance)),
        centroid_distance_median=float(np.median(distance)),
        near_centroid_share=float(np.mean(distance < NEAR_CENTROID)),
    )


def _cell(rows: list[GuidanceHealth], field: str, pattern: str) -> str:
    """The mean of ``field`` over ``rows``, with their range where there are several."""
    values = np.array([getattr(r, field) for r in rows])
    text = pattern.format(values.mean())
    if len(values) > 1:
        text += f" ({pattern.format(values.min())}–{pattern.format(values.max())})"
    return text


def health_markdown(results: list[GuidanceHealth]) -> str:
    """A markdown table, one row per game: the mean over its experts (seeds) of each
    column, with the seeds' range in brackets where there are several."""
    games = list(dict.fromkeys(r.game for r in results))
    lines = [
        "| game | experts | states each | eq. 4 fails | distance from centroid (mean) | "
        f"near centroid (< {NEAR_CENTROID}) |",
        "|---|---|---|---|---|---|",
    ]
    for game in games:
        rows = [r for r in results if r.game == game]

        lines.append(
            f"| {game} | {len(rows)} | {rows[0].states:,} | "
            f"{_cell(rows, 'closed_form_failure_share', '{:.1%}')} | "
            f"{_cell(rows, 'centroid_distance_mean', '{:.3f}')} | "
            f"{_cell(rows, 'near_centroid_share', '{:.1%}')} |"
        )
    return "\n".join(lines) + "\n"


def read_results(path: str) -> list[GuidanceHealth]:
    """The rows of a ``guidance.csv`` written by ``examples/guidance_health.py``."""
    results = []
    for row in run_directory.read_csv(path):
        results.append(
            GuidanceHealth(
                game=row["game"],
                seed=int(row["seed"]) if row["seed"] not in ("", "None") else None,
                states=int(row["states"]),
                **{name: float(row[name]) for name in FIELDS[3:]},
            )
        )
    return results
