"""Datasets by name from a table of classes (each task has its own: gpaco.tasks), all with
torchvision's signature `Dataset(root, train=True, transform=None, *, keyword options)`.

A dataset's keyword-only parameters are the options it takes (the `data.*` config keys of the
same name; `data.val_split` is read as the validation side's `test_split`). `build_dataset`
refuses any other, so an option never applies silently to a dataset that ignores it.
"""
from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from gpaco.errors import UserError

# Config keys read under another name by the dataset.
ALIASES = {"val_split": "test_split"}


Table = Mapping[str, Callable[..., Dataset]]


def _parameters(name: str, table: Table) -> list[inspect.Parameter]:
    factory = table[name]
    bound = factory.keywords if isinstance(factory, functools.partial) else {}
    params = inspect.signature(factory).parameters.values()
    return [p for p in params if p.name not in bound]


def dataset_options(name: str, table: Table) -> dict[str, Any]:
    """The keyword options dataset `name` of `table` takes, with their defaults."""
    return {p.name: p.default for p in _parameters(name, table) if p.kind is p.KEYWORD_ONLY}


def datasets_using(key: str, table: Table) -> list[str]:
    """The datasets of `table` that take option `key` (a `data.*` config key name)."""
    key = ALIASES.get(key, key)
    return [name for name in table if key in dataset_options(name, table)]


def implied_splits(name: str, table: Table, root: str | Path | None, val_split: str | None,
                   test_split: str | None) -> tuple[str | None, str | None]:
    """The (validation, test) splits dataset `name` reads under `root`: the ones given, or
    for a dataset that finds its own (image folders: val/ and test/) the ones it finds."""
    find = getattr(table[name], "implied_splits", None)
    return find(root, val_split, test_split) if find is not None else (val_split, test_split)


def _needs_root(name: str, table: Table) -> bool:
    root = next(p for p in _parameters(name, table) if p.name == "root")
    return root.default is inspect.Parameter.empty


def build_dataset(name: str, root: str | Path | None = None, train: bool = True,
                  transform: Callable | None = None, *, table: Table,
                  **options: Any) -> Dataset:
    """Dataset `name` of `table` (default: the classification datasets), its train or test
    split; `options` set to None take the default."""
    if name not in table:
        raise UserError(f"unknown dataset {name!r}; choose from {', '.join(table)}")
    options = {k: v for k, v in options.items() if v is not None}
    allowed = dataset_options(name, table)
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise UserError(f"dataset {name!r} does not take {', '.join('data.' + k for k in unknown)}"
                        f"; it takes {', '.join('data.' + k for k in allowed) or 'no options'}")
    if root is None and _needs_root(name, table):
        raise UserError(f"dataset {name!r} needs a data root (data.root=...)")
    return table[name](root, train, transform, **options)
