"""A task's tables as the config sees them: a method's `model.*` / `loss.*` keys are its options
dataclasses' fields, a dataset's `data.*` keys its constructor's keyword-only parameters
(gpaco.data.registry), with their types and defaults."""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any

from gpaco.config.options import Condition, Entry, Option, TaskEntry, options_of
from gpaco.data.registry import ALIASES


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


def method_entry(method: Any) -> Entry:
    """A method (an entry with `model_options` / `loss_options` dataclasses) as an Entry."""
    return Entry({**options_of(method.model_options, "model"),
                  **options_of(method.loss_options, "loss")})


def task_entry(options: Mapping[str, Option], check: Callable[[Any], None],
               methods: Mapping[str, Any], datasets: Mapping[str, Callable[..., Any]],
               conditions: Mapping[str, Condition] = {}) -> TaskEntry:
    """A task's own keys, check and tables as the config sees them."""
    return TaskEntry(options, check, conditions=conditions, choices={
        "method": {name: method_entry(m) for name, m in methods.items()},
        "data.dataset": {name: Entry(keyword_options(c, "data", ALIASES))
                         for name, c in datasets.items()}})
