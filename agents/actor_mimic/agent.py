"""Actor-mimic distillation as a TF-Agents agent: AMN (eq. 10) and CC-AMN (eq. 11).

One student network (the experts' trunk: Nature-DQN's for Atari frames, MinAtar's for
its grids, a small MLP for vector observations) has an output per action meaning in the
union of its games' action sets
(:class:`keras_cc_agents.actor_mimic.action_union.ActionUnion`). Observations carry the
acting game's legal actions, so TF-Agents' own ``QPolicy`` masks the illegal outputs,
``GreedyPolicy`` gives the evaluation policy and ``EpsilonGreedyPolicy`` the collect policy
(its random actions are drawn among legal ones only).

``train`` takes a batch of states with the index of the game each came from. The
experts' Q-values for those states become guidance vectors ``softmax(Q_E / T)`` (eq. 9);
each game's rows are scored on the game's own actions (a gather from the union), with
the cross-entropy (``loss='ce'``, AMN) or the continuous-categorical negative
log-likelihood (``loss='cc'``, CC-AMN, exact normalizer from ``keras_cc.ops``). An
optional feature-regression term (Parisotto et al., 2015) pulls per-game linear maps of
the student's features towards the experts' hidden features.

Nothing is zeroed out: the agent counts the guidance vectors (and student
distributions) on which the CC paper's closed-form normalizer (eq. 4) would fail, and
counts train steps whose loss or gradient was non-finite. Such a step is not applied.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from tf_agents.agents import tf_agent
from tf_agents.networks import network
from tf_agents.policies import epsilon_greedy_policy, greedy_policy, q_policy
from tf_agents.specs import tensor_spec
from tf_agents.trajectories import time_step as ts
from tf_agents.utils import common

from keras_cc_agents.actor_mimic import config, losses
from keras_cc_agents.actor_mimic.action_union import ActionUnion
from keras_cc_agents.networks import q_networks as networks

OBSERVATION_KEY = "observation"
LEGAL_ACTIONS_KEY = "legal_actions"

StateBatch = collections.namedtuple("StateBatch", ["observation", "game_id"])
"""A training batch: states ``[B, ...]`` and the index of each state's game ``[B]``."""

ActorMimicLossInfo = collections.namedtuple(
    "ActorMimicLossInfo",
    [
        "policy_loss",  # scalar: mean of eq. 10 or 11 over the batch
        "feature_loss",  # scalar: mean feature-regression term (0 when off)
        "per_game_loss",  # [G]: mean policy loss of each game's rows (0 for absent games)
        "per_game_count",  # [G] int32: rows per game
        "guidance_closed_form_failures",  # [G] int32: guidance vectors where eq. 4 fails
        "student_closed_form_failures",  # [G] int32: student distributions where eq. 4 fails
        "student_published_fallbacks",  # [G] int32: rows the published CC-AMN falls back on
        "guidance_centroid_distance",  # [G] float32: sum over rows of losses.centroid_distance
        "finite",  # bool: loss and every gradient finite (the step was applied)
    ],
)

ExpertFn = Callable[[tf.Tensor], tf.Tensor]


def split_legal_actions(observation):
    """``observation_and_action_constraint_splitter`` for the agent's observations."""
    return observation[OBSERVATION_KEY], observation[LEGAL_ACTIONS_KEY]


def actor_mimic_observation_spec(
    observation_spec: tf.TensorSpec, action_union: ActionUnion
) -> dict[str, tf.TensorSpec]:
    """The agent's observation: the game's observation and its legal-action mask ``[U]``."""
    return {
        OBSERVATION_KEY: observation_spec,
        LEGAL_ACTIONS_KEY: tf.TensorSpec([action_union.num_actions], tf.bool, LEGAL_ACTIONS_KEY),
    }


def actor_mimic_time_step_spec(
    observation_spec: tf.TensorSpec, action_union: ActionUnion
) -> ts.TimeStep:
    return ts.time_step_spec(actor_mimic_observation_spec(observation_spec, action_union))


def union_action_spec(action_union: ActionUnion) -> tensor_spec.BoundedTensorSpec:
    """Scalar int64 action over the union ``[0, U)``; map to a game with ``to_game_actions``."""
    return tensor_spec.BoundedTensorSpec(
        (), tf.int64, minimum=0, maximum=action_union.num_actions - 1, name="union_action"
    )


class ActorMimicNetwork(network.Network):
    """Student network: a trunk to features, then one linear output per union action.

    The trunk is the experts' (``keras_cc_agents.networks.q_networks.encoder``): for
    ``network="nature_cnn"`` (Atari frames, ``[84, 84, 4]``) three convolutions and a dense
    512, for ``"minatar"`` (``[10, 10, C]`` grids) one 16-filter convolution and a dense 128,
    for ``"mlp"`` (vector observations) dense ReLU layers (``fc_layer_params``; default 64, 64);
    by default the network of the observation spec. ``features`` exposes the trunk's output
    (the feature-regression input).

    Args:
      input_tensor_spec: the game observation spec (shared by every game).
      num_actions: outputs, i.e. the size of the action union.
      network: ``"nature_cnn"``, ``"minatar"``, ``"mlp"`` or None (the spec's default).
      fc_layer_params: replaces the trunk's dense layers where given.

    Raises:
      ValueError: ``num_actions < 1``, an unknown network, or empty dense layers.
    """

    def __init__(
        self,
        input_tensor_spec: tf.TensorSpec,
        num_actions: int,
        network: str | None = None,
        fc_layer_params: Sequence[int] | None = None,
        name: str = "ActorMimicNetwork",
    ):
        super().__init__(input_tensor_spec=input_tensor_spec, state_spec=(), name=name)
        if num_actions < 1:
            raise ValueError(f"num_actions must be >= 1, got {num_actions}.")
        if fc_layer_params is not None and not fc_layer_params:
            raise ValueError("fc_layer_params must name at least one hidden layer.")
        self._encoder = networks.encoder(
            input_tensor_spec, network, fc_layer_params=fc_layer_params, name="trunk"
        )
        _, dense = networks.layer_params(input_tensor_spec, network, None, fc_layer_params)
        self._feature_size = int(dense[-1])
        self._output_layer = tf.keras.layers.Dense(
            num_actions,
            kernel_initializer=tf.keras.initializers.RandomUniform(-0.03, 0.03),
            bias_initializer=tf.keras.initializers.Zeros(),
            name="union_outputs",
        )
        self._num_actions = int(num_actions)

    @property
    def feature_size(self) -> int:
        return self._feature_size

    @property
    def num_actions(self) -> int:
        return self._num_actions

    def create_variables(self, input_tensor_spec=None, **kwargs):
        """Builds the network on a zero observation.

        TF-Agents' default builds on a random sample of the spec, which overflows for
        uint8 ``[0, 255]`` frames.
        """
        if self._network_output_spec is None:
            zeros = tensor_spec.zero_spec_nest(self.input_tensor_spec, outer_dims=(1,))
            outputs, _ = self.__call__(
                zeros, step_type=tf.fill((1,), ts.StepType.FIRST), network_state=(), **kwargs
            )
            self._network_output_spec = tf.TensorSpec(outputs.shape[1:], outputs.dtype)
        return self._network_output_spec

    def features(self, observation, training: bool = False) -> tf.Tensor:
        features, _ = self._encoder(observation, training=training)
        return features

    def features_and_outputs(self, observation, training: bool = False):
        features = self.features(observation, training=training)
        return features, self._output_layer(features, training=training)

    def call(self, observation, step_type=None, network_state=(), training=False):
        del step_type
        _, outputs = self.features_and_outputs(observation, training=training)
        return outputs, network_state


def build_optimizer(learning_rate: float, optimizer: str = "adam"):
    """A Keras 2 optimizer (``adam`` or ``rmsprop``) for the student."""
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be > 0, got {learning_rate}.")
    if optimizer == "adam":
        return tf.keras.optimizers.Adam(learning_rate=learning_rate, epsilon=1e-4)
    if optimizer == "rmsprop":
        return tf.keras.optimizers.RMSprop(learning_rate=learning_rate, rho=0.95, epsilon=0.01)
    raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {optimizer!r}.")


class ActorMimicAgent(tf_agent.TFAgent):
    """AMN / CC-AMN student distilling one expert per game (CC paper, section 4).

    Args:
      time_step_spec: from :func:`actor_mimic_time_step_spec`.
      action_spec: from :func:`union_action_spec`.
      student_network: an :class:`ActorMimicNetwork` with ``action_union.num_actions`` outputs.
      optimizer: a Keras 2 optimizer.
      action_union: the games and their actions.
      expert_q_fns: per game (in ``action_union.games`` order), ``obs [b, ...] -> Q [b, A_g]``.
      loss: ``'ce'`` (AMN, eq. 10), ``'cc'`` (CC-AMN, eq. 11) or ``'cc_published'``
        (CC-AMN with the published closed form and its cross-entropy fallback).
      temperature: Boltzmann temperature ``T`` of the guidance vectors ``softmax(Q / T)``.
      epsilon_greedy: exploration of the collect policy (a float or a callable).
      feature_regression_weight: weight of the feature-regression term (0: off).
      expert_feature_fns: per game, ``obs -> expert hidden features [b, F_g]``; needed
        when ``feature_regression_weight > 0``.
      expert_feature_sizes: per game, ``F_g``.
      gradient_clipping: optional global-norm clip of the student's gradient.
      closed_form_rtol: tolerance of the closed-form-failure count (``ops.cc_closed_form_failure``).
      jit_compile: compile the per-state loss and closed-form checks (not the network)
        with XLA, which fuses the CC normalizer's series into a few kernels.
    """

    def __init__(
        self,
        time_step_spec: ts.TimeStep,
        action_spec: tensor_spec.BoundedTensorSpec,
        student_network: ActorMimicNetwork,
        optimizer,
        action_union: ActionUnion,
        expert_q_fns: Sequence[ExpertFn],
        loss: str = "ce",
        temperature: float = 1.0,
        epsilon_greedy: float | Callable[[], float] = 0.1,
        feature_regression_weight: float = 0.0,
        expert_feature_fns: Sequence[ExpertFn] | None = None,
        expert_feature_sizes: Sequence[int] | None = None,
        gradient_clipping: float | None = None,
        closed_form_rtol: float = 1e-3,
        jit_compile: bool = False,
        debug_summaries: bool = False,
        summarize_grads_and_vars: bool = False,
        train_step_counter: tf.Variable | None = None,
        name: str | None = None,
    ):
        tf.Module.__init__(self, name=name)
        self._loss_name = config.check_loss_name(loss)
        self._policy_loss_fn = losses.policy_regression_loss(loss)
        self._temperature = config.check_temperature(temperature)
        self._union = action_union
        if len(expert_q_fns) != action_union.num_games:
            raise ValueError(
                f"expert_q_fns has {len(expert_q_fns)} experts for "
                f"{action_union.num_games} games {list(action_union.games)}."
            )
        self._expert_q_fns = list(expert_q_fns)
        if feature_regression_weight < 0:
            raise ValueError(
                f"feature_regression_weight must be >= 0, got {feature_regression_weight}."
            )
        self._feature_regression_weight = float(feature_regression_weight)
        if self._feature_regression_weight > 0 and (
            expert_feature_fns is None or expert_feature_sizes is None
        ):
            raise ValueError(
                "feature_regression_weight > 0 needs expert_feature_fns and "
                "expert_feature_sizes (the experts' hidden features)."
            )
        num_outputs = int(action_spec.maximum - action_spec.minimum + 1)
        if num_outputs != action_union.num_actions:
            raise ValueError(
                f"action_spec has {num_outputs} actions, the union has {action_union.num_actions}."
            )
        self._student = student_network
        self._student.create_variables()
        self._optimizer = optimizer
        self._gradient_clipping = gradient_clipping
        self._closed_form_rtol = float(closed_form_rtol)
        self._game_to_union = [tf.constant(i, tf.int32) for i in action_union.game_to_union]

        self._feature_heads = []
        self._expert_feature_fns = []
        if self._feature_regression_weight > 0:
            if (
                len(expert_feature_fns) != action_union.num_games
                or len(expert_feature_sizes) != action_union.num_games
            ):
                raise ValueError("expert_feature_fns/sizes need one entry per game.")
            self._expert_feature_fns = list(expert_feature_fns)
            for game, size in zip(action_union.games, expert_feature_sizes, strict=True):
                head = tf.keras.layers.Dense(int(size), name=f"feature_regression_{game}")
                head.build((None, student_network.feature_size))
                self._feature_heads.append(head)

        self.nonfinite_steps = tf.Variable(0, dtype=tf.int64, name="nonfinite_steps")

        base_policy = q_policy.QPolicy(
            time_step_spec,
            action_spec,
            q_network=student_network,
            observation_and_action_constraint_splitter=split_legal_actions,
        )
        self._q_policy = base_policy
        policy = greedy_policy.GreedyPolicy(base_policy)
        collect_policy = epsilon_greedy_policy.EpsilonGreedyPolicy(
            base_policy, epsilon=epsilon_greedy
        )
        training_data_spec = StateBatch(
            observation=time_step_spec.observation[OBSERVATION_KEY],
            game_id=tf.TensorSpec((), tf.int32, "game_id"),
        )
        super().__init__(
            time_step_spec,
            action_spec,
            policy,
            collect_policy,
            train_sequence_length=None,
            num_outer_dims=1,
            training_data_spec=training_data_spec,
            debug_summaries=debug_summaries,
            summarize_grads_and_vars=summarize_grads_and_vars,
            train_step_counter=train_step_counter,
        )
        # TFAgent only wraps _train in a tf.function under TF1; in TF2 it would run eagerly.
        self._train_fn = common.function(self._train)
        self._jit_compile = bool(jit_compile)
        self._state_terms = (
            tf.function(self._per_state_terms, jit_compile=True)
            if self._jit_compile
            else self._per_state_terms
        )

    # -- properties -----------------------------------------------------------------
    @property
    def action_union(self) -> ActionUnion:
        return self._union

    @property
    def loss_name(self) -> str:
        return self._loss_name

    @property
    def temperature(self) -> float:
        return self._temperature

    @property
    def student_network(self) -> ActorMimicNetwork:
        return self._student

    @property
    def optimizer(self):
        return self._optimizer

    @property
    def trainable_variables(self):
        variables = list(self._student.trainable_variables)
        for head in self._feature_heads:
            variables.extend(head.trainable_variables)
        return variables

    def evaluation_policy(self, epsilon: float = 0.0):
        """Greedy student policy with exploration ``epsilon`` (among legal actions only)."""
        if epsilon <= 0:
            return self.policy
        return epsilon_greedy_policy.EpsilonGreedyPolicy(self._q_policy, epsilon=epsilon)

    def observation_for_game(self, game, observation) -> dict:
        """Wraps a batch of one game's observations ``[N, ...]`` with its legal-action mask."""
        g = self._union.game_index(game)
        mask = np.broadcast_to(
            self._union.legal_masks[g], (np.shape(observation)[0], self._union.num_actions)
        )
        return {OBSERVATION_KEY: observation, LEGAL_ACTIONS_KEY: mask}

    # -- TFAgent --------------------------------------------------------------------
    def _initialize(self):
        # Optimizer slots exist before the first (conditional) update.
        if hasattr(self._optimizer, "build"):
            self._optimizer.build(self.trainable_variables)
        return tf.no_op()

    def _per_state_terms(self, expert_q: tf.Tensor, game_logits: tf.Tensor):
        """One game's per-state loss; how many of its guidance vectors and student
        distributions the closed form (eq. 4) fails on; on how many student rows the
        published CC-AMN falls back to the cross-entropy; and the sum of the guidance
        vectors' distances from the centroid."""
        log_guidance = losses.guidance_log_probs(expert_q, self._temperature)
        guidance = tf.exp(log_guidance)
        per_state = self._policy_loss_fn(guidance, game_logits)
        student_logits = tf.stop_gradient(game_logits)
        log_student = tf.nn.log_softmax(student_logits)
        count = lambda failed: tf.reduce_sum(tf.cast(failed, tf.int32))
        closed_form = lambda log_probs: losses.closed_form_failures(
            log_probs, self._closed_form_rtol
        )
        return (
            per_state,
            count(closed_form(log_guidance)),
            count(closed_form(log_student)),
            count(losses.published_fallbacks(student_logits)),
            tf.reduce_sum(losses.centroid_distance(guidance)),
        )

    def _game_terms(self, experience: StateBatch, weights, training: bool):
        observation = experience.observation
        game_id = tf.cast(experience.game_id, tf.int32)
        batch = tf.shape(game_id)[0]
        features, union_logits = self._student.features_and_outputs(observation, training=training)
        rows_per_game = tf.dynamic_partition(tf.range(batch), game_id, self._union.num_games)
        if weights is None:
            weights = tf.ones([batch], tf.float32)
        weights = tf.broadcast_to(tf.cast(weights, tf.float32), [batch])

        policy_total = tf.constant(0.0)
        feature_total = tf.constant(0.0)
        per_game_loss, per_game_count = [], []
        guidance_failures, student_failures, fallbacks, distances = [], [], [], []
        for g in range(self._union.num_games):
            rows = rows_per_game[g]
            game_observation = tf.gather(observation, rows)
            expert_q = tf.stop_gradient(
                tf.cast(self._expert_q_fns[g](game_observation), tf.float32)
            )
            game_logits = tf.gather(tf.gather(union_logits, rows), self._game_to_union[g], axis=-1)
            per_state, guidance_failed, student_failed, fallback, distance = self._state_terms(
                expert_q, game_logits
            )
            game_weights = tf.gather(weights, rows)
            policy_total += tf.reduce_sum(game_weights * per_state)
            count = tf.size(rows)
            per_game_count.append(count)
            per_game_loss.append(
                tf.math.divide_no_nan(tf.reduce_sum(per_state), tf.cast(count, tf.float32))
            )
            guidance_failures.append(guidance_failed)
            student_failures.append(student_failed)
            fallbacks.append(fallback)
            distances.append(distance)
            if self._feature_regression_weight > 0:
                expert_features = tf.stop_gradient(self._expert_feature_fns[g](game_observation))
                predicted = self._feature_heads[g](tf.gather(features, rows))
                feature_total += tf.reduce_sum(
                    game_weights * losses.feature_regression_loss(predicted, expert_features)
                )
        denominator = tf.maximum(tf.cast(batch, tf.float32), 1.0)
        policy_loss = policy_total / denominator
        feature_loss = feature_total / denominator
        return (
            policy_loss,
            feature_loss,
            tf.stack(per_game_loss),
            tf.stack(per_game_count),
            tf.stack(guidance_failures),
            tf.stack(student_failures),
            tf.stack(fallbacks),
            tf.stack(distances),
        )

    def _loss(self, experience: StateBatch, weights=None, training: bool = False):
        (
            policy_loss,
            feature_loss,
            per_game_loss,
            counts,
            g_fail,
            s_fail,
            fallbacks,
            distances,
        ) = self._game_terms(experience, weights, training)
        total = policy_loss + self._feature_regression_weight * feature_loss
        extra = ActorMimicLossInfo(
            policy_loss=policy_loss,
            feature_loss=feature_loss,
            per_game_loss=per_game_loss,
            per_game_count=counts,
            guidance_closed_form_failures=g_fail,
            student_closed_form_failures=s_fail,
            student_published_fallbacks=fallbacks,
            guidance_centroid_distance=distances,
            finite=tf.math.is_finite(total),
        )
        return tf_agent.LossInfo(loss=total, extra=extra)

    def _loss_and_gradients(self, experience: StateBatch, weights=None):
        variables = self.trainable_variables
        with tf.GradientTape() as tape:
            loss_info = self._loss(experience, weights=weights, training=True)
        return loss_info, tape.gradient(loss_info.loss, variables)

    def _train(self, experience: StateBatch, weights=None):
        variables = self.trainable_variables
        loss_info, gradients = self._loss_and_gradients(experience, weights)
        finite = tf.math.is_finite(loss_info.loss)
        for gradient in gradients:
            if gradient is not None:
                finite = tf.logical_and(finite, tf.reduce_all(tf.math.is_finite(gradient)))
        if self._gradient_clipping:
            gradients, _ = tf.clip_by_global_norm(gradients, self._gradient_clipping)
        grads_and_vars = [
            (g, v) for g, v in zip(gradients, variables, strict=True) if g is not None
        ]

        def apply():
            self._optimizer.apply_gradients(grads_and_vars)
            return tf.constant(0, tf.int64)

        def skip():
            return tf.constant(1, tf.int64)

        self.nonfinite_steps.assign_add(tf.cond(finite, apply, skip))
        self.train_step_counter.assign_add(1)
        if self.summaries_enabled:
            with tf.name_scope("actor_mimic/"):
                step = self.train_step_counter
                tf.summary.scalar("loss", loss_info.loss, step=step)
                tf.summary.scalar("policy_loss", loss_info.extra.policy_loss, step=step)
                if self._feature_regression_weight > 0:
                    tf.summary.scalar("feature_loss", loss_info.extra.feature_loss, step=step)
        return loss_info._replace(extra=loss_info.extra._replace(finite=finite))
