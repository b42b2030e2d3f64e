"""The named batched views (the CIFAR-type pipelines of gpaco.data.transforms, on tensors)."""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from gpaco.data.batched_autoaugment import AutoAugmentCIFAR10
from gpaco.data.batched_ops import (BatchedOp, ColorJitter, Cutout, GaussianBlur, Generator,
                                    Grayscale, HFlip, Normalize, RandomCropPad, RandomResizedCrop,
                                    to_float_nchw)
from gpaco.data.transforms import CIFAR_BLUR_KERNEL, CIFAR_MEAN, CIFAR_STD, CIFAR_VIEWS
from gpaco.errors import UserError


class BatchedCompose(nn.Module):
    """Chain GPU ops; accepts uint8/float NHWC/NCHW (see `to_float_nchw`), returns float32 NCHW."""

    def __init__(self, ops: Sequence[BatchedOp]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        x = to_float_nchw(x)
        for op in self.ops:
            x = op(x, generator)
        return x


BATCHED_TRANSFORM_NAMES = tuple(CIFAR_VIEWS)


def build_batched_transform(
    name: str,
    *,
    image_size: int = 32,
    mean: Sequence[float] = CIFAR_MEAN,
    std: Sequence[float] = CIFAR_STD,
    blur_kernel: int = CIFAR_BLUR_KERNEL,
) -> BatchedCompose:
    """Batched twin of `gpaco.data.transforms.build_transform` for the CIFAR-type names
    (the same `CIFAR_VIEWS` table)."""
    if name not in CIFAR_VIEWS:
        raise UserError(f"unknown batched transform {name!r}; choose one of "
                        f"{', '.join(BATCHED_TRANSFORM_NAMES)}")
    spec = CIFAR_VIEWS[name]
    ops: list[BatchedOp] = []
    if spec.crop == "pad":
        ops = [RandomCropPad(image_size, padding=spec.pad), HFlip(0.5), AutoAugmentCIFAR10(),
               Cutout(image_size // 2)]
    elif spec.crop == "resized":
        ops = [RandomResizedCrop(image_size, scale=spec.scale), HFlip(0.5),
               ColorJitter(*spec.jitter, p=spec.p_jitter), Grayscale(spec.p_gray),
               GaussianBlur(blur_kernel, spec.blur_sigma, p=spec.p_blur)]
    return BatchedCompose(ops + [Normalize(mean, std)])
