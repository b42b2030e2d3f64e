"""Joint image + mask pipelines on torchvision.transforms.v2 (tv_tensors.Image / Mask).

The training pipeline is mmsegmentation's standard one, in its order: random rescale
(ratio 0.5-2 of the config scale, aspect kept), random crop with cat_max_ratio 0.75,
horizontal flip, photometric distortion, normalisation, pad to the crop size (image with 0,
mask with the ignore value). Geometric transforms move the mask with nearest interpolation
(v2's rule for tv_tensors.Mask); photometric ones leave the mask alone.
All randomness comes from torch's global RNG, so DataLoader worker seeding applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

# mmseg's pixel statistics (0-255 scale) expressed on the 0-1 scale of ToDtype(scale=True).
MEAN = (123.675 / 255, 116.28 / 255, 103.53 / 255)
STD = (58.395 / 255, 57.12 / 255, 57.375 / 255)


def _uniform(low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(()))


def _mask_of(flat_inputs: list[Any]) -> tv_tensors.Mask | None:
    return next((x for x in flat_inputs if isinstance(x, tv_tensors.Mask)), None)


def rescaled_size(height: int, width: int, scale: tuple[int, int]) -> tuple[int, int]:
    """(h, w) after an aspect-keeping resize so that the long side is <= max(scale) and the
    short side <= min(scale), with one of them reached (mmcv's `imrescale` rule)."""
    factor = min(max(scale) / max(height, width), min(scale) / min(height, width))
    return int(height * factor + 0.5), int(width * factor + 0.5)


class RandomRescale(v2.Transform):
    """Resize to `scale` x r, r ~ U(ratio_range), keeping the aspect ratio."""

    def __init__(self, scale: tuple[int, int], ratio_range: tuple[float, float] = (0.5, 2.0)):
        super().__init__()
        self.scale = tuple(scale)
        self.ratio_range = tuple(ratio_range)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        ratio = _uniform(*self.ratio_range)
        scale = (int(self.scale[0] * ratio), int(self.scale[1] * ratio))
        return {"size": list(rescaled_size(height, width, scale))}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return TF.resize(inpt, params["size"], antialias=False)


class Rescale(RandomRescale):
    """The deterministic test-time resize of the image to `scale` (aspect kept). The mask
    keeps its size unless `resize_masks`: metrics are computed at the original resolution."""

    def __init__(self, scale: tuple[int, int], resize_masks: bool = False):
        super().__init__(scale, (1.0, 1.0))
        self.resize_masks = resize_masks

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask) and not self.resize_masks:
            return inpt
        return super().transform(inpt, params)


class RandomCropCatMax(v2.Transform):
    """Random crop of at most `size` (h, w); redrawn up to 10 times until no single class
    covers more than `cat_max_ratio` of the crop's labelled pixels (mmseg's RandomCrop)."""

    def __init__(self, size: tuple[int, int], cat_max_ratio: float = 0.75, ignore_index: int = 255):
        super().__init__()
        self.size = tuple(size)
        self.cat_max_ratio = float(cat_max_ratio)
        self.ignore_index = int(ignore_index)

    def _draw(self, height: int, width: int) -> tuple[int, int, int, int]:
        crop_h, crop_w = min(self.size[0], height), min(self.size[1], width)
        top = int(torch.randint(height - crop_h + 1, ()))
        left = int(torch.randint(width - crop_w + 1, ()))
        return top, left, crop_h, crop_w

    def _balanced(self, mask: torch.Tensor, box: tuple[int, int, int, int]) -> bool:
        top, left, h, w = box
        crop = mask[..., top : top + h, left : left + w]
        _, counts = crop[crop != self.ignore_index].unique(return_counts=True)
        return counts.numel() > 1 and counts.max().item() / counts.sum().item() < self.cat_max_ratio

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        height, width = v2.query_size(flat_inputs)
        box = self._draw(height, width)
        mask = _mask_of(flat_inputs)
        if mask is not None and self.cat_max_ratio < 1.0:
            for _ in range(9):  # 10 draws in all; the last one is kept regardless
                if self._balanced(mask, box):
                    break
                box = self._draw(height, width)
        return dict(zip(("top", "left", "height", "width"), box))

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return TF.crop(inpt, **params)


class PhotoMetricDistortion(v2.Transform):
    """mmseg's PhotoMetricDistortion on uint8 images, each step with probability 0.5:
    brightness (+U(-32, 32)), contrast (x U(0.5, 1.5), before or after the colour steps),
    saturation (x U(0.5, 1.5)) and hue (+U(-18, 18) degrees on OpenCV's 0-180 scale).

    Brightness and contrast are mmseg's linear pixel maps; saturation and hue use
    torchvision's kernels (grey blend / HSV rotation), close to but not bit-equal with
    mmseg's OpenCV HSV arithmetic. Masks pass through untouched.
    """

    _transformed_types = (tv_tensors.Image,)

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        def maybe(low: float, high: float) -> float | None:
            return _uniform(low, high) if torch.rand(()) < 0.5 else None

        return {
            "brightness": maybe(-32, 32),
            "contrast_first": bool(torch.rand(()) < 0.5),
            "contrast": maybe(0.5, 1.5),
            "saturation": maybe(0.5, 1.5),
            "hue": maybe(-18, 18),
        }

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        img = inpt.float()
        if params["brightness"] is not None:
            img = (img + params["brightness"]).clamp(0, 255)
        if params["contrast_first"] and params["contrast"] is not None:
            img = (img * params["contrast"]).clamp(0, 255)
        img = img.round().to(torch.uint8)
        if params["saturation"] is not None:
            img = TF.adjust_saturation(img, params["saturation"])
        if params["hue"] is not None:
            img = TF.adjust_hue(img, params["hue"] / 180.0)
        if not params["contrast_first"] and params["contrast"] is not None:
            img = (img.float() * params["contrast"]).clamp(0, 255).round().to(torch.uint8)
        return tv_tensors.wrap(img, like=inpt)


class PadTo(v2.Transform):
    """Pad bottom/right up to `size` (h, w): images with `fill`, masks with `ignore_index`."""

    def __init__(self, size: tuple[int, int], fill: float = 0.0, ignore_index: int = 255):
        super().__init__()
        self.size = tuple(size)
        self.fill = fill
        self.ignore_index = ignore_index

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        height, width = inpt.shape[-2:]
        bottom, right = max(self.size[0] - height, 0), max(self.size[1] - width, 0)
        if bottom == 0 and right == 0:
            return inpt
        fill = self.ignore_index if isinstance(inpt, tv_tensors.Mask) else self.fill
        return TF.pad(inpt, [0, 0, right, bottom], fill=fill)


class ToTrainingTensors(v2.Transform):
    """Image: uint8 -> float in [0, 1] -> normalised; mask: int64 (H, W)."""

    def __init__(self, mean: Sequence[float] = MEAN, std: Sequence[float] = STD):
        super().__init__()
        self.mean, self.std = list(mean), list(std)

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if isinstance(inpt, tv_tensors.Mask):
            return tv_tensors.wrap(inpt.to(torch.int64).reshape(inpt.shape[-2:]), like=inpt)
        img = TF.to_dtype(inpt, torch.float32, scale=True)
        return TF.normalize(img, self.mean, self.std)


def train_transform(
    scale: tuple[int, int],
    crop: tuple[int, int],
    *,
    ratio_range: tuple[float, float] = (0.5, 2.0),
    cat_max_ratio: float = 0.75,
    ignore_index: int = 255,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
) -> v2.Compose:
    """The standard mmseg training pipeline; call it as `transform(image, mask)`."""
    return v2.Compose([
        RandomRescale(scale, ratio_range),
        RandomCropCatMax(crop, cat_max_ratio, ignore_index),
        v2.RandomHorizontalFlip(0.5),
        PhotoMetricDistortion(),
        ToTrainingTensors(mean, std),
        PadTo(crop, 0.0, ignore_index),
    ])


def eval_transform(
    scale: tuple[int, int] | None,
    *,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
) -> v2.Compose:
    """Resize the image to `scale` (aspect kept; None keeps its size) and normalise it; the
    mask stays at its original size, where the evaluator compares (logits are resized to it)."""
    steps: list[v2.Transform] = [Rescale(scale)] if scale is not None else []
    return v2.Compose([*steps, ToTrainingTensors(mean, std)])
