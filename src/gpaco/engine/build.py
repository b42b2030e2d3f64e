"""Turn a config into the objects of a run: datasets, loaders, model, criterion, optimiser."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from gpaco import distributed as gdist
from gpaco.data.registry import DATASETS, build_dataset, dataset_kwargs
from gpaco.data.gpu_loader import GPUTensorLoader
from gpaco.data.gpu_aug import build_gpu_transform
from gpaco.data.transforms import build_transform, build_views
from gpaco.errors import UserError
from gpaco.losses import CRITERIA, build_criterion
from gpaco.models import build_model, create_backbone

from . import parallel
from .config import Config

TWO_VIEW_METHODS = ("paco", "gpaco", "multitask")
DEFAULT_HEAD = {"paco": "bn", "gpaco": "nobn", "multitask": "nobn"}


@dataclass
class Data:
    train: Dataset | None  # None when built for evaluation only
    test: Dataset
    val: Dataset | None
    train_loader: Iterable | None
    test_loader: Iterable
    val_loader: Iterable | None
    num_classes: int
    class_counts: list[int]
    augment: list[Callable] | None = None  # views applied inside the CUDA-graph step, if any


def resolve_device(name: str) -> torch.device:
    """`auto` / `cuda` mean this process's GPU (torchrun's LOCAL_RANK), or the CPU for `auto`."""
    if name == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")
    device = torch.device("cuda" if name == "auto" else name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"train.device={name} but no CUDA device is available")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", gdist.local_rank())
    return device


def _transform_kwargs(data_cfg: dict[str, Any]) -> dict[str, Any]:
    kw: dict[str, Any] = {"image_size": data_cfg["image_size"], "randaug_n": data_cfg["randaug_n"],
                          "randaug_m": data_cfg["randaug_m"]}
    if data_cfg["mean"] is not None:
        kw["mean"] = tuple(data_cfg["mean"])
    if data_cfg["std"] is not None:
        kw["std"] = tuple(data_cfg["std"])
    return kw


def view_names(cfg: Config) -> list[str]:
    names = list(cfg["data"]["views"])
    if cfg["method"] in TWO_VIEW_METHODS:
        if len(names) == 1:
            names = names * 2
        return names[:2]
    return names[:1]


def _train_transform(cfg: Config) -> Callable:
    return build_views(view_names(cfg), **_transform_kwargs(cfg["data"]))


def _dataset(cfg: Config, split: str, transform: Callable | None) -> Dataset:
    """The dataset's `split`; val is the dataset's test side read from `data.val_split`."""
    d = cfg["data"]
    # The subset has its own seed: `seed` varies training, not which images form the long tail.
    candidates = {"imb_factor": d["imb_factor"], "imb_type": d["imb_type"],
                  "seed": d["subset_seed"], "download": d["download"],
                  "train_split": d["train_split"],
                  "test_split": d["val_split"] if split == "val" else d["test_split"],
                  "num_classes": d["num_classes"], "on_bad_image": d["on_bad_image"]}
    accepted = set(dataset_kwargs(d["dataset"])) if d["dataset"] in DATASETS else set()
    if split == "val" and "test_split" not in accepted:
        raise UserError(f"data.val_split is set but dataset {d['dataset']!r} reads no split files")
    kwargs = {k: v for k, v in candidates.items() if k in accepted}
    return build_dataset(d["dataset"], root=d["root"], train=(split == "train"),
                         transform=transform, **kwargs)


def _has_val(cfg: Config) -> bool:
    return cfg["data"]["val_split"] is not None


def _seed_worker(worker_id: int) -> None:
    import random

    import numpy as np

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _cpu_loader(ds: Dataset, batch: int, shuffle: bool, workers: int, pin: bool,
                seed: int = 0) -> DataLoader:
    # Training: this rank's slice of each global batch of one seeded permutation (the same on
    # every process count, see engine/parallel.py); evaluation: a strided shard under DDP.
    sampler = (parallel.train_sampler(len(ds), batch * gdist.world_size(), seed) if shuffle
               else parallel.eval_sampler(len(ds)))
    return DataLoader(ds, batch_size=batch, shuffle=False, sampler=sampler,
                      num_workers=workers, pin_memory=pin, drop_last=shuffle,
                      worker_init_fn=_seed_worker)  # not persistent: reseeded every epoch


def _local_batch(cfg: Config) -> int:
    batch, world = cfg["train"]["batch_size"], gdist.world_size()
    if batch % world:
        raise UserError(f"train.batch_size={batch} is not divisible by the {world} processes")
    return batch // world


def _raw_batch(batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return batch


def _loader(ds: Dataset | None, cfg: Config, device: torch.device, train: bool,
            gpu_views: list[Callable]) -> Iterable | None:
    """The DataLoader (CPU transforms, workers) or GPU-resident loader of one split."""
    if ds is None:
        return None
    batch = _local_batch(cfg) if train else cfg["train"]["eval_batch_size"]
    if cfg["data"]["on_gpu"]:
        return GPUTensorLoader.from_dataset(ds, batch_size=batch, views=gpu_views, shuffle=train,
                                            drop_last=train, device=device, seed=cfg["seed"],
                                            **parallel.gpu_loader_shard())
    return _cpu_loader(ds, batch, train, cfg["data"]["workers"], device.type == "cuda",
                       cfg["seed"])


def _check_labels(ds: Dataset | None, num_classes: int, split: str) -> None:
    """Fail now, not at the first evaluation, when a split has labels the model cannot predict."""
    if ds is not None and len(ds.targets) and max(ds.targets) >= num_classes:
        raise UserError(f"the {split} split has label {max(ds.targets)} but the training data has "
                        f"{num_classes} classes; set data.num_classes")


def build_data(cfg: Config, device: torch.device, with_train: bool = True) -> Data:
    """Datasets and loaders of a run; `with_train=False` (evaluation) skips the training set."""
    d = cfg["data"]
    kw = _transform_kwargs(d)
    on_gpu = bool(d["on_gpu"])
    train = _dataset(cfg, "train", None if on_gpu else _train_transform(cfg)) if with_train \
        else None
    test_tf = None if on_gpu else build_transform(d["test_transform"], **kw)
    test = _dataset(cfg, "test", test_tf)
    val = _dataset(cfg, "val", test_tf) if _has_val(cfg) else None
    views: list[Callable] = []
    test_views: list[Callable] = []
    augment = None
    if on_gpu:
        gkw = {k: v for k, v in kw.items() if k in ("image_size", "mean", "std")}
        views = [build_gpu_transform(n, **gkw) for n in view_names(cfg)]
        test_views = [build_gpu_transform(d["test_transform"], **gkw)]
        if cfg["train"]["cuda_graph"]:  # the graphed step augments; the loader hands raw uint8
            augment, views = views, [_raw_batch]
    source = train if train is not None else test
    num_classes = d["num_classes"] or source.num_classes
    if train is not None and d["dataset"] == "image_folder" and train.classes != test.classes:
        raise UserError(f"the train and test folders under {d['root']} hold different class "
                        "folders; labels would not match")
    _check_labels(test, num_classes, "test")
    _check_labels(val, num_classes, "val")
    return Data(train, test, val, _loader(train, cfg, device, True, views),
                _loader(test, cfg, device, False, test_views),
                _loader(val, cfg, device, False, test_views), num_classes,
                list(source.class_counts), augment)


def build_model_from_config(cfg: Config, num_classes: int) -> nn.Module:
    m, method = cfg["model"], cfg["method"]
    backbone = create_backbone(m["backbone"], pretrained=m["pretrained"])
    params: dict[str, Any] = {}
    if method in TWO_VIEW_METHODS:
        params = {"dim": m["dim"], "queue_size": m["queue_size"],
                  "head": m["head"] or DEFAULT_HEAD[method]}
        if method == "paco":
            params["momentum"] = m["momentum"]
        else:
            params["joint_forward"] = m["joint_forward"]
    if m["shuffle_bn"]:
        if method != "paco":
            raise UserError("model.shuffle_bn applies to PaCo's momentum key encoder (method=paco)")
        params["shuffle_bn"] = True
    model = build_model(method, backbone, num_classes, **params)
    model = parallel.convert_norms(model, cfg, _local_batch(cfg))  # ghost BN / SyncBN
    if m["freeze"]:
        from .freeze import freeze

        freeze(model, m["freeze"])
    return model


def build_criterion_from_config(cfg: Config, num_classes: int, class_counts: list[int]) -> nn.Module:
    """The method's criterion with the `loss` section's values that it takes."""
    loss, method = cfg["loss"], cfg["method"]
    counts = class_counts if loss["prior"] or method in ("balanced_softmax", "logit_adjusted") \
        else None
    accepted = inspect.signature(CRITERIA[method][1]).parameters
    params = {k: v for k, v in loss.items() if k in accepted}
    return build_criterion(method, num_classes=num_classes, class_counts=counts, **params)


def build_optimizer(cfg: Config, model: nn.Module) -> torch.optim.Optimizer:
    o = cfg["optim"]
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"],
                           weight_decay=o["weight_decay"], nesterov=o["nesterov"])
