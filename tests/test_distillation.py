"""keras_cc.ContinuousCategoricalDistillation on TensorFlow (tests/test_backends.py runs
the same distillation on JAX and PyTorch)."""

import backend_check
import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_cc
from keras_cc import losses


def test_loss_is_the_tempered_cc_likelihood_times_t_squared():
    rng = np.random.default_rng(0)
    teacher, student = rng.normal(0, 4, (2, 16, 7)).astype(np.float32)
    loss = keras_cc.ContinuousCategoricalDistillation(temperature=2.5)
    targets = keras.ops.softmax(teacher / 2.5)
    expected = 2.5**2 * np.mean(
        losses.continuous_categorical_nll(targets, student, from_logits=True, temperature=2.5)
    )
    np.testing.assert_allclose(loss.compute_loss(teacher, student), expected, rtol=1e-6)
    unscaled = keras_cc.ContinuousCategoricalDistillation(2.5, scale_by_temperature_squared=False)
    np.testing.assert_allclose(unscaled.compute_loss(teacher, student), expected / 6.25, rtol=1e-6)


def test_gradient_reaches_the_student_only():
    import tensorflow as tf

    teacher = tf.constant(np.random.default_rng(1).normal(0, 3, (8, 5)), tf.float32)
    student = tf.Variable(tf.zeros([8, 5]))
    loss = keras_cc.ContinuousCategoricalDistillation(temperature=3.0)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(teacher)
        value = loss.compute_loss(teacher, student)
    assert tape.gradient(value, teacher) is None
    gradient = tape.gradient(value, student).numpy()
    assert np.all(np.isfinite(gradient)) and np.abs(gradient).max() > 0


@pytest.mark.parametrize("temperature", [0, -1.0, "3", True, float("inf"), np.array([3.0])])
def test_bad_temperature_is_refused(temperature):
    with pytest.raises(ValueError, match="`temperature` must be a finite number > 0"):
        keras_cc.ContinuousCategoricalDistillation(temperature=temperature)


@pytest.mark.parametrize("temperature", [3, np.float32(3.0), np.array(3.0), tf.constant(3.0)])
def test_temperature_takes_numpy_scalars_and_concrete_tensors(temperature):
    loss = keras_cc.ContinuousCategoricalDistillation(temperature=temperature)
    assert loss.temperature == 3.0 and type(loss.temperature) is float


def test_outputs_of_other_shapes_are_refused():
    loss = keras_cc.ContinuousCategoricalDistillation()
    with pytest.raises(ValueError, match="same shape"):
        loss.validate_outputs(np.zeros((4, 3), np.float32), np.zeros((4, 5), np.float32))


def test_serialization_round_trip():
    loss = keras_cc.ContinuousCategoricalDistillation(4.0, scale_by_temperature_squared=False)
    config = keras.saving.serialize_keras_object(loss)
    assert config["registered_name"] == "keras_cc>ContinuousCategoricalDistillation"
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, keras_cc.ContinuousCategoricalDistillation)
    assert restored.get_config() == loss.get_config()


@pytest.mark.slow
def test_distils_a_teacher_into_a_smaller_student_on_digits():
    report = backend_check.distillation_check()
    assert report["teacher_accuracy"] > 0.9, report
    assert report["student_accuracy"] > 0.85, report
    assert report["distillation_loss"][-1] < report["distillation_loss"][0]
