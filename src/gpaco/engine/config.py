"""Run configuration: typed sections, YAML recipes with `base:` inheritance, `key=value` overrides.

A config is layered: the section defaults below <- a recipe or YAML file (the root of its
`base:` chain first) <- command-line overrides. Every key must exist (a typo is an error), and
its value is coerced to the field's type. Overrides take a dotted path (`optim.lr=0.1`) or a leaf
name that is unique (`lr=0.1`, `epochs=10`).

Some keys belong to one choice: the task's own keys (gpaco.tasks), the method's `model.*` /
`loss.*` options (the task's method table), the dataset's `data.*` keyword arguments (the task's
dataset table), the optimiser's options (`OPTIMIZER_OPTIONS`) and the schedule's
(`SCHEDULE_OPTIONS`).
Their default None means "the choice's own default", which the resolved config then shows. A key
the choice does not use is an error naming the key and what uses it, unless it was set by a layer
*before* the one that made the choice (a recipe's PaCo `loss.alpha` when the command line says
`method=ce`): such keys belonged to the earlier choice and are dropped.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Literal, Union

import yaml

from gpaco.data.registry import SPLITS_UNDER_ROOT, dataset_defaults, datasets_using
from gpaco.errors import UserError
from gpaco.messages import unknown_key
from gpaco.tasks import TASKS, Task, methods_using, task_of_dataset, tasks_using

from .pretrained import weights_file


@dataclass
class DataConfig:
    dataset: str = "embedded"  # a key of gpaco.data.registry.DATASETS
    root: str | None = None
    # The dataset's own keyword arguments (None: its default; refused where it takes none).
    imb_factor: float | None = None
    imb_type: Literal["exp", "step"] | None = None
    subset_seed: int | None = None  # picks the long-tailed subset (0: the published one)
    download: bool | None = None
    train_split: str | None = None
    val_split: str | None = None  # read like test_split; selects the best epoch, never the test
    test_split: str | None = None
    num_classes: int | None = None
    on_bad_image: Literal["error", "skip"] | None = None
    # Transforms (gpaco.data.transforms); 2 views for two-view methods (1 is used twice).
    views: list[str] = field(default_factory=lambda: ["cifar_regular", "cifar_sim"])
    test_transform: str = "cifar_test"
    image_size: int = 32
    mean: list[float] | None = None  # None: the transform family's default
    std: list[float] | None = None
    randaug_n: int = 2
    randaug_m: int = 10
    # Batch mixing of the CE baseline (timm's Mixup: alpha of mixup / cutmix, 0 = off; each
    # batch one or the other, with loss.label_smoothing folded into the soft targets).
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    # DataLoader worker processes; auto: from the usable cores (gpaco.engine.cpu)
    workers: int | Literal["auto"] = "auto"
    # Keep an in-memory dataset as uint8 on the training device (CPU or GPU) and augment whole
    # batches there instead of image by image in loader workers.
    batched_augment: bool = False
    # Segmentation (gpaco.tasks; None: the task's default): training crop (H, W), the rescale
    # base (long, short side; mmseg's img_scale, also the test scale), the random rescale's
    # ratio range and the crop's largest class share; `annotations`: ADE20K's folder name.
    crop_size: list[int] | None = None
    scale: list[int] | None = None
    ratio_range: list[float] | None = None
    cat_max_ratio: float | None = None
    annotations: str | None = None


@dataclass
class ModelConfig:
    backbone: str = "resnet32"
    # false, or the exact weights: a name of the backbone's released weights (torchvision's
    # IMAGENET1K_V1, a timm tag) or a local file (torchvision-style .pth, an authors' or gpaco
    # checkpoint; gpaco.engine.pretrained). Never `true`: "the best available" changes over time.
    pretrained: bool | str = False
    backbone_kwargs: dict[str, Any] | None = None  # create_backbone options (a ViT's pooling)
    freeze: Literal["convs_but_last_block"] | None = None
    # Initialise the classifier (the centers) trunc-normal with this std and bias 0, as MAE's
    # head (2e-5); None: PyTorch's default init.
    classifier_init_std: float | None = None
    ghost_bn: int | None = None  # batch-norm statistics over groups of this many samples
    sync_bn: bool = False
    # The method's model options (gpaco.methods.METHODS; None: the method's default).
    dim: int | None = None
    queue_size: int | None = None
    head: Literal["bn", "nobn", "gelu"] | None = None  # gelu: the authors' MAE-ViT head
    momentum: float | None = None
    shuffle_bn: bool | None = None
    joint_forward: bool | None = None
    # Segmentation (gpaco.tasks): the smp decoder, its width, the FCN aux head's width, the
    # DeepLabV3+ encoder's output stride (8: the authors' D8 ResNets). model.backbone is the
    # encoder, model.pretrained a local encoder weight file.
    arch: Literal["upernet", "deeplabv3plus"] | None = None
    decoder_channels: int | None = None
    aux_channels: int | None = None
    output_stride: int | None = None


@dataclass
class LossConfig:
    """The method's loss options (gpaco.methods.METHODS; None: the method's default)."""

    alpha: float | None = None
    beta: float | None = None
    gamma: float | None = None
    temperature: float | None = None
    label_smoothing: float | None = None
    prior: bool | None = None  # log class prior on the center logits
    tau: float | None = None
    # multitask: weight each SupCon anchor by its class's effective-number weight (beta 0.999 in
    # the authors' ImageNet-LT loss); None: unweighted, as their CIFAR loss.
    effective_number_beta: float | None = None
    num_samples: int | None = None  # segmentation GPaCo: pixels per image (-1: all)
    # Segmentation (gpaco.tasks): the FCN aux CE's weight; CE mean over all or valid pixels.
    aux_weight: float | None = None
    ce_average: Literal["all", "valid"] | None = None


@dataclass
class OptimConfig:
    name: Literal["sgd", "adamw"] = "sgd"
    lr: float = 0.05  # the peak lr; see blr
    # MAE's base lr: lr = blr * train.batch_size / 256 (the effective batch). A later layer
    # that sets lr drops it.
    blr: float | None = None
    weight_decay: float = 5e-4
    # The optimiser's own options (OPTIMIZER_OPTIONS; None: its default).
    momentum: float | None = None
    nesterov: bool | None = None
    betas: list[float] | None = None
    layer_decay: float | None = None  # ViT layer-wise lr decay (engine/param_groups.py)


@dataclass
class ScheduleConfig:
    # step / cosine: set once per epoch; warmup_cosine (MAE) / poly (mmseg): at every
    # optimiser step from the fractional epoch (gpaco.engine.schedule).
    name: Literal["step", "cosine", "warmup_cosine", "poly"] = "step"
    epochs: int = 400
    warmup_epochs: int = 10
    # The schedule's own options (SCHEDULE_OPTIONS; None: its default).
    milestones: list[int] | None = None
    decay: float | None = None
    min_lr: float | None = None
    power: float | None = None


@dataclass
class TrainConfig:
    batch_size: int = 128  # global batch over all processes, per optimiser step
    # Split each process's batch into this many micro-batches, one backward each, one
    # optimiser step: the same batch_size in less memory.
    accum_iter: int = 1
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: Literal["none", "bf16", "fp16"] = "none"
    channels_last: bool = False
    compile: bool = False
    cuda_graph: bool = False  # capture the whole step as a CUDA graph (needs batched_augment)
    eval_every: int = 1  # test-set evaluation (curves); the last epoch always
    val_every: int = 1  # validation (selects the best epoch), where the data has a val split
    eval_batch_size: int = 512
    log_every: int = 20
    max_steps_per_epoch: int | None = None  # cap steps per epoch (smoke tests, benchmarks)
    # Also write last.pt every N steps inside an epoch; --resume continues there exactly.
    checkpoint_every_steps: int | None = None
    threads: int | Literal["auto"] = "auto"  # CPU intra-op threads; auto: gpaco.engine.cpu


@dataclass
class InferenceConfig:
    """Segmentation evaluation (gpaco.segmentation.inference; None: the task's default)."""

    mode: Literal["whole", "slide"] | None = None
    crop: list[int] | None = None  # slide window (H, W)
    stride: list[int] | None = None  # slide step (H, W)
    ratios: list[float] | None = None  # test scales x data.scale (1.0: single scale)
    flip: bool | None = None  # also average the horizontally flipped image
    predictions: int | None = None  # test images drawn in predictions.png


@dataclass
class OutputConfig:
    dir: str | None = None  # default: runs/<name>
    tensorboard: bool = True
    plots: bool = True
    progress: Literal["auto", "bar", "lines", "none"] = "auto"


@dataclass
class OriginConfig:
    """Where a recipe's values come from (`gpaco recipes` shows it); changes nothing in a run.

    values: "authors" (every value from the authors' launcher `source`), "extrapolated" (no
    launcher: the closest one's values on the authors' code path), "reconstruction" (their
    launcher exists but its script cannot run), "demo" (gpaco's own small settings).
    """

    paper: str | None = None  # the number it targets, e.g. "top-1 57.0 (PaCo, ICCV 2021)"
    source: str | None = None  # the authors' launcher (path in their repository)
    values: Literal["authors", "extrapolated", "reconstruction", "demo"] | None = None
    differences: list[str] = field(default_factory=list)  # deliberate, each with its reason


@dataclass
class Config:
    name: str = "run"
    description: str = ""
    origin: OriginConfig = field(default_factory=OriginConfig)
    task: str = "classification"  # a key of gpaco.tasks.TASKS
    method: str = "paco"  # a key of the task's method table (classification: gpaco.methods)
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    output: OutputConfig = field(default_factory=OutputConfig)


# The options each optimiser / schedule uses, with their defaults (the one table of them).
OPTIMIZER_OPTIONS: dict[str, dict[str, Any]] = {
    "sgd": {"momentum": 0.9, "nesterov": False},
    "adamw": {"betas": [0.9, 0.999], "layer_decay": 1.0},
}
SCHEDULE_OPTIONS: dict[str, dict[str, Any]] = {
    "step": {"milestones": [320, 360], "decay": 0.1},
    "cosine": {},
    "warmup_cosine": {"min_lr": 1e-6},
    "poly": {"min_lr": 0.0, "power": 0.9},
}
# Keys renamed since earlier versions, so that their saved config.yaml files still resume.
RENAMED = {"data.on_gpu": "data.batched_augment"}

Layer = dict[str, Any]


# -- schema ---------------------------------------------------------------------------------
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_section(kind: Any) -> bool:
    return dataclasses.is_dataclass(kind)


def leaf_types(cls: type = Config, prefix: str = "") -> dict[str, Any]:
    """Dotted path -> type hint of every leaf key of the schema."""
    out: dict[str, Any] = {}
    for name, kind in _hints(cls).items():
        if _is_section(kind):
            out.update(leaf_types(kind, f"{prefix}{name}."))
        else:
            out[prefix + name] = kind
    return out


LEAVES = leaf_types()


def _users(task: Task, path: str, tables: str) -> list[str]:
    section, key = path.split(".", 1)
    if tables == "methods":
        return methods_using(task, section, key) if section in ("model", "loss") else []
    return datasets_using(key, task.datasets) if section == "data" else []


def dependents(task_name: str) -> dict[str, tuple[str, Any]]:
    """Key -> (the choice it belongs to, values of that choice that use it), for a run of task
    `task_name`: a method or dataset key no choice of this task uses belongs to the tasks whose
    methods or datasets do."""
    task = TASKS[task_name]
    deps: dict[str, tuple[str, Any]] = {}
    for path in LEAVES:
        if tasks_using(path):
            deps[path] = ("task", tasks_using(path))
        for tables, choice in (("methods", "method"), ("datasets", "data.dataset")):
            if "." in path and any(_users(t, path, tables) for t in TASKS.values()):
                users = _users(task, path, tables)
                deps[path] = (choice, users) if users else (
                    "task", [n for n, t in TASKS.items() if _users(t, path, tables)])
    for section, choice, table in (("optim", "optim.name", OPTIMIZER_OPTIONS),
                                   ("schedule", "schedule.name", SCHEDULE_OPTIONS)):
        for key in {k for options in table.values() for k in options}:
            deps[f"{section}.{key}"] = (choice, [n for n, o in table.items() if key in o])
    return deps


RANDAUGMENT_VIEWS = ("randcls", "randclsstack")


def _randaugment_on_cpu(flat: dict[str, Any]) -> bool:
    names = [*(flat["data.views"] or []), flat["data.test_transform"]]
    return not flat["data.batched_augment"] and any(n in RANDAUGMENT_VIEWS for n in names)


def _loader_workers(flat: dict[str, Any]) -> bool:
    workers = flat["data.workers"]
    return not flat["data.batched_augment"] or workers == "auto" or workers == 0


def _subsampled(flat: dict[str, Any]) -> bool:
    return flat["data.imb_factor"] is not None


# Keys that act only under some setting of other keys: key -> (those keys, whether the key
# acts, where it acts). Set where it cannot act, it is an error, or dropped when a layer before
# the one that made the setting set it (as for DEPENDENTS).
Condition = tuple[tuple[str, ...], Callable[[dict[str, Any]], bool], str]
_RANDAUGMENT: Condition = (("data.views", "data.test_transform", "data.batched_augment"),
                           _randaugment_on_cpu,
                           "RandAugment views (randcls, randclsstack) on the CPU loader")
_SUBSET: Condition = (("data.imb_factor",), _subsampled, "a long-tailed subset (data.imb_factor)")
CONDITIONAL: dict[str, Condition] = {
    "data.randaug_n": _RANDAUGMENT,
    "data.randaug_m": _RANDAUGMENT,
    "data.workers": (("data.batched_augment",), _loader_workers,
                     "the DataLoader (data.batched_augment=false); batched augmentation has no "
                     "workers"),
    "data.subset_seed": _SUBSET,
    "data.imb_type": _SUBSET,
}


# -- recipes and files ------------------------------------------------------------------------
def list_recipes() -> list[str]:
    """Names of the YAML recipes shipped in `gpaco/recipes`."""
    folder = resources.files("gpaco") / "recipes"
    return sorted(p.name[: -len(".yaml")] for p in folder.iterdir() if p.name.endswith(".yaml"))


def _read_yaml(text: str, origin: str) -> Layer:
    try:
        loaded = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)  # where the parser stopped, 0-based
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{origin}: not valid YAML{where} ({problem})") from None
    if not isinstance(loaded, dict):
        raise UserError(f"{origin}: a config must be a YAML mapping")
    return loaded


def _recipe_text(name: str) -> str:
    path = resources.files("gpaco") / "recipes" / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown recipe {name!r}; known recipes: {', '.join(list_recipes())}")
    return path.read_text()


def _load_layers(text: str, origin: str, seen: tuple[str, ...] = ()) -> list[tuple[str, Layer]]:
    """(origin, layer) from the root of the `base:` chain down to this one."""
    layer = _read_yaml(text, origin)
    base = layer.pop("base", None)
    if base is None:
        return [(origin, layer)]
    if base in seen:
        raise UserError(f"{origin}: recipe inheritance loops through {base!r}")
    return _load_layers(_recipe_text(base), f"recipe {base}", seen + (base,)) + [(origin, layer)]


def load_config(recipe: str | None = None, config_file: str | None = None,
                overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Defaults <- recipe or YAML file (with its `base:` chain) <- `key=value` overrides.

    With neither a recipe nor a file, the run starts from the `default` recipe, except when the
    overrides choose a dataset (`data.dataset=...`): then from the section defaults, so that the
    default recipe's settings for its embedded data never reach the user's own.
    """
    if recipe and config_file:
        raise UserError("give --recipe or --config, not both")
    override_layer = parse_overrides(list(overrides))
    if config_file:
        path = Path(config_file)
        if not path.is_file():
            raise UserError(f"config file not found: {config_file}")
        layers = _load_layers(path.read_text(), str(path))
    elif recipe or "data.dataset" not in override_layer:
        name = recipe or "default"
        layers = _load_layers(_recipe_text(name), f"recipe {name}")
    else:
        layers = []
    return resolve([*layers, ("the command line", override_layer)])


# -- overrides ------------------------------------------------------------------------------
def resolve_key(key: str) -> str:
    """Dotted path of `key`: itself if it is a full path, else the unique leaf of that name."""
    key = RENAMED.get(key, key)
    if key in LEAVES:
        return key
    matches = [p for p in LEAVES if p.split(".")[-1] == key]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise UserError(f"ambiguous key {key!r}: say one of {', '.join(matches)}")
    raise unknown_key(key, list(LEAVES))


def parse_overrides(overrides: list[str]) -> dict[str, Any]:
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
        out[resolve_key(key.strip())] = value
    return out


# -- resolution -----------------------------------------------------------------------------
def _flatten(layer: Layer, origin: str, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in layer.items():
        path = RENAMED.get(prefix + str(key), prefix + str(key))
        if path in LEAVES:
            out[path] = value
        elif any(leaf.startswith(path + ".") for leaf in LEAVES):
            if not isinstance(value, dict):
                raise UserError(f"{origin}: config key {path!r} must be a mapping")
            out.update(_flatten(value, origin, path + "."))
        else:
            raise UserError(f"{origin}: unknown config key {path!r}")
    return out


def resolve(layers: list[tuple[str, Layer]], saved: int = -1) -> Config:
    """The typed config of `layers` ((origin, nested or flat dotted-key mapping), in order).

    Layers up to index `saved` are configs gpaco resolved before (a run's config.yaml): keys
    in them that do not apply are dropped, as older versions saved every key.
    """
    values: dict[str, Any] = {}
    setter: dict[str, int] = {}  # key -> index of the last layer that set it
    for index, (origin, layer) in enumerate(layers):
        for path, value in _flatten(layer, origin).items():
            values[path], setter[path] = value, index
    defaults = as_flat(Config())
    chosen = {**defaults, **values}
    _check_choice(chosen, "task", TASKS)
    task = TASKS[chosen["task"]]
    _check_choice(chosen, "method", task.methods)
    _check_dataset(chosen, task)
    for path, (choice, users) in dependents(chosen["task"]).items():
        value = values.get(path)
        if value is None or chosen[choice] in users:
            continue
        if setter[path] < setter.get(choice, -1) or setter[path] <= saved:
            del values[path]  # set for an earlier choice that a later layer replaced
            continue
        origin = layers[setter[path]][0]
        raise UserError(f"{path} (set by {origin}) does not apply to {choice}="
                        f"{chosen[choice]}; it is used by {choice}={'|'.join(users)}")
    _drop_overridden_blr(values, setter, saved, layers)
    merged = {**defaults, **values, **_choice_defaults(chosen, values)}
    cfg = _typed(merged)
    validate(cfg)  # types and ranges first: a negative count is that, not an ignored key
    if _check_conditional(merged, values, {**defaults, **_choice_defaults(chosen, {})}, setter,
                          layers, saved):
        cfg = _typed(merged)
    return cfg


def _typed(merged: dict[str, Any]) -> Config:
    """The Config of flat `merged` values, with optim.lr from optim.blr where that is set."""
    cfg = _build(Config, merged, "")
    if cfg.optim.blr is not None:
        cfg.optim.lr = cfg.optim.blr * cfg.train.batch_size / REFERENCE_BATCH
    return cfg


REFERENCE_BATCH = 256  # MAE's rule: lr = blr * effective batch / 256


def _drop_overridden_blr(values: dict[str, Any], setter: dict[str, int], saved: int,
                         layers: list[tuple[str, Layer]]) -> None:
    """optim.lr set after optim.blr wins; both in one layer is an error (but a saved config
    holds both: its lr is the one blr gave, recomputed on loading)."""
    if values.get("optim.blr") is None or "optim.lr" not in setter:
        return
    if setter["optim.lr"] > setter["optim.blr"]:
        del values["optim.blr"]
    elif setter["optim.lr"] == setter["optim.blr"] > saved:
        raise UserError(f"{layers[setter['optim.lr']][0]} sets both optim.lr and optim.blr; "
                        "give one (lr = blr * train.batch_size / 256)")


def _check_conditional(merged: dict[str, Any], values: dict[str, Any],
                       defaults: dict[str, Any], setter: dict[str, int],
                       layers: list[tuple[str, Layer]], saved: int) -> bool:
    """Refuse (or drop, see CONDITIONAL) the keys set to other than their default where they
    cannot act (the default is what an unset key has anyway: `gpaco config` output reads).
    Returns whether a key was dropped (reset to its default in `merged`)."""
    dropped = False
    for path, (on, acts, where) in CONDITIONAL.items():
        if values.get(path) is None or values[path] == defaults.get(path) or acts(merged):
            continue
        if setter[path] < max(setter.get(k, -1) for k in on) or setter[path] <= saved:
            merged[path], dropped = defaults.get(path), True  # belonged to an earlier setting
            continue
        shown = ", ".join(f"{k}={merged[k]}" for k in on)
        raise UserError(f"{path}={values[path]} (set by {layers[setter[path]][0]}) has no "
                        f"effect here ({shown}); it acts only with {where}")
    return dropped


def _check_choice(chosen: dict[str, Any], path: str, table: Any) -> None:
    if chosen[path] not in table:
        where = f" for task={chosen['task']}" if path != "task" else ""
        raise UserError(f"{path} must be one of {', '.join(table)}{where}, not {chosen[path]!r}")


def _check_dataset(chosen: dict[str, Any], task: Task) -> None:
    name = chosen["data.dataset"]
    owner = task_of_dataset(name)
    if name not in task.datasets and owner is not None:
        raise UserError(f"data.dataset={name} is a {owner} dataset; set task={owner} "
                        f"(task={chosen['task']} takes {', '.join(task.datasets)})")
    _check_choice(chosen, "data.dataset", task.datasets)


def _choice_defaults(chosen: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The chosen task's, method's, dataset's and schedule's defaults of the keys left unset."""
    task = TASKS[chosen["task"]]
    method = task.methods[chosen["method"]]
    out = {k: v for k, v in task.keys.items() if v is not None}
    out.update({f"model.{k}": v for k, v in method.model_options.items()})
    out.update({f"loss.{k}": v for k, v in method.loss_options.items()})
    out.update({f"data.{k}": v
                for k, v in dataset_defaults(chosen["data.dataset"], task.datasets).items()})
    out.update({f"optim.{k}": v for k, v in OPTIMIZER_OPTIONS[chosen["optim.name"]].items()})
    out.update({f"schedule.{k}": v for k, v in SCHEDULE_OPTIONS[chosen["schedule.name"]].items()})
    return {k: v for k, v in out.items() if values.get(k) is None and k in LEAVES}


def as_flat(cfg: Config) -> dict[str, Any]:
    """{dotted path: value} of every leaf."""
    out: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, f"{prefix}{f.name}.")
            else:
                out[prefix + f.name] = value

    walk(cfg, "")
    return out


def _build(cls: type, values: dict[str, Any], prefix: str) -> Any:
    kwargs = {}
    for name, kind in _hints(cls).items():
        path = prefix + name
        kwargs[name] = (_build(kind, values, path + ".") if _is_section(kind)
                        else coerce(values[path], kind, path))
    return cls(**kwargs)


# -- types ----------------------------------------------------------------------------------
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


# -- checks ---------------------------------------------------------------------------------
_POSITIVE = ("train.batch_size", "schedule.epochs", "train.eval_every", "train.val_every",
             "train.eval_batch_size",
             "train.log_every", "optim.lr", "loss.temperature", "data.image_size", "model.dim",
             "train.max_steps_per_epoch", "train.accum_iter", "optim.blr", "schedule.power",
             "optim.layer_decay", "model.classifier_init_std", "model.decoder_channels",
             "model.aux_channels", "inference.predictions", "train.checkpoint_every_steps",
             "train.threads")
# A queue of 0 is a valid choice (the in-batch contrast set only).
_NON_NEGATIVE = ("model.queue_size", "schedule.warmup_epochs", "optim.weight_decay",
                 "optim.momentum", "data.workers", "data.mixup_alpha", "data.cutmix_alpha", "loss.alpha", "loss.beta", "loss.gamma", "loss.label_smoothing",
                 "schedule.min_lr", "loss.aux_weight")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def validate(cfg: Config) -> None:
    """Reject values no run could use, naming the key (types are checked on building)."""
    flat = as_flat(cfg)
    for path in _POSITIVE:  # "auto" and None are choices, not numbers
        if _is_number(flat[path]) and flat[path] <= 0:
            raise UserError(f"{path} must be positive, not {flat[path]!r}")
    for path in _NON_NEGATIVE:
        if _is_number(flat[path]) and flat[path] < 0:
            raise UserError(f"{path} must not be negative, not {flat[path]!r}")
    data, sched = cfg.data, cfg.schedule
    if not data.views or len(data.views) > 2:
        raise UserError("data.views must list one or two transform names")
    for key in ("mean", "std"):
        if getattr(data, key) is not None and len(getattr(data, key)) != 3:
            raise UserError(f"data.{key} must list 3 numbers (one per channel)")
    if sched.milestones is not None and sched.milestones != sorted(set(sched.milestones)):
        raise UserError(f"schedule.milestones must be increasing epochs, not {sched.milestones}")
    if data.val_split is not None and data.val_split == data.test_split:
        raise UserError("data.val_split is the test split: selecting on it would select on "
                        "the test set; give a separate validation list")
    if cfg.model.pretrained is True:
        raise UserError("model.pretrained=true does not say which weights; name them (e.g. "
                        "model.pretrained=IMAGENET1K_V1 for torchvision's first ResNet weights) "
                        "or give a local file")
    if cfg.optim.betas is not None and (len(cfg.optim.betas) != 2
                                        or not all(0 <= b < 1 for b in cfg.optim.betas)):
        raise UserError(f"optim.betas must be two numbers in [0, 1), not {cfg.optim.betas}")
    # step / cosine run epoch e of the warm-up at lr x (e+1)/W, so W = E still reaches optim.lr
    # in the last epoch; warmup_cosine and poly rise continuously from 0 and reach it at W.
    per_epoch = sched.name in ("step", "cosine")
    if sched.warmup_epochs > sched.epochs or (sched.warmup_epochs == sched.epochs
                                              and not per_epoch and sched.epochs):
        bound = f"at most {sched.epochs}" if per_epoch else f"below {sched.epochs}"
        raise UserError(f"schedule.warmup_epochs ({sched.warmup_epochs}) must be {bound} for "
                        f"{sched.name} in schedule.epochs={sched.epochs}: the lr would never "
                        f"reach optim.lr; give fewer warm-up epochs (0: none) or more epochs")
    # A milestone m lowers the lr of the (0-based) epochs after m: from epoch m + 2 counted from 1.
    unused = [m for m in sched.milestones or () if m >= sched.epochs - 1]
    if sched.name == "step" and unused:
        raise UserError(f"schedule.milestones {sched.milestones}: {unused} never take effect in "
                        f"schedule.epochs={sched.epochs} (milestone m lowers the lr from epoch "
                        f"m + 2 on); give milestones below {sched.epochs - 1} ([] for none) or more "
                        "epochs")
    if sched.min_lr is not None and sched.min_lr > cfg.optim.lr:
        raise UserError(f"schedule.min_lr ({sched.min_lr}) is above optim.lr ({cfg.optim.lr})")
    if cfg.train.batch_size % cfg.train.accum_iter:
        raise UserError(f"train.batch_size ({cfg.train.batch_size}) must be a multiple of "
                        f"train.accum_iter ({cfg.train.accum_iter})")
    if (data.mixup_alpha or data.cutmix_alpha) and cfg.method != "ce":
        raise UserError(f"data.mixup_alpha / cutmix_alpha need method=ce (soft targets), not "
                        f"method={cfg.method}")
    if cfg.train.cuda_graph and not data.batched_augment:
        raise UserError("train.cuda_graph=true needs data.batched_augment=true (the graph "
                        "captures the batched augmentation)")
    if cfg.task == "segmentation":
        _validate_segmentation(cfg)


def _pair(value: list[Any] | None, path: str) -> None:
    if value is not None and (len(value) != 2 or min(value) <= 0):
        raise UserError(f"{path} must be two positive numbers (H, W), not {value!r}")


def _validate_segmentation(cfg: Config) -> None:
    d, inf, loss = cfg.data, cfg.inference, cfg.loss
    for path, value in (("data.crop_size", d.crop_size), ("data.scale", d.scale),
                        ("data.ratio_range", d.ratio_range),
                        ("inference.crop", inf.crop), ("inference.stride", inf.stride)):
        _pair(value, path)
    if inf.mode == "slide" and (inf.crop is None or inf.stride is None):
        raise UserError("inference.mode=slide needs inference.crop and inference.stride")
    if not inf.ratios or min(inf.ratios) <= 0:
        raise UserError(f"inference.ratios must list positive scales, not {inf.ratios!r}")
    if loss.num_samples is not None and (loss.num_samples == 0 or loss.num_samples < -1):
        raise UserError(f"loss.num_samples must be -1 (all pixels) or >= 1, not {loss.num_samples}")
    if not 0 < d.cat_max_ratio <= 1:
        raise UserError(f"data.cat_max_ratio must be in (0, 1], not {d.cat_max_ratio}")
    if cfg.model.output_stride not in (None, 8, 16):
        raise UserError(f"model.output_stride must be 8 or 16, not {cfg.model.output_stride}")


_PATHS = ("data.root", "data.train_split", "data.val_split", "data.test_split", "output.dir")


def absolute_paths(cfg: Config) -> None:
    """Make the config's paths absolute, so a saved run resumes from any working directory.
    Split folders of an image folder stay relative to data.root (`val` means root/val)."""
    for path in _PATHS:
        section, key = path.split(".")
        value = getattr(getattr(cfg, section), key)
        if key.endswith("_split") and cfg.data.dataset in SPLITS_UNDER_ROOT:
            continue
        if value is not None:
            setattr(getattr(cfg, section), key, str(Path(value).expanduser().resolve()))
    if isinstance(cfg.model.pretrained, str) and weights_file(cfg.model.pretrained):
        cfg.model.pretrained = str(Path(cfg.model.pretrained).expanduser().resolve())


def to_dict(cfg: Config) -> dict[str, Any]:
    """Plain nested dict (what checkpoints and config.yaml hold)."""
    return dataclasses.asdict(cfg)


def from_dict(data: dict[str, Any], origin: str = "a saved config",
              overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """The config saved as `to_dict` (a checkpoint's, a run's config.yaml), with overrides."""
    model = data.get("model")
    if isinstance(model, dict) and model.get("pretrained") is True:
        # Saved before weights had to be named; a saved run's weights come from its checkpoint.
        data = {**data, "model": {**model, "pretrained": False}}
    return resolve([(origin, data), ("the command line", parse_overrides(list(overrides)))],
                   saved=0)


def load_saved(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """A run's saved config.yaml (see `from_dict`), with overrides."""
    path = Path(path)
    return from_dict(_read_yaml(path.read_text(), str(path)), str(path), overrides)


def dump(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)
