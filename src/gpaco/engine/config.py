"""Run configuration: defaults, YAML recipes (with `base:` inheritance) and `key=value` overrides.

A config is a plain nested dict with a fixed schema (DEFAULTS). Every recipe key and every
command-line override must name a key of that schema, so a typo is an error, not a silent no-op.
Overrides accept a full dotted path (`optim.lr=0.1`) or a leaf name that is unique in the schema
(`lr=0.1`, `epochs=10`).
"""

from __future__ import annotations

import copy
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from gpaco.errors import UserError

Config = dict[str, Any]

DEFAULTS: Config = {
    "name": "run",
    "description": "",
    "method": "paco",  # paco | gpaco | ce | balanced_softmax | logit_adjusted | multitask
    "seed": 0,
    "data": {
        "dataset": "embedded",
        "root": None,
        "imb_factor": 0.01,
        "imb_type": "exp",
        "train_split": None,
        "val_split": None,
        "test_split": None,
        "num_classes": None,
        "views": ["cifar_regular", "cifar_sim"],
        "test_transform": "cifar_test",
        "image_size": 32,
        "mean": None,  # None: the transform's default for its family
        "std": None,
        "randaug_n": 2,
        "randaug_m": 10,
        "workers": 0,
        "on_gpu": False,  # keep the dataset as uint8 on the device and augment in batches there
        "on_bad_image": "error",  # error | skip
    },
    "model": {
        "backbone": "resnet32",
        "pretrained": False,
        "dim": 128,
        "queue_size": 8192,
        "momentum": 0.999,
        "head": None,  # None: the method's default ("bn" PaCo, "nobn" GPaCo)
        "freeze": None,  # None | convs_but_last_block (Places-LT fine-tuning)
        "ghost_bn": None,  # group size for ghost batch norm, or None
        "sync_bn": False,
        "shuffle_bn": False,
    },
    "loss": {
        "alpha": 0.05,
        "beta": 1.0,
        "gamma": 1.0,
        "temperature": 0.2,
        "label_smoothing": 0.0,
        "prior": True,  # add log class prior to the center logits (long-tailed data)
    },
    "optim": {
        "lr": 0.05,
        "momentum": 0.9,
        "weight_decay": 5e-4,
        "nesterov": False,
    },
    "schedule": {
        "name": "step",  # step | cosine
        "epochs": 400,
        "warmup_epochs": 10,
        "milestones": [320, 360],
        "decay": 0.1,
    },
    "train": {
        "batch_size": 128,  # global batch over all processes
        "device": "auto",  # auto | cpu | cuda | cuda:N
        "amp": "none",  # none | bf16 | fp16
        "channels_last": False,
        "compile": False,
        "cuda_graph": False,  # capture the whole step as a CUDA graph (needs data.on_gpu)
        "eval_every": 1,
        "eval_batch_size": 512,
        "log_every": 20,
        "max_steps_per_epoch": None,  # cap steps per epoch (smoke tests, benchmarks)
        "deterministic": False,
    },
    "output": {
        "dir": None,  # default: runs/<name>
        "tensorboard": True,
        "plots": True,
        "progress": "auto",  # auto | bar | lines | none
    },
}

_SECTIONS = tuple(k for k, v in DEFAULTS.items() if isinstance(v, dict))


def list_recipes() -> list[str]:
    """Names of the YAML recipes shipped in `gpaco/recipes`."""
    folder = resources.files("gpaco") / "recipes"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(text: str, origin: str) -> Config:
    try:
        loaded = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise UserError(f"{origin}: not valid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(loaded, dict):
        raise UserError(f"{origin}: a config must be a YAML mapping")
    return loaded


def _recipe_text(name: str) -> str:
    path = resources.files("gpaco") / "recipes" / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(list_recipes())
        raise UserError(f"unknown recipe {name!r}; known recipes: {known}")
    return path.read_text()


def _load_layers(text: str, origin: str, seen: tuple[str, ...] = ()) -> list[Config]:
    """The chain of configs from the root `base:` down to this one."""
    layer = _read_yaml(text, origin)
    base = layer.pop("base", None)
    if base is None:
        return [layer]
    if base in seen:
        raise UserError(f"{origin}: recipe inheritance loops through {base!r}")
    return _load_layers(_recipe_text(base), f"recipe {base}", seen + (base,)) + [layer]


def _merge(into: Config, layer: Config, schema: Config, where: str) -> None:
    for key, value in layer.items():
        path = f"{where}{key}"
        if key not in schema:
            raise UserError(f"unknown config key {path!r}")
        if isinstance(schema[key], dict):
            if not isinstance(value, dict):
                raise UserError(f"config key {path!r} must be a mapping")
            _merge(into[key], value, schema[key], path + ".")
        else:
            into[key] = value


def load_config(recipe: str | None = None, config_file: str | None = None,
                overrides: list[str] = ()) -> Config:
    """Defaults <- recipe or YAML file (with its `base:` chain) <- `key=value` overrides."""
    if recipe and config_file:
        raise UserError("give --recipe or --config, not both")
    layers: list[Config] = []
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise UserError(f"config file not found: {config_file}")
        layers = _load_layers(path.read_text(), str(path))
    else:
        name = recipe or "default"
        layers = _load_layers(_recipe_text(name), f"recipe {name}")
    return resolve(layers, overrides)


def resolve(layers: list[Config], overrides: list[str] = ()) -> Config:
    """Defaults <- each layer in turn <- overrides, checked against the schema."""
    cfg = copy.deepcopy(DEFAULTS)
    for layer in layers:
        _merge(cfg, layer, DEFAULTS, "")
    apply_overrides(cfg, list(overrides))
    validate(cfg)
    return cfg


def _leaf_paths(schema: Config, prefix: str = "") -> list[str]:
    out = []
    for key, value in schema.items():
        out += _leaf_paths(value, f"{prefix}{key}.") if isinstance(value, dict) else [prefix + key]
    return out


def resolve_key(key: str) -> list[str]:
    """Dotted path of `key`: itself if it is a full path, else the unique leaf of that name."""
    paths = _leaf_paths(DEFAULTS)
    if key in paths:
        return key.split(".")
    matches = [p for p in paths if p.split(".")[-1] == key]
    if len(matches) == 1:
        return matches[0].split(".")
    if matches:
        raise UserError(f"ambiguous key {key!r}: say one of {', '.join(matches)}")
    raise UserError(f"unknown config key {key!r}")


def apply_overrides(cfg: Config, overrides: list[str]) -> None:
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise UserError(f"override {item!r} is not of the form key=value")
        path = resolve_key(key.strip())
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError:
            value = raw
        node = cfg
        for part in path[:-1]:
            node = node[part]
        node[path[-1]] = value


_CHOICES = {
    ("method",): ("paco", "gpaco", "ce", "balanced_softmax", "logit_adjusted", "multitask"),
    ("train", "amp"): ("none", "bf16", "fp16"),
    ("schedule", "name"): ("step", "cosine"),
    ("data", "on_bad_image"): ("error", "skip"),
    ("output", "progress"): ("auto", "bar", "lines", "none"),
}
_POSITIVE_INTS = (("train", "batch_size"), ("schedule", "epochs"), ("train", "eval_every"),
                  ("train", "eval_batch_size"))


def get(cfg: Config, path: tuple[str, ...]) -> Any:
    node: Any = cfg
    for part in path:
        node = node[part]
    return node


def validate(cfg: Config) -> None:
    """Reject values no run could use, with the key named."""
    for path, choices in _CHOICES.items():
        value = get(cfg, path)
        if value not in choices:
            raise UserError(f"{'.'.join(path)} must be one of {', '.join(choices)}, not {value!r}")
    for path in _POSITIVE_INTS:
        value = get(cfg, path)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"{'.'.join(path)} must be a positive integer, not {value!r}")
    for path in (("optim", "lr"), ("loss", "temperature")):
        value = get(cfg, path)
        if not isinstance(value, (int, float)) or value <= 0:
            raise UserError(f"{'.'.join(path)} must be a positive number, not {value!r}")
    views = cfg["data"]["views"]
    if not isinstance(views, list) or not views:
        raise UserError("data.views must be a non-empty list of transform names")


def dump(cfg: Config) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
