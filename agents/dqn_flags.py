"""absl flags of the DQN expert scripts, one per `DqnExpertConfig` setting.

`define_dqn_flags()` declares them (defaults: Nature-DQN on Atari with the CC paper's
evaluation epochs); `config_from_flags(game)` builds the `DqnExpertConfig` of a game.
"""

from __future__ import annotations

import dataclasses

from absl import flags

from agents.dqn_expert import DqnExpertConfig

_HELP = {
    "seed": "Seed of environments, exploration, network initialization and replay sampling.",
    "total_frames": "Training budget in emulator frames (agent steps x frame_skip; "
    "environment steps for classic-control games).",
    "num_envs": "Parallel training environments (ale-py AtariVectorEnv); every transition "
    "of each one is an agent step.",
    "frame_skip": "Emulator frames per agent step; the action repeats and the observation is "
    "the max over the last two frames.",
    "frame_stack": "Frames per observation (stacked on the last axis).",
    "screen_size": "Side of the square grayscale frame.",
    "noop_max": "Up to this many no-op actions at the start of each episode.",
    "sticky_action_probability": "Probability that the emulator repeats the previous action "
    "(0 as in Nature-DQN and the CC paper; 0.25 in Machado et al. 2018).",
    "full_action_space": "Use all 18 ALE actions instead of the game's minimal set.",
    "max_episode_frames": "Episodes are truncated (not terminated) after this many frames.",
    "terminal_on_life_loss": "Treat a lost life as terminal for learning (training only; "
    "the episode and its score go on).",
    "clip_rewards": "Clip rewards to [-1, 1] for learning (scores stay raw).",
    "conv_layer_params": "Convolutions as 'filters:kernel:stride,...'; empty: Nature CNN for "
    "Atari, none for classic-control games.",
    "fc_layer_params": "Dense layer sizes, e.g. '512' (Atari) or '64,64'; empty: the default "
    "for the game's observations.",
    "double_dqn": "Double DQN targets (van Hasselt et al. 2016) instead of Nature-DQN's.",
    "replay_capacity": "Replay memory size in transitions (about 7 KB each on Atari).",
    "learning_starts": "Agent steps of uniformly random play before learning starts.",
    "train_every": "Agent steps per gradient step.",
    "batch_size": "Transitions per gradient step.",
    "target_update_period": "Gradient steps between target-network updates.",
    "target_update_tau": "Target update rate (1.0: copy; < 1: soft update every period).",
    "gamma": "Discount factor.",
    "optimizer": "'rmsprop' (Nature-DQN's centered RMSProp) or 'adam'.",
    "learning_rate": "Learning rate.",
    "rmsprop_rho": "RMSProp decay of the squared-gradient average.",
    "rmsprop_centered": "Centered RMSProp (Graves 2013), as in Nature-DQN.",
    "optimizer_epsilon": "Optimizer epsilon; unset: 0.01 for RMSProp, 1.5e-4 for Adam.",
    "gradient_clipping": "Clip gradients to this global norm; unset: no clipping.",
    "jit_compile": "Compile the whole train step with XLA (--nojit_compile: plain TensorFlow).",
    "jit_optimizer": "Compile the optimizer update with XLA (faster on CPU and GPU).",
    "epsilon_start": "Exploration epsilon when learning starts.",
    "epsilon_end": "Final exploration epsilon.",
    "epsilon_decay_frames": "Frames over which epsilon decays linearly to epsilon_end.",
    "eval_every_frames": "Training frames between evaluation epochs.",
    "eval_frames": "Frames played per evaluation epoch; episodes that end within them count.",
    "eval_episodes": "If > 0: evaluate exactly this many episodes (in parallel) instead of "
    "eval_frames.",
    "eval_epsilon": "Epsilon of the evaluation policy.",
    "eval_num_envs": "Parallel evaluation environments when evaluating eval_frames.",
    "target_score": "Stop training once an evaluation epoch's mean score reaches this; "
    "unset: train for total_frames.",
    "checkpoint_replay": "Save the replay memory with each checkpoint (exact resume; about "
    "7 GB at one million Atari transitions).",
    "keep_checkpoints": "Checkpoints kept on disk.",
    "log_every_seconds": "Seconds between progress lines.",
}


def _parse_conv(text: str):
    if not text.strip():
        return None
    layers = []
    for item in text.split(","):
        try:
            filters, kernel, stride = (int(part) for part in item.split(":"))
        except ValueError as error:
            raise flags.ValidationError(
                f"--conv_layer_params: expected 'filters:kernel:stride,...', got {text!r}."
            ) from error
        layers.append((filters, (kernel, kernel), stride))
    return tuple(layers)


def _parse_fc(text: str):
    if not text.strip():
        return None
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError as error:
        raise flags.ValidationError(
            f"--fc_layer_params: expected comma-separated integers, got {text!r}."
        ) from error


def define_dqn_flags(flag_values=flags.FLAGS) -> None:
    """Declares one flag per `DqnExpertConfig` setting except `game`."""
    defaults = DqnExpertConfig()
    for field in dataclasses.fields(DqnExpertConfig):
        name = field.name
        if name == "game" or name in flag_values:
            continue
        value = getattr(defaults, name)
        help_text = _HELP[name]
        if name in ("conv_layer_params", "fc_layer_params"):
            flags.DEFINE_string(name, "", help_text, flag_values=flag_values)
        elif isinstance(value, bool):
            flags.DEFINE_bool(name, value, help_text, flag_values=flag_values)
        elif isinstance(value, int):
            flags.DEFINE_integer(name, value, help_text, flag_values=flag_values)
        elif isinstance(value, float) or name in (
            "optimizer_epsilon",
            "gradient_clipping",
            "target_score",
        ):
            flags.DEFINE_float(name, value, help_text, flag_values=flag_values)
        else:
            flags.DEFINE_string(name, value, help_text, flag_values=flag_values)


def config_from_flags(game: str, flag_values=flags.FLAGS) -> DqnExpertConfig:
    """`DqnExpertConfig` of `game` from the parsed flags."""
    values = {}
    for field in dataclasses.fields(DqnExpertConfig):
        if field.name == "game":
            continue
        values[field.name] = flag_values[field.name].value
    values["conv_layer_params"] = _parse_conv(values["conv_layer_params"])
    values["fc_layer_params"] = _parse_fc(values["fc_layer_params"])
    return DqnExpertConfig(game=game, **values)
