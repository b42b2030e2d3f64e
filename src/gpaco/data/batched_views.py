"""The named batched views (the CIFAR-type pipelines of gpaco.data.transforms, on tensors)."""
from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from gpaco.data.batched_autoaugment import AutoAugmentCIFAR10
from gpaco.data.batched_ops import (BatchedOp, ColorJitter, Cutout, GaussianBlur, Generator,
                                    Grayscale, HFlip, Normalize, RandomCropPad, RandomResizedCrop,
                                    to_float_nchw)
from gpaco.data.transforms import CIFAR_MEAN, CIFAR_STD
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


BATCHED_TRANSFORM_NAMES = ("cifar_regular", "cifar_sim", "cifar_aug", "cifar_test")


def build_batched_transform(
    name: str,
    *,
    image_size: int = 32,
    mean: Sequence[float] = CIFAR_MEAN,
    std: Sequence[float] = CIFAR_STD,
    blur_kernel: int = 13,  # as transforms.CIFAR_BLUR_KERNEL: +-3 sigma at sigma 2
) -> BatchedCompose:
    """GPU twin of `gpaco.data.transforms.build_transform` for the CIFAR-type names."""
    ops: list[BatchedOp]
    if name == "cifar_regular":
        ops = [RandomCropPad(image_size, padding=4), HFlip(0.5), AutoAugmentCIFAR10(), Cutout(image_size // 2)]
    elif name in ("cifar_sim", "cifar_aug"):
        ops = [
            RandomResizedCrop(image_size, scale=(0.2, 1.0)),
            HFlip(0.5),
            ColorJitter(0.4, 0.4, 0.4, 0.1, p=0.8),
            Grayscale(0.2),
            GaussianBlur(blur_kernel, (0.1, 2.0), p=0.5 if name == "cifar_sim" else 0.2),
        ]
    elif name == "cifar_test":
        ops = []
    else:
        raise UserError(f"unknown GPU transform {name!r}; choose one of {', '.join(BATCHED_TRANSFORM_NAMES)}")
    return BatchedCompose(ops + [Normalize(mean, std)])
