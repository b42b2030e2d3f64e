"""What the config needs to know of a choice: the keys it owns, each with type and default.

Owners declare their keys once, where they live: a small dataclass of options (a method's
`loss.*`, a task's own keys, an optimiser's) or a constructor's keyword-only parameters (a
dataset). `Catalogue` gathers the tables a run chooses from; config/ receives it and never
names a task, method or dataset itself.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Metadata of an option field: the value range it must be in (config/resolve.py checks it).
POSITIVE: Mapping[str, str] = {"check": "positive"}
NON_NEGATIVE: Mapping[str, str] = {"check": "non_negative"}


@dataclass(frozen=True)
class Option:
    kind: Any  # a type hint
    default: Any
    check: str | None = None  # "positive" | "non_negative"


Options = Mapping[str, Option]  # dotted config key -> option


def options_of(cls: type, section: str) -> dict[str, Option]:
    """The fields of options dataclass `cls` as `section.<field>` keys."""
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING
                   else None)
        out[f"{section}.{f.name}"] = Option(hints[f.name], default, f.metadata.get("check"))
    return out


@dataclass
class NoOptions:
    """The options of a choice that has none."""


@dataclass(frozen=True)
class Entry:
    """One entry of a table as the config sees it: the keys it owns and a check of a resolved
    config (`check(cfg)` raises UserError)."""

    options: Options = field(default_factory=dict)
    check: Callable[[Any], None] | None = None


# Keys that act only under some setting of other keys: key -> (those keys, whether the key
# acts given the flat config, where it acts). Set where it cannot act, such a key is an error,
# or dropped when a layer before the one that made the setting set it.
Condition = tuple[tuple[str, ...], Callable[[dict[str, Any]], bool], str]


@dataclass(frozen=True)
class TaskEntry(Entry):
    """A task: its own keys, its tables (`"method"` and `"data.dataset"` -> name -> Entry) and
    the conditions of its keys."""

    choices: Mapping[str, Mapping[str, Entry]] = field(default_factory=dict)
    conditions: Mapping[str, Condition] = field(default_factory=dict)

    def all_options(self) -> dict[str, Option]:
        """Its own keys and every key an entry of its tables owns (the first declaration)."""
        out = dict(self.options)
        for table in self.choices.values():
            for entry in table.values():
                out.update({k: v for k, v in entry.options.items() if k not in out})
        return out


@dataclass(frozen=True)
class Catalogue:
    """Everything a config may choose: tasks, and the task-independent tables (`"optim.name"`,
    `"schedule.name"` -> name -> Entry)."""

    tasks: Mapping[str, TaskEntry]
    choices: Mapping[str, Mapping[str, Entry]]

    def owned_keys(self) -> dict[str, Option]:
        """Every key some choice owns (the first declaration's type, for key look-up)."""
        out: dict[str, Option] = {}
        for owned in [t.all_options() for t in self.tasks.values()] + [
                e.options for table in self.choices.values() for e in table.values()]:
            out.update({k: v for k, v in owned.items() if k not in out})
        return out
