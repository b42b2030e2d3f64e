"""CPU augmentation pipelines by name (PIL image in, normalised float tensor out).

Names follow the authors' `--aug` catalogue (paper-spec section 3.1):

- CIFAR (32 px, or 28 px for Fashion-MNIST via `image_size`): "cifar_regular" (crop+pad, flip,
  the authors' CIFAR AutoAugment policy of `cifar_autoaugment`, Cutout), "cifar_sim"
  (SimCLR-style), "cifar_aug" (as cifar_sim with blur p=0.2), "cifar_test".
- ImageNet-type (224 px): "sim", "randcls", "randclsstack", "imagenet_test".
- MAE-ViT fine-tuning (gpaco.data.mae_augment, timm's code): "vit_ce_train" (the CE
  baseline's RandAugment + RandomErasing), "vit_test" (Resize 256 + CenterCrop 224, bicubic).

Two-view pipelines are built with `TwoViews` / `build_views`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torchvision.transforms import v2

from gpaco.data.cifar_autoaugment import CifarAutoAugment
from gpaco.data.randaugment import allow_zero_bit_posterize
from gpaco.errors import UserError
from gpaco.data.normalization import (CIFAR_MEAN, CIFAR_STD, FMNIST_MEAN, FMNIST_STD,  # noqa: F401
                                      IMAGENET_MEAN, IMAGENET_STD, Stats)



@dataclass(frozen=True)
class CifarView:
    """One CIFAR-type view, read by the PIL pipeline here and its batched twin (batched_views).

    crop "pad": random crop of the image padded by `pad`, flip, the authors' CIFAR AutoAugment, Cutout of
    half the side; "resized": random resized crop (scale), flip, then colour jitter (brightness,
    contrast, saturation, hue) with p_jitter, grayscale with p_gray, Gaussian blur (sigma range)
    with p_blur; "none": the image as it is (test).
    """

    crop: Literal["pad", "resized", "none"]
    pad: int = 4
    scale: tuple[float, float] = (0.2, 1.0)
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1)
    p_jitter: float = 0.8
    p_gray: float = 0.2
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    p_blur: float = 0.0


CIFAR_VIEWS = {
    "cifar_regular": CifarView("pad"),
    "cifar_sim": CifarView("resized", p_blur=0.5),
    "cifar_aug": CifarView("resized", p_blur=0.2),
    "cifar_test": CifarView("none"),
}
CIFAR_NAMES = tuple(CIFAR_VIEWS)
IMAGENET_NAMES = ("sim", "randcls", "randclsstack", "imagenet_test")
VIT_NAMES = ("vit_ce_train", "vit_test")
TRANSFORM_NAMES = CIFAR_NAMES + IMAGENET_NAMES + VIT_NAMES


class Cutout:
    """Zero one `size` x `size` square of a (..., H, W) tensor (DeVries & Taylor, as in the authors' code).

    The centre is uniform over the image and the square is clipped at the border, so the covered
    area is often smaller than size**2. Apply after ToTensor and before Normalize (zero = black).
    """

    def __init__(self, size: int) -> None:
        self.size = int(size)

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        cy = int(torch.randint(h, ()))
        cx = int(torch.randint(w, ()))
        half = self.size // 2
        y1, y2 = max(cy - half, 0), min(cy + half, h)
        x1, x2 = max(cx - half, 0), min(cx + half, w)
        out = img.clone()
        out[..., y1:y2, x1:x2] = 0
        return out

    def __repr__(self) -> str:
        return f"Cutout(size={self.size})"


class ResizeIfNeeded:
    """Resize a PIL image to `size` x `size` unless it already is: CIFAR-type pipelines then run
    unchanged on their 32 px (28 px) data and still accept a folder of photos of any size."""

    def __init__(self, size: int) -> None:
        self.size = int(size)
        self.resize = v2.Resize((self.size, self.size), antialias=True)

    def __call__(self, img: Any) -> Any:
        return img if getattr(img, "size", None) == (self.size, self.size) else self.resize(img)

    def __repr__(self) -> str:
        return f"ResizeIfNeeded(size={self.size})"


class TwoViews:
    """Apply two pipelines to the same image: `TwoViews(t1, t2)(img) == [t1(img), t2(img)]`."""

    def __init__(self, t1: Callable, t2: Callable) -> None:
        self.t1 = t1
        self.t2 = t2

    def __call__(self, img: Any) -> list[Any]:
        return [self.t1(img), self.t2(img)]

    def __repr__(self) -> str:
        return f"TwoViews(\n  {self.t1!r},\n  {self.t2!r}\n)"


# Covers +-3 sigma at the largest sigma (2.0) of the papers' blur.
CIFAR_BLUR_KERNEL = 13

def _odd(k: int) -> int:
    k = max(int(k), 3)
    return k if k % 2 == 1 else k + 1


def _to_tensor(mean: Sequence[float], std: Sequence[float]) -> list[Callable]:
    return [v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]


def _colour_stack(hue: float, p_jitter: float, p_gray: float, p_blur: float, blur_kernel: int) -> list[Callable]:
    return [
        v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, hue)], p=p_jitter),
        v2.RandomGrayscale(p=p_gray),
        v2.RandomApply([v2.GaussianBlur(blur_kernel, sigma=(0.1, 2.0))], p=p_blur),
    ]


def _cifar_view(spec: CifarView, size: int, kernel: int) -> list[Callable]:
    """The PIL ops of a CIFAR-type view, up to (not including) ToTensor + Normalize."""
    if spec.crop == "pad":
        return [ResizeIfNeeded(size), v2.RandomCrop(size, padding=spec.pad),
                v2.RandomHorizontalFlip(), CifarAutoAugment()]
    if spec.crop == "none":
        return [ResizeIfNeeded(size)]
    return [v2.RandomResizedCrop(size, scale=spec.scale, antialias=True), v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(*spec.jitter)], p=spec.p_jitter),
            v2.RandomGrayscale(p=spec.p_gray),
            v2.RandomApply([v2.GaussianBlur(kernel, sigma=spec.blur_sigma)], p=spec.p_blur)]


def _rand_augment(image_size: int, mean: Sequence[float], n: int, m: int) -> Callable:
    """timm RandAugment `rand-n{n}-m{m}-mstd0.5` on PIL, as the authors' `randaugment.py`."""
    try:
        from timm.data.auto_augment import rand_augment_transform
    except ImportError:
        # No silent substitute: torchvision's RandAugment is a different policy.
        raise UserError("the randcls / randclsstack views need timm's RandAugment: "
                        "pip install 'gpaco[timm]'") from None
    hparams = {
        "translate_const": int(image_size * 0.45),  # 100 at 224 px, as in the authors' code
        "img_mean": tuple(min(255, round(255 * x)) for x in mean),
    }
    return allow_zero_bit_posterize(rand_augment_transform(f"rand-n{n}-m{m}-mstd0.5", hparams))


def build_transform(
    name: str,
    *,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    randaug_n: int = 2,
    randaug_m: int = 10,
    blur_kernel: int | None = None,
) -> Callable:
    """Build the named CPU pipeline (PIL image -> normalised float32 CHW tensor).

    Args:
        name: one of TRANSFORM_NAMES.
        image_size: output side; default 32 for CIFAR names, 224 for ImageNet-type names.
        mean, std: normalisation; default CIFAR stats for CIFAR names, ImageNet stats otherwise.
        randaug_n, randaug_m: RandAugment ops per image and magnitude (randcls / randclsstack).
        blur_kernel: Gaussian blur kernel side; default 13 for CIFAR names, ~10% of the size
            (odd) for ImageNet-type names.
    """
    if name not in TRANSFORM_NAMES:
        raise UserError(f"unknown transform {name!r}; choose one of {', '.join(TRANSFORM_NAMES)}")
    cifar = name in CIFAR_NAMES
    size = image_size or (32 if cifar else 224)
    mean = tuple(mean) if mean is not None else (CIFAR_MEAN if cifar else IMAGENET_MEAN)
    std = tuple(std) if std is not None else (CIFAR_STD if cifar else IMAGENET_STD)
    if name in VIT_NAMES:
        from gpaco.data import mae_augment  # it builds on this module

        build = mae_augment.ce_train_transform if name == "vit_ce_train" else \
            mae_augment.mae_eval_transform
        return build(size, mean=mean, std=std)
    # The authors blur with PIL's GaussianBlur(radius=sigma), sigma up to 2: a 13-tap kernel
    # (6 sigma + 1) reproduces it on 32 px; 224 px images get ~10% of their side (23).
    kernel = blur_kernel or (CIFAR_BLUR_KERNEL if cifar else _odd(size // 10))
    ops: list[Callable]
    if name == "cifar_regular":  # Cutout works on the tensor, before normalisation
        ops = _cifar_view(CIFAR_VIEWS[name], size, kernel)
        return v2.Compose(ops + [v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                                 Cutout(size // 2), v2.Normalize(list(mean), list(std))])
    if name in CIFAR_VIEWS:
        ops = _cifar_view(CIFAR_VIEWS[name], size, kernel)
    elif name == "sim":
        ops = [v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True)]
        ops += _colour_stack(0.0, 1.0, 0.2, 0.5, kernel)
        ops += [v2.RandomHorizontalFlip()]
    elif name in ("randcls", "randclsstack"):
        ops = [
            v2.RandomResizedCrop(size, scale=(0.08, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.0)], p=1.0),
        ]
        if name == "randclsstack":
            ops += [v2.RandomGrayscale(p=0.2), v2.RandomApply([v2.GaussianBlur(kernel, sigma=(0.1, 2.0))], p=0.5)]
        ops += [_rand_augment(size, mean, randaug_n, randaug_m)]
    else:  # imagenet_test
        ops = [v2.Resize(int(size / 0.875), antialias=True), v2.CenterCrop(size)]
    return v2.Compose(ops + _to_tensor(mean, std))


def build_views(names: str | Sequence[str], **kwargs: Any) -> Callable:
    """One pipeline for one name, `TwoViews` for two names (first = view 1, the anchor/query)."""
    if isinstance(names, str):
        names = [names]
    if len(names) == 1:
        return build_transform(names[0], **kwargs)
    if len(names) == 2:
        return TwoViews(build_transform(names[0], **kwargs), build_transform(names[1], **kwargs))
    raise UserError(f"expected one or two transform names, got {list(names)}")
