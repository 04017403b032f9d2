"""Keras 3 losses: the CC paper's identities, conventions, bad input, compile/fit/save/load."""

import math
import re

import keras
import loss_harness
import numpy as np
import pytest
import scipy.integrate
import scipy.special
import tensorflow as tf

import keras_cc  # noqa: I001  (configures TensorFlow's Keras routing first)
from keras_cc import losses, ops

K = 6
LOSS_CLASSES = [
    keras_cc.CCLabelSmoothing,
    keras_cc.SparseCCLabelSmoothing,
    keras_cc.ContinuousCategoricalLoss,
    keras_cc.TriangularDivergence,
    keras_cc.JensenShannonDivergence,
]


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def _data(rng, n=16, k=K, scale=2.0):
    logits = rng.normal(scale=scale, size=(n, k)).astype("float32")
    labels = rng.integers(0, k, size=n)
    return logits, np.eye(k, dtype="float32")[labels], labels


def _probs(logits):
    return scipy.special.softmax(logits.astype("float64"), axis=-1).astype("float32")


def _keras_clipped_log(f):
    f = f / f.sum(-1, keepdims=True)
    eps = keras.config.epsilon()
    return np.log(np.clip(f, eps, 1 - eps))


# --------------------------------------------------------------- the paper's identities


@pytest.mark.parametrize("label_smoothing", [0.0, 0.1, 0.4])
def test_cc_label_smoothing_is_smoothed_ce_plus_log_normalizer_eq7(rng, label_smoothing):
    logits, one_hot, _ = _data(rng)
    f = _probs(logits)
    f[0] = np.eye(K, dtype="float32")[0]  # a saturated prediction is clipped, not -inf
    ce = keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing, reduction=None)
    expected = ce(one_hot, f).numpy() + ops.cc_log_normalizer(_keras_clipped_log(f)).numpy()
    got = keras_cc.CCLabelSmoothing(label_smoothing, reduction=None)(one_hot, f).numpy()
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    mean = keras_cc.CCLabelSmoothing(label_smoothing)(one_hot, f).numpy()
    assert mean == pytest.approx(expected.mean(), rel=1e-5)


def test_cc_label_smoothing_has_the_cc_density_normalizer(rng):
    """Independent of keras_cc.ops: log C^{-1} by numerical integration over the simplex."""
    logits = np.array([[0.3, -1.2, 2.0]])
    one_hot = np.array([[0.0, 0.0, 1.0]])
    eps = 0.2
    y = one_hot * (1 - eps) + eps / 3
    log_f = logits - scipy.special.logsumexp(logits, axis=-1, keepdims=True)
    integral, _ = scipy.integrate.dblquad(
        lambda y2, y1: np.exp(log_f[0] @ np.array([y1, y2, 1 - y1 - y2])),
        0,
        1,
        0,
        lambda y1: 1 - y1,
        epsabs=1e-13,
        epsrel=1e-12,
    )
    expected = -(y * log_f).sum() + math.log(integral)
    loss = keras_cc.CCLabelSmoothing(eps, from_logits=True, dtype="float64")
    assert loss(one_hot, logits).numpy() == pytest.approx(expected, rel=1e-9)


def test_gradient_wrt_logits_is_cc_mean_minus_smoothed_target(rng):
    logits, one_hot, _ = _data(rng, n=5)
    z = tf.Variable(logits.astype("float64"))
    loss = keras_cc.CCLabelSmoothing(0.1, from_logits=True, reduction="sum", dtype="float64")
    with tf.GradientTape() as tape:
        value = loss(one_hot, z)
    y_ls = one_hot.astype("float64") * 0.9 + 0.1 / K
    np.testing.assert_allclose(
        tape.gradient(value, z), ops.cc_mean(z).numpy() - y_ls, rtol=1e-8, atol=1e-10
    )


def test_logits_and_probabilities_agree(rng):
    logits, one_hot, labels = _data(rng)
    f = _probs(logits)
    for cls in (keras_cc.CCLabelSmoothing, keras_cc.SparseCCLabelSmoothing):
        target = labels if cls is keras_cc.SparseCCLabelSmoothing else one_hot
        a = cls(0.2, reduction=None)(target, f).numpy()
        b = cls(0.2, from_logits=True, reduction=None)(target, logits).numpy()
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)
    for cls in (
        keras_cc.ContinuousCategoricalLoss,
        keras_cc.TriangularDivergence,
        keras_cc.JensenShannonDivergence,
    ):
        soft = _probs(rng.normal(size=f.shape).astype("float32"))
        a = cls(reduction=None)(soft, f).numpy()
        b = cls(from_logits=True, reduction=None)(soft, logits).numpy()
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_sparse_equals_dense_for_every_label_layout(rng):
    logits, one_hot, labels = _data(rng)
    dense = keras_cc.CCLabelSmoothing(0.1, from_logits=True, reduction=None)(one_hot, logits)
    sparse = keras_cc.SparseCCLabelSmoothing(0.1, from_logits=True, reduction=None)
    for layout in (labels, labels[:, None], labels.astype("float32")):
        np.testing.assert_allclose(sparse(layout, logits), dense, rtol=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 3.0])
def test_continuous_categorical_loss_is_mean_negative_log_prob(rng, temperature):
    logits, _, _ = _data(rng)
    targets = _probs(rng.normal(size=logits.shape).astype("float32"))
    dist = keras_cc.ContinuousCategorical(logits=logits / temperature)
    expected = -tf.reduce_mean(dist.log_prob(targets)).numpy()
    loss = keras_cc.ContinuousCategoricalLoss(from_logits=True, temperature=temperature)
    assert loss(targets, logits).numpy() == pytest.approx(expected, rel=1e-5)
    # probabilities: eta = log f / t
    f = _probs(logits)
    dist = keras_cc.ContinuousCategorical(logits=np.log(f) / temperature)
    expected = -tf.reduce_mean(dist.log_prob(targets)).numpy()
    got = keras_cc.ContinuousCategoricalLoss(temperature=temperature)(targets, f).numpy()
    assert got == pytest.approx(expected, rel=1e-4)


def test_divergence_losses_equal_the_ops(rng):
    logits, _, _ = _data(rng)
    f, soft = _probs(logits), _probs(rng.normal(size=logits.shape).astype("float32"))
    np.testing.assert_allclose(
        keras_cc.TriangularDivergence(reduction=None)(soft, f),
        0.5 * ((soft - f) ** 2 / (soft + f)).sum(-1),
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        keras_cc.JensenShannonDivergence(reduction=None)(soft, f),
        ops.divergences.jensen_shannon_divergence(soft.astype("float64"), f.astype("float64")),
        rtol=1e-4,
    )


# --------------------------------------------------------------------- conventions


def test_axis_reductions_and_sample_weight(rng):
    logits, one_hot, _ = _data(rng, n=12)
    per_example = keras_cc.CCLabelSmoothing(from_logits=True, reduction=None)(one_hot, logits)
    # channels-first layout [batch, classes, time]
    x = np.transpose(logits.reshape(3, 4, K), (0, 2, 1))
    y = np.transpose(one_hot.reshape(3, 4, K), (0, 2, 1))
    axis1 = keras_cc.CCLabelSmoothing(from_logits=True, axis=1, reduction=None)(y, x)
    np.testing.assert_allclose(axis1, per_example.numpy().reshape(3, 4), rtol=1e-6)
    weights = rng.random(12).astype("float32")
    summed = keras_cc.CCLabelSmoothing(from_logits=True, reduction="sum")(
        one_hot, logits, sample_weight=weights
    )
    assert summed.numpy() == pytest.approx((per_example.numpy() * weights).sum(), rel=1e-5)


@pytest.mark.parametrize("reduction", ["sum_over_batch_size", "sum", None])
def test_ignore_class_masks_rows_as_keras_sparse_cross_entropy_does(rng, reduction):
    logits, _, labels = _data(rng, n=12)
    labels = labels.copy()
    labels[[1, 4, 5]] = -1
    kept = labels != -1
    weights = rng.random(12).astype("float32")
    loss = keras_cc.SparseCCLabelSmoothing(
        0.1, from_logits=True, ignore_class=-1, reduction=reduction
    )
    per_example = losses.sparse_cc_label_smoothing(
        np.where(kept, labels, 0), logits, from_logits=True
    ).numpy()
    # Keras' own sparse cross-entropy with the same ignore_class, reduction and weights
    # gives the weights of the kept rows that the CC loss must apply.
    ce = keras.losses.SparseCategoricalCrossentropy(
        from_logits=True, ignore_class=-1, reduction=reduction
    )
    ce_per_example = keras.losses.sparse_categorical_crossentropy(
        np.where(kept, labels, 0), logits, from_logits=True
    ).numpy()
    effective = ce(labels, logits, sample_weight=weights).numpy()
    got = loss(labels, logits, sample_weight=weights).numpy()
    if reduction is None:
        np.testing.assert_array_equal(got[~kept], 0.0)
        np.testing.assert_allclose(got[kept], (per_example * weights)[kept], rtol=1e-5)
        np.testing.assert_allclose(effective[kept], (ce_per_example * weights)[kept], rtol=1e-5)
        return
    scale = effective / (ce_per_example * weights)[kept].sum()  # 1, or 1 / (kept rows)
    assert got == pytest.approx(scale * (per_example * weights)[kept].sum(), rel=1e-5)
    if reduction == "sum_over_batch_size":
        assert scale == pytest.approx(1 / kept.sum(), rel=1e-5)


def test_ignore_class_round_trips_and_refuses_what_is_not_an_int():
    loss = keras_cc.SparseCCLabelSmoothing(0.2, ignore_class=np.int64(255))
    assert loss.ignore_class == 255 and loss.get_config()["ignore_class"] == 255
    again = keras_cc.SparseCCLabelSmoothing.from_config(loss.get_config())
    assert again.get_config() == loss.get_config()
    for bad in (1.5, "0", True):
        with pytest.raises(ValueError, match="`ignore_class` must be an int"):
            keras_cc.SparseCCLabelSmoothing(ignore_class=bad)


def test_class_weight_in_fit_equals_the_sample_weights_it_stands_for(rng):
    x = rng.normal(size=(64, 6)).astype("float32")
    labels = rng.integers(0, 3, size=64)
    class_weight = {0: 1.0, 1: 3.0, 2: 0.5}

    def fitted(**weights):
        keras.utils.set_random_seed(0)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(3)])
        model.compile("sgd", loss=keras_cc.SparseCCLabelSmoothing(0.1, from_logits=True))
        history = model.fit(x, labels, batch_size=16, epochs=2, shuffle=False, verbose=0, **weights)
        return history.history["loss"]

    by_class = fitted(class_weight=class_weight)
    by_sample = fitted(sample_weight=np.array([class_weight[k] for k in labels], "float32"))
    np.testing.assert_allclose(by_class, by_sample, rtol=1e-6)
    assert by_class != fitted()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_is_computed_in_float32(rng, dtype):
    logits, one_hot, _ = _data(rng)
    f = _probs(logits)
    reference = keras_cc.CCLabelSmoothing(reduction=None)(one_hot, f).numpy()
    for loss in (
        keras_cc.CCLabelSmoothing(reduction=None, dtype=dtype),
        keras_cc.CCLabelSmoothing(reduction=None),
    ):
        half = tf.cast(f, dtype)
        got = losses.cc_label_smoothing(one_hot, half)
        assert got.dtype == tf.float32
        np.testing.assert_allclose(got, reference, rtol=0.02, atol=0.02)
        assert np.all(np.isfinite(loss(one_hot, half).numpy().astype("float32")))


# ---------------------------------------------------------------------- bad input


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5, "0.1", True, None])
def test_bad_label_smoothing(value):
    for make in (keras_cc.CCLabelSmoothing, keras_cc.SparseCCLabelSmoothing):
        with pytest.raises(ValueError, match="label_smoothing"):
            make(value)
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.cc_label_smoothing(np.eye(3), np.eye(3), label_smoothing=value)


@pytest.mark.parametrize(
    "epsilon, axis",
    [
        (np.float32(0.25), np.int64(-1)),
        (np.float64(0.25), np.int32(1)),
        (np.array(0.25), -1),
        (tf.constant(0.25, tf.float64), tf.constant(-1)),
    ],
    ids=["numpy-float32", "numpy-float64", "0-d-array", "tensor"],
)
def test_hyperparameters_take_numpy_scalars_and_concrete_tensors(rng, epsilon, axis):
    logits, one_hot, labels = _data(rng)
    reference = keras_cc.CCLabelSmoothing(0.25, from_logits=True)(one_hot, logits)
    loss = keras_cc.CCLabelSmoothing(epsilon, from_logits=True, axis=axis)
    config = loss.get_config()
    assert type(config["label_smoothing"]) is float and type(config["axis"]) is int
    np.testing.assert_allclose(loss(one_hot, logits), reference, rtol=1e-6)
    sparse = keras_cc.SparseCCLabelSmoothing(epsilon, from_logits=True, ignore_class=np.int8(-1))
    np.testing.assert_allclose(sparse(labels, logits), reference, rtol=1e-6)
    nll = keras_cc.ContinuousCategoricalLoss(from_logits=True, temperature=np.float32(2.0))
    assert nll.get_config()["temperature"] == 2.0


def test_a_symbolic_hyperparameter_is_refused_with_a_clear_message():
    @tf.function
    def build(epsilon):
        return keras_cc.CCLabelSmoothing(epsilon)

    with pytest.raises(ValueError, match="`label_smoothing` must be a float in .* known when"):
        build(tf.constant(0.1))


@pytest.mark.parametrize("value", [0.0, -2.0, float("nan"), float("inf")])
def test_bad_temperature(value):
    with pytest.raises(ValueError, match="temperature"):
        keras_cc.ContinuousCategoricalLoss(temperature=value)
    with pytest.raises(ValueError, match="temperature"):
        losses.continuous_categorical_nll(np.eye(3), np.eye(3), temperature=value)


def test_mismatched_shapes_name_both_shapes():
    for loss in (
        keras_cc.CCLabelSmoothing(),
        keras_cc.ContinuousCategoricalLoss(),
        keras_cc.TriangularDivergence(),
        keras_cc.JensenShannonDivergence(),
    ):
        with pytest.raises(ValueError, match=r"y_true.shape=\(4, 3\).*y_pred.shape=\(4, 5\)"):
            loss(np.ones((4, 3)) / 3, np.ones((4, 5)) / 5)
    with pytest.raises(ValueError, match=r"y_true.shape=\(4, 2\)"):
        keras_cc.SparseCCLabelSmoothing()(np.zeros((4, 2)), np.ones((4, 5)) / 5)


def test_unknown_keyword_is_rejected():
    with pytest.raises(TypeError, match="smoothing"):
        keras_cc.CCLabelSmoothing(smoothing=0.1)


def test_out_of_range_sparse_labels_raise():
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must lie in") as error:
        keras_cc.SparseCCLabelSmoothing()(np.array([0, 5]), np.ones((2, 5)) / 5)
    # The library's message alone, with the offending labels (no assertion wrapper).
    assert str(error.value) == (
        "`sparse_cc_label_smoothing`: `y_true` labels must lie in [0, num_classes); "
        "received [5] with num_classes=5."
    )


def test_out_of_range_sparse_labels_raise_in_a_graph():
    loss = tf.function(lambda y, p: keras_cc.SparseCCLabelSmoothing()(y, p))
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels must lie in"):
        loss(tf.constant([0, 5]), tf.ones((2, 5)) / 5)


@pytest.mark.parametrize(
    "loss, hint",
    [
        (keras_cc.CCLabelSmoothing(0.1), "use `keras_cc.SparseCCLabelSmoothing`"),
        (keras_cc.ContinuousCategoricalLoss(), "one-hot encode them first"),
        (keras_cc.TriangularDivergence(), "one-hot encode them first"),
    ],
    ids=lambda x: type(x).__name__ if not isinstance(x, str) else "",
)
@pytest.mark.parametrize("labels", [[0, 3], [[0], [3]]], ids=["flat", "column"])
def test_integer_labels_in_a_dense_loss_point_to_the_sparse_form(loss, hint, labels):
    with pytest.raises(ValueError, match="must have the same shape") as error:
        loss(np.array(labels), np.ones((2, 5)) / 5)
    assert hint in str(error.value)


def test_a_shape_mismatch_that_is_not_labels_gets_no_label_hint():
    with pytest.raises(ValueError, match="must have the same shape") as error:
        keras_cc.CCLabelSmoothing()(np.ones((2, 3)) / 3, np.ones((2, 5)) / 5)
    assert "Sparse" not in str(error.value)


VALIDATING_LOSSES = [
    keras_cc.ContinuousCategoricalLoss,
    keras_cc.TriangularDivergence,
    keras_cc.JensenShannonDivergence,
]


@pytest.mark.parametrize("loss_cls", VALIDATING_LOSSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "targets, message",
    [
        ([[0.5, 0.7, -0.2]], "it has negative entries"),
        ([[0.5, 0.2, 0.2]], "its rows must sum to 1"),
        ([[np.nan, 0.5, 0.5]], "it has NaN or infinite entries"),
        ([[np.inf, 0.5, 0.5]], "it has NaN or infinite entries"),
    ],
)
def test_validate_rejects_targets_off_the_simplex(loss_cls, targets, message):
    loss = loss_cls(validate=True)
    with pytest.raises(tf.errors.InvalidArgumentError, match=message) as error:
        loss(np.array(targets), np.ones((1, 3)) / 3)
    # The library's message alone: no "Expected ... to be true. Summarized data" wrapper.
    assert re.match(r"`\w+`: `y_true` must lie on the simplex: ", str(error.value))
    assert "first offending rows: [[" in str(error.value)
    if np.isnan(targets).any():
        assert "negative" not in str(error.value) and "sum to 1" not in str(error.value)
    assert np.isfinite(loss(np.array([[0.2, 0.3, 0.5]]), np.ones((1, 3)) / 3).numpy())


@pytest.mark.parametrize("loss_cls", VALIDATING_LOSSES, ids=lambda c: c.__name__)
def test_nan_targets_propagate_without_validation_as_in_keras(loss_cls):
    targets = np.array([[np.nan, 0.5, 0.5], [0.2, 0.3, 0.5]])
    per_example = loss_cls(reduction=None)(targets, np.ones((2, 3)) / 3).numpy()
    keras_ce = keras.losses.CategoricalCrossentropy(reduction=None)(targets, np.ones((2, 3)) / 3)
    assert np.isnan(per_example[0]) and np.isnan(keras_ce.numpy()[0])
    assert np.isfinite(per_example[1])


def test_divergence_losses_off_the_simplex_stay_within_the_documented_range():
    prediction = np.array([[0.0, 0.0, 1.0]])
    for loss in (keras_cc.TriangularDivergence(), keras_cc.JensenShannonDivergence()):
        # a target summing to s = 2, disjoint from the prediction: (s + 1) / 2
        assert loss(np.array([[2.0, 0.0, 0.0]]), prediction).numpy() == pytest.approx(1.5, 1e-5)
        assert loss(np.array([[0.7, 0.3, 0.0]]), prediction).numpy() <= 1.0


def test_cc_losses_can_be_negative():
    """A density on the simplex can exceed 1, so its negative logarithm can be below 0."""
    confident = np.array([[0.9, 0.05, 0.05]])
    loss = keras_cc.ContinuousCategoricalLoss()(confident, confident).numpy()
    density = keras_cc.ContinuousCategorical(probs=confident).prob(confident).numpy()
    assert density[0] > 1.0 and loss == pytest.approx(-np.log(density[0]), rel=1e-5)
    assert loss < 0.0
    assert keras_cc.CCLabelSmoothing(0.1)(np.eye(3)[:1], confident).numpy() < 0.0


SCALAR_CALLS = [
    lambda: losses.cc_label_smoothing(1.0, 0.5),
    lambda: losses.continuous_categorical_nll(1.0, 0.5),
    lambda: losses.triangular_divergence(1.0, 0.5),
    lambda: losses.jensen_shannon_divergence(1.0, 0.5),
    lambda: losses.sparse_cc_label_smoothing(0, 0.5),
    lambda: keras_cc.CCLabelSmoothing()(1.0, 0.5),
    lambda: keras_cc.ContinuousCategoricalLoss(validate=True)(1.0, 0.5),
    lambda: keras_cc.TriangularDivergence()(1.0, 0.5),
    lambda: keras_cc.JensenShannonDivergence()(1.0, 0.5),
    lambda: keras_cc.metrics.CCNegativeLogLikelihood(label_smoothing=0.1).update_state(1.0, 0.5),
    lambda: losses.validate_simplex(1.0),
]


@pytest.mark.parametrize("call", SCALAR_CALLS)
def test_scalar_inputs_name_the_rank_requirement(call):
    with pytest.raises(ValueError, match=r"needs a class axis \(rank >= 1"):
        call()


def test_axis_outside_the_rank_is_refused():
    with pytest.raises(ValueError, match="axis=2 is out of range for `y_pred` of rank 2"):
        keras_cc.CCLabelSmoothing(axis=2)(np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="axis=-3 is out of range"):
        losses.sparse_cc_label_smoothing(np.zeros(3), np.eye(3), axis=-3)


def test_integer_inputs_are_cast_not_truncated():
    one_hot = np.eye(3, dtype="int64")
    logits = np.array([[2, 0, -1], [0, 1, 0], [3, 3, 0]])
    for loss in (
        keras_cc.CCLabelSmoothing(from_logits=True),
        keras_cc.ContinuousCategoricalLoss(from_logits=True),
        keras_cc.TriangularDivergence(from_logits=True),
    ):
        got = loss(one_hot, logits)
        assert got.dtype == tf.float32
        expected = loss(one_hot.astype("float32"), logits.astype("float32"))
        assert got.numpy() == pytest.approx(expected.numpy(), rel=1e-6)


def test_validate_refuses_xla():
    loss = keras_cc.ContinuousCategoricalLoss(validate=True)
    with pytest.raises(ValueError, match="jit_compile=False"):
        tf.function(loss, jit_compile=True)(tf.ones((1, 3)) / 3, tf.ones((1, 3)) / 3)


def test_validate_inside_fit(rng):
    x = rng.normal(size=(8, 8)).astype("float32")
    off_simplex = np.full((8, K), 0.5, dtype="float32")
    model = _model(None)
    model.compile("sgd", loss=keras_cc.ContinuousCategoricalLoss(True, validate=True))
    with pytest.raises(tf.errors.InvalidArgumentError, match="y_true"):
        model.fit(x, off_simplex, epochs=1, verbose=0)
    model.compile(
        "sgd", loss=keras_cc.ContinuousCategoricalLoss(True, validate=True), jit_compile=True
    )
    with pytest.raises(ValueError, match="XLA"):
        model.fit(x, off_simplex, epochs=1, verbose=0)


# --------------------------------------------------------------- serialization


def _harness_cases():
    """Every loss class, configured away from its defaults, with the function and
    arguments it stands for and the targets and predictions it takes."""
    return [
        (
            keras_cc.CCLabelSmoothing(0.2, from_logits=True, reduction="sum", name="a"),
            losses.cc_label_smoothing,
            {"from_logits": True, "label_smoothing": 0.2},
            "one_hot",
            "logits",
        ),
        (
            keras_cc.SparseCCLabelSmoothing(0.05, from_logits=True),
            losses.sparse_cc_label_smoothing,
            {"from_logits": True, "label_smoothing": 0.05},
            "labels",
            "logits",
        ),
        (
            keras_cc.ContinuousCategoricalLoss(True, temperature=2.5, validate=True),
            losses.continuous_categorical_nll,
            {"from_logits": True, "temperature": 2.5},
            "soft",
            "logits",
        ),
        (
            keras_cc.TriangularDivergence(from_logits=True, name="tri", validate=True),
            losses.triangular_divergence,
            {"from_logits": True},
            "soft",
            "logits",
        ),
        (
            keras_cc.JensenShannonDivergence(reduction="mean"),
            losses.jensen_shannon_divergence,
            {},
            "soft",
            "probabilities",
        ),
    ]


def test_the_harness_covers_every_loss_class():
    assert [type(case[0]) for case in _harness_cases()] == LOSS_CLASSES


@pytest.mark.parametrize("case", _harness_cases(), ids=lambda case: type(case[0]).__name__)
def test_every_loss_passes_the_shared_harness(rng, case):
    """Serialization, every reduction with and without sample weights, XLA
    (``tests/loss_harness.py``)."""
    loss, function, kwargs, target, prediction = case
    logits, one_hot, labels = _data(rng)
    data = {
        "logits": logits,
        "probabilities": _probs(logits),
        "one_hot": one_hot,
        "labels": labels,
        "soft": _probs(rng.normal(size=logits.shape).astype("float32")),
    }
    weights = rng.random(len(logits)).astype("float32")
    loss_harness.run_loss_test(
        loss, function, kwargs, data[target], data[prediction], sample_weight=weights
    )


@pytest.mark.parametrize(
    "fn",
    [
        losses.cc_label_smoothing,
        losses.sparse_cc_label_smoothing,
        losses.continuous_categorical_nll,
        losses.triangular_divergence,
        losses.jensen_shannon_divergence,
    ],
    ids=lambda f: f.__name__,
)
def test_functions_serialize(fn):
    config = keras.saving.serialize_keras_object(fn)
    assert keras.saving.deserialize_keras_object(config) is fn


# -------------------------------------------------------------- compile / fit / save


def _model(output_activation="softmax", k=K, mixed=False):
    inputs = keras.Input((8,))
    x = keras.layers.Dense(16, activation="relu")(inputs)
    x = keras.layers.Dense(k)(x)
    if output_activation:
        x = keras.layers.Activation(output_activation, dtype="float32" if not mixed else None)(x)
    return keras.Model(inputs, x)


def _xy(rng, n=64, k=K):
    x = rng.normal(size=(n, 8)).astype("float32")
    labels = (x[:, :k].argmax(-1)).astype("int64")
    return x, labels, np.eye(k, dtype="float32")[labels]


@pytest.mark.slow  # end to end: fit, save and reload a model per loss
@pytest.mark.parametrize(
    "loss, activation, target, jit",
    [
        (keras_cc.CCLabelSmoothing(0.1), "softmax", "one_hot", True),
        (keras_cc.SparseCCLabelSmoothing(0.1, from_logits=True), None, "labels", True),
        (
            keras_cc.ContinuousCategoricalLoss(from_logits=True, temperature=2.0),
            None,
            "soft",
            False,
        ),
        (keras_cc.TriangularDivergence(), "softmax", "soft", False),
        (keras_cc.JensenShannonDivergence(from_logits=True), None, "soft", False),
        (losses.cc_label_smoothing, "softmax", "one_hot", False),
    ],
    ids=["cc_ls", "sparse_logits", "cc_soft", "tri", "jsd_logits", "function"],
)
def test_compile_fit_save_load(tmp_path, rng, loss, activation, target, jit):
    x, labels, one_hot = _xy(rng)
    y = {"one_hot": one_hot, "labels": labels, "soft": one_hot * 0.8 + 0.2 / K}[target]
    model = _model(activation)
    model.compile(keras.optimizers.Adam(0.01), loss=loss, jit_compile=jit)
    history = model.fit(x, y, batch_size=16, epochs=3, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert history.history["loss"][-1] < history.history["loss"][0]
    predictions = model.predict(x, batch_size=64, verbose=0)
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.models.load_model(path)  # no custom_objects
    np.testing.assert_allclose(restored.predict(x, batch_size=64, verbose=0), predictions)
    if isinstance(loss, keras.losses.Loss):
        assert type(restored.loss) is type(loss)
        assert restored.loss.get_config() == loss.get_config()
        eager = loss(y, predictions).numpy()
    else:
        assert restored.loss is loss
        eager = np.mean(loss(y, predictions))
    assert restored.evaluate(x, y, batch_size=64, verbose=0) == pytest.approx(eager, rel=1e-4)


def test_fit_value_matches_the_eager_loss(rng):
    """Inside a compiled model the logits behind the softmax are used (as Keras' CE does)."""
    x, _, one_hot = _xy(rng)
    model = _model("softmax")
    model.compile("sgd", loss=keras_cc.CCLabelSmoothing(0.1), jit_compile=True)
    evaluated = model.evaluate(x, one_hot, batch_size=64, verbose=0)
    eager = keras_cc.CCLabelSmoothing(0.1)(one_hot, model.predict(x, verbose=0)).numpy()
    assert evaluated == pytest.approx(eager, rel=1e-4)


def test_mixed_precision_fit(rng):
    x, _, one_hot = _xy(rng)
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = _model("softmax", mixed=True)
        assert model.output.dtype == "float16"
        model.compile(keras.optimizers.Adam(0.01), loss=keras_cc.CCLabelSmoothing(0.1))
        history = model.fit(x, one_hot, batch_size=16, epochs=2, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert np.all(np.isfinite(history.history["loss"]))


@pytest.mark.parametrize("from_logits", [True, False])
def test_an_empty_batch_gives_what_keras_cross_entropy_gives(from_logits):
    """A batch of no rows (a filtered or last partial batch) returns Keras' value for it,
    not an error from the row minimum of no rows."""
    empty = tf.zeros([0, 5])
    expected = keras.losses.CategoricalCrossentropy(label_smoothing=0.1, from_logits=from_logits)(
        empty, empty
    )
    for loss in (
        keras_cc.CCLabelSmoothing(0.1, from_logits=from_logits),
        keras_cc.ContinuousCategoricalLoss(from_logits=from_logits),
    ):
        value = loss(empty, empty)
        np.testing.assert_array_equal(np.shape(value), np.shape(expected))
        np.testing.assert_array_equal(np.isnan(value), np.isnan(expected))
