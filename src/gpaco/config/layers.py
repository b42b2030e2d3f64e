"""The layers of a config: YAML mappings (recipes, files: gpaco.recipes), `key=value` overrides.

A layer is a mapping of nested sections or dotted keys. Keys are checked against `known` (every
shared key and every key some choice owns: resolve.known_keys); which of them apply to the
run's choices is decided by the resolution.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from gpaco.errors import UserError
from gpaco.messages import invalid_yaml, unknown_key

Layer = dict[str, Any]
# Keys renamed since earlier versions, so that their saved config.yaml files still resume.
RENAMED = {"data.on_gpu": "data.batched_augment"}


def read_yaml(text: str, origin: str) -> Layer:
    try:
        loaded = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise invalid_yaml(origin, err) from None
    if not isinstance(loaded, dict):
        raise UserError(f"{origin}: a config must be a YAML mapping")
    return loaded


def resolve_key(key: str, known: Mapping[str, Any]) -> str:
    """Dotted path of `key`: itself if it is a full path, else the unique key of that name."""
    key = RENAMED.get(key, key)
    if key in known:
        return key
    matches = [p for p in known if p.split(".")[-1] == key]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UserError(f"ambiguous key {key!r}: say one of {', '.join(matches)}")
    raise unknown_key(key, list(known))


def parse_overrides(overrides: list[str], known: Mapping[str, Any]) -> Layer:
    """`key=value` items (YAML values) as a flat {dotted path: value} layer."""
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UserError(f"override {item!r} is not of the form key=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        out[resolve_key(key.strip(), known)] = value
    return out


def flatten(layer: Layer, origin: str, known: Mapping[str, Any], prefix: str = "") -> Layer:
    """A nested layer as {dotted path: value}; a key nobody declares is an error."""
    out: dict[str, Any] = {}
    for key, value in layer.items():
        path = RENAMED.get(prefix + str(key), prefix + str(key))
        if path in known:
            out[path] = value
        elif any(leaf.startswith(path + ".") for leaf in known):
            if not isinstance(value, dict):
                raise UserError(f"{origin}: config key {path!r} must be a mapping")
            out.update(flatten(value, origin, known, path + "."))
        else:
            raise UserError(f"{origin}: unknown config key {path!r}")
    return out
