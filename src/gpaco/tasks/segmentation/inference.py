"""Whole-image, sliding-window and multi-scale + flip inference (mmsegmentation's rules).

`model(x)` must map normalised images (N, 3, h, w) to logits (N, C, h, w) at the same size
(`Segmenter.forward`); `size_divisor` is read from the model when present. Multi-scale
inference averages softmax probabilities over scales (and flips), each resized to the output
size, as mmseg's aug_test does; single-scale returns logits (same argmax).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gpaco.data.segmentation.transforms import rescaled_size
from gpaco.tasks.segmentation.metrics import ConfusionMatrix, SegmentationScores

MULTI_SCALE_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def _resize(x: Tensor, size: Sequence[int]) -> Tensor:
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False)


def whole_inference(model: nn.Module, images: Tensor) -> Tensor:
    """Logits (N, C, H, W) of whole images, zero-padded bottom/right to the model's size divisor."""
    divisor = getattr(model, "size_divisor", 1)
    height, width = images.shape[-2:]
    pad_h, pad_w = (-height) % divisor, (-width) % divisor
    padded = F.pad(images, (0, pad_w, 0, pad_h)) if pad_h or pad_w else images
    return model(padded)[..., :height, :width]


def _starts(length: int, crop: int, stride: int) -> list[int]:
    """Window starts covering [0, length): a grid of `stride`, the last window flush with the end."""
    count = max(length - crop + stride - 1, 0) // stride + 1
    return sorted({max(min(i * stride + crop, length) - crop, 0) for i in range(count)})


def slide_inference(
    model: nn.Module, images: Tensor, crop: tuple[int, int], stride: tuple[int, int]
) -> Tensor:
    """Mean logits over overlapping `crop` windows taken every `stride` pixels."""
    height, width = images.shape[-2:]
    total: Tensor | None = None
    count = images.new_zeros(1, 1, height, width)
    for top in _starts(height, crop[0], stride[0]):
        for left in _starts(width, crop[1], stride[1]):
            window = images[..., top : top + crop[0], left : left + crop[1]]
            logits = whole_inference(model, window)
            if total is None:
                total = images.new_zeros(images.shape[0], logits.shape[1], height, width)
            total[..., top : top + window.shape[-2], left : left + window.shape[-1]] += logits
            count[..., top : top + window.shape[-2], left : left + window.shape[-1]] += 1
    assert total is not None
    return total / count


@torch.no_grad()
def predict(
    model: nn.Module,
    images: Tensor,
    out_size: Sequence[int] | None = None,
    *,
    mode: str = "whole",
    crop: tuple[int, int] | None = None,
    stride: tuple[int, int] | None = None,
    ratios: Sequence[float] = (1.0,),
    flip: bool = False,
    scale: tuple[int, int] | None = None,
) -> Tensor:
    """Scores (N, C, *out_size): logits for one scale without flip, else mean probabilities.

    Args:
        images: normalised (N, 3, H, W) batch.
        out_size: where to evaluate (the original mask size); default (H, W).
        mode: "whole" or "slide" (then `crop` and `stride` are needed).
        ratios: test scales; each resizes the image to `scale` x ratio (aspect kept, mmcv
            rule) or, without `scale`, to (H, W) x ratio.
        flip: also run on horizontally flipped images (flipped back before averaging).
    """
    if mode not in ("whole", "slide"):
        raise ValueError(f"mode must be 'whole' or 'slide', got {mode!r}")
    if mode == "slide" and (crop is None or stride is None):
        raise ValueError("slide inference needs crop and stride")
    height, width = images.shape[-2:]
    out_size = tuple(out_size) if out_size is not None else (height, width)

    def run(x: Tensor) -> Tensor:
        return whole_inference(model, x) if mode == "whole" else slide_inference(model, x, crop, stride)

    views = [(r, f) for r in ratios for f in ((False, True) if flip else (False,))]
    total: Tensor | None = None
    for ratio, flipped in views:
        if scale is not None:
            size = rescaled_size(height, width, (int(scale[0] * ratio), int(scale[1] * ratio)))
        else:
            size = (int(height * ratio + 0.5), int(width * ratio + 0.5))
        x = _resize(images, size)
        x = x.flip(-1) if flipped else x
        out = _resize(run(x), out_size)
        out = out.flip(-1) if flipped else out
        if len(views) == 1:
            return out
        probs = out.softmax(dim=1)
        total = probs if total is None else total + probs
    assert total is not None
    return total / len(views)


def evaluate(
    model: nn.Module,
    batches: Iterable[tuple[Tensor, Tensor]],
    num_classes: int,
    *,
    ignore_index: int = 255,
    device: torch.device | str = "cpu",
    **predict_kwargs,
) -> tuple[SegmentationScores, ConfusionMatrix]:
    """Scores of `model` (set to eval mode) over (images, masks) batches; each prediction is
    made at its mask's size. `predict_kwargs` go to `predict` (mode, ratios, flip...). The
    model's training mode is restored afterwards."""
    was_training = model.training
    model.eval()
    matrix = ConfusionMatrix(num_classes, ignore_index)
    for images, masks in batches:
        images, masks = images.to(device), masks.to(device)
        pred = predict(model, images, masks.shape[-2:], **predict_kwargs).argmax(1)
        matrix.update(pred, masks)
    model.train(was_training)
    return matrix.compute(), matrix
