"""Settings of an actor-mimic run: `ActorMimicConfig`, one field per flag, no TensorFlow.

Every field carries its flag's help text (`keras_cc_runs.cli.setting`);
``examples/train_actor_mimic.py`` declares its flags with ``cli.define_flags`` and answers
``--help`` without importing TensorFlow.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Sequence
from typing import Any

from keras_cc_agents import settings
from keras_cc_agents.environments import games as game_registry
from keras_cc_runs import cli, run_directory

LOSS_NAMES = ("ce", "cc", "cc_published")
# The model each loss trains, as the CC paper's Table 3 names them.
MODEL_NAMES = {"ce": "AMN", "cc": "CC-AMN", "cc_published": "CC-AMN (published)"}
# Settings that may differ when a run is resumed.
RESUMABLE_FIELDS = (
    "epochs",
    "output_dir",
    "overwrite",
    "log_every_seconds",
    "jit_compile",
    "checkpoint_replay",
)


def check_temperature(temperature: float) -> float:
    """Returns ``temperature`` as a float; a clear error unless it is finite and > 0.

    The agents' one temperature check (the settings, the guidance, the agent). It repeats
    ``keras_cc.core.hyperparameters.temperature``'s rule because importing any ``keras_cc``
    module imports Keras, and with it TensorFlow (``keras_cc/__init__.py``), and the settings
    answer ``--help`` without them."""
    try:
        value = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}.") from None
    if not math.isfinite(value) or value <= 0.0:
        raise ValueError(
            f"temperature must be finite and > 0 (the expert policy is softmax(Q / T)), "
            f"got {temperature!r}."
        )
    return value


def check_loss_name(loss: str) -> str:
    """Returns ``loss`` if it names an actor-mimic objective; a clear error otherwise."""
    if loss not in LOSS_NAMES:
        raise ValueError(
            f"loss must be one of {LOSS_NAMES} ('ce': AMN, eq. 10; 'cc': CC-AMN, eq. 11; "
            "'cc_published': CC-AMN with the published closed form and fallback), "
            f"got {loss!r}."
        )
    return loss


@dataclasses.dataclass
class ActorMimicConfig:
    """Settings of one actor-mimic run (the flags of ``examples/train_actor_mimic.py``).

    Frame counts are per game: an epoch trains every game for ``epoch_frames`` emulator
    frames (agent steps times the frame skip; 1 for classic-control games), then
    evaluates every game for ``eval_frames``.
    """

    games: tuple[str, ...] = cli.setting(
        ("Pong",),
        "Games to distil, comma separated: one game (single-game, Figure 2) or several "
        "(multi-task, Table 3), e.g. Breakout,Atlantis,Pong,SpaceInvaders.",
    )
    experts_dir: str = cli.setting(
        "runs/dqn",
        "Directory with one exported DQN expert run per game (<dir>/<run>/export/expert.json).",
    )
    output_dir: str = cli.setting(
        "",
        "Run directory; default runs/actor_mimic/<loss>_<games>_seed<seed>.",
    )
    loss: str = cli.setting(
        "ce",
        "'ce': AMN (eq. 10); 'cc': CC-AMN (eq. 11, exact normalizer); 'cc_published': "
        "CC-AMN with the published float32 closed form, cross-entropy where it fails.",
        choices=LOSS_NAMES,
    )
    temperature: float = cli.setting(
        1.0,
        "Boltzmann temperature T of the guidance softmax(Q/T); > 0.",
    )
    epochs: int = cli.setting(
        40,
        "Training + evaluation epochs.",
    )
    epoch_frames: int = cli.setting(
        100_000,
        "Training frames per game per epoch (agent steps x 4 on Atari).",
    )
    eval_frames: int = cli.setting(
        100_000,
        "Evaluation frames per game per epoch.",
    )
    epsilon: float = cli.setting(
        0.1,
        "Exploration of the acting student (epsilon-greedy).",
    )
    eval_epsilon: float = cli.setting(
        0.05,
        "Exploration during evaluation.",
    )
    learning_rate: float = cli.setting(
        1e-4,
        "Student learning rate.",
    )
    optimizer: str = cli.setting(
        "adam",
        "Student optimizer.",
        choices=("adam", "rmsprop"),
    )
    batch_size_per_game: int = cli.setting(
        32,
        "States of each game per update (even mixing).",
    )
    train_every: int = cli.setting(
        4,
        "Agent steps per game per update.",
    )
    learning_starts: int = cli.setting(
        1_000,
        "States per game in replay before updates start.",
    )
    replay_capacity: int = cli.setting(
        50_000,
        "States kept per game (about 7 KB each on Atari).",
    )
    num_envs: int = cli.setting(
        4,
        "Parallel environments per game (acting and evaluation).",
    )
    feature_regression_weight: float = cli.setting(
        0.0,
        "Weight of the feature-regression term of Parisotto et al. (0: off).",
    )
    gradient_clipping: float = cli.setting(
        0.0,
        "Global-norm clip (0: off).",
    )
    jit_compile: bool = cli.setting(
        True,
        "Compile the per-state loss (CC series) with XLA.",
    )
    seed: int = cli.setting(
        0,
        "Seed of environments, network, exploration and replay.",
    )
    log_every_seconds: float = cli.setting(
        30.0,
        "Seconds between progress lines.",
    )
    checkpoint_replay: bool = cli.setting(
        True,
        "Save every game's state replay with each checkpoint, so that a resumed run learns "
        "on at once instead of refilling learning_starts states first (about 20 MB per "
        "game at 50,000 MinAtar states).",
    )
    summary_every_updates: int = cli.setting(
        100,
        "Updates between TensorBoard loss points.",
    )
    overwrite: bool = cli.setting(
        False,
        "Delete and restart a run directory holding a finished run.",
    )

    def validated(self) -> ActorMimicConfig:
        """A copy with canonical game names; a clear error for any invalid setting."""
        if isinstance(self.games, str):
            raise ValueError("games must be a sequence of game names, not a string.")
        names = [str(g).strip() for g in self.games if str(g).strip()]
        if not names:
            raise ValueError("games is empty: name at least one game (e.g. Pong).")
        canonical = tuple(game_registry.get_game(name).name for name in names)
        duplicates = sorted({g for g in canonical if canonical.count(g) > 1})
        if duplicates:
            raise ValueError(f"games lists {duplicates} more than once.")
        check_loss_name(self.loss)
        check_temperature(self.temperature)
        settings.require_positive(
            self,
            (
                "epochs",
                "epoch_frames",
                "eval_frames",
                "batch_size_per_game",
                "train_every",
                "replay_capacity",
                "num_envs",
                "learning_rate",
            ),
        )
        settings.require_probability(self, ("epsilon", "eval_epsilon"))
        settings.require_at_least(
            self, ("learning_starts", "feature_regression_weight", "gradient_clipping"), 0
        )
        if self.replay_capacity < self.num_envs:
            raise ValueError(
                f"replay_capacity ({self.replay_capacity}) must hold at least one state per "
                f"environment (num_envs={self.num_envs})."
            )
        if self.learning_starts > self.replay_capacity:
            raise ValueError(
                f"learning_starts ({self.learning_starts}) exceeds replay_capacity "
                f"({self.replay_capacity}): training would never start."
            )
        if not self.output_dir:
            raise ValueError("output_dir must be set.")
        return dataclasses.replace(self, games=canonical)

    def to_dict(self) -> dict[str, Any]:
        record = dataclasses.asdict(self)
        record["games"] = list(self.games)
        return record


# --------------------------------------------------------------------------- experts


def expert_run_dirs(experts_dir: str) -> dict[str, str]:
    """``{game: run_dir}`` of the experts under ``experts_dir`` (one sub-directory per game)."""
    if not experts_dir:
        raise ValueError("experts_dir must be set (a directory with one expert run per game).")
    if not os.path.isdir(experts_dir):
        raise FileNotFoundError(
            f"experts_dir {experts_dir!r} does not exist (expected one DQN expert run "
            "directory per game, e.g. <experts_dir>/Pong/export/expert.json)."
        )
    found: dict[str, list[str]] = {}
    for entry in sorted(os.listdir(experts_dir)):
        path = os.path.join(experts_dir, entry, "export", "expert.json")
        if os.path.isfile(path):
            game = str(run_directory.read_json(path).get("game", entry))
            found.setdefault(game, []).append(os.path.join(experts_dir, entry))
    ambiguous = {game: dirs for game, dirs in found.items() if len(dirs) > 1}
    if ambiguous:
        listed = "; ".join(f"{game}: {', '.join(dirs)}" for game, dirs in ambiguous.items())
        raise ValueError(
            f"experts_dir {experts_dir!r} holds several experts of one game ({listed}); "
            "point --experts_dir at a directory with one expert run per game."
        )
    return {game: dirs[0] for game, dirs in found.items()}


def find_experts(experts_dir: str, games: Sequence[str]) -> dict[str, str]:
    """``{game: run_dir}`` of the experts of `games` (in order) under `experts_dir`.

    Reads only the experts' ``export/expert.json``; no TensorFlow.

    Raises:
      ValueError: `experts_dir` is empty, holds two experts of one game, or lacks an
        expert of one of `games`.
      FileNotFoundError: `experts_dir` does not exist.
      keras_cc_runs.run_directory.DamagedFileError: an ``expert.json`` cannot be read.
    """
    found = expert_run_dirs(experts_dir)
    missing = [g for g in games if g not in found]
    if missing:
        raise ValueError(
            f"--games {','.join(games)} do not match the experts in {experts_dir!r}: no expert "
            f"for {', '.join(missing)} (experts found for: {', '.join(found) or 'none'})."
        )
    return {game: found[game] for game in games}


def checked_for_flags(config: ActorMimicConfig) -> ActorMimicConfig:
    """``config.validated()`` with its experts found, its errors naming the flags
    (``--epochs must be ...``), for the scripts that build configs from flags.

    Raises:
      ValueError: an invalid setting, an unknown game, or experts missing.
      FileNotFoundError: ``experts_dir`` does not exist.
    """
    try:
        config = config.validated()
    except game_registry.UnknownGameError as error:
        raise ValueError(f"--games: {error}") from None
    except ValueError as error:
        message = str(error)
        first = message.split(" ", 1)[0]
        if first in {field.name for field in dataclasses.fields(ActorMimicConfig)}:
            message = "--" + message
        raise ValueError(message) from None
    find_experts(config.experts_dir, config.games)
    return config
