"""Augmentation of the MAE-ViT fine-tuning recipes, through timm's implementations.

- CE baseline (MAE's `main_finetune.py` with the authors' launcher values): timm's ImageNet
  train transform (RandomResizedCrop 224 bicubic, flip, RandAugment `rand-m9-mstd0.5-inc1`,
  RandomErasing p 0.25 in "pixel" mode, one box) plus batch Mixup 0.8 / CutMix 1.0 (switch
  probability 0.5) with label smoothing 0.1 folded into the soft targets; gpaco's
  CrossEntropyLoss takes such soft targets as timm's `SoftTargetCrossEntropy` does.
- GPaCo: two views, view 1 "randclsstack" with RandAugment `rand-n12-m10-mstd0.5`, view 2
  "sim" (gpaco.data.transforms), no mixup / cutmix / random erasing.
  timm's `rand-n12-m10-mstd0.5` IS the authors' RandAugment: same 15 ops, 12 drawn with
  replacement, each applied with p 0.5, magnitude ~ N(10, 0.5) clipped to [0, 10]; it was
  checked pixel-identical (and RNG-identical) to the authors' `randaugment.py` (see
  docs/vit-finetune.md), so gpaco has no RandAugment of its own.
- Evaluation: Resize(256) + CenterCrop(224), bicubic (MAE's crop_pct 224/256).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from torchvision import transforms as T

from gpaco.data.normalization import IMAGENET_MEAN, IMAGENET_STD
from gpaco.data.randaugment import allow_zero_bit_posterize
from gpaco.errors import UserError

CE_RANDAUGMENT = "rand-m9-mstd0.5-inc1"
EVAL_CROP_PCT = 224 / 256


def _timm_data() -> Any:
    try:
        import timm.data
    except ImportError:
        raise UserError("the MAE-ViT augmentations need timm: pip install 'gpaco[timm]'") from None
    return timm.data


def ce_train_transform(
    input_size: int = 224,
    *,
    auto_augment: str = CE_RANDAUGMENT,
    re_prob: float = 0.25,
    interpolation: str = "bicubic",
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Callable:
    """MAE's CE fine-tuning train transform (PIL in, normalised tensor out), timm's code.

    At magnitude 10 (m9 + N(0, 0.5) noise, clipped) PosterizeIncreasing keeps 0 bits, which
    Pillow >= 10 refuses: gpaco gives it the black image older Pillows (the papers') made.
    """
    return allow_zero_bit_posterize(_timm_data().create_transform(
        input_size=input_size, is_training=True, color_jitter=None, auto_augment=auto_augment,
        interpolation=interpolation, re_prob=re_prob, re_mode="pixel", re_count=1,
        mean=tuple(mean), std=tuple(std),
    ))


def ce_mixup(
    num_classes: int = 1000,
    *,
    mixup_alpha: float = 0.8,
    cutmix_alpha: float = 1.0,
    label_smoothing: float = 0.1,
    prob: float = 1.0,
    switch_prob: float = 0.5,
    mode: str = "batch",
) -> Any:
    """timm `Mixup` with MAE's CE-baseline values: `images, soft_targets = mixup(images, labels)`.

    The batch size must be even (timm's requirement); gpaco's CrossEntropyLoss takes the soft
    targets it returns.
    """
    return _timm_data().Mixup(
        mixup_alpha=mixup_alpha, cutmix_alpha=cutmix_alpha, cutmix_minmax=None, prob=prob,
        switch_prob=switch_prob, mode=mode, label_smoothing=label_smoothing,
        num_classes=num_classes,
    )


def mae_eval_transform(
    input_size: int = 224,
    *,
    interpolation: T.InterpolationMode = T.InterpolationMode.BICUBIC,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> T.Compose:
    """Resize(input_size / 0.875) + CenterCrop(input_size): 256 -> 224 at the default size."""
    return T.Compose([
        T.Resize(int(input_size / EVAL_CROP_PCT), interpolation=interpolation),
        T.CenterCrop(input_size),
        T.ToTensor(),
        T.Normalize(list(mean), list(std)),
    ])


class BatchMix:
    """The step's hook `(views, labels) -> (views, soft targets)`: timm's Mixup on view 1."""

    def __init__(self, mixup: Any) -> None:
        self.mixup = mixup

    def __call__(self, views: list[Any], labels: Any) -> tuple[list[Any], Any]:
        if views[0].shape[0] % 2:
            raise UserError(f"mixup / cutmix need an even batch, got {views[0].shape[0]}")
        mixed, targets = self.mixup(views[0], labels)
        return [mixed, *views[1:]], targets
