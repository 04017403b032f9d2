"""Flags from a config dataclass, one-line errors, quiet logs, --help without TensorFlow."""

import dataclasses
import os
import textwrap

import pytest
from absl import flags
from interpreters import python

from keras_cc_runs import cli


def _parse_pair(text):
    if not text:
        return None
    a, b = text.split(":")
    return int(a), int(b)


@dataclasses.dataclass
class Config:
    name: str = cli.setting("x", "A name.")
    count: int = cli.setting(3, "How many.", minimum=1)
    rate: float | None = cli.setting(None, "A rate; unset: none.")
    on: bool = cli.setting(True, "A switch.")
    kind: str = cli.setting("a", "A kind.", choices=("a", "b"))
    sizes: tuple[int, ...] = cli.setting((64, 64), "Sizes.")
    pair: tuple | None = cli.setting(
        None, "'a:b'.", parse=_parse_pair, format=lambda p: f"{p[0]}:{p[1]}"
    )
    hidden: int = cli.setting(0, "Not a flag.", flag=False)

    def __post_init__(self):
        if self.count > 10:
            raise ValueError(f"count must be <= 10, got {self.count}.")


def _flag_values(*argv):
    values = flags.FlagValues()
    declared = cli.define_flags(Config, flag_values=values)
    values(["prog", *argv])
    return values, declared


def test_every_field_becomes_its_flag_with_its_help_and_type():
    values, declared = _flag_values()
    assert declared == ["name", "count", "rate", "on", "kind", "sizes", "pair"]
    assert values["count"].help == "How many." and values["sizes"].value == ["64", "64"]
    assert cli.config_from_flags(Config, flag_values=values) == Config()
    values, _ = _flag_values(
        "--name=y", "--count=4", "--rate=0.5", "--noon", "--kind=b", "--sizes=1,2", "--pair=3:4"
    )
    config = cli.config_from_flags(Config, flag_values=values, hidden=7)
    assert config == Config("y", 4, 0.5, False, "b", (1, 2), (3, 4), 7)


def test_bad_values_name_the_flag():
    with pytest.raises(flags.IllegalFlagValueError, match="--count must be >= 1"):
        _flag_values("--count=0")
    with pytest.raises(flags.IllegalFlagValueError, match="should be one of"):
        _flag_values("--kind=c")
    values, _ = _flag_values("--count=11")
    with pytest.raises(cli.ScriptError, match="^--count must be <= 10"):
        cli.config_from_flags(Config, flag_values=values)
    values, _ = _flag_values("--sizes=1,x")
    with pytest.raises(cli.ScriptError, match="--sizes must be a comma-separated list"):
        cli.config_from_flags(Config, flag_values=values)
    values, _ = _flag_values("--pair=3")
    with pytest.raises(cli.ScriptError, match="^--pair: "):
        cli.config_from_flags(Config, flag_values=values)


SCRIPT = textwrap.dedent(
    '''
    """A script's docstring, which an error must not print."""
    import dataclasses
    import sys

    from absl import flags, logging

    from keras_cc_runs import cli, run_directory


    @dataclasses.dataclass
    class Config:
        epochs: int = cli.setting(15, "Training epochs.", minimum=1)


    cli.define_flags(Config)
    flags.DEFINE_string("output_dir", "out", "Where results go.")


    def main(argv):
        with cli.checks():
            config = cli.config_from_flags(Config)
            run_directory.check_output_dir(flags.FLAGS.output_dir)
        logging.info("an INFO line")
        print("tensorflow" in sys.modules, config.epochs)


    if __name__ == "__main__":
        cli.run(main)
    '''
)


def _run(tmp_path, *argv):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return python(script, *argv, expect=None, cwd=tmp_path, env=environment, timeout=120)


def test_script_errors_are_one_line_and_logs_quiet(tmp_path):
    done = _run(tmp_path)
    assert done.returncode == 0 and done.stdout == "False 15\n" and done.stderr == ""
    (tmp_path / "a_file").write_text("")
    for argv, message in [
        (["--epochs=0"], "flag --epochs=0: --epochs must be >= 1, got 0."),
        (["--epochs=x"], "flag --epochs=x: invalid literal for int() with base 10: 'x'"),
        (["--epoch=3"], "Unknown command line flag 'epoch'. Did you mean: epochs ?"),
        (["--output_dir=a_file"], "--output_dir='a_file' is a file, not a directory."),
        (["extra"], "unexpected arguments: extra"),
    ]:
        done = _run(tmp_path, *argv)
        assert done.returncode == 2, done.stderr
        assert done.stderr == f"script.py: error: {message}\n"
    verbose = _run(tmp_path, "--verbosity=0")
    assert "an INFO line" in verbose.stderr


def test_help_lists_the_config_flags(tmp_path):
    done = _run(tmp_path, "--help")
    assert done.returncode == 0, done.stderr
    assert "--epochs: Training epochs." in done.stdout and "--output_dir" in done.stdout
