"""absl flags from a config dataclass, one-line flag errors, quiet logs by default.

A config dataclass declares each setting once, with its help text beside it::

    @dataclasses.dataclass
    class Config:
        epochs: int = cli.setting(15, "Training epochs per loss.", minimum=0)
        loss: str = cli.setting("cc", "'ce' or 'cc'.", choices=("ce", "cc"))

    cli.define_flags(Config)               # in the script, at import time (no TensorFlow)
    ...
    config = cli.config_from_flags(Config)  # in main(), after parsing
    cli.run(main)                           # instead of absl.app.run(main)

:func:`define_flags` maps ``bool`` to ``DEFINE_bool``, ``int``/``float``/``str`` (or
``X | None``) to ``DEFINE_integer``/``DEFINE_float``/``DEFINE_string``, a field with
``choices`` to ``DEFINE_enum`` and tuples to ``DEFINE_list``; a field with a ``parse``
function is a string flag that `parse` turns into the value. ``minimum`` and
``maximum`` become absl validators, so a bad value stops the script while it parses its
flags. The flags count as the calling module's own, so they appear in the script's
``--help``.

:func:`run` replaces ``absl.app.run``: a bad flag value, and an
:class:`absl.app.UsageError` or :class:`ScriptError` from the checks ``main`` makes
before its work starts (see :func:`checks`), print one line
``<script>: error: <message>`` and exit with status 2 (absl would print the module
docstring and the flag list, or two lines); logs stay quiet unless ``--verbosity`` is
given (see :func:`quiet_logging`).

Only absl and the standard library are imported here, so a script that defines its flags
with this module answers ``--help`` without importing TensorFlow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import sys
import types
import typing
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from absl import app, flags

__all__ = [
    "ScriptError",
    "checks",
    "config_from_flags",
    "define_flags",
    "flag_values_of",
    "quiet_logging",
    "quiet_process",
    "run",
    "setting",
    "verbose",
]

flags.disclaim_key_flags()  # flags defined through define_flags belong to its caller

_NATIVE_LOG_LEVEL = "TF_CPP_MIN_LOG_LEVEL"
_QUIET_NATIVE_LOG_LEVEL = "2"  # TensorFlow's C++ INFO and WARNING lines off; errors show
# Modules whose Python warnings quiet_logging hides (regular expressions on module names).
_LIBRARY_MODULES = (
    r"tensorflow(\.|$)",
    r"tensorflow_probability(\.|$)",
    r"tf_agents(\.|$)",
    r"tf_keras(\.|$)",
    r"keras(\.|$)",
    r".*__autograph_generated",  # compile-time warnings carry the file path
)


class ScriptError(ValueError):
    """A check of a script's flags failed; :func:`run` prints the message on one line."""


@contextlib.contextmanager
def checks() -> Iterator[None]:
    """Turns ``ValueError`` and ``FileNotFoundError`` inside the block into :class:`ScriptError`.

    For the checks a script's ``main`` makes before its work starts::

        with cli.checks():
            config = cli.config_from_flags(Config)
            run_directory.check_output_dir(FLAGS.output_dir)
    """
    try:
        yield
    except ScriptError:
        raise
    except (ValueError, FileNotFoundError) as error:
        raise ScriptError(str(error)) from error


def setting(
    default: Any = dataclasses.MISSING,
    help: str = "",  # noqa: A002  (the absl name)
    *,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    choices: Sequence[str] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    parse: Callable[[str], Any] | None = None,
    format: Callable[[Any], str] | None = None,  # noqa: A002
    flag: bool = True,
) -> Any:
    """A dataclass field with what :func:`define_flags` needs to make its flag.

    Args:
      default: the field's default.
      help: the flag's help text (the setting's documentation).
      default_factory: instead of `default`, as in ``dataclasses.field``.
      choices: the allowed strings (an enum flag).
      minimum, maximum: inclusive bounds, checked while the flags are parsed.
      parse: turns the flag's string into the field's value (raises ValueError); it
        gets '' for an empty flag, which a default of None becomes.
      format: turns the default into the flag's string; default ``str`` ('' for None).
      flag: False keeps the field out of the flags.
    """
    metadata = {
        "help": help,
        "choices": tuple(choices) if choices is not None else None,
        "minimum": minimum,
        "maximum": maximum,
        "parse": parse,
        "format": format,
        "flag": flag,
    }
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _flag_fields(config_class: type, exclude: Sequence[str]) -> list[dataclasses.Field]:
    return [
        field
        for field in dataclasses.fields(config_class)
        if field.metadata.get("flag", False) and field.name not in exclude
    ]


def _field_default(field: dataclasses.Field, overrides: dict[str, Any]) -> Any:
    if field.name in overrides:
        return overrides[field.name]
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def _base_type(annotation: Any) -> Any:
    """``int`` of ``int | None``/``Optional[int]``; ``tuple`` of ``tuple[str, ...]``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else str
    if origin in (tuple, list) or annotation in (tuple, list):
        return tuple
    return annotation


def _bounds_validator(name: str, minimum: float | None, maximum: float | None):
    def check(value):
        if value is None:
            return True
        if isinstance(value, float) and not math.isfinite(value):
            raise flags.ValidationError(f"--{name} must be a finite number, got {value}.")
        if minimum is not None and value < minimum:
            raise flags.ValidationError(f"--{name} must be >= {minimum}, got {value}.")
        if maximum is not None and value > maximum:
            raise flags.ValidationError(f"--{name} must be <= {maximum}, got {value}.")
        return True

    return check


def define_flags(
    config_class: type,
    *,
    exclude: Sequence[str] = (),
    defaults: dict[str, Any] | None = None,
    flag_values: flags.FlagValues = flags.FLAGS,
) -> list[str]:
    """Declares one absl flag per field of `config_class` made with :func:`setting`.

    Args:
      config_class: a dataclass.
      exclude: fields without a flag here (the script declares its own).
      defaults: flag defaults that differ from the fields' defaults.
      flag_values: where the flags go.

    Returns:
      The names of the flags declared (fields whose flag already exists are skipped).

    Raises:
      TypeError: a field's type has no flag type and no `parse` function.
    """
    overrides = dict(defaults or {})
    hints = typing.get_type_hints(config_class)
    declared = []
    for field in _flag_fields(config_class, exclude):
        name, meta = field.name, field.metadata
        if name in flag_values:
            continue
        default = _field_default(field, overrides)
        kind = _base_type(hints[field.name])
        help_text = meta["help"]
        if meta["parse"] is not None:
            text = "" if default is None else (meta["format"] or str)(default)
            flags.DEFINE_string(name, text, help_text, flag_values=flag_values)
        elif meta["choices"] is not None:
            flags.DEFINE_enum(name, default, list(meta["choices"]), help_text, flag_values)
        elif kind is bool:
            flags.DEFINE_bool(name, default, help_text, flag_values=flag_values)
        elif kind is int:
            flags.DEFINE_integer(name, default, help_text, flag_values=flag_values)
        elif kind is float:
            flags.DEFINE_float(name, default, help_text, flag_values=flag_values)
        elif kind is str:
            flags.DEFINE_string(name, default, help_text, flag_values=flag_values)
        elif kind is tuple:
            items = None if default is None else [str(item) for item in default]
            flags.DEFINE_list(name, items, help_text, flag_values=flag_values)
        else:
            raise TypeError(f"{config_class.__name__}.{name}: no flag type for {kind!r}.")
        if meta["minimum"] is not None or meta["maximum"] is not None:
            flags.register_validator(
                name,
                _bounds_validator(name, meta["minimum"], meta["maximum"]),
                flag_values=flag_values,
            )
        declared.append(name)
    return declared


def flag_values_of(
    config_class: type,
    *,
    exclude: Sequence[str] = (),
    flag_values: flags.FlagValues = flags.FLAGS,
) -> dict[str, Any]:
    """The parsed flags of `config_class`'s fields, converted to the fields' types.

    Raises:
      ScriptError: (a ValueError) a `parse` function or a list element rejects its flag's
        value; the message names the flag.
    """
    hints = typing.get_type_hints(config_class)
    values = {}
    for field in _flag_fields(config_class, exclude):
        if field.name not in flag_values:
            continue
        value = flag_values[field.name].value
        parse = field.metadata["parse"]
        if parse is not None:
            try:
                value = parse(value)
            except ValueError as error:
                raise ScriptError(f"--{field.name}: {error}") from None
        elif _base_type(hints[field.name]) is tuple and value is not None:
            value = _tuple_of(hints[field.name], value, field.name)
        values[field.name] = value
    return values


def parse_int_list(text: str) -> tuple[int, ...]:
    """Integers from a comma-separated string; ``a-b`` expands to a range (``0-9``: ten).

    Raises:
      ValueError: an item is neither an integer nor a range ``a-b``.
    """
    out: list[int] = []
    for value in (item.strip() for item in text.split(",")):
        if not value:
            continue
        try:
            if "-" in value.lstrip("-"):
                low, high = value.split("-", 1)
                out.extend(range(int(low), int(high) + 1))
            else:
                out.append(int(value))
        except ValueError:
            raise ValueError(f"{value!r} is not an integer or range a-b.") from None
    return tuple(out)


def _tuple_of(annotation: Any, items: Sequence[str], name: str) -> tuple:
    """Converts list-flag strings to the element type of ``tuple[X, ...]``."""
    args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
    while args and typing.get_origin(args[0]) in (tuple, list):
        args = list(typing.get_args(args[0]))
    element = args[0] if args and args[0] is not Ellipsis else str
    if element in (int, float):
        try:
            return tuple(element(item) for item in items)
        except ValueError:
            kind = "integers" if element is int else "numbers"
            raise ScriptError(f"--{name} must be a comma-separated list of {kind}.") from None
    return tuple(str(item).strip() for item in items)


def config_from_flags(
    config_class: type,
    *,
    exclude: Sequence[str] = (),
    flag_values: flags.FlagValues = flags.FLAGS,
    **values: Any,
) -> Any:
    """``config_class(**flags, **values)``: the config of the parsed flags.

    Args:
      config_class: the dataclass given to :func:`define_flags`.
      exclude: fields taken from `values` only.
      flag_values: the parsed flags.
      **values: fields not given by flags, or that replace a flag's value.

    Raises:
      ScriptError: (a ValueError) the config rejects a value. A message that starts with a
        field's name gets ``--`` in front, so that it names the flag.
    """
    arguments = flag_values_of(config_class, exclude=exclude, flag_values=flag_values)
    arguments.update(values)
    try:
        return config_class(**arguments)
    except ValueError as error:
        message = str(error)
        first = message.split(" ", 1)[0].rstrip(":=,")
        if first in arguments and first in flag_values and not message.startswith("--"):
            message = "--" + message
        raise ScriptError(message) from error


# ---------------------------------------------------------------------------- running


def verbose(flag_values: flags.FlagValues = flags.FLAGS) -> bool:
    """True when ``--verbosity`` (``-v``) was given on the command line."""
    return flag_values["verbosity"].present


def quiet_logging(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Quiet logs unless ``--verbosity`` (``-v``) was given on the command line.

    Without it:

    * absl logs only errors (``app.run`` raises the level to INFO, where TensorFlow and
      TF-Agents report every checkpoint save, and TensorFlow logs Python-side WARNING
      lines such as renamed ``tf.function`` arguments on every export);
    * ``TF_CPP_MIN_LOG_LEVEL`` defaults to 2: TensorFlow's native INFO and WARNING lines
      off, errors still shown (a value already set is kept). TensorFlow reads it when it
      is first imported, which scripts using :func:`run` do after this;
    * Python warnings raised inside TensorFlow, TF-Agents, Keras and the code AutoGraph
      generates are not shown (they concern those libraries' internals).

    With ``--verbosity`` nothing is changed: absl logs at that level and TensorFlow logs all.
    """
    if not verbose(flag_values):
        quiet_process()


def quiet_process() -> None:
    """What :func:`quiet_logging` does without ``--verbosity``, in any process.

    For worker processes and Ray tasks that a quiet script starts (they parse no flags).
    """
    import warnings

    from absl import logging

    logging.set_verbosity(logging.ERROR)
    os.environ.setdefault(_NATIVE_LOG_LEVEL, _QUIET_NATIVE_LOG_LEVEL)
    for module in _LIBRARY_MODULES:
        warnings.filterwarnings("ignore", module=module)


def _one_line(program: str, message: str) -> None:
    text = " ".join(str(message).split("\n")[0].split()) if message else "invalid arguments"
    sys.stderr.write(f"{program}: error: {text}\n")
    sys.stderr.flush()
    sys.exit(2)


def _program(arguments: Sequence[str]) -> str:
    return os.path.basename(arguments[0]) if arguments else "script"


def parse_flags(arguments: Sequence[str] | None = None) -> list[str]:
    """Parses the absl flags of ``arguments`` (``sys.argv`` by default) now.

    ``--help`` prints the usage and exits with status 0; a flag error or an extra positional
    argument prints ``<script>: error: <message>`` on one line and exits with status 2. A
    script may call it before its heavy imports, so that these answer at once
    (:func:`run` parses again, to the same result). Returns the arguments absl leaves
    (the program name).
    """
    arguments = list(sys.argv if arguments is None else arguments)
    program = _program(arguments)
    app.define_help_flags()  # what app.run does first (once per process): --help, -?, ...
    try:
        rest = flags.FLAGS(arguments)
    except flags.Error as error:
        _one_line(program, str(error))
    except SystemExit as done:
        # absl's help flags (--help, --helpfull, --helpshort, --helpxml) print the usage
        # and exit with status 1; a usage asked for is a success.
        raise SystemExit(0 if done.code == 1 else done.code) from None
    if len(rest) > 1:
        _one_line(program, f"unexpected arguments: {' '.join(rest[1:])}")
    return rest


def run(main: Callable[[list[str]], Any], argv: Sequence[str] | None = None) -> None:
    """``absl.app.run(main)`` with one-line errors and quiet logs.

    Flag errors (an unknown flag, a value of the wrong type, a failed validator), extra
    positional arguments, and :class:`absl.app.UsageError` or :class:`ScriptError` raised
    by ``main`` print ``<script>: error: <message>`` on one line and exit with status 2.
    Other exceptions keep their traceback.
    """
    arguments = list(sys.argv if argv is None else argv)
    program = _program(arguments)

    def checked_main(args: list[str]) -> Any:
        quiet_logging()
        try:
            return main(args)
        except (app.UsageError, ScriptError) as error:
            _one_line(program, str(error))

    app.run(checked_main, argv=arguments, flags_parser=parse_flags)
