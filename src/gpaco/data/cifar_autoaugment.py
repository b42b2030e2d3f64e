"""The authors' CIFAR AutoAugment (their `autoaug.py` CIFAR10Policy) on PIL images, and its table.

`CIFAR10_POLICY` and `MAGNITUDES` are the one definition of the policy: the PIL transform here
and its batched twin (`batched_autoaugment`) both read them. The sub-policies are torchvision's
CIFAR10 ones; what the authors do differently from torchvision's AutoAugment:

- geometric ops fill with grey (128, 128, 128), not black;
- shears resample bicubic (PIL's transform bicubic: a cubic convolution with a = -1, unlike
  its resize's -0.5 and torch's -0.75), translate and rotate nearest;
- translations are a fraction of the side (150/331 at bin 9) applied as a float offset, which
  PIL's nearest sampling rounds (14.5 px -> 15 px where torchvision truncates to 14);
- rotate has no random sign (always counter-clockwise);
- solarize thresholds run from 256 (nothing inverted) to 0, not from 255.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import PIL.Image
import torch
from PIL import Image, ImageOps
from torchvision.transforms import v2

SubPolicy = tuple[tuple[str, float, int | None], tuple[str, float, int | None]]

# 25 sub-policies of (op, probability, magnitude bin): torchvision's CIFAR10 policy, which is
# also the authors' (tests/data/test_cifar_autoaugment.py checks it against torchvision).
CIFAR10_POLICY: tuple[SubPolicy, ...] = (
    (("Invert", 0.1, None), ("Contrast", 0.2, 6)),
    (("Rotate", 0.7, 2), ("TranslateX", 0.3, 9)),
    (("Sharpness", 0.8, 1), ("Sharpness", 0.9, 3)),
    (("ShearY", 0.5, 8), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.5, None), ("Equalize", 0.9, None)),
    (("ShearY", 0.2, 7), ("Posterize", 0.3, 7)),
    (("Color", 0.4, 3), ("Brightness", 0.6, 7)),
    (("Sharpness", 0.3, 9), ("Brightness", 0.7, 9)),
    (("Equalize", 0.6, None), ("Equalize", 0.5, None)),
    (("Contrast", 0.6, 7), ("Sharpness", 0.6, 5)),
    (("Color", 0.7, 7), ("TranslateX", 0.5, 8)),
    (("Equalize", 0.3, None), ("AutoContrast", 0.4, None)),
    (("TranslateY", 0.4, 3), ("Sharpness", 0.2, 6)),
    (("Brightness", 0.9, 6), ("Color", 0.2, 8)),
    (("Solarize", 0.5, 2), ("Invert", 0.0, None)),
    (("Equalize", 0.2, None), ("AutoContrast", 0.6, None)),
    (("Equalize", 0.2, None), ("Equalize", 0.6, None)),
    (("Color", 0.9, 9), ("Equalize", 0.6, None)),
    (("AutoContrast", 0.8, None), ("Solarize", 0.2, 8)),
    (("Brightness", 0.1, 3), ("Color", 0.7, 0)),
    (("Solarize", 0.4, 5), ("AutoContrast", 0.9, None)),
    (("TranslateY", 0.9, 9), ("TranslateY", 0.7, 9)),
    (("AutoContrast", 0.9, None), ("Solarize", 0.8, 3)),
    (("Equalize", 0.8, None), ("Invert", 0.1, None)),
    (("TranslateY", 0.7, 9), ("AutoContrast", 0.9, None)),
)

# op -> (magnitude at bin 0, at bin 9, random sign); None: the op takes no magnitude.
# Translations are fractions of the image side; enhancements are used as factor 1 + m.
MAGNITUDES: dict[str, tuple[float, float, bool] | None] = {
    "ShearX": (0.0, 0.3, True),
    "ShearY": (0.0, 0.3, True),
    "TranslateX": (0.0, 150.0 / 331.0, True),
    "TranslateY": (0.0, 150.0 / 331.0, True),
    "Rotate": (0.0, 30.0, False),
    "Color": (0.0, 0.9, True),
    "Posterize": (8.0, 4.0, False),
    "Solarize": (256.0, 0.0, False),
    "Contrast": (0.0, 0.9, True),
    "Sharpness": (0.0, 0.9, True),
    "Brightness": (0.0, 0.9, True),
    "AutoContrast": None,
    "Equalize": None,
    "Invert": None,
}
SIGNED_OPS = tuple(name for name, spec in MAGNITUDES.items() if spec and spec[2])
FILL = 128  # grey of the geometric ops' uncovered area, every band
N_BINS = 10


def magnitude_bins(name: str) -> np.ndarray | None:
    """The authors' 10 unsigned magnitudes of `name` (numpy float64, as they compute them)."""
    spec = MAGNITUDES[name]
    if spec is None:
        return None
    bins = np.linspace(spec[0], spec[1], N_BINS)
    return np.round(bins) if name == "Posterize" else bins  # posterize takes whole bits


def magnitude(name: str, bin_: int | None) -> float:
    """The unsigned magnitude of `name` at `bin_` (0.0 for ops that take none)."""
    bins = magnitude_bins(name)
    return 0.0 if bins is None or bin_ is None else float(bins[bin_])


# op -> PIL affine matrix (output pixel centre -> input position) for signed magnitude m and
# image size (w, h), origin top-left; translations are m times the side in pixels.
AFFINE_MATRICES: dict[str, Callable[[float, int, int], tuple[float, ...]]] = {
    "ShearX": lambda m, w, h: (1.0, m, 0.0, 0.0, 1.0, 0.0),
    "ShearY": lambda m, w, h: (1.0, 0.0, 0.0, m, 1.0, 0.0),
    "TranslateX": lambda m, w, h: (1.0, 0.0, m * w, 0.0, 1.0, 0.0),
    "TranslateY": lambda m, w, h: (1.0, 0.0, 0.0, 0.0, 1.0, m * h),
}
# Shears are bicubic; translate and rotate nearest (PIL's default), so a fractional translation
# is rounded: PIL's nearest reads the input at floor(x + 0.5 + offset).
RESAMPLE = {"ShearX": Image.BICUBIC, "ShearY": Image.BICUBIC, "TranslateX": Image.NEAREST,
            "TranslateY": Image.NEAREST, "Rotate": Image.NEAREST}
GEOMETRIC_OPS = tuple(RESAMPLE)


def geometric_op(img: PIL.Image.Image, name: str, m: float, fill: Any = None) -> PIL.Image.Image:
    """The authors' geometric op `name` with signed magnitude m; uncovered pixels get `fill`
    (default grey). Rotate turns m degrees counter-clockwise about the centre; the authors rotate
    an RGBA copy and composite it over grey, which gives the same pixels as PIL's own fill."""
    fillcolor = fill if fill is not None else (FILL,) * len(img.getbands())
    if name == "Rotate":
        return img.rotate(m, RESAMPLE[name], fillcolor=fillcolor)
    matrix = AFFINE_MATRICES[name](m, *img.size)
    return img.transform(img.size, Image.AFFINE, matrix, RESAMPLE[name], fillcolor=fillcolor)


def _space(name: str) -> tuple[Callable[[int, int, int], torch.Tensor | None], bool]:
    """torchvision's `_AUGMENTATION_SPACE` entry for `name`, read from MAGNITUDES."""
    bins = magnitude_bins(name)
    values = None if bins is None else torch.from_numpy(bins)  # float64: float() gives them exactly
    return (lambda num_bins, height, width: values), name in SIGNED_OPS


class CifarAutoAugment(v2.AutoAugment):
    """The authors' CIFAR10Policy on PIL images: torchvision's AutoAugment (sampling, enhancers,
    posterize, autocontrast, equalize, invert) with the authors' magnitudes, geometric ops and
    solarize threshold. PIL images only (the batched twin handles tensors)."""

    _AUGMENTATION_SPACE = {name: _space(name) for name in MAGNITUDES}

    def __init__(self) -> None:
        super().__init__(v2.AutoAugmentPolicy.CIFAR10)

    def extra_repr(self) -> str:  # torchvision's would print its unused interpolation / fill
        return f"authors' CIFAR10 policy, fill={FILL}, shear=bicubic, translate/rotate=nearest"

    def _get_policies(self, policy: v2.AutoAugmentPolicy) -> list[SubPolicy]:
        return list(CIFAR10_POLICY)

    def _apply_image_or_video_transform(
        self, image: Any, transform_id: str, magnitude: float, interpolation: Any, fill: Any
    ) -> Any:
        if not isinstance(image, PIL.Image.Image):
            raise TypeError(f"CifarAutoAugment takes PIL images, got {type(image).__name__}")
        if transform_id in GEOMETRIC_OPS:
            return geometric_op(image, transform_id, magnitude)
        if transform_id == "Solarize":  # the threshold itself, not a fraction of 255
            return ImageOps.solarize(image, magnitude)
        return super()._apply_image_or_video_transform(image, transform_id, magnitude, interpolation, fill)

    def apply_op(self, image: PIL.Image.Image, name: str, magnitude: float) -> PIL.Image.Image:
        """One op of the policy with signed `magnitude`, as `forward` applies it."""
        return self._apply_image_or_video_transform(image, name, magnitude, self.interpolation, self._fill)
