"""Keras 3 metrics: streaming values, compile/fit/save/load, serialization."""

import keras_cc  # noqa: I001  (configures TensorFlow's Keras routing first)
import keras
import numpy as np
import pytest
import scipy.special
import tensorflow as tf

from keras_cc import metrics, ops

K = 5


@pytest.fixture
def rng():
    return np.random.default_rng(11)


def _batch(rng, n=10):
    logits = rng.normal(scale=2.0, size=(n, K)).astype("float32")
    targets = scipy.special.softmax(rng.normal(size=(n, K)), axis=-1).astype("float32")
    return targets, logits, scipy.special.softmax(logits, axis=-1).astype("float32")


def _tri(q, p):
    return 0.5 * ((q - p) ** 2 / (q + p)).sum(-1)


def _jsd(q, p):
    m = (q + p) / 2
    return (scipy.special.rel_entr(q, m) + scipy.special.rel_entr(p, m)).sum(-1) / (2 * np.log(2))


@pytest.mark.parametrize(
    "metric_cls, reference",
    [(metrics.TriangularDivergence, _tri), (metrics.JensenShannonDivergence, _jsd)],
)
def test_streaming_weighted_mean_matches_numpy(rng, metric_cls, reference):
    (y1, z1, f1), (y2, z2, f2) = _batch(rng), _batch(rng, 7)
    w1, w2 = rng.random(10), rng.random(7)
    expected = np.concatenate([reference(y1, f1) * w1, reference(y2, f2) * w2]).sum() / (
        w1.sum() + w2.sum()
    )
    for metric, a, b in ((metric_cls(), f1, f2), (metric_cls(from_logits=True), z1, z2)):
        metric.update_state(y1, a, sample_weight=w1)
        metric.update_state(y2, b, sample_weight=w2)
        assert metric.result().numpy() == pytest.approx(expected, rel=1e-4)
        metric.reset_state()
        assert metric.result().numpy() == 0.0


def test_cc_negative_log_likelihood(rng):
    y, z, f = _batch(rng)
    metric = metrics.CCNegativeLogLikelihood(from_logits=True, temperature=2.0)
    metric.update_state(y, z)
    expected = -np.mean(ops.cc_log_prob(y, z / 2.0).numpy())
    assert metric.result().numpy() == pytest.approx(expected, rel=1e-5)
    # with label smoothing it tracks the CCLabelSmoothing objective
    one_hot = np.eye(K, dtype="float32")[rng.integers(0, K, 10)]
    metric = metrics.CCNegativeLogLikelihood(label_smoothing=0.1)
    metric.update_state(one_hot, f)
    assert metric.result().numpy() == pytest.approx(
        keras_cc.CCLabelSmoothing(0.1)(one_hot, f).numpy(), rel=1e-5
    )
    with pytest.raises(ValueError, match="label_smoothing"):
        metrics.CCNegativeLogLikelihood(label_smoothing=1.0)
    with pytest.raises(ValueError, match="temperature"):
        metrics.CCNegativeLogLikelihood(temperature=0.0)


def test_metric_shapes_are_checked():
    with pytest.raises(ValueError, match=r"y_true.shape=\(2, 3\)"):
        metrics.TriangularDivergence().update_state(np.ones((2, 3)) / 3, np.ones((2, 4)) / 4)


@pytest.mark.parametrize(
    "metric",
    [
        metrics.TriangularDivergence(validate=True),
        metrics.JensenShannonDivergence(validate=True),
        metrics.CCNegativeLogLikelihood(label_smoothing=0.1, validate=True),
    ],
    ids=lambda m: type(m).__name__,
)
def test_metrics_validate_targets_and_report_nan_as_nan(metric):
    prediction = np.ones((1, 3), "float32") / 3
    for targets, message in (
        ([[np.nan, 0.5, 0.5]], "it has NaN or infinite entries"),
        ([[1.5, -0.5, 0.0]], "it has negative entries"),
    ):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message) as error:
            metric.update_state(np.array(targets, "float32"), prediction)
        assert "`y_true` must lie on the simplex" in str(error.value)
    metric.update_state(np.array([[0.2, 0.3, 0.5]], "float32"), prediction)
    assert np.isfinite(metric.result().numpy())
    assert metric.get_config()["validate"] is True


def test_metrics_without_validation_propagate_nan():
    metric = metrics.TriangularDivergence()
    metric.update_state(np.array([[np.nan, 0.5, 0.5]], "float32"), np.ones((1, 3)) / 3)
    assert np.isnan(metric.result().numpy())


def _instances():
    return [
        metrics.TriangularDivergence(name="tri", from_logits=True, validate=True),
        metrics.JensenShannonDivergence(dtype="float64", axis=1),
        metrics.CCNegativeLogLikelihood(from_logits=True, label_smoothing=0.1, temperature=3.0),
    ]


@pytest.mark.parametrize("metric", _instances(), ids=lambda m: type(m).__name__)
def test_serialization_round_trip_with_names_distinct_from_losses(metric):
    config = keras.saving.serialize_keras_object(metric)
    assert config["registered_name"] == f"keras_cc>{type(metric).__name__}Metric"
    restored = keras.saving.deserialize_keras_object(config)
    assert type(restored) is type(metric)
    assert restored.get_config() == metric.get_config()
    # the loss of the same class name still deserializes to the loss
    if hasattr(keras_cc.losses, type(metric).__name__):
        loss = getattr(keras_cc.losses, type(metric).__name__)()
        back = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(loss))
        assert isinstance(back, keras.losses.Loss)


@pytest.mark.slow  # end to end: fit, save and reload a model
def test_compile_fit_save_load_with_metrics(tmp_path, rng):
    x = rng.normal(size=(64, 8)).astype("float32")
    y = np.eye(K, dtype="float32")[x[:, :K].argmax(-1)]
    inputs = keras.Input((8,))
    outputs = keras.layers.Dense(K, activation="softmax")(keras.layers.Dense(16, "relu")(inputs))
    model = keras.Model(inputs, outputs)
    model.compile(
        keras.optimizers.Adam(0.01),
        loss=keras_cc.TriangularDivergence(),
        metrics=[
            "accuracy",
            metrics.TriangularDivergence(),
            metrics.JensenShannonDivergence(),
            metrics.CCNegativeLogLikelihood(label_smoothing=0.1),
        ],
        jit_compile=True,
    )
    history = model.fit(x, y, batch_size=16, epochs=2, verbose=0)
    for name in (
        "triangular_divergence",
        "jensen_shannon_divergence",
        "cc_negative_log_likelihood",
    ):
        assert np.all(np.isfinite(history.history[name])), name
    # the TRI metric and the TRI loss agree
    np.testing.assert_allclose(
        history.history["loss"], history.history["triangular_divergence"], rtol=1e-4
    )
    path = tmp_path / "m.keras"
    model.save(path)
    restored = keras.models.load_model(path)  # no custom_objects
    before = model.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    after = restored.evaluate(x, y, batch_size=64, verbose=0, return_dict=True)
    assert before.keys() == after.keys()
    for key, value in before.items():
        assert after[key] == pytest.approx(value, rel=1e-4), key
