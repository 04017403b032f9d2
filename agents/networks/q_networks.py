"""Q-networks of the DQN experts (TF-Agents networks, Keras 2 via tf_keras).

The Atari network is Nature-DQN's (Mnih et al. 2015, "Methods"): uint8 stacks of four
84x84 frames scaled to [0, 1], conv 32 8x8 stride 4, conv 64 4x4 stride 2, conv 64 3x3
stride 1, dense 512, all ReLU, and a linear layer with one Q-value per action. The CC paper
(appendix A.2) uses the same network for the experts and the actor-mimic students, so the
trunk is available on its own (`encoder`).

MinAtar's network (Young & Tian 2019, section 4) is one 16-filter 3x3 convolution of stride 1
and a dense layer of 128 units, both ReLU, over its 10x10 grids of {0, 1} channels.

Classic-control games (CartPole) use a small MLP on the raw observation vector.
"""

from __future__ import annotations

import tensorflow as tf
from tf_agents.networks import encoding_network, q_network
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts

NATURE_CONV_LAYERS = ((32, (8, 8), 4), (64, (4, 4), 2), (64, (3, 3), 1))
NATURE_FC_LAYERS = (512,)
MINATAR_CONV_LAYERS = ((16, (3, 3), 1),)
MINATAR_FC_LAYERS = (128,)
MLP_FC_LAYERS = (64, 64)
# --network choices -> (conv_layer_params, fc_layer_params).
NETWORKS = {
    "nature_cnn": (NATURE_CONV_LAYERS, NATURE_FC_LAYERS),
    "minatar": (MINATAR_CONV_LAYERS, MINATAR_FC_LAYERS),
    "mlp": ((), MLP_FC_LAYERS),
}


def default_network(observation_spec) -> str:
    """The network of a game's observations: Nature CNN for uint8 frames of 84x84 or more,
    MinAtar's for smaller uint8 grids, an MLP for vectors."""
    if not _is_pixel_spec(observation_spec):
        return "mlp"
    return "nature_cnn" if min(observation_spec.shape[:2]) >= 36 else "minatar"


def _pixel_scaling(observation_spec) -> tf.keras.layers.Layer:
    """uint8 frames -> float32 in [0, 1]: divided by the spec's maximum (255 for Atari
    pixels, 1 for MinAtar's channels). A Keras 2 layer; it casts its input."""
    maximum = float(getattr(observation_spec, "maximum", 255))
    return tf.keras.layers.Rescaling(1.0 / maximum, name="pixels_to_unit_interval")


def _is_pixel_spec(spec) -> bool:
    return tf.as_dtype(spec.dtype) == tf.uint8


class _ZeroInputVariables:
    """Builds a network on zeros instead of a random sample of its input spec.

    TF-Agents' `Network.create_variables` samples the input spec, and sampling a uint8
    spec bounded by [0, 255] overflows (`maxval + 1` wraps to 0) under NumPy 2.
    """

    def create_variables(self, input_tensor_spec=None, **kwargs):
        if self._network_output_spec is None:
            if self._input_tensor_spec is None:
                self._input_tensor_spec = input_tensor_spec
            if self._input_tensor_spec is None:
                raise ValueError("Unable to create_variables: no input_tensor_spec provided.")
            zeros = tensor_spec.zero_spec_nest(self._input_tensor_spec, outer_dims=(1,))
            step_type = tf.fill((1,), ts.StepType.FIRST)
            outputs, _ = self.__call__(zeros, step_type=step_type, network_state=(), **kwargs)
            self._network_output_spec = tf.nest.map_structure(
                lambda t: tf.TensorSpec(t.shape[1:], t.dtype), outputs
            )
        return self._network_output_spec


class ExpertQNetwork(_ZeroInputVariables, q_network.QNetwork):
    """TF-Agents `QNetwork` that builds on uint8 specs; pixels are scaled to [0, 1].

    Args:
      input_tensor_spec: observation spec (uint8 [H, W, stack] pixels or a float vector).
      action_spec: scalar discrete action spec with minimum 0.
      conv_layer_params: (filters, kernel, stride) per conv layer; () for none.
      fc_layer_params: units of the dense layers after the convolutions.
      name: network name.
    """

    def __init__(
        self,
        input_tensor_spec,
        action_spec,
        conv_layer_params=NATURE_CONV_LAYERS,
        fc_layer_params=NATURE_FC_LAYERS,
        name: str = "ExpertQNetwork",
    ):
        pixels = _is_pixel_spec(input_tensor_spec)
        preprocessing = _pixel_scaling(input_tensor_spec) if pixels else None
        super().__init__(
            input_tensor_spec,
            action_spec,
            preprocessing_layers=preprocessing,
            conv_layer_params=tuple(conv_layer_params) or None,
            fc_layer_params=tuple(fc_layer_params),
            name=name,
        )
        self._conv_layer_params = tuple(conv_layer_params)
        self._fc_layer_params = tuple(fc_layer_params)

    @property
    def encoder(self) -> encoding_network.EncodingNetwork:
        """The trunk: observation -> last hidden layer (512 units for Nature-DQN)."""
        return self._encoder

    @property
    def q_value_layer(self) -> tf.keras.layers.Layer:
        return self._q_value_layer

    @property
    def architecture(self) -> str:
        """A stable name of the architecture, recorded in checkpoints and exports."""
        return architecture_name(self._conv_layer_params, self._fc_layer_params)


def architecture_name(conv_layer_params, fc_layer_params) -> str:
    """ "nature_cnn" or "minatar" for those networks' layers; otherwise e.g.
    "conv32x8s4-fc64-fc64"."""
    conv, fc = tuple(conv_layer_params), tuple(fc_layer_params)
    for name in ("nature_cnn", "minatar"):
        if (conv, fc) == NETWORKS[name]:
            return name
    parts = [f"conv{f}x{k[0] if isinstance(k, (tuple, list)) else k}s{s}" for f, k, s in conv]
    parts += [f"fc{units}" for units in fc]
    return "-".join(parts) or "linear"


class Encoder(_ZeroInputVariables, encoding_network.EncodingNetwork):
    """`EncodingNetwork` that builds on uint8 specs (see `encoder`)."""


def encoder(
    input_tensor_spec,
    network: str | None = None,
    fc_layer_params=None,
    name: str = "Encoder",
) -> Encoder:
    """The trunk of `network` (None: `default_network` of the observations; its dense
    layers replaced by `fc_layer_params` where given) as a TF-Agents `EncodingNetwork`,
    ReLU throughout: uint8 frames are scaled to [0, 1], convolved and flattened into the
    dense layers; the output is the last dense layer (512 features for Nature-DQN, 128 for
    MinAtar, 64 for the MLP). Raises ``ValueError`` for an unknown network name."""
    input_tensor_spec = tensor_spec.from_spec(input_tensor_spec)
    conv_layer_params, fc_layer_params = layer_params(
        input_tensor_spec, network, fc_layer_params=fc_layer_params
    )
    pixels = _is_pixel_spec(input_tensor_spec)
    return Encoder(
        input_tensor_spec,
        preprocessing_layers=_pixel_scaling(input_tensor_spec) if pixels else None,
        conv_layer_params=tuple(conv_layer_params) or None,
        fc_layer_params=tuple(fc_layer_params),
        activation_fn=tf.keras.activations.relu,
        name=name,
    )


def make_q_network(
    observation_spec,
    action_spec,
    conv_layer_params=None,
    fc_layer_params=None,
    name: str = "ExpertQNetwork",
    network: str | None = None,
) -> ExpertQNetwork:
    """The expert Q-network for a game's specs.

    `network` ("nature_cnn", "minatar" or "mlp"; None: `default_network` of the
    observations) gives the layers; `conv_layer_params` and `fc_layer_params` replace its
    convolutions or dense layers when given.
    """
    observation_spec = tensor_spec.from_spec(observation_spec)
    action_spec = tensor_spec.from_spec(action_spec)
    conv_layer_params, fc_layer_params = layer_params(
        observation_spec, network, conv_layer_params, fc_layer_params
    )
    network = ExpertQNetwork(
        observation_spec,
        action_spec,
        conv_layer_params=conv_layer_params,
        fc_layer_params=fc_layer_params,
        name=name,
    )
    network.create_variables(observation_spec)
    return network


def layer_params(observation_spec, network=None, conv_layer_params=None, fc_layer_params=None):
    """``(conv_layer_params, fc_layer_params)`` of `network` (None: `default_network`), with
    either replaced where given. Raises ``ValueError`` for an unknown network name."""
    network = network or default_network(tensor_spec.from_spec(observation_spec))
    if network not in NETWORKS:
        raise ValueError(f"network must be one of {', '.join(NETWORKS)}; got {network!r}.")
    conv, fc = NETWORKS[network]
    return (
        conv if conv_layer_params is None else conv_layer_params,
        fc if fc_layer_params is None else fc_layer_params,
    )
