"""Values as the type a key declares (accepting what YAML reads loosely: `5e-4` is a string)."""

from __future__ import annotations

import types
import typing
from typing import Any, Literal, Union

from gpaco.errors import UserError


def _type_name(kind: Any) -> str:
    return getattr(kind, "__name__", None) or str(kind)


def coerce(value: Any, kind: Any, where: str) -> Any:
    """`value` as type hint `kind` (accepting what YAML reads loosely: `5e-4` is a string)."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if bool in inner and isinstance(value, bool):
            return value  # `bool | str`: true/false stay booleans, anything else is the str
        if len(inner) > 1:
            inner = [a for a in inner if a is not bool]
        return _first_fit(value, inner, where)
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"{where} must be a mapping, not {value!r}")
        return {str(k): coerce(v, args[1], f"{where}.{k}") for k, v in value.items()}
    if kind is Any:
        return value
    if origin is Literal:
        if value not in args:
            raise UserError(f"{where} must be one of {', '.join(map(str, args))}, not {value!r}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise UserError(f"{where} must be list, not {value!r}")
        return [coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
    return _scalar(value, kind, where)


def _first_fit(value: Any, kinds: list[Any], where: str) -> Any:
    """`value` as the first of `kinds` it fits (`int | Literal["auto"]`: 4 or auto)."""
    for kind in kinds:
        try:
            return coerce(value, kind, where)
        except UserError:
            if len(kinds) == 1:
                raise
    names = " or ".join(", ".join(map(str, typing.get_args(k))) if typing.get_origin(k) is Literal
                        else _type_name(k) for k in kinds)
    raise UserError(f"{where} must be {names}, not {value!r}")


def _scalar(value: Any, kind: type, where: str) -> Any:
    if isinstance(value, bool) and kind is not bool:
        raise UserError(f"{where} must be {_type_name(kind)}, not {value!r}")
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int):
        return value
    if kind is float:
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    if kind is str and isinstance(value, (str, int, float)):
        return str(value)
    raise UserError(f"{where} must be {_type_name(kind)}, not {value!r}")
