"""keras_cc._saving: the stand-ins that let Keras find keras_cc's saved objects before their
modules load (the fresh-interpreter check is in tests/test_environment.py)."""

import importlib

import keras
import numpy as np
import pytest

import keras_cc
from keras_cc import _saving


def _registered_by_the_modules():
    for module in ("keras_cc.losses", "keras_cc.metrics", "keras_cc.distillation"):
        if module != "keras_cc.distillation" or hasattr(keras, "distillation"):
            importlib.import_module(module)
    return {
        name: value
        for name, value in keras.saving.get_custom_objects().items()
        if name.startswith(f"{_saving.PACKAGE}>")
    }


def test_the_table_names_every_registered_object_and_where_it_lives():
    registered = _registered_by_the_modules()
    expected = {f"{_saving.PACKAGE}>{name}" for name in _saving.SERIALIZABLE}
    if not hasattr(keras, "distillation"):
        expected.discard(f"{_saving.PACKAGE}>ContinuousCategoricalDistillation")
    assert set(registered) == expected
    for name, value in registered.items():
        module, attribute, kind = _saving.SERIALIZABLE[name.split(">", 1)[1]]
        # Once its module is loaded, the real object has replaced the stand-in.
        assert value is getattr(importlib.import_module(module), attribute), name
        assert kind == ("class" if isinstance(value, type) else "function"), name


def test_a_class_stand_in_builds_the_real_class():
    stand_in = _saving._class_stand_in("keras_cc.losses", "CCLabelSmoothing")
    built = stand_in(0.2, from_logits=True)
    assert type(built) is keras_cc.CCLabelSmoothing
    assert built.get_config() == keras_cc.CCLabelSmoothing(0.2, from_logits=True).get_config()
    again = stand_in.from_config(built.get_config())
    assert type(again) is keras_cc.CCLabelSmoothing
    assert again.get_config() == built.get_config()


def test_a_function_stand_in_calls_the_real_function_and_saves_under_its_name():
    stand_in = _saving._function_stand_in("keras_cc.losses", "cc_label_smoothing")
    y = np.eye(3, dtype="float32")[[1, 0]]
    logits = np.array([[0.5, 2.0, -1.0], [1.0, 0.0, 0.0]], "float32")
    np.testing.assert_array_equal(
        np.asarray(stand_in(y, logits, from_logits=True)),
        np.asarray(keras_cc.losses.cc_label_smoothing(y, logits, from_logits=True)),
    )
    assert stand_in.__module__ == "keras_cc.losses"
    assert stand_in.__name__ == "cc_label_smoothing"


def test_register_stand_ins_leaves_registered_objects_alone():
    registered = _registered_by_the_modules()
    _saving.register_stand_ins()
    assert {
        name: value
        for name, value in keras.saving.get_custom_objects().items()
        if name.startswith(f"{_saving.PACKAGE}>")
    } == registered


@pytest.mark.parametrize("name", ["CCLabelSmoothing", "ContinuousCategorical", "losses"])
def test_public_names_load_on_use(name):
    assert name in dir(keras_cc)
    assert getattr(keras_cc, name) is not None
