"""Run configuration: the section defaults <- a recipe or YAML file (its `base:` chain first) <-
`key=value` overrides (a dotted path, `optim.lr=0.1`, or a unique key name, `lr=0.1`). Every key
must exist and its value is coerced to the key's type. config/ knows no task, method or dataset:
what they own comes in a `Catalogue` (gpaco.tasks.catalogue; gpaco.run passes it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gpaco.errors import UserError

from .layers import Layer, read_yaml
from .layers import parse_overrides as _parse
from .options import Catalogue
from .resolve import REFERENCE_BATCH, as_flat, flat_dict, known_keys, resolve, to_dict
from .sections import (Config, DataConfig, LossConfig, ModelConfig, OptimConfig, OriginConfig,
                       OutputConfig, ScheduleConfig, TrainConfig)

__all__ = ["Catalogue", "Config", "DataConfig", "LossConfig", "ModelConfig", "OptimConfig",
           "OriginConfig", "OutputConfig", "REFERENCE_BATCH", "ScheduleConfig", "TrainConfig",
           "as_flat", "dump", "flat_dict", "from_dict", "load_saved",
           "parse_overrides", "resolve", "to_dict"]


def parse_overrides(overrides: list[str], catalogue: Catalogue) -> Layer:
    """`key=value` items (YAML values) as a flat {dotted path: value} layer."""
    return _parse(list(overrides), known_keys(catalogue))


def from_dict(data: dict[str, Any], origin: str = "a saved config",
              overrides: list[str] | tuple[str, ...] = (), *, catalogue: Catalogue) -> Config:
    """The config saved as `to_dict` (a checkpoint's, a run's config.yaml), with overrides."""
    model = data.get("model")
    if isinstance(model, dict) and model.get("pretrained") is True:
        # Saved before weights had to be named; a saved run's weights come from its checkpoint.
        data = {**data, "model": {**model, "pretrained": False}}
    return resolve([(origin, data),
                    ("the command line", parse_overrides(list(overrides), catalogue))],
                   catalogue, saved=0)


def load_saved(path: str | Path, overrides: list[str] | tuple[str, ...] = (), *,
               catalogue: Catalogue) -> Config:
    """A run's saved config.yaml (see `from_dict`), with overrides."""
    path = Path(path)
    return from_dict(read_yaml(path.read_text(), str(path)), str(path), overrides,
                     catalogue=catalogue)


def dump(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
