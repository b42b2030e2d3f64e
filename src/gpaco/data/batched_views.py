"""The named batched views: the pipelines of gpaco.data.transforms on whole tensor batches.

A view is a crop then the rest. `build_batched_transform` gives both (in-memory sets: the
tensor loader crops batches); image files crop each decoded image in the loader's workers
(`host_crop`, on uint8, as the per-sample path does) and the step's device runs the rest
(`crop=False`)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torchvision.transforms import v2

from gpaco.data.batched_autoaugment import AutoAugmentCIFAR10
from gpaco.data import batched_ops
from gpaco.data.batched_ops import (BatchedOp, ColorJitter, Cutout, GaussianBlur, Generator,
                                    Grayscale, HFlip, Normalize, RandomCropPad, RandomResizedCrop,
                                    to_float_nchw)
from gpaco.data.batched_randaugment import RandAugment
from gpaco.data.transforms import CIFAR_VIEWS, IMAGENET_SCALE, ResizeIfNeeded, view_defaults
from gpaco.errors import UserError


# On the CPU a batch runs through the ops in chunks of about this many values (4 MB of
# float32): each op then works in the cache, not main memory (224 px colour jitter: 9.6 ->
# 1.4 ms a sample on one core). CIFAR batches of 128 fit in one chunk.
CPU_CHUNK_VALUES = 1 << 20


class BatchedCompose(nn.Module):
    """Chain batched ops; accepts uint8/float NHWC/NCHW (see `to_float_nchw`), returns float32
    NCHW. On the CPU, large batches go through in chunks (`CPU_CHUNK_VALUES`), each drawing
    its random numbers after the chunk before it."""

    def __init__(self, ops: Sequence[BatchedOp]) -> None:
        super().__init__()
        self.ops = nn.ModuleList(ops)

    def forward(self, x: Tensor, generator: Generator = None) -> Tensor:
        per_sample = max(1, x[0].numel())
        if x.is_cuda or x.shape[0] * per_sample <= CPU_CHUNK_VALUES:
            return self._run(x, generator)
        step = max(1, CPU_CHUNK_VALUES // per_sample)
        return torch.cat([self._run(c, generator) for c in x.split(step)])

    def _run(self, x: Tensor, generator: Generator) -> Tensor:
        x = to_float_nchw(x)
        for op in self.ops:
            x = op(x, generator)
        return x


IMAGENET_VIEWS = ("sim", "randcls", "randclsstack")
BATCHED_TRANSFORM_NAMES = tuple(CIFAR_VIEWS) + IMAGENET_VIEWS


def _check(name: str) -> None:
    if name not in BATCHED_TRANSFORM_NAMES:
        raise UserError(f"unknown batched transform {name!r}; choose one of "
                        f"{', '.join(BATCHED_TRANSFORM_NAMES)}")


def crop_scale(name: str) -> tuple[float, float] | None:
    """The random resized crop's scale range of view `name`; None: a view without one."""
    if name in IMAGENET_VIEWS:
        return IMAGENET_SCALE
    spec = CIFAR_VIEWS[name]
    return spec.scale if spec.crop == "resized" else None


def _rest(name: str, image_size: int, mean: Sequence[float], randaug_n: int,
          randaug_m: int) -> list[BatchedOp]:
    """The ops of view `name` after its crop (before Normalize)."""
    if name in IMAGENET_VIEWS:
        colour: list[BatchedOp] = [ColorJitter(0.4, 0.4, 0.4, 0.0, p=1.0)]
        stack: list[BatchedOp] = [Grayscale(0.2), GaussianBlur((0.1, 2.0), p=0.5)]
        if name == "sim":
            return colour + stack + [HFlip(0.5)]
        fill = tuple(min(255, round(255 * v)) for v in mean)  # timm's img_mean, the authors'
        return [HFlip(0.5)] + colour + (stack if name == "randclsstack" else []) + \
            [RandAugment(randaug_n, randaug_m, fill=fill)]
    spec = CIFAR_VIEWS[name]
    if spec.crop == "pad":
        return [RandomCropPad(image_size, padding=spec.pad), HFlip(0.5), AutoAugmentCIFAR10(),
                Cutout(image_size // 2)]
    if spec.crop == "resized":
        return [HFlip(0.5), ColorJitter(*spec.jitter, p=spec.p_jitter), Grayscale(spec.p_gray),
                GaussianBlur(spec.blur_sigma, p=spec.p_blur)]
    return []


def build_batched_transform(
    name: str,
    *,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    randaug_n: int = 2,
    randaug_m: int = 10,
    crop: bool = True,
) -> BatchedCompose:
    """Batched twin of `gpaco.data.transforms.build_transform` (the same `CIFAR_VIEWS` table and
    ImageNet views, the same defaults); `crop=False` leaves out the random resized crop (done
    by `host_crop`)."""
    _check(name)
    size, mean, std = view_defaults(name, image_size, mean, std)
    scale = crop_scale(name)
    # the first op, as on the per-sample path: the random resized crop, or (views that keep
    # the image's size) a resize to the training size when the images have another
    first = RandomResizedCrop(size, scale=scale) if scale else batched_ops.ResizeIfNeeded(size)
    ops = [first] if crop else []
    return BatchedCompose(ops + _rest(name, size, mean, randaug_n, randaug_m)
                          + [Normalize(mean, std)])


def host_crop(name: str, image_size: int | None = None) -> Callable[[Tensor], Tensor]:
    """The crop of view `name` on one decoded uint8 (3, H, W) image, drawn from torch's
    (per-sample seeded) stream as the per-sample path's first op: a random resized crop, or a
    resize to the training size for views that crop later."""
    _check(name)
    size = view_defaults(name, image_size, None, None)[0]
    scale = crop_scale(name)
    if scale is not None:
        return v2.RandomResizedCrop(size, scale=scale, antialias=True)
    return ResizeIfNeeded(size)

