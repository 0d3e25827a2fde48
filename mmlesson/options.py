"""Declared options: a dataclass field carries its default, its help text and its rules.

``TrainConfig``, every method's ``Options`` and the CLI are built from such fields, so the help a
user reads, the checks a value goes through and the type it is stored with come from one place.
``option(default, help, minimum=..., choices=..., nargs=..., metavar=...)`` declares a field;
``check_fields(obj)`` coerces every field of a dataclass instance to its annotated type (a JSON list
back to a tuple, ``1`` to ``1.0`` for a float) and applies the rules, raising a ``ConfigError`` that
names the flag (``--batch-size must be a positive integer, got 0``).
"""
from __future__ import annotations

import math
import os
import types
import typing
from dataclasses import MISSING, field, fields

from .errors import ConfigError


def option(default, help: str, *, minimum=None, above=None, choices=None, **cli):
    """A dataclass field with its help text and rules: ``minimum`` (value >= minimum), ``above``
    (value > above), ``choices`` (allowed values); ``cli`` holds argparse hints (``nargs``, ``metavar``)."""
    metadata = {"help": help, "minimum": minimum, "above": above, "choices": choices, **cli}
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def flag(name: str) -> str:
    """The command-line spelling of an option: ``batch_size`` -> ``--batch-size``."""
    return "--" + name.replace("_", "-")


def _is_optional(hint) -> tuple[bool, object]:
    """``(True, X)`` for ``X | None``, else ``(False, hint)``."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(hint)) == 2:
            return True, args[0]
    return False, hint


TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def _scalar(value, kind, label: str):
    """``value`` as ``kind`` (bool, int, float or str), or a ConfigError naming ``label``. Booleans
    also accept the words a command line gives (``true``/``false``, ``yes``/``no``, ``on``/``off``)."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in TRUE_WORDS + FALSE_WORDS:
            return value.strip().lower() in TRUE_WORDS
        raise ConfigError(f"{label} must be true or false, got {value!r}")
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
            raise ConfigError(f"{label} must be an integer, got {value!r}")
        return int(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{label} must be a finite number, got {value!r}")
        return float(value)
    if kind is str:
        if isinstance(value, os.PathLike):  # a path given as pathlib.Path
            return os.fspath(value)
        if not isinstance(value, str):
            raise ConfigError(f"{label} must be a string, got {value!r}")
        return value
    return value


def coerce(label: str, value, hint):
    """``value`` converted to the annotation ``hint`` (scalars, ``X | None``, ``tuple[X, ...]``,
    ``tuple[X, Y]``); anything else is returned unchanged. ``label`` names it in errors."""
    optional, hint = _is_optional(hint)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{label} needs a value")
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise ConfigError(f"{label} must be a sequence of values, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_scalar(v, args[0], label) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"{label} takes {len(args)} values, got {len(value)} ({value!r})")
        return tuple(_scalar(v, kind, label) for v, kind in zip(value, args))
    return _scalar(value, hint, label)


def check_rules(label: str, value, metadata) -> None:
    """Apply a field's ``minimum`` / ``above`` / ``choices`` to ``value`` (each element of a tuple)."""
    if value is None:
        return
    values = value if isinstance(value, tuple) else (value,)
    choices = metadata.get("choices")
    for v in values:
        if choices is not None and v not in choices:
            raise ConfigError(f"{label}: unknown value {v!r}; choose one of: {', '.join(map(str, choices))}")
        if metadata.get("minimum") is not None and v < metadata["minimum"]:
            wanted = ("a positive integer" if metadata["minimum"] == 1 and isinstance(v, int)
                      else f"a number >= {metadata['minimum']}")
            raise ConfigError(f"{label} must be {wanted}, got {value!r}")
        if metadata.get("above") is not None and v <= metadata["above"]:
            raise ConfigError(f"{label} must be > {metadata['above']}, got {value!r}")


def check_fields(obj, owner: str | None = None) -> None:
    """Coerce every declared field of the dataclass instance ``obj`` to its type and apply its rules
    (works on frozen dataclasses too). Errors name the flag (``--batch-size``), or ``owner name``
    (``SynthAV knob audio_strength``) for options that are not flags."""
    hints = typing.get_type_hints(type(obj))
    for f in fields(obj):
        if "help" not in f.metadata:
            continue
        label = f"{owner} {f.name}" if owner else flag(f.name)
        if hints[f.name] in (dict, object):  # containers checked by their owner
            continue
        value = coerce(label, getattr(obj, f.name), hints[f.name])
        check_rules(label, value, f.metadata)
        object.__setattr__(obj, f.name, value)


def describe(cls) -> str:
    """One line per declared field: ``name (default): help``, for docstrings and errors."""
    lines = []
    for f in fields(cls):
        if "help" in f.metadata:
            default = f.default if f.default is not MISSING else f.default_factory()
            choices = f" (one of: {', '.join(map(str, f.metadata['choices']))})" if f.metadata.get("choices") else ""
            lines.append(f"    {f.name} ({default!r}): {f.metadata['help']}{choices}")
    return "\n".join(lines)
