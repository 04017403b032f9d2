"""The ContinuousCategorical distribution (CC paper eqs. 2-4), a TFP Distribution."""

import tensorflow as tf
import tensorflow_probability as tfp

# TFP has no public equivalent of these two: the dtype inference and the handling of
# variables (kept as references, read at each use) that TFP's own distributions use.
from tensorflow_probability.python.internal import dtype_util, tensor_util

from keras_cc import ops

tfb = tfp.bijectors
tfd = tfp.distributions

__all__ = ["ContinuousCategorical"]

# "Sums to one" holds within _SIMPLEX_TOLERANCE_ULPS * K machine epsilons of the dtype the
# sum is computed in (float32 for float16 and bfloat16, else the input's own dtype) plus
# _STORAGE_TOLERANCE_ULPS machine epsilons of the input's dtype (the rounding of its entries).
_SIMPLEX_TOLERANCE_ULPS = 64.0
_STORAGE_TOLERANCE_ULPS = 4.0

# Machine epsilon of each floating dtype (NumPy's finfo does not know bfloat16).
_EPSILON = {tf.float16: 2.0**-10, tf.bfloat16: 2.0**-7, tf.float32: 2.0**-23, tf.float64: 2.0**-52}
_HALF_PRECISION = (tf.float16, tf.bfloat16)
# Integer (and boolean) parameters become this dtype.
_DTYPE_OF_INTEGER_PARAMETERS = tf.float32
# How messages about the point given to log_prob (or prob) begin.
_POINT = "ContinuousCategorical.log_prob"


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

    Data types: the distribution's dtype is that of ``logits`` (or ``probs``): float16,
    bfloat16, float32 or float64; half-precision parameters are computed in float32 and the
    results returned in their dtype. Integer (or boolean) ``logits``/``probs`` are cast to
    float32, and integer points given to ``log_prob``/``prob`` are cast (not truncated) to the
    distribution's dtype.

    Points: ``log_prob(value)`` needs ``value.shape[-1] == K``; a point with another number of
    entries raises ``ValueError`` when the shapes are known while tracing (whatever
    ``validate_args``), and ``InvalidArgumentError`` otherwise if ``validate_args=True``.
    With ``validate_args=True``, a point off the simplex raises ``InvalidArgumentError``
    saying which: a NaN or infinite entry, a negative entry, or entries not summing to 1.
    XLA drops these run-time assertions, as for every TFP distribution.

    Examples:
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
            argument = "logits" if logits is not None else "probs"
            dtype = _parameter_dtype(
                dtype_util.common_dtype([logits, probs], dtype_hint=tf.float32), argument
            )
            self._logits = _parameter_tensor(logits, dtype, "logits")
            self._probs = _parameter_tensor(probs, dtype, "probs")
            super().__init__(
                dtype=dtype,
                reparameterization_type=tfd.NOT_REPARAMETERIZED,
                validate_args=validate_args,
                allow_nan_stats=allow_nan_stats,
                parameters=parameters,
                name=name,
            )

    @classmethod
    def _parameter_properties(cls, dtype, num_classes=None):
        return dict(
            logits=tfp.util.ParameterProperties(event_ndims=1),
            probs=tfp.util.ParameterProperties(
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

    def _compute_natural_parameters(self):
        """The natural parameters in the dtype the math runs in (float32 for half precision)."""
        parameter = tf.convert_to_tensor(self._parameter())
        if parameter.dtype in _HALF_PRECISION:
            parameter = tf.cast(parameter, tf.float32)
        return parameter if self._logits is not None else tf.math.log(parameter)

    def _parameter(self):
        return self._logits if self._logits is not None else self._probs

    def _parameter_name(self):
        return "logits" if self._logits is not None else "probs"

    def _event_shape(self):
        return tf.TensorShape(self._parameter().shape[-1:])

    def _event_shape_tensor(self):
        return tf.shape(self._parameter())[-1:]

    def _point(self, x):
        """A point given to log_prob as a tensor; integer (or boolean) points are cast."""
        x = tf.convert_to_tensor(x, name="value")
        if (
            x.dtype.is_integer
            or x.dtype.is_bool
            or (x.dtype.is_floating and x.dtype.base_dtype not in _EPSILON)
        ):
            return tf.cast(x, self.dtype)
        if not x.dtype.is_floating:
            raise TypeError(
                f"{_POINT}: `value` must be a real (floating or integer) tensor; received "
                f"dtype {x.dtype.name}."
            )
        return x

    def _log_prob(self, x):
        eta = self._compute_natural_parameters()
        return tf.cast(ops.cc_log_prob(self._point(x), eta), self.dtype)

    def _sample_n(self, n, seed=None):
        samples = ops.cc_sample(self._compute_natural_parameters(), sample_shape=[n], seed=seed)
        return tf.cast(samples, self.dtype)

    def _mean(self):
        return tf.cast(ops.cc_mean(self._compute_natural_parameters()), self.dtype)

    def _covariance(self):
        return tf.cast(ops.cc_covariance(self._compute_natural_parameters()), self.dtype)

    def _variance(self):
        return tf.cast(ops.cc_variance(self._compute_natural_parameters()), self.dtype)

    def _entropy(self):
        return tf.cast(ops.cc_entropy(self._compute_natural_parameters()), self.dtype)

    def _default_event_space_bijector(self):
        return tfb.SoftmaxCentered(validate_args=self.validate_args)

    def _parameter_control_dependencies(self, is_init):
        if is_init:
            # Static checks: they need no run time, so they hold whatever validate_args.
            parameter = self._parameter()
            if parameter.shape.rank == 0:
                raise ValueError(
                    f"ContinuousCategorical: `{self._parameter_name()}` needs a class (last) "
                    "axis; received a scalar."
                )
            num_classes = _static_size_of_last_axis(parameter)
            if num_classes is not None and num_classes < 2:
                raise ValueError(
                    f"ContinuousCategorical needs at least 2 classes; the last axis of "
                    f"`{self._parameter_name()}` has {num_classes}."
                )
        if not self.validate_args:
            return []
        assertions = []
        if self._logits is not None:
            if is_init != tensor_util.is_ref(self._logits):
                logits = tf.convert_to_tensor(self._logits)
                assertions.append(
                    _assert_all(
                        tf.math.is_finite(logits),
                        "Argument `logits` must be finite (got inf or NaN).",
                    )
                )
        elif is_init != tensor_util.is_ref(self._probs):
            probs = tf.convert_to_tensor(self._probs)
            assertions += [
                _assert_all(
                    tf.math.is_finite(probs), "Argument `probs` must be finite (got inf or NaN)."
                ),
                # NaN entries are reported by the check above only.
                _assert_all(
                    tf.logical_not(probs <= 0),
                    "Argument `probs` must be positive (got an entry <= 0).",
                ),
                _assert_sums_to_one(probs, "Argument `probs` must sum to 1 along the last axis."),
            ]
        return assertions

    def _sample_control_dependencies(self, x):
        x = self._point(x)
        self._check_static_event_size(x)
        if not self.validate_args:
            return []
        num_classes = self._event_shape_tensor()[0]
        return [
            tf.debugging.assert_equal(
                tf.shape(x)[-1],
                tf.cast(num_classes, tf.int32),
                message=(
                    f"{_POINT}: the last axis of `value` must have one entry per class, as "
                    f"many as the last axis of `{self._parameter_name()}`."
                ),
            ),
            _assert_all(
                tf.math.is_finite(x),
                f"{_POINT}: `value` must lie on the simplex (found a NaN or infinite entry).",
            ),
            # NaN entries are reported by the check above only.
            _assert_all(
                tf.logical_not(x < 0),
                f"{_POINT}: `value` must lie on the simplex (found a negative entry).",
            ),
            _assert_sums_to_one(
                x, f"{_POINT}: `value` must lie on the simplex (entries must sum to 1)."
            ),
        ]

    def _check_static_event_size(self, x):
        """Raises ValueError if ``x`` has no last axis of the event size (shapes known)."""
        if x.shape.rank == 0:
            raise ValueError(
                f"{_POINT}: `value` must have a last axis with one entry per class; received "
                "a scalar."
            )
        num_classes = _static_size_of_last_axis(self._parameter())
        size = _static_size_of_last_axis(x)
        if num_classes is not None and size is not None and size != num_classes:
            raise ValueError(
                f"{_POINT}: the last axis of `value` must have one entry per class "
                f"({num_classes}, the last axis of `{self._parameter_name()}`); received "
                f"`value` of shape {x.shape}."
            )


def _static_size_of_last_axis(x):
    """The size of the last axis of ``x`` if known while tracing, else None."""
    if x.shape.rank is None or x.shape.rank == 0:
        return None
    return tf.compat.dimension_value(x.shape[-1])


def _parameter_dtype(dtype, name):
    """The distribution's dtype from its parameter's: floating kept, integer -> float32."""
    dtype = tf.as_dtype(dtype)
    if dtype.is_floating:
        return dtype
    if dtype.is_integer or dtype.is_bool:
        return _DTYPE_OF_INTEGER_PARAMETERS
    raise TypeError(
        f"ContinuousCategorical: `{name}` must be a real (floating or integer) tensor; "
        f"received dtype {dtype.name}."
    )


def _parameter_tensor(value, dtype, name):
    if value is None:
        return None
    if tf.is_tensor(value) or hasattr(value, "dtype"):
        value_dtype = tf.as_dtype(value.dtype)
        if value_dtype.is_integer or value_dtype.is_bool:
            return tf.cast(value, dtype, name=name)
    return tensor_util.convert_nonref_to_tensor(value, dtype=dtype, name=name)


def _assert_all(condition, message):
    return tf.debugging.assert_equal(tf.reduce_all(condition), True, message=message)


def _assert_sums_to_one(x, message):
    """Asserts |sum(x) - 1| <= tolerance along the last axis; rows summing to NaN pass."""
    x = tf.convert_to_tensor(x)
    storage_epsilon = _EPSILON[x.dtype.base_dtype]
    if x.dtype in _HALF_PRECISION:
        x = tf.cast(x, tf.float32)
    num_classes = tf.cast(tf.shape(x)[-1], x.dtype)
    tolerance = (
        _SIMPLEX_TOLERANCE_ULPS * num_classes * _EPSILON[x.dtype.base_dtype]
        + _STORAGE_TOLERANCE_ULPS * storage_epsilon
    )
    error = tf.abs(tf.reduce_sum(x, axis=-1) - 1.0)
    return _assert_all(tf.logical_not(error > tolerance), message)


@tfd.RegisterKL(ContinuousCategorical, ContinuousCategorical)
def _kl_continuous_categorical(a, b, name=None):
    """KL(CC(eta_a) || CC(eta_b)); shift-invariant in each argument.

    For two members of one exponential family with log-partition ``A = log C^{-1}`` and mean
    ``grad A``, the KL divergence is the Bregman divergence of ``A``:

        (eta_a - eta_b) . E_a[y] - log C^{-1}(eta_a) + log C^{-1}(eta_b).
    """
    with tf.name_scope(name or "kl_continuous_categorical"):
        eta_a = a._compute_natural_parameters()
        eta_b = tf.cast(b._compute_natural_parameters(), eta_a.dtype)
        return tf.cast(ops.cc_kl_divergence(eta_a, eta_b), a.dtype)
