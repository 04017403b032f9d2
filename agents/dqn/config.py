"""Settings of a DQN expert run (`DqnExpertConfig`, one field per flag) and the identity a
checkpoint must match; no TensorFlow.

Every field carries its flag's help text (`keras_cc_runs.cli.setting`), so the scripts in
``examples/`` declare their flags with ``cli.define_flags(DqnExpertConfig, exclude=("game",))``
and answer ``--help`` without importing TensorFlow.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from keras_cc_agents import settings
from keras_cc_agents.environments import games
from keras_cc_runs import cli
from keras_cc_runs.run_directory import DamagedFileError, read_json

# Settings that define what a checkpoint contains; a resume must not change them.
IDENTITY_FIELDS = (
    "game",
    "network",
    "conv_layer_params",
    "fc_layer_params",
    "num_envs",
    "frame_skip",
    "frame_stack",
    "screen_size",
    "full_action_space",
    "replay_capacity",
)


def _parse_conv(text: str) -> tuple | None:
    """``'32:8:4,64:4:2'`` -> ``((32, (8, 8), 4), (64, (4, 4), 2))``; '' -> None."""
    if not text.strip():
        return None
    layers = []
    for item in text.split(","):
        try:
            filters, kernel, stride = (int(part) for part in item.split(":"))
        except ValueError:
            raise ValueError(f"expected 'filters:kernel:stride,...', got {text!r}.") from None
        layers.append((filters, (kernel, kernel), stride))
    return tuple(layers)


def _format_conv(layers) -> str:
    return ",".join(f"{filters}:{kernel[0]}:{stride}" for filters, kernel, stride in layers)


def _parse_fc(text: str) -> tuple | None:
    """``'64,64'`` -> ``(64, 64)``; '' -> None."""
    if not text.strip():
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise ValueError(f"expected comma-separated integers, got {text!r}.") from None


def _format_fc(sizes) -> str:
    return ",".join(str(size) for size in sizes)


NETWORK_CHOICES = ("nature_cnn", "minatar", "mlp")


def _parse_network(text: str) -> str | None:
    """``'minatar'`` -> ``'minatar'``; '' -> None (the game's default network)."""
    if not text.strip():
        return None
    if text not in NETWORK_CHOICES:
        raise ValueError(f"expected one of {', '.join(NETWORK_CHOICES)}, got {text!r}.")
    return text


def _parse_probability(text: str) -> float | None:
    """``'0.25'`` -> 0.25; '' -> None (the game's default)."""
    return float(text) if text.strip() else None


@dataclasses.dataclass
class DqnExpertConfig:
    """Every setting of a DQN expert run (defaults: Nature-DQN on Atari, CC paper epochs).

    Counting units: *frames* are emulator frames (agent steps x frame_skip); *agent steps*
    are environment transitions; *gradient steps* are calls of the agent's train step.
    """

    game: str = cli.setting(
        "Pong",
        "Game: one of the CC paper's Atari games, a MinAtar game (MinAtar/Breakout, "
        "MinAtar/SpaceInvaders, MinAtar/Freeway, MinAtar/Asterix, MinAtar/Seaquest), CartPole "
        "or any ALE ROM (see keras_cc_agents.environments.games).",
        flag=False,
    )
    seed: int = cli.setting(
        0,
        "Seed of environments, exploration, network initialization and replay sampling.",
    )
    total_frames: int = cli.setting(
        10_000_000,
        "Training budget in emulator frames (agent steps x frame_skip; environment steps for "
        "classic-control games).",
    )
    # environment
    num_envs: int = cli.setting(
        4,
        "Parallel training environments (ale-py AtariVectorEnv); every transition of each one "
        "is an agent step.",
    )
    frame_skip: int = cli.setting(
        4,
        "Emulator frames per agent step; the action repeats and the observation is the max over"
        " the last two frames.",
    )
    frame_stack: int = cli.setting(
        4,
        "Frames per observation (stacked on the last axis).",
    )
    screen_size: int = cli.setting(
        84,
        "Side of the square grayscale frame.",
    )
    noop_max: int = cli.setting(
        30,
        "Up to this many no-op actions at the start of each episode.",
    )
    sticky_action_probability: float | None = cli.setting(
        None,
        "Probability that the emulator repeats the previous action; unset: 0 for Atari (as in "
        "Nature-DQN and the CC paper; 0.25 in Machado et al. 2018), 0.1 for MinAtar (its "
        "default).",
        parse=_parse_probability,
    )
    full_action_space: bool = cli.setting(
        False,
        "Use all 18 ALE actions instead of the game's minimal set.",
    )
    max_episode_frames: int = cli.setting(
        108_000,
        "Episodes are truncated (not terminated) after this many frames.",
    )
    terminal_on_life_loss: bool = cli.setting(
        False,
        "Treat a lost life as terminal for learning (training only; the episode and its score "
        "go on).",
    )
    clip_rewards: bool = cli.setting(
        True,
        "Clip rewards to [-1, 1] for learning (scores stay raw).",
    )
    # network (None: Nature CNN for Atari, MinAtar's network for MinAtar, 64-64 MLP for vectors)
    network: str | None = cli.setting(
        None,
        "Q-network: nature_cnn (Mnih et al. 2015), minatar (Young & Tian 2019: conv 16 3x3, "
        "dense 128) or mlp (64-64); unset: nature_cnn for Atari, minatar for MinAtar, mlp for "
        "classic-control games. --conv_layer_params and --fc_layer_params replace its layers.",
        parse=_parse_network,
    )
    conv_layer_params: tuple | None = cli.setting(
        None,
        "Convolutions as 'filters:kernel:stride,...'; empty: those of --network.",
        parse=_parse_conv,
        format=_format_conv,
    )
    fc_layer_params: tuple | None = cli.setting(
        None,
        "Dense layer sizes, e.g. '512' (Atari) or '64,64'; empty: those of --network.",
        parse=_parse_fc,
        format=_format_fc,
    )
    # learning
    double_dqn: bool = cli.setting(
        False,
        "Double DQN targets (van Hasselt et al. 2016) instead of Nature-DQN's.",
    )
    replay_capacity: int = cli.setting(
        1_000_000,
        "Replay memory size in transitions (about 7 KB each on Atari).",
    )
    learning_starts: int = cli.setting(
        50_000,
        "Agent steps of uniformly random play before learning starts.",
    )
    train_every: int = cli.setting(
        4,
        "Agent steps per gradient step.",
    )
    batch_size: int = cli.setting(
        32,
        "Transitions per gradient step.",
    )
    target_update_period: int = cli.setting(
        10_000,
        "Gradient steps between target-network updates.",
    )
    target_update_tau: float = cli.setting(
        1.0,
        "Target update rate (1.0: copy; < 1: soft update every period).",
    )
    gamma: float = cli.setting(
        0.99,
        "Discount factor.",
    )
    optimizer: str = cli.setting(
        "rmsprop",
        "'rmsprop' (Nature-DQN's centered RMSProp) or 'adam'.",
        choices=("rmsprop", "adam"),
    )
    learning_rate: float = cli.setting(
        2.5e-4,
        "Learning rate.",
    )
    rmsprop_rho: float = cli.setting(
        0.95,
        "RMSProp decay of the squared-gradient average.",
    )
    rmsprop_centered: bool = cli.setting(
        True,
        "Centered RMSProp (Graves 2013), as in Nature-DQN.",
    )
    optimizer_epsilon: float | None = cli.setting(
        None,
        "Optimizer epsilon; unset: 0.01 for RMSProp, 1.5e-4 for Adam.",
    )
    gradient_clipping: float | None = cli.setting(
        None,
        "Clip gradients to this global norm; unset: no clipping.",
    )
    jit_compile: bool = cli.setting(
        True,
        "Compile the whole train step with XLA (--nojit_compile: plain TensorFlow).",
    )
    jit_optimizer: bool = cli.setting(
        True,
        "Compile the optimizer update with XLA (faster on CPU and GPU).",
    )
    epsilon_start: float = cli.setting(
        1.0,
        "Exploration epsilon when learning starts.",
    )
    epsilon_end: float = cli.setting(
        0.1,
        "Final exploration epsilon.",
    )
    epsilon_decay_frames: int = cli.setting(
        1_000_000,
        "Frames over which epsilon decays linearly to epsilon_end.",
    )
    # evaluation
    eval_every_frames: int = cli.setting(
        100_000,
        "Training frames between evaluation epochs.",
    )
    eval_frames: int = cli.setting(
        100_000,
        "Frames played per evaluation epoch; episodes that end within them count.",
    )
    eval_episodes: int = cli.setting(
        0,
        "If > 0: evaluate exactly this many episodes (in parallel) instead of eval_frames.",
    )
    eval_epsilon: float = cli.setting(
        0.05,
        "Epsilon of the evaluation policy.",
    )
    eval_num_envs: int = cli.setting(
        1,
        "Parallel evaluation environments when evaluating eval_frames.",
    )
    target_score: float | None = cli.setting(
        None,
        "Stop training once an evaluation epoch's mean score reaches this; unset: train for "
        "total_frames.",
    )
    # bookkeeping
    checkpoint_replay: bool = cli.setting(
        True,
        "Save the replay memory with each checkpoint (exact resume; about 7 GB at one million "
        "Atari transitions).",
    )
    keep_checkpoints: int = cli.setting(
        2,
        "Checkpoints kept on disk.",
    )
    log_every_seconds: float = cli.setting(
        30.0,
        "Seconds between progress lines.",
    )

    def __post_init__(self):
        for name in ("conv_layer_params", "fc_layer_params"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, as_tuples(value))
        settings.require_at_least(
            self,
            (
                "total_frames",
                "num_envs",
                "frame_skip",
                "frame_stack",
                "screen_size",
                "replay_capacity",
                "train_every",
                "batch_size",
                "target_update_period",
                "eval_every_frames",
                "eval_num_envs",
                "keep_checkpoints",
            ),
            1,
        )
        settings.require_at_least(
            self, ("learning_starts", "eval_frames", "eval_episodes", "epsilon_decay_frames"), 0
        )
        settings.require_probability(
            self, ("epsilon_start", "epsilon_end", "eval_epsilon", "target_update_tau")
        )
        if self.sticky_action_probability is not None:
            settings.require_probability(self, ("sticky_action_probability",))
        if self.network is not None and self.network not in NETWORK_CHOICES:
            raise ValueError(
                f"network must be one of {', '.join(NETWORK_CHOICES)}, got {self.network!r}."
            )
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {self.gamma}.")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}.")
        if self.optimizer not in ("rmsprop", "adam"):
            raise ValueError(f"optimizer must be 'rmsprop' or 'adam', got {self.optimizer!r}.")
        if self.eval_frames == 0 and self.eval_episodes == 0:
            raise ValueError("one of eval_frames and eval_episodes must be > 0.")
        if self.batch_size > self.replay_capacity:
            raise ValueError(
                f"batch_size={self.batch_size} exceeds replay_capacity={self.replay_capacity}."
            )
        self.game = games.get_game(self.game).name  # raises listing the available games

    @property
    def game_spec(self) -> games.GameSpec:
        return games.get_game(self.game)

    @property
    def frames_per_step(self) -> int:
        return self.frame_skip if self.game_spec.is_atari else 1

    @property
    def sticky_actions(self) -> float:
        """`sticky_action_probability`, or the game's default when unset."""
        if self.sticky_action_probability is not None:
            return float(self.sticky_action_probability)
        return games.MINATAR_STICKY_ACTION_PROBABILITY if self.game_spec.is_minatar else 0.0

    @property
    def atari_options(self):
        """The preprocessing of Atari and MinAtar games
        (`keras_cc_agents.environments.adapters.AtariOptions`)."""
        # TF-Agents: imported only when an environment is made.
        from keras_cc_agents.environments import adapters

        return adapters.AtariOptions(
            frame_skip=self.frame_skip,
            frame_stack=self.frame_stack,
            screen_size=self.screen_size,
            noop_max=self.noop_max,
            sticky_action_probability=self.sticky_actions,
            full_action_space=self.full_action_space,
            max_episode_frames=self.max_episode_frames,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DqnExpertConfig:
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown DqnExpertConfig settings: {', '.join(unknown)}.")
        return cls(**values)


def as_tuples(value: Any) -> Any:
    """Lists (as JSON gives them back) as tuples, recursively; other values unchanged."""
    if isinstance(value, (list, tuple)):
        return tuple(as_tuples(v) for v in value)
    return value


def checkpoint_identity(config_values: dict[str, Any]) -> dict[str, Any]:
    """The settings of `IDENTITY_FIELDS` (tuples for lists): what a checkpoint was made for."""
    return {key: as_tuples(config_values.get(key)) for key in IDENTITY_FIELDS}


class CheckpointMismatchError(RuntimeError):
    """A checkpoint was written for another game, action set or network."""


def check_checkpoint_identity(checkpoint_dir: str, identity: dict[str, Any]) -> None:
    """Raises `CheckpointMismatchError` unless the checkpoint was written for `identity`."""
    meta_path = os.path.join(checkpoint_dir, "expert_checkpoint.json")
    if not os.path.exists(meta_path):
        raise CheckpointMismatchError(
            f"{checkpoint_dir} holds a checkpoint without expert_checkpoint.json; cannot tell "
            "which game and network it belongs to, so it is not loaded."
        )
    try:
        saved = read_json(meta_path)
    except DamagedFileError as error:
        raise CheckpointMismatchError(
            f"{error.path} is damaged, so the checkpoint in {checkpoint_dir} cannot be matched "
            "to this run; pass --overwrite to start the run over."
        ) from error
    different = [key for key in identity if saved.get(key) != identity[key]]
    if different:
        details = "; ".join(
            f"{key}: checkpoint {saved.get(key)!r}, this run {identity[key]!r}" for key in different
        )
        raise CheckpointMismatchError(
            f"the checkpoint in {checkpoint_dir} was written for game {saved.get('game')!r} with "
            f"network {saved.get('network')!r} and cannot be loaded here ({details})."
        )
