"""The classification task's own keys (with types and defaults), their conditions and the checks
of a resolved classification config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gpaco.config import Config
from gpaco.config.options import NON_NEGATIVE, POSITIVE, Condition, Option, options_of
from gpaco.errors import UserError
from gpaco.tasks.classification.methods import METHODS


@dataclass
class DataOptions:
    # Transforms (gpaco.data.transforms); 2 views for two-view methods (1 is used twice).
    views: list[str] = field(default_factory=lambda: ["cifar_regular", "cifar_sim"])
    test_transform: str = "cifar_test"
    image_size: int = field(default=32, metadata=POSITIVE)
    randaug_n: int = 2
    randaug_m: int = 10
    # Batch mixing of the CE baseline (timm's Mixup: alpha of mixup / cutmix, 0 = off; each
    # batch one or the other, with loss.label_smoothing folded into the soft targets).
    mixup_alpha: float = field(default=0.0, metadata=NON_NEGATIVE)
    cutmix_alpha: float = field(default=0.0, metadata=NON_NEGATIVE)
    # Keep an in-memory dataset as uint8 on the training device (CPU or GPU) and augment whole
    # batches there instead of image by image in loader workers.
    batched_augment: bool = False


@dataclass
class ModelOptions:
    freeze: Literal["convs_but_last_block"] | None = None
    # Initialise the classifier (the centers) trunc-normal with this std and bias 0, as MAE's
    # head (2e-5); None: PyTorch's default init.
    classifier_init_std: float | None = field(default=None, metadata=POSITIVE)
    ghost_bn: int | None = None  # batch-norm statistics over groups of this many samples


@dataclass
class TrainOptions:
    cuda_graph: bool = False  # capture the whole step as a CUDA graph (needs batched_augment)


OPTIONS: dict[str, Option] = {**options_of(DataOptions, "data"), **options_of(ModelOptions, "model"),
                              **options_of(TrainOptions, "train")}

RANDAUGMENT_VIEWS = ("randcls", "randclsstack")


def _randaugment_on_cpu(flat: dict[str, Any]) -> bool:
    names = [*(flat["data.views"] or []), flat["data.test_transform"]]
    return not flat["data.batched_augment"] and any(n in RANDAUGMENT_VIEWS for n in names)


def _loader_workers(flat: dict[str, Any]) -> bool:
    workers = flat["data.workers"]
    return not flat["data.batched_augment"] or workers == "auto" or workers == 0


def _subsampled(flat: dict[str, Any]) -> bool:
    return flat.get("data.imb_factor") is not None


_RANDAUGMENT: Condition = (("data.views", "data.test_transform", "data.batched_augment"),
                           _randaugment_on_cpu,
                           "RandAugment views (randcls, randclsstack) on the CPU loader")
_SUBSET: Condition = (("data.imb_factor",), _subsampled, "a long-tailed subset (data.imb_factor)")
CONDITIONS: dict[str, Condition] = {
    "data.randaug_n": _RANDAUGMENT,
    "data.randaug_m": _RANDAUGMENT,
    "data.workers": (("data.batched_augment",), _loader_workers,
                     "the DataLoader (data.batched_augment=false); batched augmentation has no "
                     "workers"),
    "data.subset_seed": _SUBSET,
    "data.imb_type": _SUBSET,
}


def check(cfg: Config) -> None:
    """What no classification run could use."""
    data = cfg.data
    if data.val_split is not None and data.val_split == data.test_split:
        raise UserError("data.val_split is the test split: selecting on it would select on "
                        "the test set; give a separate validation list")
    if not data.views or len(data.views) > 2:
        raise UserError("data.views must list one or two transform names")
    if (data.mixup_alpha or data.cutmix_alpha) and not METHODS[cfg.method].soft_targets:
        soft = "|".join(n for n, m in METHODS.items() if m.soft_targets)
        raise UserError(f"data.mixup_alpha / cutmix_alpha need method={soft} (soft targets), not "
                        f"method={cfg.method}")
    if cfg.train.cuda_graph and not data.batched_augment:
        raise UserError("train.cuda_graph=true needs data.batched_augment=true (the graph "
                        "captures the batched augmentation)")
