"""A classification run's objects from its config: datasets, loaders, model, criterion, batch mixing."""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import nn
from torch.utils.data import Dataset

from gpaco import distributed as gdist
from gpaco.tasks.classification import methods
from gpaco.data.batched_files import FileBatchLoader, batched_file_views
from gpaco.data.batched_views import build_batched_transform
from gpaco.data.image_files import FileDataset
from gpaco.data.checks import check_every_class_trained
from gpaco.data.mae_augment import BatchMix, ce_mixup
from gpaco.data.registry import implied_splits
from gpaco.data.tensor_loader import TensorLoader
from gpaco.data.transforms import build_transform, build_views
from gpaco.errors import UserError
from gpaco.models import create_backbone, freeze
from gpaco.models.vit import init_centers_

from gpaco.config import Config, DataConfig
from gpaco.tasks.classification.datasets import DATASETS, build_dataset, dataset_options
from gpaco.train import parallel
from gpaco.train.data import Data, cpu_loader, resolve_device
from gpaco.weights.load import load_into, weights_file


def _transform_kwargs(d: DataConfig) -> dict[str, Any]:
    kw: dict[str, Any] = {"image_size": d.image_size, "randaug_n": d.randaug_n,
                          "randaug_m": d.randaug_m}
    if d.mean is not None:
        kw["mean"] = tuple(d.mean)
    if d.std is not None:
        kw["std"] = tuple(d.std)
    return kw


def view_names(cfg: Config) -> list[str]:
    """The method's number of training views (one name given for two views is used twice)."""
    names, count = list(cfg.data.views), methods.get_method(cfg.method).views
    return (names * count)[:count] if len(names) < count else names[:count]


def _dataset(d: DataConfig, split: str, transform: Callable | None,
             side: str | None = None) -> Dataset:
    """The dataset's `split`; test and val are its test side read from `side`."""
    options = {k: getattr(d, k) for k in dataset_options(d.dataset) if hasattr(d, k)}
    if split != "train":
        options["test_split"] = side
    return build_dataset(d.dataset, root=d.root, train=(split == "train"), transform=transform,
                         **options)


def _loader(ds: Dataset | None, cfg: Config, device: torch.device, train: bool,
            views: list[Callable]) -> Iterable | None:
    """The DataLoader (CPU transforms, workers) or tensor loader (batched views) of one split."""
    if ds is None:
        return None
    batch = parallel.local_batch(cfg.train.batch_size) if train else cfg.train.eval_batch_size
    pin = device.type == "cuda"
    if cfg.data.batched_augment and isinstance(ds, FileDataset):
        # image files: workers decode and crop, the device runs the rest of the views;
        # evaluation reads image by image (its transform has no randomness to batch)
        if not train:
            return cpu_loader(ds, batch, False, cfg.data.workers, pin, cfg.seed)
        crops, augment = batched_file_views(ds, view_names(cfg), **_transform_kwargs(cfg.data))
        return FileBatchLoader(cpu_loader(crops, batch, True, cfg.data.workers, pin, cfg.seed),
                               augment, device)
    if cfg.data.batched_augment:
        return TensorLoader.from_dataset(ds, batch_size=batch, views=views, shuffle=train,
                                         drop_last=train, device=device, seed=cfg.seed,
                                         rank=gdist.rank(), world_size=gdist.world_size())
    return cpu_loader(ds, batch, train, cfg.data.workers, pin, cfg.seed)


def _check_labels(ds: Dataset | None, num_classes: int, split: str) -> None:
    """Fail now, not at the first evaluation, when a split has labels the model cannot predict."""
    if ds is not None and len(ds.targets) and max(ds.targets) >= num_classes:
        raise UserError(f"the {split} split has label {max(ds.targets)} but the training data has "
                        f"{num_classes} classes; set data.num_classes")


def _raw(batch: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return batch


def build_data(cfg: Config, device: torch.device, *, with_train: bool = True,
               augment_in_step: bool = False) -> Data:
    """Datasets and loaders of a run; `with_train=False` (evaluation) skips the training set.

    `augment_in_step`: the training loader hands raw uint8 batches and `Data.augment` holds the
    batched views for the training step to apply (the CUDA-graph step captures them).
    """
    d = cfg.data
    kw = _transform_kwargs(d)
    batched = d.batched_augment
    train_tf = None if batched else build_views(view_names(cfg), **kw)
    train = _dataset(d, "train", train_tf) if with_train else None
    test_tf = None if batched else build_transform(d.test_transform, **kw)
    val_split, test_split = implied_splits(d.dataset, DATASETS, d.root, d.val_split, d.test_split)
    test = _dataset(d, "test", test_tf, test_split)
    val = _dataset(d, "val", test_tf, val_split) if val_split is not None else None
    views: list[Callable] = []
    test_views: list[Callable] = []
    augment = None
    if batched and isinstance(test, FileDataset):  # files: `_loader` builds the views
        for split in (test, val):
            if split is not None:
                split.transform = build_transform(d.test_transform, **kw)
    elif batched:
        views = [build_batched_transform(n, **kw) for n in view_names(cfg)]
        test_views = [build_batched_transform(d.test_transform, **kw)]
        if augment_in_step:
            augment, views = views, [_raw]
    source = train if train is not None else test
    num_classes = source.num_classes
    if getattr(DATASETS[d.dataset], "splits_are_folders", False):
        for name, other in (("test", test), ("val", val)):
            if train is not None and other is not None and train.classes != other.classes:
                raise UserError(f"the train and {name} folders under {d.root} hold different "
                                "class folders; labels would not match")
    if train is not None:
        check_every_class_trained(list(train.class_counts), d.dataset)
    _check_labels(test, num_classes, "test")
    _check_labels(val, num_classes, "val")
    return Data(train, test, val, _loader(train, cfg, device, True, views),
                _loader(test, cfg, device, False, test_views),
                _loader(val, cfg, device, False, test_views), num_classes,
                list(source.class_counts), augment)


def build_model(cfg: Config, num_classes: int) -> nn.Module:
    """The method's wrapper around the backbone, with the recipe's batch norm and freezing."""
    m, method = cfg.model, methods.get_method(cfg.method)
    from_file = isinstance(m.pretrained, str) and weights_file(m.pretrained)
    weights = m.pretrained if isinstance(m.pretrained, str) and not from_file else None
    backbone = create_backbone(m.backbone, weights=weights, **(m.backbone_kwargs or {}))
    options = {k: getattr(m, k) for k in methods.defaults(method.model_options)}
    model = methods.build_model(cfg.method, backbone, num_classes, **options)
    if m.classifier_init_std is not None:
        init_centers_(model.classifier, m.classifier_init_std)
    if from_file:
        report = load_into(model, m.pretrained)
        if gdist.is_main():
            print(f"model.pretrained: {report}", flush=True)
    model = parallel.convert_norms(model, m.ghost_bn, m.sync_bn,
                                   parallel.local_batch(cfg.train.batch_size))
    if m.freeze:
        freeze(model, m.freeze)
    return model


def build_criterion(cfg: Config, num_classes: int, class_counts: list[int]) -> nn.Module:
    """The method's criterion with the config's values of its loss options."""
    options = {k: getattr(cfg.loss, k)
               for k in methods.defaults(methods.get_method(cfg.method).loss_options)}
    return methods.build_criterion(cfg.method, num_classes, class_counts, **options)


def build_batch_mix(cfg: Config, num_classes: int) -> BatchMix | None:
    """timm's Mixup / CutMix of the CE-ViT baseline (data.mixup_alpha / cutmix_alpha), or None."""
    d = cfg.data
    if not (d.mixup_alpha or d.cutmix_alpha):
        return None
    return BatchMix(ce_mixup(num_classes, mixup_alpha=d.mixup_alpha, cutmix_alpha=d.cutmix_alpha,
                             label_smoothing=cfg.loss.label_smoothing or 0.0))
