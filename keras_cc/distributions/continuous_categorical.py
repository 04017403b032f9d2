"""The ContinuousCategorical distribution (CC paper eqs. 2-4), a TFP Distribution."""

import tensorflow as tf
import tensorflow_probability as tfp
from tensorflow_probability.python.internal import (
    assert_util,
    dtype_util,
    parameter_properties,
    reparameterization,
    tensor_util,
)
from tensorflow_probability.python.internal import (
    prefer_static as ps,
)

from keras_cc import ops

tfb = tfp.bijectors
tfd = tfp.distributions

__all__ = ["ContinuousCategorical"]

# Tolerance, in units of the dtype's machine epsilon times K, for "sums to one".
_SIMPLEX_TOLERANCE_ULPS = 64.0


class ContinuousCategorical(tfd.Distribution):
    """Continuous-categorical distribution on the probability simplex.

    The density of ``y`` in the simplex (with respect to the Lebesgue measure of its first
    ``K - 1`` coordinates) is ``C(lambda) prod_k lambda_k^{y_k}`` (CC paper eq. 2), i.e.
    ``exp(eta . y - log C^{-1}(eta))`` with natural parameters ``eta = log lambda``. The
    normalizer ``log C^{-1}`` is computed exactly for any ``K`` by a cancellation-free series
    (``keras_cc.ops.cc_log_normalizer``), unlike the published closed form (eq. 4) which
    fails near uniform parameters and above about ten classes.

    ``logits`` are preferred: they are shift-invariant (any real vector; no reference
    category), so raw network outputs can be used directly and a temperature is ``z / T``.
    ``probs`` must be positive and sum to one along the last axis.

    Example:

    >>> import keras_cc
    >>> dist = keras_cc.ContinuousCategorical(logits=[[0.0, 1.0, 2.0]])
    >>> dist.log_prob([[0.2, 0.3, 0.5]]).shape
    TensorShape([1])
    >>> dist.sample(4, seed=1).shape
    TensorShape([4, 1, 3])
    """

    def __init__(
        self,
        logits=None,
        probs=None,
        validate_args=False,
        allow_nan_stats=True,
        name="ContinuousCategorical",
    ):
        parameters = dict(locals())
        if (logits is None) == (probs is None):
            raise ValueError("ContinuousCategorical: pass exactly one of `logits` or `probs`.")
        with tf.name_scope(name) as name:
            dtype = dtype_util.common_dtype([logits, probs], dtype_hint=tf.float32)
            self._logits = tensor_util.convert_nonref_to_tensor(logits, dtype=dtype, name="logits")
            self._probs = tensor_util.convert_nonref_to_tensor(probs, dtype=dtype, name="probs")
            super().__init__(
                dtype=dtype,
                reparameterization_type=reparameterization.NOT_REPARAMETERIZED,
                validate_args=validate_args,
                allow_nan_stats=allow_nan_stats,
                parameters=parameters,
                name=name,
            )

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(
            logits=parameter_properties.ParameterProperties(event_ndims=1),
            probs=parameter_properties.ParameterProperties(
                event_ndims=1,
                default_constraining_bijector_fn=tfb.SoftmaxCentered,
                is_preferred=False,
            ),
        )

    @property
    def logits(self):
        """Input argument `logits` (None if `probs` was given)."""
        return self._logits

    @property
    def probs(self):
        """Input argument `probs` (None if `logits` was given)."""
        return self._probs

    def logits_parameter(self, name=None):
        """Natural parameters eta (log-probabilities up to a shift)."""
        with self._name_and_control_scope(name or "logits_parameter"):
            if self._logits is None:
                return tf.math.log(tf.convert_to_tensor(self._probs))
            return tf.identity(self._logits)

    def probs_parameter(self, name=None):
        """lambda = softmax(logits): the normalized parameter of eq. 2."""
        with self._name_and_control_scope(name or "probs_parameter"):
            if self._logits is None:
                return tf.identity(self._probs)
            return tf.math.softmax(self._logits)

    def _natural_parameters(self):
        if self._logits is None:
            return tf.math.log(tf.convert_to_tensor(self._probs))
        return tf.convert_to_tensor(self._logits)

    def _parameter(self):
        return self._logits if self._logits is not None else self._probs

    def _event_shape(self):
        return tf.TensorShape(self._parameter().shape[-1:])

    def _event_shape_tensor(self):
        return ps.shape(self._parameter())[-1:]

    def _log_prob(self, x):
        return ops.cc_log_prob(x, self._natural_parameters())

    def _sample_n(self, n, seed=None):
        return ops.cc_sample(self._natural_parameters(), sample_shape=[n], seed=seed)

    def _mean(self):
        return ops.cc_mean(self._natural_parameters())

    def _covariance(self):
        return ops.cc_covariance(self._natural_parameters())

    def _variance(self):
        return tf.linalg.diag_part(self._covariance())

    def _entropy(self):
        # H = log C^{-1}(eta) - eta . E[y]   (NUMERICS.md)
        eta = self._natural_parameters()
        return ops.cc_log_normalizer(eta) - tf.reduce_sum(eta * ops.cc_mean(eta), axis=-1)

    def _default_event_space_bijector(self):
        return tfb.SoftmaxCentered(validate_args=self.validate_args)

    def _parameter_control_dependencies(self, is_init):
        if not self.validate_args:
            return []
        assertions = []
        if self._logits is not None:
            if is_init != tensor_util.is_ref(self._logits):
                logits = tf.convert_to_tensor(self._logits)
                assertions.append(
                    assert_util.assert_equal(
                        tf.reduce_all(tf.math.is_finite(logits)),
                        True,
                        message="Argument `logits` must be finite (got inf or NaN).",
                    )
                )
        elif is_init != tensor_util.is_ref(self._probs):
            probs = tf.convert_to_tensor(self._probs)
            assertions.append(
                assert_util.assert_positive(probs, message="Argument `probs` must be positive.")
            )
            assertions.append(_assert_sums_to_one(probs, "Argument `probs` must sum to 1."))
        if is_init:
            parameter = self._parameter()
            num_classes = tf.compat.dimension_value(parameter.shape[-1])
            if num_classes is not None and num_classes < 2:
                raise ValueError(
                    f"ContinuousCategorical needs at least 2 classes; the last axis of "
                    f"`{'logits' if self._logits is not None else 'probs'}` has {num_classes}."
                )
        return assertions

    def _sample_control_dependencies(self, x):
        if not self.validate_args:
            return []
        return [
            assert_util.assert_non_negative(
                x, message="log_prob: `value` must lie on the simplex (found a negative entry)."
            ),
            _assert_sums_to_one(
                x, "log_prob: `value` must lie on the simplex (entries must sum to 1)."
            ),
        ]


def _assert_sums_to_one(x, message):
    x = tf.convert_to_tensor(x)
    num_classes = tf.cast(tf.shape(x)[-1], x.dtype)
    tolerance = _SIMPLEX_TOLERANCE_ULPS * num_classes * dtype_util.eps(x.dtype)
    return assert_util.assert_less_equal(
        tf.abs(tf.reduce_sum(x, axis=-1) - 1.0), tolerance, message=message
    )


@tfd.RegisterKL(ContinuousCategorical, ContinuousCategorical)
def _kl_continuous_categorical(a, b, name=None):
    """KL(CC(eta_a) || CC(eta_b)), NUMERICS.md; shift-invariant in each argument:

    (eta_a - eta_b) . E_a[y] - log C^{-1}(eta_a) + log C^{-1}(eta_b).
    """
    with tf.name_scope(name or "kl_continuous_categorical"):
        eta_a = a._natural_parameters()
        eta_b = b._natural_parameters()
        mean_a = ops.cc_mean(eta_a)
        return (
            tf.reduce_sum((eta_a - eta_b) * mean_a, axis=-1)
            - ops.cc_log_normalizer(eta_a)
            + ops.cc_log_normalizer(eta_b)
        )
