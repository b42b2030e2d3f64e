"""timm's RandAugment as the authors ran it: Posterize to 0 bits is a black image (what
Pillow < 10 did), not an error."""

from __future__ import annotations

from typing import Any


def _posterize(img: Any, bits_to_keep: int, **_: Any) -> Any:
    """timm's posterize, also for 0 bits: Pillow < 10 made that a black image (what the
    authors' and MAE's runs did when the magnitude reached 10), Pillow >= 10 raises."""
    from PIL import Image, ImageOps

    if bits_to_keep >= 8:
        return img
    if bits_to_keep <= 0:
        return Image.new(img.mode, img.size)
    return ImageOps.posterize(img, bits_to_keep)


def allow_zero_bit_posterize(transform: Any) -> Any:
    """Give the Posterize ops of the timm RandAugment(s) in `transform` `_posterize`."""
    for t in getattr(transform, "transforms", [transform]):
        for op in getattr(t, "ops", []):
            if "Posterize" in getattr(op, "name", ""):
                op.aug_fn = _posterize
    return transform
