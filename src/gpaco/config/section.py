"""A config section: its shared keys (class annotations with defaults, config/sections.py) and the
keys the run's chosen method, dataset, task, optimiser or schedule own, added by the resolution
in their owner's order. A key another choice owns reads as None (`cfg.loss.tau` of any run); a
name nobody declares is an AttributeError."""

from __future__ import annotations

import typing
from typing import Any


class Section:
    """Keys in order, as attributes. `Section(*shared, **keys)`: positional values fill the
    shared keys in declaration order, keywords set shared keys or add owned ones."""

    def __init__(self, *args: Any, **values: Any):
        shared = self.shared_keys()
        if len(args) > len(shared):
            raise TypeError(f"{type(self).__name__} takes {len(shared)} positional values")
        values = {**dict(zip(shared, args)), **values}
        keys = list(shared) + [k for k in values if k not in shared]
        for key in shared:
            if key not in values:
                values[key] = self._default_of(key)
        object.__setattr__(self, "_keys", tuple(keys))
        for key in keys:
            object.__setattr__(self, key, values[key])

    @classmethod
    def shared_keys(cls) -> tuple[str, ...]:
        """The keys every run has in this section, in declaration order."""
        names: list[str] = []
        for klass in reversed(cls.__mro__):
            for name in klass.__dict__.get("__annotations__", {}):
                if not name.startswith("_") and name not in names:
                    names.append(name)
        return tuple(names)

    @classmethod
    def _default_of(cls, key: str) -> Any:
        if hasattr(cls, key):
            return _default(getattr(cls, key))
        kind = cls.shared_types()[key]  # a sub-section without a default: its own defaults
        return kind() if isinstance(kind, type) and issubclass(kind, Section) else None

    @classmethod
    def shared_types(cls) -> dict[str, Any]:
        hints = typing.get_type_hints(cls)
        return {k: hints[k] for k in cls.shared_keys()}

    def keys(self) -> tuple[str, ...]:
        """The keys this run has: shared and owned by its choices."""
        return self._keys

    def inactive_keys(self) -> tuple[str, ...]:
        """Keys other choices own: they read as None, and print as null so that `gpaco config`
        lists every key a user could set."""
        return self.__dict__.get("_inactive_keys", ())

    def with_inactive(self, names: tuple[str, ...]) -> Section:
        """Let the keys `names` (owned by choices this run did not make) read as None."""
        object.__setattr__(self, "_inactive_keys", tuple(n for n in names if n not in self._keys))
        return self

    def __getattr__(self, name: str) -> Any:
        if not name.startswith("_") and name in self.__dict__.get("_inactive_keys", ()):
            return self.__dict__.get("_inactive_sections", {}).get(name)
        raise AttributeError(f"{type(self).__name__} has no key {name!r}")

    def replace(self, **values: Any) -> Section:
        """A copy with `values` changed (keys this section has)."""
        unknown = set(values) - set(self._keys)
        if unknown:
            raise KeyError(f"{type(self).__name__} has no key {', '.join(sorted(unknown))}")
        copy = type(self)(**{k: values.get(k, getattr(self, k)) for k in self._keys})
        copy.__dict__.update({k: v for k, v in self.__dict__.items()
                              if k in ("_inactive_keys", "_inactive_sections")})
        return copy

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and self._keys == other._keys  # type: ignore[attr-defined]
                and all(getattr(self, k) == getattr(other, k) for k in self._keys))

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._keys)
        return f"{type(self).__name__}({inner})"


def _default(value: Any) -> Any:
    """A class-level default, copied when mutable so that instances never share it."""
    return list(value) if isinstance(value, list) else (dict(value) if isinstance(value, dict)
                                                          else value)
