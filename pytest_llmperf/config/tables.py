"""TOML tables into frozen dataclasses: unknown keys and values of the wrong type are refused, naming the
file, the dotted key and the fix (``config.profiles`` builds every profile section with it)."""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError

Check = Callable[[str, Any, Path], None]
"""``check(dotted key, value, file)``: a further check of one value, called before it is converted."""


def build(cls: type, data: Any, path: Path, where: str, check: Check | None = None):
    """``data`` (a TOML table of ``path`` at ``where``) as ``cls``, every key known and every value of its type."""
    if not isinstance(data, dict):
        raise InputError(path, f"[{where or 'top level'}] must be a table", "see the shipped profiles for the layout")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "source"}
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(data) - set(fields))
    if unknown:
        place = f"[{where}]" if where else "the top level"
        raise InputError(path, f"unknown key {unknown[0]!r} in {place}",
                         f"known keys there: {', '.join(fields)}")
    values = {}
    for key, value in data.items():
        dotted = f"{where}.{key}" if where else key
        values[key] = _convert(hints[key], value, path, dotted, check)
    return cls(**values)


def _convert(hint: Any, value: Any, path: Path, dotted: str, check: Check | None):
    if dataclasses.is_dataclass(hint):
        return build(hint, value, path, dotted, check)
    origin = typing.get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        return value  # only used for free-form engine settings
    if check is not None:
        check(dotted, value, path)
    if origin is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list) or not all(_is(item, v) for v in value):
            _type_error(path, dotted, value, f"a list of {item.__name__}")
        return [float(v) if item is float else v for v in value]
    if origin is dict:
        if not isinstance(value, dict):
            _type_error(path, dotted, value, "a table")
        _, item = typing.get_args(hint)
        return {key: _convert(item, entry, path, f"{dotted}.{key}", check) for key, entry in value.items()}
    if not _is(hint, value):
        _type_error(path, dotted, value, hint.__name__)
    return float(value) if hint is float else value


def _is(hint: Any, value: Any) -> bool:
    if hint is Any:
        return True
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _type_error(path: Path, dotted: str, value: Any, expected: str):
    raise InputError(path, f"{dotted} = {value!r} is a {type(value).__name__}, expected {expected}",
                     f"change {dotted} to {expected}")
