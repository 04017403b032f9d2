"""The label-smoothing scripts' settings agree with keras_cc_experiments and parse as stated."""

import dataclasses
import os
import sys

import pytest

from keras_cc_experiments import cli, data, model
from keras_cc_experiments.protocols import PROTOCOLS

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "examples"))
import label_smoothing_settings as settings_lib  # noqa: E402


def _help(name):
    fields = {field.name: field for field in dataclasses.fields(settings_lib.TrainingSettings)}
    return fields[name].metadata["help"]


def test_the_names_repeat_those_of_keras_cc_experiments():
    assert settings_lib.PROTOCOLS == tuple(sorted(PROTOCOLS))
    assert settings_lib.DATASETS == tuple(data.DATASETS)
    assert settings_lib.LOSSES == tuple(model.LOSSES)
    assert settings_lib.DEFAULT_DROPOUT_RATES == tuple(model.DEFAULT_DROPOUT_RATES)
    assert settings_lib.REGULARIZER_NAMES == tuple(model.REGULARIZER_ALIASES)


@pytest.mark.parametrize(
    "name", ["epochs", "batch_size", "width", "batch_norm_momentum", "augment"]
)
def test_the_help_gives_the_protocols_defaults(name):
    assert cli.protocol_defaults_help(name) in " ".join(_help(name).split())


def test_list_settings_parse_as_the_flags_did():
    assert settings_lib.parse_int_list("0-2, 5") == (0, 1, 2, 5)
    assert settings_lib.parse_int_list("-1") == (-1,)
    with pytest.raises(ValueError, match="'x' is not an integer or range a-b"):
        settings_lib.parse_int_list("0,x")
    assert settings_lib.parse_losses("ls, cc_ls") == ("ls", "cc_ls")
    with pytest.raises(ValueError, match=r"unknown \['lss'\]"):
        settings_lib.parse_losses("lss")
    assert settings_lib.parse_rows("all") == ("all",)
    rows = settings_lib.parse_rows("none, wd+BN,dropout+weight_decay+batch_norm")
    assert rows == ("none", "wd+BN", "dropout+weight_decay+batch_norm")
    assert [model.Regularizers.parse(r).key for r in rows] == [
        "none",
        "weight_decay+batch_norm",
        "dropout+weight_decay+batch_norm",
    ]
    with pytest.raises(ValueError, match=r"unknown regularizer\(s\) \['bogus'\]"):
        settings_lib.parse_rows("none,wd+bogus")


def test_unset_settings_take_the_protocols_defaults():
    paper = cli.training_config(settings_lib.TrainingSettings(protocol="paper"))
    assert (paper.epochs, paper.batch_size, paper.width, paper.augment) == (300, 128, 1.0, True)
    with pytest.raises(ValueError, match=r"^--label_smoothing must lie in"):
        cli.training_config(settings_lib.TrainingSettings(label_smoothing=1.0))
