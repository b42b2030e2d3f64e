"""A dataset's `data.*` keys are its constructor's keyword-only parameters (gpaco.data.registry):
their types and defaults, as the config sees them."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from gpaco.config.options import Option


def keyword_options(factory: Callable[..., Any], section: str,
                    aliases: Mapping[str, str] = {}) -> dict[str, Option]:
    """The keyword-only parameters of `factory` (a class or a functools.partial of one) as
    `section.<name>` keys; `aliases` adds config keys read as another parameter."""
    bound = factory.keywords if isinstance(factory, functools.partial) else {}
    target = factory.func if isinstance(factory, functools.partial) else factory
    hints = typing.get_type_hints(target.__init__ if isinstance(target, type) else target)
    out = {}
    for p in inspect.signature(factory).parameters.values():
        if p.kind is p.KEYWORD_ONLY and p.name not in bound:
            out[f"{section}.{p.name}"] = Option(hints.get(p.name, Any), p.default)
    for alias, name in aliases.items():
        if f"{section}.{name}" in out:
            out[f"{section}.{alias}"] = out[f"{section}.{name}"]
    return out
