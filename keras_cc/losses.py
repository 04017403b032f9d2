"""Keras 3 losses: CC label smoothing, the continuous-categorical likelihood, TRI and JSD.

Thin Keras 3 classes over per-example functions, which take their inputs through
:mod:`keras_cc._inputs` (checks, conversions, targets); the classes follow
``keras.losses.CategoricalCrossentropy``'s conventions (``from_logits=False``, ``axis``,
``reduction``, ``name``, ``dtype``) and run on Keras 3's TensorFlow, JAX and PyTorch
backends (through ``keras.ops``; on TensorFlow the normalizer is :mod:`keras_cc.ops`').

Equation numbers: "CC paper" is Gordon-Rodriguez et al., "Uses and Abuses of the
Cross-Entropy Loss"; "correlations paper" is Connor et al., Entropy 26 (2024) 491.

Conventions shared by every loss and function here:

* Predictions are probabilities by default (the output of a softmax layer). As in Keras'
  cross-entropy they are renormalized to sum to 1 and clipped to
  ``[epsilon, 1 - epsilon]`` (``epsilon = keras.config.epsilon()``) before logs are
  taken, so ``log C⁻¹(log f)`` and every gradient stay finite. When the probabilities
  come straight out of a softmax in a compiled model, the logits behind it are used
  instead, again exactly as Keras' cross-entropy does. ``from_logits=True`` takes logits.
* float16 / bfloat16 inputs are computed in float32 (mixed precision); the per-example
  values come back in float32 (float64 inputs stay float64). Integer inputs are cast to
  float32 (never truncated).
* Shapes of ``y_true`` and ``y_pred`` must agree (a ``ValueError`` names both), and they
  need a class axis: rank >= 1, with ``axis`` inside it (a ``ValueError`` names the rank
  requirement; a single example is a vector of K entries).
* NaN propagates as in Keras' own losses: a NaN in ``y_true`` or ``y_pred`` gives NaN for
  that example (``keras.callbacks.TerminateOnNaN`` stops training on it). Losses with a
  ``validate`` argument assert instead that the targets lie on the simplex, and report NaN
  or infinite entries as such (see :func:`validate_simplex`).
* CC losses are negative log-densities on the simplex, not negative log-probabilities: a
  density can exceed 1, so they can be negative (CC paper eq. 2).
"""

import keras

from keras_cc import _inputs as inputs
from keras_cc._inputs import SIMPLEX_ATOL
from keras_cc.core import divergences as core_divergences
from keras_cc.core.log_normalizer import LogNormalizer
from keras_cc.core.namespace import keras_namespace
from keras_cc.ops import _xla
from keras_cc.ops._xla import plain_python as _plain_python
from keras_cc.ops.continuous_categorical import NORMALIZER as TENSORFLOW_NORMALIZER
from keras_cc.ops.namespace import TENSORFLOW

__all__ = [
    "CCLabelSmoothing",
    "SparseCCLabelSmoothing",
    "ContinuousCategoricalLoss",
    "TriangularDivergence",
    "JensenShannonDivergence",
    "cc_label_smoothing",
    "sparse_cc_label_smoothing",
    "continuous_categorical_nll",
    "triangular_divergence",
    "jensen_shannon_divergence",
    "validate_simplex",
]

_PACKAGE = "keras_cc"


@_plain_python
def validate_simplex(y_true, axis=-1, atol=SIMPLEX_ATOL, name="y_true"):
    """Asserts that ``y_true`` lies on the probability simplex along ``axis``.

    Raises ``tf.errors.InvalidArgumentError`` on TensorFlow (``ValueError`` on JAX and
    PyTorch) with a message naming ``name``, what is wrong and the first offending rows:
    NaN or infinite entries (reported as such, never as negative), negative entries, or rows
    that do not sum to 1 within ``atol``. ``y_true`` needs a class axis
    (``ValueError`` otherwise). Inside a JAX trace (``jax.jit``, a compiled Keras step on
    JAX) the values are checked when the step runs, by a host callback whose ``ValueError``
    stops it (JAX reports it as a ``JaxRuntimeError`` carrying the message). Inside an
    XLA-compiled TensorFlow function (``jit_compile=True``), which drops assertions, this
    raises a ``ValueError`` at trace time instead: validate the data beforehand (eagerly)
    or compile with ``jit_compile=False``. Returns ``y_true`` (float, class axis last), a tensor of
    the active Keras backend.

    Examples:
        >>> import keras_cc
        >>> y = keras_cc.losses.validate_simplex([[0.2, 0.8], [1.0, 0.0]])
        >>> try:
        ...     keras_cc.losses.validate_simplex([[0.5, 0.6]])
        ... except Exception as error:
        ...     print(error)
        `validate_simplex`: `y_true` must lie on the simplex: its rows must sum to 1 (atol=0.001);
        first offending rows: [[0.5 0.6]]
    """
    return inputs.validated(y_true, axis, atol, name, "validate_simplex")


def _namespace():
    """The array namespace of the active backend (TensorFlow's own on TensorFlow)."""
    if inputs.on_tensorflow():
        return TENSORFLOW
    return keras_namespace(keras.backend.backend())


# One log-normalizer per Keras backend other than TensorFlow, built on first use (a
# dictionary: TorchDynamo warns on functools.cache).
_NORMALIZERS = {}


def _normalizer():
    """The log-normalizer of the active backend: TensorFlow's own, with the
    divided-difference table (:class:`keras_cc.ops.continuous_categorical.TensorFlowLogNormalizer`);
    elsewhere the core's through ``keras.ops``, its forward pass compiled once where the
    backend compiles (JAX; there without the top-node form, as inside TensorFlow's XLA
    clusters: every method is compiled into every caller, and that form's kernels were a
    third of the whole)."""
    if inputs.on_tensorflow():
        return TENSORFLOW_NORMALIZER
    backend = keras.backend.backend()
    if backend not in _NORMALIZERS:
        _NORMALIZERS[backend] = LogNormalizer(
            keras_namespace(backend), top_nodes_form=backend != "jax", jit=True
        )
    return _NORMALIZERS[backend]


def _cc_negative_log_density(y, w, shift):
    """``log C⁻¹(η) - y . η`` (CC paper eq. 2) per example, for ``η = w + shift`` of
    :func:`inputs.natural_parameters` (in float64, rounded once: ``core.log_normalizer``)."""
    batch_shape = keras.ops.shape(y)[:-1]
    num_classes = keras.ops.shape(y)[-1]
    rows = [keras.ops.reshape(x, (-1, num_classes)) for x in (y, w)]
    value = _normalizer().negative_log_density(rows[0], rows[1], keras.ops.reshape(shift, (-1,)))
    return keras.ops.reshape(value, batch_shape)


# --------------------------------------------------------------- functional forms


@keras.saving.register_keras_serializable(package=_PACKAGE)
@_plain_python
def continuous_categorical_nll(
    y_true, y_pred, from_logits=False, temperature=1.0, validate=False, axis=-1
):
    """Negative log-likelihood of soft targets under a continuous-categorical (CC).

    CC paper eq. 2: with natural parameter ``η = log f / t`` (``f`` the predicted
    probabilities, ``t`` the temperature; ``η = z / t`` for logits ``z``),
    ``-log p(y; η) = -Σ y_k η_k + log C⁻¹(η)`` where ``log C⁻¹`` is
    :func:`keras_cc.ops.cc_log_normalizer`. For ``t = 1`` this is
    ``CE(y, f) + log C⁻¹(log f)`` (CC paper eq. 7). Returns one value per example. It is a
    negative log-density, so it can be negative (a density on the simplex can exceed 1).

    Args:
        y_true: targets on the simplex, same shape as ``y_pred``.
        y_pred: probabilities (default) or logits (``from_logits=True``).
        from_logits: whether ``y_pred`` holds logits.
        temperature: ``t > 0`` dividing the natural parameter (distillation).
        validate: assert that ``y_true`` lies on the simplex (see
            :func:`validate_simplex`; not inside TensorFlow's ``jit_compile=True``).
            Without it, targets off the simplex give a number without meaning, and NaN
            targets give NaN.
        axis: the class axis.

    Returns:
        The per-example values, the shape of ``y_pred`` without its class axis, float32
        (float64 for float64 predictions).

    Examples:
        >>> import numpy as np, keras_cc
        >>> teacher = np.array([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]])
        >>> student_logits = np.array([[0.5, 2.0, -1.0], [1.0, 0.0, 0.0]])
        >>> nll = keras_cc.losses.continuous_categorical_nll(
        ...     teacher, student_logits, from_logits=True
        ... )
        >>> print(np.round(np.asarray(nll), 4))
        [-1.409  -0.8309]
    """
    fn_name = "continuous_categorical_nll"
    axis = inputs.check_axis(axis)
    temperature = inputs.check_temperature(temperature)
    inputs.check_same_shape(y_true, y_pred, fn_name)
    w, shift = inputs.natural_parameters(y_pred, from_logits, axis, fn_name, temperature)
    y = inputs.targets_in_order(y_true, inputs.dtype_of(w), axis, validate, fn_name)
    return _cc_negative_log_density(y, w, shift)


_SPARSE_HINT = (
    " For integer class labels (one per example) use `keras_cc.SparseCCLabelSmoothing` "
    "or `keras_cc.losses.sparse_cc_label_smoothing`."
)


@keras.saving.register_keras_serializable(package=_PACKAGE)
@_plain_python
def cc_label_smoothing(y_true, y_pred, from_logits=False, label_smoothing=0.1, axis=-1):
    """CC label smoothing (CC paper eq. 7): the CC likelihood of label-smoothed targets.

    ``CE(y_LS, f) + log C⁻¹(log f)`` with ``y_LS = (1 - ε) y + ε/K`` (eq. 5), i.e. the
    label-smoothed cross-entropy plus the CC log-normalizer of the predicted
    log-probabilities. One-hot ``y_true``; one value per example (possibly negative: it is
    a negative log-density).

    Examples:
        >>> import numpy as np, keras_cc
        >>> y_true = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
        >>> logits = np.array([[0.5, 2.0, -1.0], [1.0, 0.0, 0.0]])
        >>> per_example = keras_cc.losses.cc_label_smoothing(y_true, logits, from_logits=True)
        >>> print(np.round(np.asarray(per_example), 4))
        [-1.859  -1.2642]
    """
    fn_name = "cc_label_smoothing"
    axis = inputs.check_axis(axis)
    label_smoothing = inputs.check_label_smoothing(label_smoothing)
    inputs.check_same_shape(y_true, y_pred, fn_name, _SPARSE_HINT)
    # One-hot targets, smoothed: on the simplex, so the shift of the logits cancels.
    w, shift = inputs.natural_parameters(y_pred, from_logits, axis, fn_name, with_shift=False)
    y = inputs.smooth(inputs.targets(y_true, inputs.dtype_of(w), axis, fn_name), label_smoothing)
    return _cc_negative_log_density(y, w, shift)


@keras.saving.register_keras_serializable(package=_PACKAGE)
@_plain_python
def sparse_cc_label_smoothing(
    y_true, y_pred, from_logits=False, label_smoothing=0.1, axis=-1, ignore_class=None
):
    """:func:`cc_label_smoothing` with integer class labels ``y_true``.

    ``y_true`` has the shape of ``y_pred`` without the class axis (a trailing axis of
    size 1 is accepted). Labels outside ``[0, K)`` raise ``InvalidArgumentError`` on
    TensorFlow and ``ValueError`` on JAX and PyTorch (under XLA and inside a JAX trace
    such rows give NaN, as Keras' sparse cross-entropy does on GPUs).

    ``ignore_class`` (an int, as in ``keras.losses.SparseCategoricalCrossentropy``): rows
    labelled with it give 0 and are masked, so that a Keras loss reduction averages over
    the other rows only (e.g. unlabelled pixels of segmentation maps).
    """
    fn_name = "sparse_cc_label_smoothing"
    axis = inputs.check_axis(axis)
    label_smoothing = inputs.check_label_smoothing(label_smoothing)
    ignore_class = inputs.check_ignore_class(ignore_class)
    y_pred = inputs.tensor(y_pred)
    y_true = inputs.tensor(y_true)
    axis = inputs.class_axis(y_pred, axis, fn_name, "y_pred")
    rank = inputs.rank_of(y_pred)
    if inputs.rank_of(y_true) == rank and y_true.shape[axis] == 1:
        y_true = keras.ops.squeeze(y_true, axis=axis)
    expected = tuple(y_pred.shape[:axis]) + tuple(y_pred.shape[axis + 1 :])
    received = tuple(y_true.shape)
    if not inputs.compatible(received, expected):
        raise ValueError(
            f"`{fn_name}`: `y_true` must hold one integer label per "
            f"example, shape {expected}; received y_true.shape={received}, "
            f"y_pred.shape={tuple(y_pred.shape)}."
        )
    w, shift = inputs.natural_parameters(y_pred, from_logits, axis, fn_name, with_shift=False)
    num_classes = w.shape[-1]
    labels = keras.ops.cast(y_true, "int32")
    if ignore_class is not None:
        kept = keras.ops.not_equal(labels, ignore_class)
        labels = keras.ops.where(kept, labels, 0)
    valid = keras.ops.logical_and(labels >= 0, labels < keras.ops.shape(w)[-1])
    labels = _checked_labels(labels, valid, num_classes, fn_name)
    y = inputs.smooth(
        keras.ops.one_hot(labels, num_classes, dtype=inputs.dtype_of(w)), label_smoothing
    )
    loss = keras.ops.where(valid, _cc_negative_log_density(y, w, shift), float("nan"))
    if ignore_class is None:
        return loss
    loss = keras.ops.where(kept, loss, 0.0)
    # The mask Keras' own sparse cross-entropy sets for ignore_class, which its loss
    # reductions read; Keras 3 exports no public setter for it.
    from keras.src.backend.common.masking import set_keras_mask

    set_keras_mask(loss, kept)
    return loss


def _checked_labels(labels, valid, num_classes, fn_name):
    """``labels`` after an assertion that all are ``valid``, where values can be checked
    (not under XLA, not inside a JAX trace: there invalid rows give NaN)."""
    message = f"`{fn_name}`: `y_true` labels must lie in [0, num_classes)"
    if _xla.in_xla_context() or inputs.is_traced(labels):
        return labels
    if inputs.on_tensorflow():
        import tensorflow as tf

        if not tf.executing_eagerly():
            check = tf.debugging.Assert(tf.reduce_all(valid), [message])
            with tf.control_dependencies([check]):
                return tf.identity(labels)
    if not keras.ops.convert_to_numpy(keras.ops.all(valid)):
        bad = keras.ops.convert_to_numpy(labels)[~keras.ops.convert_to_numpy(valid)]
        message = f"{message}; received {bad[:8].tolist()} with num_classes={num_classes}."
        if inputs.on_tensorflow():
            raise tf.errors.InvalidArgumentError(None, None, message)
        raise ValueError(message)
    return labels


@keras.saving.register_keras_serializable(package=_PACKAGE)
@_plain_python
def triangular_divergence(y_true, y_pred, from_logits=False, axis=-1, validate=False):
    """Triangular divergence ``TRI(y, f)`` (correlations paper eq. 5), one value per example.

    ``(1/2) Σ (y_i - f_i)² / (y_i + f_i)``: in ``[0, 1]`` for targets on the simplex. The
    predictions are always on the simplex; targets are not renormalized, so non-negative
    targets summing to ``s`` give values in ``[0, (s + 1)/2]`` and negative entries give
    values without meaning. ``validate=True`` asserts that ``y_true`` lies on the simplex
    (:func:`validate_simplex`; not inside TensorFlow's XLA, ``jit_compile=True``).
    """
    fn_name = "triangular_divergence"
    axis = inputs.check_axis(axis)
    inputs.check_same_shape(y_true, y_pred, fn_name)
    f = inputs.probabilities(y_pred, from_logits, axis, fn_name)
    y = inputs.targets_in_order(y_true, inputs.dtype_of(f), axis, validate, fn_name)
    return core_divergences.triangular_divergence(_namespace(), y, f)


@keras.saving.register_keras_serializable(package=_PACKAGE)
@_plain_python
def jensen_shannon_divergence(y_true, y_pred, from_logits=False, axis=-1, validate=False):
    """Jensen–Shannon divergence ``JSD(y, f)`` (correlations paper eq. 4, base 2), per example.

    In ``[0, 1]`` for targets on the simplex. The predictions are always on the simplex;
    targets are not renormalized, so non-negative targets summing to ``s`` give values in
    ``[0, (s + 1)/2]`` and negative entries give values without meaning. ``validate=True``
    asserts that ``y_true`` lies on the simplex (:func:`validate_simplex`; not inside
    TensorFlow's XLA).
    """
    fn_name = "jensen_shannon_divergence"
    axis = inputs.check_axis(axis)
    inputs.check_same_shape(y_true, y_pred, fn_name)
    f = inputs.probabilities(y_pred, from_logits, axis, fn_name)
    y = inputs.targets_in_order(y_true, inputs.dtype_of(f), axis, validate, fn_name)
    return core_divergences.jensen_shannon_divergence(_namespace(), y, f)


# -------------------------------------------------------------------------- classes


class _KerasCCLoss(keras.losses.Loss):
    """Shared plumbing: a per-example function, backend check, arguments kept and configured.

    ``fn_kwargs`` are the constructor's own arguments, passed on to ``fn``: each is kept
    as a public attribute of the same name and returned by ``get_config`` (with ``name``,
    ``reduction`` and ``dtype``). A subclass whose signature is shared with others
    (``_LabelSmoothingLoss``, ``_DivergenceLoss``) names its function and default name in
    ``_per_example_fn`` and ``_default_name``.
    """

    _per_example_fn = None
    _default_name = None

    def __init__(self, fn, fn_kwargs, reduction, name, dtype, **kwargs):
        fn_kwargs = {**fn_kwargs, "axis": inputs.check_axis(fn_kwargs["axis"])}
        if kwargs:
            raise TypeError(
                f"{type(self).__name__} got unexpected keyword arguments: {sorted(kwargs)}."
            )
        name = self._default_name if name is None else name
        super().__init__(reduction=reduction, name=name, dtype=dtype)
        self.fn = fn
        self._fn_kwargs = dict(fn_kwargs)
        for argument, value in self._fn_kwargs.items():
            setattr(self, argument, value)
        self._dtype_argument = dtype

    def call(self, y_true, y_pred):
        # Shapes are checked by the function itself; no silent squeeze/expand.
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self):
        config = keras.losses.Loss.get_config(self)
        dtype = self._dtype_argument
        if dtype is not None and not isinstance(dtype, str):
            dtype = keras.dtype_policies.serialize(dtype)
        config["dtype"] = dtype
        config.update(self._fn_kwargs)
        return config


class _LabelSmoothingLoss(_KerasCCLoss):
    """CC label smoothing of hard labels; the subclass picks the labels' form (eq. 7).

    ``name=None`` means the subclass's ``_default_name``; a subclass with arguments of its
    own passes them, checked, as ``more_fn_kwargs``.
    """

    def __init__(
        self,
        label_smoothing=0.1,
        from_logits=False,
        axis=-1,
        reduction="sum_over_batch_size",
        name=None,
        dtype=None,
        more_fn_kwargs=None,
        **kwargs,
    ):
        super().__init__(
            type(self)._per_example_fn,
            {
                "label_smoothing": inputs.check_label_smoothing(label_smoothing),
                "from_logits": from_logits,
                "axis": axis,
                **(more_fn_kwargs or {}),
            },
            reduction,
            name,
            dtype,
            **kwargs,
        )


class _DivergenceLoss(_KerasCCLoss):
    """A divergence between target and predicted probabilities; the subclass picks which.

    ``name=None`` means the subclass's ``_default_name``.
    """

    def __init__(
        self,
        from_logits=False,
        axis=-1,
        reduction="sum_over_batch_size",
        name=None,
        dtype=None,
        validate=False,
        **kwargs,
    ):
        super().__init__(
            type(self)._per_example_fn,
            {"from_logits": from_logits, "axis": axis, "validate": bool(validate)},
            reduction,
            name,
            dtype,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package=_PACKAGE)
class CCLabelSmoothing(_LabelSmoothingLoss):
    """Continuous-categorical label smoothing (CC-LS, CC paper eq. 7).

    The CC negative log-likelihood of label-smoothed one-hot targets:
    ``CE(y_LS, f) + log C⁻¹(log f)`` with ``y_LS = (1 - ε) y + ε/K``. A drop-in
    replacement for ``keras.losses.CategoricalCrossentropy(label_smoothing=ε)`` on every
    Keras 3 backend. Half-precision predictions are computed in float32.
    Unlike the cross-entropy it can be negative: it is a negative log-density, and a
    density on the simplex can exceed 1.

    Args:
        label_smoothing: ``ε`` in ``[0, 1)`` (default 0.1).
        from_logits: whether ``y_pred`` holds logits (default: probabilities).
        axis: the class axis (default -1).
        reduction, dtype: as in ``keras.losses.Loss``.
        name: default ``"cc_label_smoothing"``.

    Examples:
        >>> import keras, numpy as np, keras_cc
        >>> y_true = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])
        >>> logits = np.array([[0.5, 2.0, -1.0], [1.0, 0.0, 0.0]])
        >>> loss = keras_cc.CCLabelSmoothing(0.1, from_logits=True)
        >>> round(float(loss(y_true, logits)), 4)  # the mean over the batch
        -1.5616
        >>> model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(3)])
        >>> model.compile("adam", loss=keras_cc.CCLabelSmoothing(0.1, from_logits=True))
    """

    _per_example_fn = staticmethod(cc_label_smoothing)
    _default_name = "cc_label_smoothing"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class SparseCCLabelSmoothing(_LabelSmoothingLoss):
    """:class:`CCLabelSmoothing` for integer class labels (like ``SparseCategoricalCrossentropy``).

    Same arguments as :class:`CCLabelSmoothing`, and ``ignore_class`` as in
    ``keras.losses.SparseCategoricalCrossentropy`` (rows with that label count for
    nothing, and the reduction averages over the others); ``name`` defaults to
    ``"sparse_cc_label_smoothing"``. Labels outside ``[0, K)`` raise
    ``InvalidArgumentError`` on TensorFlow and ``ValueError`` on JAX and PyTorch (NaN
    under XLA and inside a JAX trace).

    Examples:
        >>> import numpy as np, keras_cc
        >>> logits = np.array([[0.5, 2.0, -1.0], [1.0, 0.0, 0.0]])
        >>> loss = keras_cc.SparseCCLabelSmoothing(0.1, from_logits=True)
        >>> round(float(loss(np.array([1, 0]), logits)), 4)  # as CCLabelSmoothing's one-hot example
        -1.5616
        >>> masked = keras_cc.SparseCCLabelSmoothing(0.1, from_logits=True, ignore_class=-1)
        >>> round(float(masked(np.array([1, -1]), logits)), 4)  # the first row alone
        -1.859
    """

    _per_example_fn = staticmethod(sparse_cc_label_smoothing)
    _default_name = "sparse_cc_label_smoothing"

    def __init__(
        self,
        label_smoothing=0.1,
        from_logits=False,
        axis=-1,
        reduction="sum_over_batch_size",
        name=None,
        dtype=None,
        ignore_class=None,
        **kwargs,
    ):
        super().__init__(
            label_smoothing,
            from_logits,
            axis,
            reduction,
            name,
            dtype,
            more_fn_kwargs={"ignore_class": inputs.check_ignore_class(ignore_class)},
            **kwargs,
        )


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ContinuousCategoricalLoss(_KerasCCLoss):
    """CC negative log-likelihood of soft targets on the simplex (CC paper eqs. 2, 7).

    For distillation or actor-mimic targets ``y`` (teacher probabilities): the loss is
    ``-log p(y; η)`` with ``η = log f / temperature`` (``z / temperature`` for logits),
    equal to ``mean(-keras_cc.ContinuousCategorical(logits=η).log_prob(y))``. Soften the
    teacher's targets yourself (e.g. ``softmax(teacher_logits / t)``); ``temperature``
    only scales the student's natural parameter. A negative log-density: it can be
    negative, since a density on the simplex can exceed 1.

    Args:
        from_logits: whether ``y_pred`` holds logits (default: probabilities).
        temperature: ``t > 0``.
        validate: assert that targets lie on the simplex (finite, entries >= 0, rows
            summing to 1 within ``keras_cc.losses.SIMPLEX_ATOL``); raises
            ``InvalidArgumentError`` saying which. Not available inside XLA
            (``jit_compile=True``), where it raises ``ValueError``. Without it, NaN targets
            give NaN, as in Keras.
        axis, reduction, name, dtype: as in ``keras.losses.CategoricalCrossentropy``.

    Examples:
        >>> import numpy as np, keras_cc
        >>> teacher = np.array([[0.2, 0.7, 0.1], [0.5, 0.25, 0.25]])  # soft targets
        >>> student_logits = np.array([[0.5, 2.0, -1.0], [1.0, 0.0, 0.0]])
        >>> loss = keras_cc.ContinuousCategoricalLoss(from_logits=True)
        >>> round(float(loss(teacher, student_logits)), 4)
        -1.12
    """

    def __init__(
        self,
        from_logits=False,
        temperature=1.0,
        validate=False,
        axis=-1,
        reduction="sum_over_batch_size",
        name="continuous_categorical_loss",
        dtype=None,
        **kwargs,
    ):
        super().__init__(
            continuous_categorical_nll,
            {
                "from_logits": from_logits,
                "temperature": inputs.check_temperature(temperature),
                "validate": bool(validate),
                "axis": axis,
            },
            reduction,
            name,
            dtype,
            **kwargs,
        )


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TriangularDivergence(_DivergenceLoss):
    """Triangular divergence loss (correlations paper eq. 5), in ``[0, 1]`` on the simplex.

    ``(1/2) Σ (y_i - f_i)² / (y_i + f_i)``: symmetric, the square of a metric, tightly
    correlated with cross-entropy at high temperature and cheaper (no logarithm).
    Targets are not renormalized: non-negative targets summing to ``s`` give values in
    ``[0, (s + 1)/2]``.

    Args:
        from_logits: whether ``y_pred`` holds logits (default: probabilities).
        axis, reduction, dtype: as in ``keras.losses.CategoricalCrossentropy``.
        name: default ``"triangular_divergence"``.
        validate: assert that targets lie on the simplex, as in
            :class:`ContinuousCategoricalLoss` (not inside TensorFlow's XLA).

    Examples:
        >>> import keras_cc
        >>> loss = keras_cc.TriangularDivergence()
        >>> round(float(loss([[0.0, 1.0]], [[0.2, 0.8]])), 4)  # (0.2**2 / 0.2 + 0.2**2 / 1.8) / 2
        0.1111
    """

    _per_example_fn = staticmethod(triangular_divergence)
    _default_name = "triangular_divergence"


@keras.saving.register_keras_serializable(package=_PACKAGE)
class JensenShannonDivergence(_DivergenceLoss):
    """Jensen–Shannon loss (correlations paper eq. 4, base 2); in ``[0, 1]`` on the simplex.

    Symmetric and bounded; computed without the cancellation of eq. 4 near ``y = f``.
    Targets are not renormalized: non-negative targets summing to ``s`` give values in
    ``[0, (s + 1)/2]``. Same arguments as
    :class:`TriangularDivergence` (``validate`` included); ``name`` defaults to
    ``"jensen_shannon_divergence"``.

    Examples:
        >>> import keras_cc
        >>> loss = keras_cc.JensenShannonDivergence()
        >>> round(float(loss([[0.0, 1.0]], [[0.2, 0.8]])), 4)
        0.108
    """

    _per_example_fn = staticmethod(jensen_shannon_divergence)
    _default_name = "jensen_shannon_divergence"
