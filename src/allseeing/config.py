"""Typed configuration files: YAML presets and ``key=value`` overrides read into dataclasses, and checked.

Training presets (``configs/train/``), the vision stage's and evaluation suites (``configs/eval/``) are dataclasses
with defaults; all are read by :func:`load_config`. Unknown keys and missing required keys raise, naming the key
with its place (``tasks[2].max_new_tokens``); values are coerced to the field's type (overrides arrive as text);
nested dataclasses and lists of them are read the same way; each dataclass's ``check()``, when it has one, runs
last. Imports nothing of the package: every layer may use it.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A configuration that cannot be used: unknown or missing keys, wrong types, inconsistent values."""


def read_preset(path: str | Path) -> dict:
    """A YAML preset's mapping of keys to values."""
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"cannot read {path}: {error}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"{path}: a preset is a mapping of keys to values, got {type(values).__name__}")
    return values


def parse_overrides(overrides: list[str]) -> dict[str, str]:
    """``key=value`` arguments as a mapping (values still text; :func:`load_config` types them)."""
    values = {}
    for override in overrides:
        key, sep, value = override.partition("=")
        if not sep:
            raise ConfigError(f"override {override!r} is not key=value")
        values[key.strip()] = value
    return values


def load_config(path: str | Path | None, overrides: list[str], schema: type):
    """A preset file (or the defaults) with ``key=value`` overrides applied, as a checked instance of ``schema``."""
    values = {**(read_preset(path) if path is not None else {}), **parse_overrides(overrides)}
    try:
        return from_mapping(values, schema)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error}" if path is not None else str(error)) from None


def from_mapping(values: object, schema: type, where: str = ""):
    """``values`` (a mapping) as an instance of the dataclass ``schema``, fields coerced and nested ones read too."""
    if not isinstance(values, dict):
        raise ConfigError(f"{where or 'the configuration'}: expected a mapping of keys, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(schema)}
    prefix = f"{where}." if where else ""
    unknown = sorted(map(str, set(values) - set(fields)))
    if unknown:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{where + ': ' if where else ''}unknown keys {unknown}; known keys: {known}")
    required = [
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and name not in values
    ]
    if required:
        raise ConfigError(f"{where + ': ' if where else ''}missing keys {required}")
    hints = typing.get_type_hints(schema)
    instance = schema(**{name: _coerce(prefix + name, value, hints[name]) for name, value in values.items()})
    check = getattr(instance, "check", None)
    return check() if callable(check) else instance


def _coerce(name: str, value: object, hint: object) -> object:
    """``value`` as the field's type ``hint``, or a ConfigError naming the key."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            return None
        return _coerce(name, value, options[0])
    if dataclasses.is_dataclass(hint):
        return from_mapping(value, hint, name)
    if hint is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{name}: expected true or false, got {value!r}")
    if hint in (int, float):
        if isinstance(value, bool):  # a YAML true is an int to Python, not a number to a reader
            raise ConfigError(f"{name}: expected {hint.__name__}, got {value!r}")
        try:
            number = hint(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name}: expected {hint.__name__}, got {value!r}") from None
        if hint is int and isinstance(value, float) and value != number:
            raise ConfigError(f"{name}: expected an integer, got {value!r}")
        return number
    if hint is str:
        if value is None or isinstance(value, dict | list):
            raise ConfigError(f"{name}: expected text, got {value!r}")
        return str(value)
    if origin in (list, tuple):
        items = _items(name, value)
        args = typing.get_args(hint) or (object,)
        if origin is tuple and Ellipsis not in args:
            if len(items) != len(args):
                raise ConfigError(f"{name}: expected {len(args)} values, got {len(items)}")
            hints = list(args)
        else:  # list[X] or tuple[X, ...]
            hints = [args[0]] * len(items)
        coerced = [
            _coerce(f"{name}[{i}]", item, item_hint)
            for i, (item, item_hint) in enumerate(zip(items, hints, strict=True))
        ]
        return coerced if origin is list else tuple(coerced)
    return value


def _items(name: str, value: object) -> list:
    """A list given in YAML, or as JSON text in an override."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ConfigError(f"{name}: expected a list (JSON in an override), got {value!r}") from None
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{name}: expected a list, got {value!r}")
    return list(value)
