"""Test-time preprocessing of the robustness benchmarks.

Two protocols:
- "authors" (default): Resize(256) + CenterCrop(224) for every dataset, the ImageNet-C images
  (already 224 x 224) included: the convention of AugMix's evaluation, which the GPaCo code copies.
- "hendrycks": ImageNet-C images are only centre-cropped to 224 (hendrycks/robustness
  `ImageNet-C/test.py`); the other datasets get Resize(256) + CenterCrop(224) (as its clean
  set and hendrycks/imagenet-r `eval.py`).
The resampling filter is the model's: bicubic for the ViTs, bilinear for the ResNets.
"""

from __future__ import annotations

from collections.abc import Sequence

from torchvision import transforms as T

from gpaco.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from gpaco.errors import UserError

PROTOCOLS = ("authors", "hendrycks")
INTERPOLATIONS = {"bicubic": T.InterpolationMode.BICUBIC, "bilinear": T.InterpolationMode.BILINEAR}


def robustness_transform(
    suite: str,
    protocol: str = "authors",
    *,
    interpolation: str = "bicubic",
    image_size: int = 224,
    resize_size: int = 256,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> T.Compose:
    """PIL image -> normalised tensor for `suite` ("imagenet-c", "imagenet-r", ...)."""
    if protocol not in PROTOCOLS:
        raise UserError(f"unknown protocol {protocol!r}; choose one of {', '.join(PROTOCOLS)}")
    if interpolation not in INTERPOLATIONS:
        raise UserError(f"unknown interpolation {interpolation!r}; choose bicubic or bilinear")
    ops: list = []
    if not (protocol == "hendrycks" and suite == "imagenet-c"):
        ops.append(T.Resize(resize_size, interpolation=INTERPOLATIONS[interpolation]))
    ops += [T.CenterCrop(image_size), T.ToTensor(), T.Normalize(list(mean), list(std))]
    return T.Compose(ops)
