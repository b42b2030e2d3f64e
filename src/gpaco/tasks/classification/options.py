"""The classification task's own keys (with types and defaults), their conditions and the checks
of a resolved classification config."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from gpaco.config import Config
from gpaco.config.options import NON_NEGATIVE, POSITIVE, Condition, Option, options_of
from gpaco.data.registry import reads_files
from gpaco.errors import UserError
from gpaco.tasks.classification.datasets import DATASETS
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
    # Augment whole batches on the training device (CPU or GPU) instead of image by image in
    # loader workers: in-memory sets are kept there as uint8; image files are decoded and
    # cropped in the workers. auto: on where it is faster, i.e. image files training on a GPU
    # (on the CPU the per-sample PIL path costs ~11 % less CPU a sample: benchmarks/data_speed.py).
    batched_augment: bool | Literal["auto"] = "auto"


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


def _randaugment_used(flat: dict[str, Any]) -> bool:
    names = [*(flat["data.views"] or []), flat["data.test_transform"]]
    return any(n in RANDAUGMENT_VIEWS for n in names)


def _loader_workers(flat: dict[str, Any]) -> bool:
    workers = flat["data.workers"]
    return (not flat["data.batched_augment"] or workers == "auto" or workers == 0
            or reads_files(flat["data.dataset"], DATASETS))


def batched_by_default(flat: dict[str, Any]) -> bool:
    """`data.batched_augment=auto`: image files whose training views all have a batched twin,
    training on a GPU. Elsewhere the per-sample path is the faster one (in-memory sets keep
    what their recipe chose)."""
    import torch

    from gpaco.data.batched_views import BATCHED_TRANSFORM_NAMES

    device = str(flat["train.device"])
    on_gpu = device in ("auto", "cuda") or device.startswith("cuda:")
    return (on_gpu and torch.cuda.is_available() and reads_files(flat["data.dataset"], DATASETS)
            and all(v in BATCHED_TRANSFORM_NAMES for v in flat["data.views"] or []))


def settle(flat: dict[str, Any]) -> dict[str, Any]:
    """The flat config (before it is typed) with its `auto` values filled in."""
    if flat.get("data.batched_augment") == "auto":
        flat["data.batched_augment"] = batched_by_default(flat)
    return flat


def _subsampled(flat: dict[str, Any]) -> bool:
    return flat.get("data.imb_factor") is not None


_RANDAUGMENT: Condition = (("data.views", "data.test_transform"), _randaugment_used,
                           "RandAugment views (randcls, randclsstack)")
_SUBSET: Condition = (("data.imb_factor",), _subsampled, "a long-tailed subset (data.imb_factor)")
CONDITIONS: dict[str, Condition] = {
    "data.randaug_n": _RANDAUGMENT,
    "data.randaug_m": _RANDAUGMENT,
    "data.workers": (("data.batched_augment", "data.dataset"), _loader_workers,
                     "the DataLoader (data.batched_augment=false, or image files); batched "
                     "augmentation of in-memory sets has no workers"),
    "data.subset_seed": _SUBSET,
    "data.imb_type": _SUBSET,
}


# A 1 px image comes back 2 px wide from the batched AutoAugment / RandAugment's geometric ops,
# and its per-sample twin trains to a nan loss (a ResNet's batch norm over single pixels).
MIN_IMAGE_SIZE = 2


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
    if data.image_size < MIN_IMAGE_SIZE:
        raise UserError(f"data.image_size={data.image_size} is below {MIN_IMAGE_SIZE}, the "
                        f"smallest image the augmentations take; give data.image_size >= "
                        f"{MIN_IMAGE_SIZE}")
    if cfg.train.cuda_graph and not data.batched_augment:
        raise UserError("train.cuda_graph=true needs data.batched_augment=true (the graph "
                        "captures the batched augmentation)")
