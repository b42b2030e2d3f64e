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
        "imb_factor": None,  # None: the dataset's own default (CIFAR/FMNIST 0.01, folders: all)
        "imb_type": "exp",
        "subset_seed": 0,  # picks the long-tailed subset (0 = the published one); `seed` does not
        "download": False,  # fetch CIFAR / Fashion-MNIST with torchvision's downloader
        "train_split": None,
        "val_split": None,
        "test_split": None,
        "num_classes": None,
        "views": ["cifar_regular", "cifar_sim"],  # 2 for paco/gpaco/multitask (1 is used twice)
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
        "joint_forward": False,  # GPaCo: both views in one backbone pass (faster; BN over both)
        "sync_bn": False,
        "shuffle_bn": False,
    },
    "loss": {
        "alpha": 0.05,
        "beta": 1.0,
        "gamma": 1.0,
        "temperature": 0.2,
        "label_smoothing": 0.0,
        "prior": True,  # log class prior on the center logits (multitask: Balanced Softmax vs CE)
        "tau": 1.0,  # logit_adjusted only: logits + tau * log prior
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
    ("data", "imb_type"): ("exp", "step"),
    ("output", "progress"): ("auto", "bar", "lines", "none"),
}
_POSITIVE = (("train", "batch_size"), ("schedule", "epochs"), ("train", "eval_every"),
             ("train", "eval_batch_size"), ("train", "log_every"), ("optim", "lr"),
             ("loss", "temperature"), ("data", "image_size"), ("model", "dim"))
# Types of the keys whose default is None (the others take their default's type).
_OPTIONAL = {("data", "root"): str, ("data", "imb_factor"): float, ("data", "train_split"): str,
             ("data", "val_split"): str, ("data", "test_split"): str, ("data", "num_classes"): int,
             ("data", "mean"): list, ("data", "std"): list, ("model", "head"): str,
             ("model", "freeze"): str, ("model", "ghost_bn"): int,
             ("train", "max_steps_per_epoch"): int, ("output", "dir"): str}


def get(cfg: Config, path: tuple[str, ...]) -> Any:
    node: Any = cfg
    for part in path:
        node = node[part]
    return node


def _set(cfg: Config, path: tuple[str, ...], value: Any) -> None:
    get(cfg, path[:-1])[path[-1]] = value


def _coerce(value: Any, kind: type, where: str) -> Any:
    """`value` as `kind`, accepting what YAML reads loosely (`5e-4` is a string to PyYAML)."""
    if kind is bool:
        if isinstance(value, bool):
            return value
    elif kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
    elif kind is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif isinstance(value, kind):
        return value
    raise UserError(f"{where} must be {kind.__name__}, not {value!r}")


def _leaf_items(schema: Config, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out = []
    for key, value in schema.items():
        path = prefix + (key,)
        out += _leaf_items(value, path) if isinstance(value, dict) else [(path, value)]
    return out


def validate(cfg: Config) -> None:
    """Coerce every value to its key's type and reject values no run could use, naming the key."""
    for path, default in _leaf_items(DEFAULTS):
        value, where = get(cfg, path), ".".join(path)
        kind = _OPTIONAL.get(path, type(default))
        if value is None and (default is None or path in _OPTIONAL):
            continue
        _set(cfg, path, _coerce(value, kind, where))
    for path, choices in _CHOICES.items():
        value = get(cfg, path)
        if value not in choices:
            raise UserError(f"{'.'.join(path)} must be one of {', '.join(choices)}, not {value!r}")
    for path in _POSITIVE:
        if get(cfg, path) <= 0:
            raise UserError(f"{'.'.join(path)} must be positive, not {get(cfg, path)!r}")
    data = cfg["data"]
    if not data["views"] or len(data["views"]) > 2:
        raise UserError("data.views must list one or two transform names")
    for key in ("mean", "std"):
        if data[key] is not None and len(data[key]) != 3:
            raise UserError(f"data.{key} must list 3 numbers (one per channel)")
    if not all(isinstance(m, int) for m in cfg["schedule"]["milestones"]):
        raise UserError("schedule.milestones must be a list of epoch numbers")


_PATHS = (("data", "root"), ("data", "train_split"), ("data", "val_split"),
          ("data", "test_split"), ("output", "dir"))


def absolute_paths(cfg: Config) -> None:
    """Make the config's paths absolute, so a saved run resumes from any working directory."""
    for path in _PATHS:
        value = get(cfg, path)
        if value is not None:
            _set(cfg, path, str(Path(value).expanduser().resolve()))


def dump(cfg: Config) -> str:
    return yaml.safe_dump(cfg, sort_keys=False)
